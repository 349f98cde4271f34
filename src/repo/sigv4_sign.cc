// Test tool: for each JSON line on stdin describing a request, prints one
// JSON line with our encoding of its path and our Authorization header.
// tests/repo/sigv4_botocore_check.py compares them with botocore's.
#include <iostream>

#include <nlohmann/json.hpp>

#include "repo/sigv4.h"

int main() {
  using namespace stria::repo;
  std::string line;
  while (std::getline(std::cin, line)) {
    auto j = nlohmann::json::parse(line);
    SignInput in;
    in.method = j["method"];
    in.encoded_path = UriEncode(j["raw_path"].get<std::string>(), true);
    for (auto& q : j["query"]) in.query.emplace_back(q[0], q[1]);
    for (auto& h : j["headers"]) in.headers.emplace_back(h[0], h[1]);
    in.payload_hash = j["payload_hash"];
    Credentials c{j["access_key"], j["secret_key"], j.value("token", "")};
    nlohmann::json out;
    out["encoded_path"] = in.encoded_path;
    out["authorization"] = Authorization(c, j["region"].get<std::string>(), "s3", j["amz_date"].get<std::string>(), in);
    std::cout << out.dump() << "\n";
  }
  return 0;
}
