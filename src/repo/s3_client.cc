#include "repo/s3_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <pugixml.hpp>
#include <spdlog/spdlog.h>

#include "common/crc32c.h"

namespace stria::repo {

namespace {

// Idle connections kept for reuse, across all calls on one client (each
// holds a descriptor; a store's 16 fetch threads use about 16).
constexpr long kCachedConnections = 64;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "2009-10-12T17:50:30.000Z" (listings) -> ns since the epoch; 0 if unreadable.
int64_t ParseIsoTime(const std::string& s) {
  struct tm tm = {};
  int ms = 0;
  if (sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
             &tm.tm_sec, &ms) < 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000000000LL + static_cast<int64_t>(ms) * 1000000LL;
}

// Once per process: curl_global_init is not thread-safe.
void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string QuoteEtag(std::string etag) {
  if (!etag.empty() && etag.front() != '"') etag = "\"" + etag + "\"";
  return etag;
}

}  // namespace

// The connection and DNS caches every request shares, with curl's locks.
struct S3Client::Shared {
  CURLSH* share = nullptr;
  std::mutex locks[CURL_LOCK_DATA_LAST];
  std::mt19937_64 rng{std::random_device{}()};
  std::mutex rng_mu;

  Shared() {
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, +[](CURL*, curl_lock_data d, curl_lock_access, void* p) {
      static_cast<Shared*>(p)->locks[d].lock();
    });
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, +[](CURL*, curl_lock_data d, void* p) {
      static_cast<Shared*>(p)->locks[d].unlock();
    });
    curl_share_setopt(share, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  }
  ~Shared() { curl_share_cleanup(share); }

  int Jitter(int max_ms) {
    std::lock_guard lk(rng_mu);
    return max_ms <= 0 ? 0 : static_cast<int>(rng() % static_cast<uint64_t>(max_ms));
  }
};

// One HTTP request and its answer, with the state of its attempts.
struct S3Client::Exchange {
  // The request.
  std::string method = "GET";
  std::string bucket, key;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;   // signed, sent as given
  std::string_view body;                                      // PUT/POST body
  char* sink = nullptr;                                       // GET into a buffer of sink_len bytes
  size_t sink_len = 0;
  uint32_t* sink_crcs = nullptr;                              // RangeRead::block_crcs
  std::string what;   // for messages: "GET bucket/key (bytes=...)"

  // The answer.
  long http_status = 0;
  std::string response;                         // body, when no sink
  size_t sink_filled = 0;
  std::map<std::string, std::string> reply_headers;   // lower-case names
  Status status;

  // Attempts.
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  size_t body_sent = 0;
  int attempts = 0;
  int64_t deadline_ms = 0;
  int64_t retry_at_ms = 0;
  bool overflow = false;
  char errbuf[CURL_ERROR_SIZE] = {};

  void ResetAnswer() {
    http_status = 0;
    response.clear();
    sink_filled = 0;
    reply_headers.clear();
    body_sent = 0;
    overflow = false;
    errbuf[0] = 0;
  }
};

namespace {

size_t OnBody(char* data, size_t size, size_t n, void* p) {
  auto* x = static_cast<S3Client::Exchange*>(p);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
  if (x->sink && code >= 200 && code < 300) {
    if (x->sink_filled + len > x->sink_len) {
      x->overflow = true;   // more than asked for: a server that ignored Range
      return 0;
    }
    memcpy(x->sink + x->sink_filled, data, len);
    const size_t had = x->sink_filled;
    x->sink_filled += len;
    if (x->sink_crcs) {   // the blocks this piece completed (a retry starts again at 0)
      constexpr size_t kBlock = RangeRead::kCrcBlock;
      for (size_t b = had / kBlock; b < x->sink_filled / kBlock; b++) {
        x->sink_crcs[b] = Crc32c(0, x->sink + b * kBlock, kBlock);
      }
    }
  } else if (x->response.size() < (64u << 20)) {
    x->response.append(data, len);
  }
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* p) {
  auto* x = static_cast<S3Client::Exchange*>(p);
  size_t len = size * n;
  std::string line(data, len);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = Lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    auto b = value.find_first_not_of(" \t");
    auto e = value.find_last_not_of(" \t\r\n");
    x->reply_headers[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  } else if (line.rfind("HTTP/", 0) == 0) {
    x->reply_headers.clear();   // a new answer (after 100 Continue, or a retry)
  }
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* p) {
  auto* x = static_cast<S3Client::Exchange*>(p);
  size_t len = std::min(size * n, x->body.size() - x->body_sent);
  memcpy(buf, x->body.data() + x->body_sent, len);
  x->body_sent += len;
  return len;
}

// Curl can rewind a body it must send again (a redirect, a reused
// connection that was closed).
int OnSeek(void* p, curl_off_t offset, int origin) {
  auto* x = static_cast<S3Client::Exchange*>(p);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > x->body.size()) return CURL_SEEKFUNC_FAIL;
  x->body_sent = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// S3's <Error><Code>..</Code><Message>..</Message></Error>.
void ErrorOf(const std::string& body, std::string* code, std::string* message) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size())) return;
  auto err = doc.child("Error");
  *code = err.child_value("Code");
  *message = err.child_value("Message");
}

