// stria-store: serves one or more targets (directories on local disks).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/admin_http.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "common/util.h"
#include "store/meta_link.h"
#include "store/store_server.h"

namespace stria::store {

int Main(int argc, char** argv) {
  BlockTerminationSignals();
  CLI::App app{"stria-store: the storage service of Stria"};
  std::string meta, listen = "127.0.0.1:0", admin = "127.0.0.1:0", port_file, log_file,
                    log_level = "info";
  std::vector<std::string> dirs;
  int workers = 4;
  Hydrator::Options hyd;
  hyd.s3.attempt_timeout_ms = 5000;
  hyd.s3.deadline_ms = 10000;
  app.add_option("--meta", meta, "stria-meta HOST:PORT")->required();
  app.add_option("--target", dirs, "a target directory (repeatable)")->required();
  app.add_option("--listen", listen, "HOST:PORT to serve clients on (port 0: any)");
  app.add_option("--admin", admin, "HOST:PORT of /metrics and /healthz");
  app.add_option("--port-file", port_file, "write the bound addresses here once registered");
  app.add_option("--log", log_file, "log file (default: stderr)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--workers", workers, "disk worker threads")->check(CLI::Range(1, 256));
  app.add_option("--fetchers", hyd.fetchers, "concurrent GETs when hydrating from buckets")
      ->check(CLI::Range(1, 1024));
  uint64_t ahead_mib = hyd.read_ahead >> 20, memory_mib = hyd.memory >> 20;
  app.add_option("--fetch-ahead-mib", ahead_mib,
                 "MiB of a released file fetched beyond each read (whole chunks, at least one)")
      ->check(CLI::Range(0, 65536));
  app.add_option("--fetch-memory-mib", memory_mib, "MiB of fetched chunks kept in memory to serve reads")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--repo-timeout-ms", hyd.s3.deadline_ms,
                 "a bucket fetch (retries included) fails with EIO after this long")
      ->check(CLI::Range(100, 3600000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  hyd.read_ahead = ahead_mib << 20;
  hyd.memory = memory_mib << 20;
  auto fail = [](const Status& st) {
    spdlog::error("{}", st.ToString());
    std::fprintf(stderr, "stria-store: %s\n", st.ToString().c_str());
    return 1;
  };
  if (Status st = InitLogging(log_file, log_level, "store"); !st.ok()) return fail(st);
  if (auto m = rpc::ParseAddress(meta); !m.ok()) return fail(m.status());
  auto listen_addr = rpc::ParseAddress(listen);
  auto admin_addr = rpc::ParseAddress(admin);
  if (!listen_addr.ok()) return fail(listen_addr.status());
  if (!admin_addr.ok()) return fail(admin_addr.status());

  std::vector<std::unique_ptr<Target>> targets;
  for (auto& d : dirs) {
    auto t = Target::Open(d);
    if (!t.ok()) return fail(t.status());
    targets.push_back(std::move(t).value());
  }
  auto* tptr = &targets;
  metrics::Registry::Default().AddCollector([tptr](std::string& out) {
    out += "# HELP stria_store_target_bytes Capacity and use of each target's file system\n";
    out += "# TYPE stria_store_target_bytes gauge\n";
    for (auto& t : *tptr) {
      uint64_t cap = 0, used = 0;
      if (!t->Capacity(&cap, &used).ok()) continue;
      out += fmt::format("stria_store_target_bytes{{target=\"{}\",kind=\"capacity\"}} {}\n", t->id(), cap);
      out += fmt::format("stria_store_target_bytes{{target=\"{}\",kind=\"used\"}} {}\n", t->id(), used);
    }
  });

  WorkerPool pool(workers);
  rpc::Server server("store");
  auto port = server.Listen(listen_addr->first, listen_addr->second);
  if (!port.ok()) return fail(port.status());
  std::string address = fmt::format("{}:{}", listen_addr->first, *port);
  // Hydrated objects go to meta with the store's heartbeats; none can be
  // reported before the link exists (no target is known until it registers).
  std::atomic<MetaLink*> link_ptr{nullptr};
  hyd.s3.attempt_timeout_ms = std::min(hyd.s3.attempt_timeout_ms, hyd.s3.deadline_ms);
  Hydrator hydrator(hyd, [&link_ptr](const proto::RepoHydrated& h) {
    if (MetaLink* l = link_ptr.load()) l->AddHydrated(h);
  });
  StoreService service(&targets, &pool, address, &hydrator);
  service.RegisterHandlers(server);
  AdminHttp http([&]() -> Status {
    for (auto& t : targets) {
      uint64_t cap, used;
      STRIA_RETURN_IF_ERROR(t->Capacity(&cap, &used));
    }
    return Status::Ok();
  });
  auto aport = http.Start(admin_addr->first, admin_addr->second);
  if (!aport.ok()) return fail(aport.status());
  std::string admin_address = fmt::format("{}:{}", admin_addr->first, *aport);

  // Serving before registration is harmless: until meta assigns ids, every
  // target is unknown (ENOENT).
  server.Start();
  MetaLink link(meta, address, admin_address, &targets, &pool);
  link_ptr = &link;
  std::mutex fatal_mu;
  Status fatal;
  link.Start([&](const Status& registered) {
    Status st = registered;
    if (st.ok() && !port_file.empty()) {
      st = ReplaceFile(port_file, "listen=" + address + "\nadmin=" + admin_address + "\n");
    }
    if (st.ok()) {
      spdlog::info("stria-store serving {} target(s) on {} (admin {})", targets.size(), address,
                   admin_address);
      return;
    }
    {
      std::lock_guard lk(fatal_mu);
      fatal = st;
    }
    ::kill(::getpid(), SIGTERM);   // wakes WaitForTerminationSignal
  });
  int sig = WaitForTerminationSignal();
  spdlog::info("signal {}: shutting down", sig);
  link.Stop();
  server.Stop();
  hydrator.Stop();
  pool.Shutdown();   // queued disk work finishes while server and link still exist
  http.Stop();
  std::lock_guard lk(fatal_mu);
  if (!fatal.ok()) return fail(fatal);
  return 0;
}

}  // namespace stria::store

int main(int argc, char** argv) { return stria::store::Main(argc, argv); }
