#include "common/admin_http.h"

#include <thread>

#include <httplib.h>

#include "common/metrics.h"

namespace stria {

struct AdminHttp::Impl {
  HealthCheck health;
  httplib::Server server;
  std::thread thread;
};

AdminHttp::AdminHttp(HealthCheck health) : impl_(std::make_unique<Impl>()) {
  impl_->health = std::move(health);
}

AdminHttp::~AdminHttp() { Stop(); }

Result<uint16_t> AdminHttp::Start(const std::string& host, uint16_t port) {
  auto* impl = impl_.get();
  impl->server.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics::Registry::Default().Render(), "text/plain; version=0.0.4");
  });
  impl->server.Get("/healthz", [impl](const httplib::Request&, httplib::Response& res) {
    Status st = impl->health ? impl->health() : Status::Ok();
    if (st.ok()) {
      res.set_content("ok\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content(st.ToString() + "\n", "text/plain");
    }
  });
  int bound = port == 0 ? impl->server.bind_to_any_port(host) : (impl->server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) return Err(EADDRINUSE, "admin http: cannot listen on {}:{}", host, port);
  impl->thread = std::thread([impl] { impl->server.listen_after_bind(); });
  return static_cast<uint16_t>(bound);
}

void AdminHttp::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace stria