int ErrnoForHttp(long status, const std::string& code) {
  if (status == 404) return ENOENT;
  if (status == 403 || status == 401) return EACCES;
  if (status == 412) return ESTALE;
  if (status == 400 && (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
                        code == "AuthorizationHeaderMalformed" || code == "InvalidToken" ||
                        code == "ExpiredToken")) {
    return EACCES;
  }
  if (status == 408) return ETIMEDOUT;
  return EIO;
}

int ErrnoForCurl(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT: return ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT: return ETIMEDOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return ECONNRESET;
    default: return EIO;
  }
}

bool RetryableCurl(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

bool RetryableHttp(long status) { return status == 500 || status == 502 || status == 503 || status == 504 || status == 429; }

}  // namespace

S3Client::S3Client(S3Endpoint endpoint, Credentials credentials, S3Options options)
    : endpoint_(std::move(endpoint)), credentials_(std::move(credentials)), options_(options) {
  CurlGlobalInit();
  shared_ = std::make_unique<Shared>();
  std::string url = endpoint_.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto sep = url.find("://");
  scheme_ = sep == std::string::npos ? "https" : url.substr(0, sep);
  host_ = sep == std::string::npos ? url : url.substr(sep + 3);
  if (auto slash = host_.find('/'); slash != std::string::npos) host_.resize(slash);
}

S3Client::~S3Client() = default;

uint64_t S3Client::PartSize(uint64_t size) {
  const uint64_t kMiB = 1 << 20;
  uint64_t per_part = (size + 9999) / 10000;
  per_part = (per_part + kMiB - 1) / kMiB * kMiB;
  return std::max<uint64_t>(8 * kMiB, per_part);
}

// Signs x and sets up its easy handle for one attempt.
void S3Client::Prepare(Exchange& x) {
  x.ResetAnswer();
  std::string host = endpoint_.virtual_host && !x.bucket.empty() ? x.bucket + "." + host_ : host_;
  std::string path = "/";
  if (!endpoint_.virtual_host && !x.bucket.empty()) path += x.bucket + (x.key.empty() ? "" : "/");
  path += UriEncode(x.key, true);
  std::string query;
  for (const auto& [k, v] : x.query) {
    query += query.empty() ? "?" : "&";
    query += UriEncode(k, false) + "=" + UriEncode(v, false);
  }
  std::string payload_hash = x.body.empty()          ? std::string(kEmptyPayloadHash)
                             : options_.unsigned_payload ? std::string(kUnsignedPayload)
                                                         : Sha256Hex(x.body);
  SignInput in;
  in.method = x.method;
  in.encoded_path = path;
  in.query = x.query;
  in.payload_hash = payload_hash;
  in.headers = x.headers;
  std::string amz_date = AmzDate(std::time(nullptr));
  in.headers.emplace_back("host", host);
  in.headers.emplace_back("x-amz-date", amz_date);
  in.headers.emplace_back("x-amz-content-sha256", payload_hash);
  if (!credentials_.session_token.empty()) in.headers.emplace_back("x-amz-security-token", credentials_.session_token);
  std::string auth = Authorization(credentials_, endpoint_.region, "s3", amz_date, in);

  if (x.header_list) curl_slist_free_all(x.header_list);
  x.header_list = nullptr;
  for (const auto& [k, v] : in.headers) x.header_list = curl_slist_append(x.header_list, (k + ": " + v).c_str());
  x.header_list = curl_slist_append(x.header_list, ("Authorization: " + auth).c_str());
  x.header_list = curl_slist_append(x.header_list, "Expect:");   // no 100-continue round trip

  if (!x.easy) x.easy = curl_easy_init();
  CURL* e = x.easy;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, (scheme_ + "://" + host + path + query).c_str());
  curl_easy_setopt(e, CURLOPT_SHARE, shared_->share);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x.header_list);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");   // an endpoint is never ftp:// or file://
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x.errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.attempt_timeout_ms));
  // A stall: less than one byte a second for the attempt timeout.
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(options_.attempt_timeout_ms / 1000)));
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1L << 19);
  if (x.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (x.method == "PUT") {
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(x.body.size()));
  } else if (x.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(x.body.size()));
  } else if (x.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x.method.c_str());
  }
  if (x.method == "PUT" || x.method == "POST") {
    curl_easy_setopt(e, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(e, CURLOPT_READDATA, &x);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, OnSeek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, &x);
  }
  curl_easy_setopt(e, CURLOPT_PRIVATE, &x);
}

