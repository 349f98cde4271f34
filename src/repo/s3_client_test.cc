// S3Client against a real S3 server: Swift's s3api started by
// tests/repo/with_s3.py (or the endpoint in STRIA_TEST_S3_ENDPOINT), reached
// directly and through the suite's fault-injecting proxy.
#include "repo/s3_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "common/crc32c.h"
#include "repo/credentials.h"
#include "tests/repo/fault_control.h"

namespace stria::repo {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

uint64_t Seed() {
  static uint64_t seed = [] {
    uint64_t s = Env("STRIA_SEED").empty() ? std::random_device{}() : std::stoull(Env("STRIA_SEED"));
    std::printf("seed %llu (STRIA_SEED=%llu reproduces)\n", static_cast<unsigned long long>(s),
                static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

class S3ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(Env("S3_ENDPOINT").empty()) << "run under tests/repo/with_s3.py, which starts the S3 server";
    auto creds = LoadCredentials();
    ASSERT_TRUE(creds.ok()) << creds.status().ToString();
    creds_ = new Credentials(*creds);
    bucket_ = new std::string("stria-client-" + std::to_string(Seed() % 1000000));
    S3Client admin(Endpoint(Env("S3_ENDPOINT")), *creds_);
    ASSERT_TRUE(admin.CreateBucket(*bucket_).ok());
  }
  static S3Endpoint Endpoint(const std::string& url) {
    S3Endpoint e;
    e.url = url;
    e.region = DefaultRegion();
    return e;
  }
  std::unique_ptr<S3Client> Direct(S3Options o = {}) {
    return std::make_unique<S3Client>(Endpoint(Env("S3_ENDPOINT")), *creds_, o);
  }
  std::unique_ptr<S3Client> ViaProxy(S3Options o = {}) {
    return std::make_unique<S3Client>(Endpoint(Env("S3_PROXY_ENDPOINT")), *creds_, o);
  }
  std::string ReadAll(S3Client& c, const std::string& key, uint64_t size, const std::string& etag = "",
                      uint64_t piece = 1 << 20) {
    std::string out(size, '\0');
    std::vector<RangeRead> ranges;
    std::vector<std::vector<uint32_t>> crcs;   // each range's blocks', taken as the bytes came
    for (uint64_t off = 0; off < size; off += piece) {
      RangeRead& r = ranges.emplace_back();
      r.offset = off;
      r.length = std::min(piece, size - off);
      r.out = out.data() + off;
      r.block_crcs = crcs.emplace_back(r.length / RangeRead::kCrcBlock, 0xdeadbeef).data();
    }
    Status st = c.GetRanges(*bucket_, key, etag, ranges);
    EXPECT_TRUE(st.ok()) << st.ToString();
    for (size_t i = 0; st.ok() && i < ranges.size(); i++) {
      for (size_t b = 0; b < crcs[i].size(); b++) {
        EXPECT_EQ(crcs[i][b], Crc32c(0, ranges[i].out + b * RangeRead::kCrcBlock, RangeRead::kCrcBlock))
            << key << ": block " << b << " of the range at " << ranges[i].offset;
      }
    }
    return out;
  }
  static Credentials* creds_;
  static std::string* bucket_;
};

Credentials* S3ClientTest::creds_;
std::string* S3ClientTest::bucket_;

TEST_F(S3ClientTest, PutHeadGetRangesByteExact) {
  auto c = Direct();
  for (size_t size : {size_t{1}, size_t{4095}, size_t{1} << 20, (size_t{5} << 20) + 17}) {
    std::string key = "exact/obj-" + std::to_string(size);
    std::string data = RandomBytes(size, Seed() + size);
    auto etag = c->Put(*bucket_, key, data);
    ASSERT_TRUE(etag.ok()) << etag.status().ToString();
    auto info = c->Head(*bucket_, key);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->size, size);
    EXPECT_EQ(info->etag, *etag);
    EXPECT_GT(info->mtime_ns, 0);
    EXPECT_EQ(ReadAll(*c, key, size, *etag, 300000), data) << key;
  }
}

TEST_F(S3ClientTest, KeysWithAnyCharacters) {
  auto c = Direct();
  for (std::string key : {"sp ace/ü mlaut/a+b=c&d", "odd/!$'()*,;:@~", "deep/a/b/c/d/e/f.bin"}) {
    ASSERT_TRUE(c->Put(*bucket_, key, key).ok()) << key;
    EXPECT_EQ(ReadAll(*c, key, key.size()), key);
    auto page = c->List(*bucket_, key, "", "");
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->objects.size(), 1u);
    EXPECT_EQ(page->objects[0].key, key);
  }
}

