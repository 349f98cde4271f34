#include "repo/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>
#include <map>

#include <fmt/format.h>

namespace stria::repo {

namespace {

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Header values: surrounding blanks trimmed, inner runs of blanks made one.
std::string TrimAll(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); i++) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return Hex(std::string_view(reinterpret_cast<char*>(md), sizeof md));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string AmzDate(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string CanonicalRequest(const SignInput& in, std::string* signed_headers) {
  // Query: encoded names and values, sorted by name then value.
  std::vector<std::pair<std::string, std::string>> q;
  q.reserve(in.query.size());
  for (const auto& [k, v] : in.query) q.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(q.begin(), q.end());
  std::string query;
  for (const auto& [k, v] : q) {
    if (!query.empty()) query += '&';
    query += k + "=" + v;
  }
  // Headers: lower-case names, sorted; repeated names joined with commas.
  std::map<std::string, std::string> h;
  for (const auto& [k, v] : in.headers) {
    std::string name = Lower(k);
    std::string value = TrimAll(v);
    auto [it, fresh] = h.emplace(name, value);
    if (!fresh) it->second += "," + value;
  }
  std::string canon_headers, names;
  for (const auto& [k, v] : h) {
    canon_headers += k + ":" + v + "\n";
    if (!names.empty()) names += ';';
    names += k;
  }
  if (signed_headers) *signed_headers = names;
  std::string path = in.encoded_path.empty() ? "/" : in.encoded_path;
  return fmt::format("{}\n{}\n{}\n{}\n{}\n{}", in.method, path, query, canon_headers, names, in.payload_hash);
}

std::string Authorization(const Credentials& creds, std::string_view region, std::string_view service,
                          std::string_view amz_date, const SignInput& in) {
  std::string signed_headers;
  std::string canonical = CanonicalRequest(in, &signed_headers);
  std::string_view day = amz_date.substr(0, 8);
  std::string scope = fmt::format("{}/{}/{}/aws4_request", day, region, service);
  std::string to_sign = fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", amz_date, scope, Sha256Hex(canonical));
  std::string key = HmacSha256("AWS4" + creds.secret_key, day);
  key = HmacSha256(key, region);
  key = HmacSha256(key, service);
  key = HmacSha256(key, "aws4_request");
  std::string signature = Hex(HmacSha256(key, to_sign));
  return fmt::format("AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}", creds.access_key, scope,
                     signed_headers, signature);
}

}  // namespace stria::repo