void S3Client::Perform(std::vector<Exchange*>& xs) {
  CURLM* multi = curl_multi_init();
  // The connection cache is shared by every call on this client, but each
  // multi handle caps it at 4 connections per easy handle it holds: a
  // call of one GET closed the oldest idle connection as it ended, and
  // the next GET connected anew. Room for many threads' connections.
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, kCachedConnections);
  size_t next = 0;
  int in_flight = 0;
  std::vector<Exchange*> waiting;   // failed attempts waiting for their retry time
  int64_t start = NowMs();
  for (Exchange* x : xs) {
    x->attempts = 0;
    x->deadline_ms = start + options_.deadline_ms;
  }
  auto launch = [&](Exchange* x) {
    x->attempts++;
    Prepare(*x);
    curl_multi_add_handle(multi, x->easy);
    in_flight++;
  };
  auto finish = [&](Exchange* x, CURLcode rc) {
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    x->http_status = status;
    std::string where = fmt::format("s3 {} {}://{}", x->what, scheme_, host_);
    bool retry = false;
    if (rc != CURLE_OK) {
      std::string detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
      if (x->overflow) {
        x->status = Err(EIO, "{}: the server sent more bytes than the range asked for", where);
      } else {
        x->status = Err(ErrnoForCurl(rc), "{}: {}", where, detail);
        retry = RetryableCurl(rc);
      }
    } else if (status >= 200 && status < 300) {
      x->status = Status::Ok();
      if (x->sink && x->sink_filled != x->sink_len) {
        // A body cut short without curl noticing: take it again.
        x->status = Err(EIO, "{}: got {} of {} bytes", where, x->sink_filled, x->sink_len);
        retry = true;
      }
    } else {
      std::string code, message;
      ErrorOf(x->response, &code, &message);
      if (code.empty()) code = fmt::format("HTTP {}", status);
      x->status = Err(ErrnoForHttp(status, code), "{}: {} {}{}{}", where, status, code, message.empty() ? "" : ": ",
                      message);
      retry = RetryableHttp(status);
    }
    if (retry && x->attempts < options_.max_attempts) {
      int backoff = std::min(5000, options_.backoff_ms << std::min(x->attempts - 1, 10));
      int64_t at = NowMs() + backoff / 2 + shared_->Jitter(backoff / 2 + 1);
      if (at < x->deadline_ms) {
        spdlog::debug("{} (attempt {}), retrying", x->status.message(), x->attempts);
        x->retry_at_ms = at;
        waiting.push_back(x);
        return;
      }
    }
    if (retry) x->status = x->status.Prefixed(fmt::format("after {} attempts", x->attempts));
  };
  while (true) {
    int64_t now = NowMs();
    for (size_t i = 0; i < waiting.size();) {
      if (waiting[i]->retry_at_ms <= now && in_flight < options_.parallelism) {
        launch(waiting[i]);
        waiting.erase(waiting.begin() + static_cast<long>(i));
      } else {
        i++;
      }
    }
    while (next < xs.size() && in_flight < options_.parallelism) launch(xs[next++]);
    if (in_flight == 0 && waiting.empty() && next == xs.size()) break;
    int running = 0;
    curl_multi_perform(multi, &running);
    CURLMsg* msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      Exchange* x = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&x));
      CURLcode rc = msg->data.result;
      curl_multi_remove_handle(multi, msg->easy_handle);
      in_flight--;
      finish(x, rc);
    }
    int wait_ms = 200;
    for (Exchange* x : waiting) wait_ms = static_cast<int>(std::clamp<int64_t>(x->retry_at_ms - NowMs(), 0, wait_ms));
    long curl_wants = -1;   // curl's own timers (connects, resolves, expect waits)
    curl_multi_timeout(multi, &curl_wants);
    if (curl_wants >= 0) wait_ms = std::min<int>(wait_ms, static_cast<int>(curl_wants));
    if (in_flight > 0) {
      curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
    } else if (!waiting.empty() && wait_ms > 0) {   // only retries to wait for
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
  }
  curl_multi_cleanup(multi);
  for (Exchange* x : xs) {
    if (x->easy) curl_easy_cleanup(x->easy);
    if (x->header_list) curl_slist_free_all(x->header_list);
    x->easy = nullptr;
    x->header_list = nullptr;
  }
}

