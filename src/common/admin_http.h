// The admin HTTP endpoint every daemon serves: /metrics (Prometheus text
// format, from metrics::Registry::Default()) and /healthz (200 "ok" while
// the health check passes, 503 with the reason otherwise).
// Runs its own thread; Start and Stop are not thread-safe with each other.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace stria {

class AdminHttp {
 public:
  using HealthCheck = std::function<Status()>;
  explicit AdminHttp(HealthCheck health);
  ~AdminHttp();

  // Binds host:port (0 picks one) and serves in the background; returns the port.
  Result<uint16_t> Start(const std::string& host, uint16_t port);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stria