TEST_F(S3ClientTest, ListPaginatesAndSplitsPrefixes) {
  auto c = Direct();
  // 1,050 objects in two levels: pages of 1,000 and the delimiter's prefixes.
  std::string body = "x";
  std::vector<RangeRead> none;
  for (int i = 0; i < 1050; i++) {
    std::string key = fmt::format("list/d{}/k{:04d}", i % 3, i);
    ASSERT_TRUE(c->Put(*bucket_, key, body).ok()) << key;
  }
  ASSERT_TRUE(c->Put(*bucket_, "list/top", body).ok());
  auto first = c->List(*bucket_, "list/", "", "");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->objects.size(), 1000u);
  EXPECT_TRUE(first->truncated);
  auto all = c->ListAll(*bucket_, "list/", "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->objects.size(), 1051u);
  for (size_t i = 1; i < all->objects.size(); i++) EXPECT_LT(all->objects[i - 1].key, all->objects[i].key);
  auto level = c->ListAll(*bucket_, "list/", "/");
  ASSERT_TRUE(level.ok());
  EXPECT_EQ(level->common_prefixes, (std::vector<std::string>{"list/d0/", "list/d1/", "list/d2/"}));
  ASSERT_EQ(level->objects.size(), 1u);
  EXPECT_EQ(level->objects[0].key, "list/top");
  EXPECT_EQ(level->objects[0].size, 1u);
  EXPECT_EQ(level->objects[0].etag.front(), '"');
}

TEST_F(S3ClientTest, ChangedObjectIsStale) {
  auto c = Direct();
  auto old_etag = c->Put(*bucket_, "stale/obj", "version one");
  ASSERT_TRUE(old_etag.ok());
  ASSERT_TRUE(c->Put(*bucket_, "stale/obj", "version two!").ok());
  std::string buf(11, '\0');
  std::vector<RangeRead> r{{0, 11, buf.data()}};
  Status st = c->GetRanges(*bucket_, "stale/obj", *old_etag, r);
  EXPECT_EQ(st.code(), ESTALE) << st.ToString();
  EXPECT_NE(st.message().find("stale/obj"), std::string::npos);
}

TEST_F(S3ClientTest, MultipartUploadAndAbort) {
  auto c = Direct();
  uint64_t size = 2 * S3Client::PartSize(0) + 12345;   // three parts
  std::string data = RandomBytes(size, Seed() + 7);
  auto etag = c->Upload(*bucket_, "mp/three", size, [&](uint64_t off, uint64_t len, char* buf) {
    std::memcpy(buf, data.data() + off, len);
    return Status::Ok();
  });
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  EXPECT_NE(etag->find("-3\""), std::string::npos) << *etag;
  EXPECT_EQ(ReadAll(*c, "mp/three", size, *etag, 3 << 20), data);

  // A source that fails mid-way aborts the upload: no object appears.
  auto failed = c->Upload(*bucket_, "mp/aborted", size, [&](uint64_t off, uint64_t len, char* buf) {
    if (off > 0) return Err(EIO, "source read failed at {}", off);
    std::memcpy(buf, data.data(), len);
    return Status::Ok();
  });
  EXPECT_EQ(failed.status().code(), EIO);
  EXPECT_EQ(c->Head(*bucket_, "mp/aborted").status().code(), ENOENT);

  EXPECT_EQ(S3Client::PartSize(1), 8u << 20);
  EXPECT_EQ(S3Client::PartSize(200ull << 30), 21u << 20);   // 200 GiB: <= 10,000 parts of 21 MiB
  EXPECT_LE((200ull << 30) / S3Client::PartSize(200ull << 30), 10000u);
}