Status S3Client::RunOne(Exchange& x) {
  std::vector<Exchange*> xs{&x};
  Perform(xs);
  return x.status;
}

Status S3Client::CheckBucket(const std::string& bucket) {
  Exchange x;
  x.bucket = bucket;
  x.query = {{"list-type", "2"}, {"max-keys", "1"}};
  x.what = fmt::format("LIST {}", bucket);
  return RunOne(x);
}

Result<ListPage> S3Client::List(const std::string& bucket, const std::string& prefix, const std::string& delimiter,
                                const std::string& token, int max_keys) {
  Exchange x;
  x.bucket = bucket;
  x.query = {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
  if (!prefix.empty()) x.query.emplace_back("prefix", prefix);
  if (!delimiter.empty()) x.query.emplace_back("delimiter", delimiter);
  if (!token.empty()) x.query.emplace_back("continuation-token", token);
  x.what = fmt::format("LIST {}/{}", bucket, prefix);
  STRIA_RETURN_IF_ERROR(RunOne(x));
  pugi::xml_document doc;
  if (!doc.load_buffer(x.response.data(), x.response.size())) {
    return Err(EIO, "s3 {}: the listing is not XML", x.what);
  }
  auto root = doc.child("ListBucketResult");
  if (!root) return Err(EIO, "s3 {}: the answer has no ListBucketResult", x.what);
  ListPage page;
  page.truncated = std::string(root.child_value("IsTruncated")) == "true";
  page.next_token = root.child_value("NextContinuationToken");
  for (auto c : root.children("Contents")) {
    ObjectInfo o;
    o.key = c.child_value("Key");
    o.size = std::strtoull(c.child_value("Size"), nullptr, 10);
    o.etag = QuoteEtag(c.child_value("ETag"));
    o.mtime_ns = ParseIsoTime(c.child_value("LastModified"));
    page.objects.push_back(std::move(o));
  }
  for (auto p : root.children("CommonPrefixes")) page.common_prefixes.emplace_back(p.child_value("Prefix"));
  if (page.truncated && page.next_token.empty()) {
    return Err(EIO, "s3 {}: a truncated listing without a continuation token", x.what);
  }
  return page;
}

Result<ListPage> S3Client::ListAll(const std::string& bucket, const std::string& prefix,
                                   const std::string& delimiter) {
  ListPage all;
  std::string token;
  do {
    STRIA_ASSIGN_OR_RETURN(ListPage page, List(bucket, prefix, delimiter, token));
    for (auto& o : page.objects) all.objects.push_back(std::move(o));
    for (auto& p : page.common_prefixes) all.common_prefixes.push_back(std::move(p));
    token = page.truncated ? page.next_token : "";
  } while (!token.empty());
  return all;
}

Result<ObjectInfo> S3Client::Head(const std::string& bucket, const std::string& key) {
  Exchange x;
  x.method = "HEAD";
  x.bucket = bucket;
  x.key = key;
  x.what = fmt::format("HEAD {}/{}", bucket, key);
  STRIA_RETURN_IF_ERROR(RunOne(x));
  ObjectInfo o;
  o.key = key;
  o.size = std::strtoull(x.reply_headers["content-length"].c_str(), nullptr, 10);
  o.etag = QuoteEtag(x.reply_headers["etag"]);
  time_t t = curl_getdate(x.reply_headers["last-modified"].c_str(), nullptr);
  o.mtime_ns = t > 0 ? static_cast<int64_t>(t) * 1000000000LL : 0;
  return o;
}

Status S3Client::GetRanges(const std::string& bucket, const std::string& key, const std::string& etag,
                           std::vector<RangeRead>& ranges) {
  std::vector<Exchange> xs(ranges.size());
  std::vector<Exchange*> run;
  for (size_t i = 0; i < ranges.size(); i++) {
    RangeRead& r = ranges[i];
    if (r.length == 0) {
      r.status = Status::Ok();
      continue;
    }
    Exchange& x = xs[i];
    x.bucket = bucket;
    x.key = key;
    std::string range = fmt::format("bytes={}-{}", r.offset, r.offset + r.length - 1);
    x.headers.emplace_back("range", range);
    if (!etag.empty()) x.headers.emplace_back("if-match", etag);
    x.sink = r.out;
    x.sink_len = r.length;
    x.sink_crcs = r.block_crcs;
    x.what = fmt::format("GET {}/{} ({})", bucket, key, range);
    run.push_back(&x);
  }
  Perform(run);
  Status first;
  for (size_t i = 0; i < ranges.size(); i++) {
    if (ranges[i].length == 0) continue;
    ranges[i].status = xs[i].status;
    if (first.ok() && !xs[i].status.ok()) first = xs[i].status;
  }
  return first;
}

Result<std::string> S3Client::Put(const std::string& bucket, const std::string& key, std::string_view body) {
  Exchange x;
  x.method = "PUT";
  x.bucket = bucket;
  x.key = key;
  x.body = body;
  x.what = fmt::format("PUT {}/{} ({} bytes)", bucket, key, body.size());
  STRIA_RETURN_IF_ERROR(RunOne(x));
  return QuoteEtag(x.reply_headers["etag"]);
}

Status S3Client::Delete(const std::string& bucket, const std::string& key) {
  Exchange x;
  x.method = "DELETE";
  x.bucket = bucket;
  x.key = key;
  x.what = fmt::format("DELETE {}/{}", bucket, key);
  Status st = RunOne(x);
  return st.code() == ENOENT ? Status::Ok() : st;   // gone already is gone
}

Status S3Client::CreateBucket(const std::string& bucket) {
  Exchange x;
  x.method = "PUT";
  x.bucket = bucket;
  x.what = fmt::format("CREATE BUCKET {}", bucket);
  return RunOne(x);
}

Result<std::string> S3Client::CreateMultipartUpload(const std::string& bucket, const std::string& key) {
  Exchange x;
  x.method = "POST";
  x.bucket = bucket;
  x.key = key;
  x.query = {{"uploads", ""}};
  x.what = fmt::format("CREATE MULTIPART {}/{}", bucket, key);
  STRIA_RETURN_IF_ERROR(RunOne(x));
  pugi::xml_document doc;
  doc.load_buffer(x.response.data(), x.response.size());
  std::string id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
  if (id.empty()) return Err(EIO, "s3 {}: the answer has no UploadId", x.what);
  return id;
}

Result<std::string> S3Client::UploadPart(const std::string& bucket, const std::string& key,
                                         const std::string& upload_id, int part_number, std::string_view body) {
  Exchange x;
  x.method = "PUT";
  x.bucket = bucket;
  x.key = key;
  x.body = body;
  x.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  x.what = fmt::format("UPLOAD PART {} of {}/{}", part_number, bucket, key);
  STRIA_RETURN_IF_ERROR(RunOne(x));
  return QuoteEtag(x.reply_headers["etag"]);
}

Result<std::string> S3Client::CompleteMultipartUpload(const std::string& bucket, const std::string& key,
                                                      const std::string& upload_id,
                                                      const std::vector<std::string>& etags) {
  std::string xml = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); i++) {
    xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, etags[i]);
  }
  xml += "</CompleteMultipartUpload>";
  Exchange x;
  x.method = "POST";
  x.bucket = bucket;
  x.key = key;
  x.body = xml;
  x.query = {{"uploadId", upload_id}};
  x.headers.emplace_back("content-type", "application/xml");
  x.what = fmt::format("COMPLETE MULTIPART {}/{} ({} parts)", bucket, key, etags.size());
  STRIA_RETURN_IF_ERROR(RunOne(x));
  // S3 may answer 200 and still have failed: the body then holds an Error.
  pugi::xml_document doc;
  doc.load_buffer(x.response.data(), x.response.size());
  if (auto err = doc.child("Error")) {
    return Err(EIO, "s3 {}: {}: {}", x.what, err.child_value("Code"), err.child_value("Message"));
  }
  std::string etag = doc.child("CompleteMultipartUploadResult").child_value("ETag");
  if (etag.empty()) return Err(EIO, "s3 {}: the answer has no ETag", x.what);
  return QuoteEtag(etag);
}

