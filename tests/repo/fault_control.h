// Drives tests/repo/fault_proxy.py's control port from C++ tests: each call
// arms a fault for the next n matching requests through the proxy.
#pragma once

#include <httplib.h>

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace stria::test {

class FaultControl {
 public:
  explicit FaultControl(const std::string& control_url) : http_(control_url) {
    if (control_url.empty()) throw std::runtime_error("no fault proxy: run under tests/repo/with_s3.py --proxy");
  }
  void SlowDown(int n) { Call(fmt::format("/slowdown?n={}", n)); }
  void Error(int n, int status, const std::string& code) {
    Call(fmt::format("/error?n={}&status={}&code={}", n, status, code));
  }
  void Stall(int n, double seconds) { Call(fmt::format("/stall?n={}&seconds={}", n, seconds)); }
  void Cut(int n, long after_bytes) { Call(fmt::format("/cut?n={}&after_bytes={}", n, after_bytes)); }
  void ChangeBetweenGets(const std::string& key, const std::string& body) {
    Call(fmt::format("/change_between_gets?key={}", httplib::detail::encode_query_param(key)), body);
  }
  void Refuse() { Call("/refuse"); }
  void Allow() { Call("/allow"); }
  void Clear() { Call("/clear_faults"); }
  // Requests seen, of one method ("GET") or all (empty).
  int Count(const std::string& method = "") {
    return std::stoi(Call(method.empty() ? "/count" : "/count?method=" + method));
  }
  // Client connections the proxy accepted since it started (or /reset).
  int Connections() { return std::stoi(Call("/connections")); }

 private:
  std::string Call(const std::string& path, const std::string& body = "") {
    auto r = http_.Post(path, body, "application/octet-stream");
    if (!r || r->status != 200) {
      throw std::runtime_error(fmt::format("fault proxy {}: {}", path, r ? r->body : "no answer"));
    }
    return r->body;
  }
  httplib::Client http_;
};

}  // namespace stria::test