TEST_F(S3ClientTest, CopyOnTheServerWholeOrInParts) {
  uint64_t size = 2 * S3Client::PartSize(0) + 777;   // three parts when copied in parts
  std::string data = RandomBytes(size, Seed() + 11);
  auto c = Direct();
  auto src = c->Put(*bucket_, "copy/src with space", data);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  auto one = c->Copy(*bucket_, "copy/src with space", *src, size, "copy/one");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(ReadAll(*c, "copy/one", size, *one), data);
  S3Options o;
  o.max_copy = 1 << 20;   // larger objects go in parts
  auto parts = Direct(o)->Copy(*bucket_, "copy/src with space", *src, size, "copy/parts");
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  EXPECT_NE(parts->find("-3\""), std::string::npos) << *parts;
  EXPECT_EQ(ReadAll(*c, "copy/parts", size, *parts), data);
  // A source that is no longer what the caller knew: nothing is copied.
  auto in_parts = Direct(o);
  for (auto* client : {c.get(), in_parts.get()}) {
    auto stale = client->Copy(*bucket_, "copy/src with space", "\"0123456789abcdef0123456789abcdef\"", size,
                              "copy/stale");
    EXPECT_EQ(stale.status().code(), ESTALE) << stale.status().ToString();
    EXPECT_EQ(c->Head(*bucket_, "copy/stale").status().code(), ENOENT);
  }
  EXPECT_EQ(c->Copy(*bucket_, "copy/none", "", 10, "copy/x").status().code(), ENOENT);
}

TEST_F(S3ClientTest, ClearErrors) {
  auto c = Direct();
  Status st = c->CheckBucket("stria-no-such-bucket");
  EXPECT_EQ(st.code(), ENOENT) << st.ToString();
  EXPECT_NE(st.message().find("stria-no-such-bucket"), std::string::npos);
  EXPECT_EQ(c->Head(*bucket_, "no/such/key").status().code(), ENOENT);
  EXPECT_TRUE(c->CheckBucket(*bucket_).ok());

  Credentials wrong = *creds_;
  wrong.secret_key = "not-the-secret";
  S3Client bad(Endpoint(Env("S3_ENDPOINT")), wrong);
  st = bad.CheckBucket(*bucket_);
  EXPECT_EQ(st.code(), EACCES) << st.ToString();
  EXPECT_EQ(st.message().find("not-the-secret"), std::string::npos);

  ASSERT_TRUE(c->Put(*bucket_, "del/me", "x").ok());
  EXPECT_TRUE(c->Delete(*bucket_, "del/me").ok());
  EXPECT_EQ(c->Head(*bucket_, "del/me").status().code(), ENOENT);
  EXPECT_TRUE(c->Delete(*bucket_, "del/me").ok());   // deleting what is gone is fine
}