Status S3Client::AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                      const std::string& upload_id) {
  Exchange x;
  x.method = "DELETE";
  x.bucket = bucket;
  x.key = key;
  x.query = {{"uploadId", upload_id}};
  x.what = fmt::format("ABORT MULTIPART {}/{}", bucket, key);
  return RunOne(x);
}

Result<std::string> S3Client::Upload(const std::string& bucket, const std::string& key, uint64_t size,
                                     const ReadFn& read) {
  uint64_t part_size = PartSize(size);
  if (size <= part_size) {
    std::string body(size, '\0');
    if (size > 0) STRIA_RETURN_IF_ERROR(read(0, size, body.data()));
    return Put(bucket, key, body);
  }
  STRIA_ASSIGN_OR_RETURN(std::string upload_id, CreateMultipartUpload(bucket, key));
  uint64_t nparts = (size + part_size - 1) / part_size;
  std::vector<std::string> etags(nparts);
  Status failed;
  // Parts go in waves of `parallelism`, each wave read then sent at once,
  // so memory stays at parallelism * part_size.
  uint64_t wave = static_cast<uint64_t>(std::max(1, options_.parallelism));
  for (uint64_t first = 0; first < nparts && failed.ok(); first += wave) {
    uint64_t count = std::min(wave, nparts - first);
    std::vector<std::string> bodies(count);
    std::vector<Exchange> xs(count);
    std::vector<Exchange*> run;
    for (uint64_t i = 0; i < count && failed.ok(); i++) {
      uint64_t part = first + i;
      uint64_t off = part * part_size;
      uint64_t len = std::min(part_size, size - off);
      bodies[i].resize(len);
      failed = read(off, len, bodies[i].data());
      Exchange& x = xs[i];
      x.method = "PUT";
      x.bucket = bucket;
      x.key = key;
      x.body = bodies[i];
      x.query = {{"partNumber", std::to_string(part + 1)}, {"uploadId", upload_id}};
      x.what = fmt::format("UPLOAD PART {} of {}/{}", part + 1, bucket, key);
      run.push_back(&x);
    }
    if (!failed.ok()) break;
    Perform(run);
    for (uint64_t i = 0; i < count; i++) {
      if (!xs[i].status.ok()) {
        if (failed.ok()) failed = xs[i].status;
        continue;
      }
      etags[first + i] = QuoteEtag(xs[i].reply_headers["etag"]);
    }
  }
  if (failed.ok()) {
    auto etag = CompleteMultipartUpload(bucket, key, upload_id, etags);
    if (etag.ok()) return etag;
    failed = etag.status();
  }
  if (Status st = AbortMultipartUpload(bucket, key, upload_id); !st.ok()) {
    spdlog::warn("s3 upload of {}/{} failed, and so did its abort: {}", bucket, key, st.ToString());
  }
  return failed;
}

