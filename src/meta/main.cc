// stria-meta: the namespace, layouts, sessions and the cluster map.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/admin_http.h"
#include "common/rpc.h"
#include "common/util.h"
#include "meta/meta_server.h"
#include "meta/meta_service.h"
#include "proto/stria.pb.h"

namespace stria::meta {

int Main(int argc, char** argv) {
  BlockTerminationSignals();
  CLI::App app{"stria-meta: the metadata service of Stria"};
  MetaOptions opt;
  std::string listen = "127.0.0.1:7600", admin = "127.0.0.1:0", port_file, log_file, log_level = "info";
  app.add_option("--data", opt.data_dir, "directory of the metadata store")->required();
  app.add_option("--listen", listen, "HOST:PORT to serve on (port 0: any)");
  app.add_option("--admin", admin, "HOST:PORT of /metrics and /healthz");
  app.add_option("--port-file", port_file, "write the bound addresses here once serving");
  app.add_option("--log", log_file, "log file (default: stderr)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--store-timeout-ms", opt.store_timeout_ms, "a store without heartbeat this long is down");
  app.add_option("--session-timeout-ms", opt.session_timeout_ms, "a client without heartbeat this long is gone");
  app.add_option("--heartbeat-ms", opt.store_heartbeat_ms, "stores' heartbeat interval");
  uint64_t reserve_mib = opt.reserve_bytes >> 20;
  app.add_option("--reserve-mib", reserve_mib,
                 "creates, mkdirs and xattrs fail with ENOSPC while the metadata disk has less than this free")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 30));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  opt.reserve_bytes = reserve_mib << 20;
  auto fail = [](const Status& st) {
    spdlog::error("{}", st.ToString());
    std::fprintf(stderr, "stria-meta: %s\n", st.ToString().c_str());
    return 1;
  };
  if (Status st = InitLogging(log_file, log_level, "meta"); !st.ok()) return fail(st);
  auto listen_addr = rpc::ParseAddress(listen);
  auto admin_addr = rpc::ParseAddress(admin);
  if (!listen_addr.ok()) return fail(listen_addr.status());
  if (!admin_addr.ok()) return fail(admin_addr.status());

  AdminHttp http([] { return Status::Ok(); });
  auto aport = http.Start(admin_addr->first, admin_addr->second);
  if (!aport.ok()) return fail(aport.status());
  opt.admin_address = fmt::format("{}:{}", admin_addr->first, *aport);
  auto service = MetaService::Open(opt);
  if (!service.ok()) return fail(service.status());
  rpc::Server server("meta");
  RegisterHandlers(server, **service);
  auto port = server.Listen(listen_addr->first, listen_addr->second);
  if (!port.ok()) return fail(port.status());
  server.Start();
  std::string address = fmt::format("{}:{}", listen_addr->first, *port);
  if (!port_file.empty()) {
    Status st = ReplaceFile(port_file, "listen=" + address + "\nadmin=" + opt.admin_address + "\n");
    if (!st.ok()) return fail(st);
  }
  spdlog::info("stria-meta serving {} on {} (admin {})", opt.data_dir, address, opt.admin_address);
  int sig = WaitForTerminationSignal();
  spdlog::info("signal {}: shutting down", sig);
  server.Stop();
  service->reset();
  http.Stop();
  return 0;
}

}  // namespace stria::meta

int main(int argc, char** argv) { return stria::meta::Main(argc, argv); }