TEST_F(S3ClientTest, UnreachableEndpointFailsWithinDeadline) {
  S3Options o;
  o.deadline_ms = 3000;
  o.backoff_ms = 50;
  S3Client c(Endpoint("http://127.0.0.1:9"), *creds_, o);   // discard port: nothing listens
  auto t0 = std::chrono::steady_clock::now();
  Status st = c.CheckBucket(*bucket_);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(st.code(), ECONNREFUSED) << st.ToString();
  EXPECT_NE(st.message().find("127.0.0.1:9"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(30));   // a bound on a hang, not a speed test
}

// --- through the fault-injecting proxy -------------------------------------

TEST_F(S3ClientTest, SlowDownAndServerErrorsAreRetried) {
  auto c = ViaProxy(S3Options{.backoff_ms = 20});
  std::string data = RandomBytes(100000, Seed() + 11);
  ASSERT_TRUE(c->Put(*bucket_, "retry/obj", data).ok());
  test::FaultControl proxy(Env("S3_PROXY_CONTROL"));
  int gets = proxy.Count("GET");
  proxy.SlowDown(3);
  EXPECT_EQ(ReadAll(*c, "retry/obj", data.size()), data);
  EXPECT_EQ(proxy.Count("GET") - gets, 4);   // three 503s, then the answer
  int heads = proxy.Count("HEAD");
  proxy.Error(2, 500, "InternalError");
  auto info = c->Head(*bucket_, "retry/obj");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(proxy.Count("HEAD") - heads, 3);
}

// Many threads' GETs on one client reuse its connections: a call no
// longer closes another's idle connection as it ends.
TEST_F(S3ClientTest, ConcurrentCallsReuseConnections) {
  auto c = ViaProxy();
  std::string data = RandomBytes(64 << 10, Seed() + 12);
  ASSERT_TRUE(c->Put(*bucket_, "reuse/obj", data).ok());
  test::FaultControl proxy(Env("S3_PROXY_CONTROL"));
  const int before = proxy.Connections();
  constexpr int kThreads = 12, kEach = 8;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; i++) {
        std::string out(data.size(), '\0');
        std::vector<RangeRead> r{{0, data.size(), out.data()}};
        if (!c->GetRanges(*bucket_, "reuse/obj", "", r).ok() || out != data) bad++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  // At most one connection per thread (they never have more in flight),
  // with room for a few the server closed; 96 GETs all told.
  EXPECT_LE(proxy.Connections() - before, 2 * kThreads);
}

TEST_F(S3ClientTest, RetriesGiveUpWithTheLastError) {
  S3Options o;
  o.backoff_ms = 10;
  o.max_attempts = 3;
  auto c = ViaProxy(o);
  test::FaultControl proxy(Env("S3_PROXY_CONTROL"));
  proxy.SlowDown(10);
  Status st = c->CheckBucket(*bucket_);
  proxy.Clear();
  EXPECT_EQ(st.code(), EIO) << st.ToString();
  EXPECT_NE(st.message().find("SlowDown"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("3 attempts"), std::string::npos) << st.ToString();
}

TEST_F(S3ClientTest, CutBodiesAndStallsAreRetried) {
  S3Options o;
  o.attempt_timeout_ms = 1000;
  o.backoff_ms = 20;
  auto c = ViaProxy(o);
  std::string data = RandomBytes(3 << 20, Seed() + 13);
  ASSERT_TRUE(c->Put(*bucket_, "cut/obj", data).ok());
  test::FaultControl proxy(Env("S3_PROXY_CONTROL"));
  int gets = proxy.Count("GET");
  proxy.Cut(2, 100000);
  EXPECT_EQ(ReadAll(*c, "cut/obj", data.size(), "", data.size()), data);
  EXPECT_EQ(proxy.Count("GET") - gets, 3);   // two cut short, then whole
  gets = proxy.Count("GET");
  proxy.Stall(1, 3.0);
  EXPECT_EQ(ReadAll(*c, "cut/obj", data.size(), "", data.size()), data);
  EXPECT_EQ(proxy.Count("GET") - gets, 2);   // one timed out, then whole
}

TEST_F(S3ClientTest, EndpointDownGivesAClearError) {
  S3Options o;
  o.deadline_ms = 2000;
  o.backoff_ms = 20;
  auto c = ViaProxy(o);
  test::FaultControl proxy(Env("S3_PROXY_CONTROL"));
  proxy.Refuse();
  Status st = c->CheckBucket(*bucket_);
  proxy.Allow();
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.code() == ECONNRESET || st.code() == ECONNREFUSED) << st.ToString();
  EXPECT_TRUE(c->CheckBucket(*bucket_).ok());
}

}  // namespace
}  // namespace stria::repo
