// S3Client: the S3 REST calls the data-repository tier needs, on libcurl.
//
// Any S3-compatible endpoint (AWS S3, GCS's XML API with HMAC keys, MinIO,
// Ceph RGW, Swift's s3api). Every request is signed with SigV4 (header
// authorization). Calls block the calling thread; the batch calls
// (GetRanges, UploadFile) run their requests concurrently on curl's multi
// interface. Connections are kept and reused across calls and threads (one
// shared connection cache). Each request is retried, with exponential
// backoff and jitter, on 5xx answers (503 SlowDown included), on timeouts and
// on lost connections, until it succeeds, fails for good, or its deadline
// passes. An S3Client is thread-safe.
//
// Errors are Status values with an errno: ENOENT (no such bucket or key),
// EACCES (bad credentials, signature refused, access denied), ESTALE (an
// If-Match precondition failed: the object changed), ETIMEDOUT,
// ECONNREFUSED or EHOSTUNREACH (endpoint unreachable, after retries), EIO
// (anything else). Messages name the method, the endpoint, the bucket and
// key and the server's error code; they never contain a secret.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "repo/sigv4.h"

namespace stria::repo {

struct S3Endpoint {
  std::string url;                // "http://127.0.0.1:8080", "https://storage.googleapis.com"
  std::string region = "us-east-1";
  bool virtual_host = false;      // BUCKET.host/KEY instead of host/BUCKET/KEY
};

struct S3Options {
  // One attempt fails when connecting, or a stretch with no byte moving,
  // takes longer than this. Milliseconds; default 20 s.
  int attempt_timeout_ms = 20000;
  // A call (retries included) gives up after this long. Milliseconds.
  int deadline_ms = 60000;
  int max_attempts = 8;
  // First retry waits about this long; doubled each time, capped at 5 s.
  int backoff_ms = 100;
  // Requests one batch call keeps in flight at once.
  int parallelism = 16;
  // Largest object one CopyObject may copy (S3: 5 GiB); larger ones are
  // copied in parts.
  uint64_t max_copy = 5ull << 30;
  // Send UNSIGNED-PAYLOAD instead of the body's SHA-256 (saves hashing;
  // only where the transport is trusted or TLS).
  bool unsigned_payload = false;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;        // as the server gives it, with its quotes
  int64_t mtime_ns = 0;    // Last-Modified
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;   // full prefixes, ending in the delimiter
  std::string next_token;                     // empty on the last page
  bool truncated = false;
};

// One range of a batch read: bytes [offset, offset + length) into out.
struct RangeRead {
  uint64_t offset = 0;
  uint64_t length = 0;
  char* out = nullptr;
  // When set: gets the CRC32C of each whole kCrcBlock block of out (length
  // / kCrcBlock of them), taken as the bytes arrive, while the CPU's cache
  // holds them (a store's block checksums, without another pass).
  uint32_t* block_crcs = nullptr;
  static constexpr size_t kCrcBlock = 4096;
  Status status;   // set by GetRanges
};

class S3Client {
 public:
  S3Client(S3Endpoint endpoint, Credentials credentials, S3Options options = {});
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Endpoint& endpoint() const { return endpoint_; }

  // Ok when the bucket exists and these credentials may list it.
  Status CheckBucket(const std::string& bucket);
  // One page of ListObjectsV2. token: empty for the first page.
  Result<ListPage> List(const std::string& bucket, const std::string& prefix, const std::string& delimiter,
                        const std::string& token, int max_keys = 1000);
  // Every page, concatenated.
  Result<ListPage> ListAll(const std::string& bucket, const std::string& prefix, const std::string& delimiter);
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key);

  // Reads every range of object key, concurrently. etag: when not empty,
  // each GET carries If-Match, and a range of an object that changed fails
  // with ESTALE. Returns the first failure (each range has its own status).
  Status GetRanges(const std::string& bucket, const std::string& key, const std::string& etag,
                   std::vector<RangeRead>& ranges);

  // Single PUT; returns the new object's ETag.
  Result<std::string> Put(const std::string& bucket, const std::string& key, std::string_view body);
  Status Delete(const std::string& bucket, const std::string& key);
  Status CreateBucket(const std::string& bucket);   // for tests and demos

  // Multipart upload, one call each.
  Result<std::string> CreateMultipartUpload(const std::string& bucket, const std::string& key);
  Result<std::string> UploadPart(const std::string& bucket, const std::string& key, const std::string& upload_id,
                                 int part_number, std::string_view body);
  // etags[i] is the ETag of part i + 1. Returns the object's ETag.
  Result<std::string> CompleteMultipartUpload(const std::string& bucket, const std::string& key,
                                              const std::string& upload_id, const std::vector<std::string>& etags);
  Status AbortMultipartUpload(const std::string& bucket, const std::string& key, const std::string& upload_id);

  // Reads bytes [offset, offset + len) of the source into buf.
  using ReadFn = std::function<Status(uint64_t offset, uint64_t len, char* buf)>;
  // Uploads size bytes read from read: one PUT up to part_size, else a
  // multipart upload with parts of PartSize(size) sent concurrently
  // (parallelism at a time), aborted on any failure so that no part is
  // left behind. Returns the object's ETag.
  Result<std::string> Upload(const std::string& bucket, const std::string& key, uint64_t size, const ReadFn& read);

  // Copies object src_key (of size bytes, ETag src_etag) to dst_key in the
  // same bucket on the server, no byte through this process: one
  // CopyObject up to max_copy bytes (S3 refuses more), else a multipart
  // upload of UploadPartCopy parts of PartSize(size), aborted on failure.
  // ESTALE when the source is no longer src_etag. Returns the new ETag.
  Result<std::string> Copy(const std::string& bucket, const std::string& src_key, const std::string& src_etag,
                           uint64_t size, const std::string& dst_key);

  // The part size for an object of size bytes: max(8 MiB, size / 10,000
  // rounded up to 1 MiB), so that no upload needs more than 10,000 parts.
  static uint64_t PartSize(uint64_t size);

  struct Exchange;

 private:
  // Runs the exchanges concurrently (with retries); each gets its status.
  void Perform(std::vector<Exchange*>& xs);
  void Prepare(Exchange& x);
  Status RunOne(Exchange& x);

  S3Endpoint endpoint_;
  Credentials credentials_;
  S3Options options_;
  std::string scheme_, host_;   // host_ with ":port" when the URL has one
  struct Shared;
  std::unique_ptr<Shared> shared_;
};

// "s3://bucket/some/prefix" -> bucket and prefix ("some/prefix/"; empty for
// the whole bucket). EINVAL names what is wrong.
Status ParseS3Url(const std::string& url, std::string* bucket, std::string* prefix);

}  // namespace stria::repo