namespace {
// The ETag in a copy's answer (CopyObjectResult or CopyPartResult); S3 may
// answer 200 and still have failed, with an Error body.
Result<std::string> CopyEtag(const std::string& what, const std::string& body, const char* result) {
  pugi::xml_document doc;
  doc.load_buffer(body.data(), body.size());
  if (auto err = doc.child("Error")) {
    return Err(EIO, "s3 {}: {}: {}", what, err.child_value("Code"), err.child_value("Message"));
  }
  std::string etag = doc.child(result).child_value("ETag");
  if (etag.empty()) return Err(EIO, "s3 {}: the answer has no ETag", what);
  return QuoteEtag(etag);
}
}  // namespace

Result<std::string> S3Client::Copy(const std::string& bucket, const std::string& src_key,
                                   const std::string& src_etag, uint64_t size, const std::string& dst_key) {
  const std::string source = "/" + bucket + "/" + UriEncode(src_key, true);
  auto copy_headers = [&](Exchange& x) {
    x.headers.emplace_back("x-amz-copy-source", source);
    if (!src_etag.empty()) x.headers.emplace_back("x-amz-copy-source-if-match", src_etag);
  };
  if (size <= options_.max_copy) {
    Exchange x;
    x.method = "PUT";
    x.bucket = bucket;
    x.key = dst_key;
    copy_headers(x);
    x.what = fmt::format("COPY {}/{} to {}", bucket, src_key, dst_key);
    STRIA_RETURN_IF_ERROR(RunOne(x));
    return CopyEtag(x.what, x.response, "CopyObjectResult");
  }
  STRIA_ASSIGN_OR_RETURN(std::string upload_id, CreateMultipartUpload(bucket, dst_key));
  const uint64_t part_size = PartSize(size), nparts = (size + part_size - 1) / part_size;
  const uint64_t wave = static_cast<uint64_t>(std::max(1, options_.parallelism));
  std::vector<std::string> etags(nparts);
  Status failed;
  for (uint64_t first = 0; first < nparts && failed.ok(); first += wave) {
    std::vector<Exchange> xs(std::min(wave, nparts - first));
    std::vector<Exchange*> run;
    for (uint64_t i = 0; i < xs.size(); i++) {
      const uint64_t part = first + i, off = part * part_size, len = std::min(part_size, size - off);
      Exchange& x = xs[i];
      x.method = "PUT";
      x.bucket = bucket;
      x.key = dst_key;
      copy_headers(x);
      x.headers.emplace_back("x-amz-copy-source-range", fmt::format("bytes={}-{}", off, off + len - 1));
      x.query = {{"partNumber", std::to_string(part + 1)}, {"uploadId", upload_id}};
      x.what = fmt::format("COPY PART {} of {}/{} to {}", part + 1, bucket, src_key, dst_key);
      run.push_back(&x);
    }
    Perform(run);
    for (uint64_t i = 0; i < xs.size() && failed.ok(); i++) {
      auto etag = xs[i].status.ok() ? CopyEtag(xs[i].what, xs[i].response, "CopyPartResult")
                                    : Result<std::string>(xs[i].status);
      if (etag.ok()) etags[first + i] = *etag;
      else failed = etag.status();
    }
  }
  if (failed.ok()) {
    auto etag = CompleteMultipartUpload(bucket, dst_key, upload_id, etags);
    if (etag.ok()) return etag;
    failed = etag.status();
  }
  if (Status st = AbortMultipartUpload(bucket, dst_key, upload_id); !st.ok()) {
    spdlog::warn("s3 copy of {}/{} to {} failed, and so did its abort: {}", bucket, src_key, dst_key, st.ToString());
  }
  return failed;
}

Status ParseS3Url(const std::string& url, std::string* bucket, std::string* prefix) {
  if (url.rfind("s3://", 0) != 0) return Err(EINVAL, "{}: not an s3:// URL (s3://BUCKET[/PREFIX])", url);
  std::string rest = url.substr(5);
  auto slash = rest.find('/');
  *bucket = rest.substr(0, slash);
  *prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (bucket->empty()) return Err(EINVAL, "{}: no bucket name", url);
  for (char c : *bucket) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      return Err(EINVAL, "{}: '{}' is not a valid bucket name", url, *bucket);
    }
  }
  if (!prefix->empty() && prefix->back() != '/') *prefix += '/';
  return Status::Ok();
}

}  // namespace stria::repo
