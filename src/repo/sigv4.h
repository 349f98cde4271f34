// AWS Signature Version 4 for S3 requests (header authorization).
//
// Pure functions of their inputs (the caller passes the time), so that they
// are checked byte for byte against AWS's published examples and against
// botocore. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stria::repo {

// Access key, secret and (for temporary credentials) session token.
struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;   // empty when none
};

// What SigV4 signs of one HTTP request.
struct SignInput {
  std::string method;             // "GET"
  std::string encoded_path;       // already URI-encoded, as sent ("/bucket/a%20b")
  // Query parameters, NOT encoded ("prefix" -> "a b/"); a name without a
  // value ("?uploads") has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  // Every header to sign, host and x-amz-date included, names in any case.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;       // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty string, hex.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay,
// every other byte becomes %XX (upper case); '/' stays when keep_slash.
std::string UriEncode(std::string_view s, bool keep_slash);

std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);   // raw bytes
std::string Hex(std::string_view bytes);

// "20130524T000000Z" for a time in seconds since the epoch (UTC).
std::string AmzDate(int64_t unix_seconds);

// The canonical request; *signed_headers gets "host;range;x-amz-date".
std::string CanonicalRequest(const SignInput& in, std::string* signed_headers);

// The value of the Authorization header for in, signed at amz_date
// ("20130524T000000Z") for region and service ("s3").
std::string Authorization(const Credentials& creds, std::string_view region, std::string_view service,
                          std::string_view amz_date, const SignInput& in);

}  // namespace stria::repo
