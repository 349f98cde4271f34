// stria-mover: the data-repository policies (docs/data_repositories.md).
//
//   stria-mover --meta HOST:PORT [--admin HOST:PORT] [--port-file F] [--log F]
//
// Auto-export: a link whose auto_export_delay_s is set gets each dirty file
// under it exported once the file has not changed for that long (its mtime
// moves with every commit of a write, which a close or fsync makes): a
// checkpoint reaches the bucket without a separate step. A link with no
// dirty file costs one RepoList a round. The mover is a plain libstria
// client: credentials come from its environment or shared credentials file,
// as for the CLI. Export is safe to repeat and to race with writers: a file
// changed during its upload stays dirty and goes again next round.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/admin_http.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "common/util.h"
#include "stria/client.h"

namespace stria::mover {

namespace {

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

// Calls fn for every dirty regular file at or under dir.
Status ForDirty(Client& c, const std::string& dir, const std::function<void(const std::string&, const FileAttr&)>& fn) {
  uint64_t cookie = 0;
  std::vector<std::string> subdirs;
  while (true) {
    auto page = c.ReadDirPage(dir, cookie, 1024, true);
    if (!page.ok()) return page.status();
    for (size_t i = 0; i < page->entries.size(); i++) {
      const auto& e = page->entries[i];
      cookie = e.cookie;
      if (e.type == FileType::kDirectory) subdirs.push_back(Join(dir, e.name));
      else if (e.type == FileType::kRegular && page->attrs[i].repo_state == RepoState::kDirty) {
        fn(Join(dir, e.name), page->attrs[i]);
      }
    }
    if (page->eof || page->entries.empty()) break;
  }
  for (const auto& d : subdirs) STRIA_RETURN_IF_ERROR(ForDirty(c, d, fn));
  return Status::Ok();
}

}  // namespace

// One round: exports what is due. Returns how long to wait for the next.
std::chrono::milliseconds Round(Client& c, metrics::Counter& files, metrics::Counter& bytes,
                                metrics::Counter& failures) {
  using std::chrono::milliseconds;
  milliseconds next(5000);
  auto links = c.RepoList();
  if (!links.ok()) {
    spdlog::warn("repo list: {}", links.status().ToString());
    return next;
  }
  int64_t now = NowNs();
  for (const auto& l : *links) {
    uint32_t delay = l.link.auto_export_delay_s;
    if (delay == 0) continue;
    // Look again within a quarter of the delay, so that a file goes at most
    // that late; at least once a second.
    next = std::min(next, milliseconds(std::max<int64_t>(1000, int64_t(delay) * 250)));
    if (l.counts.dirty_files == 0) continue;
    Status st = ForDirty(c, l.path, [&](const std::string& path, const FileAttr& a) {
      if (now - a.mtime_ns < int64_t(delay) * 1000000000) return;   // changed lately: not yet
      auto r = c.RepoExport(path);
      if (!r.ok()) {
        failures.Inc();
        spdlog::warn("auto-export of {}: {}", path, r.status().ToString());
        return;
      }
      files.Inc();
      bytes.Inc(*r);
      spdlog::info("auto-exported {} ({} bytes) to {}", path, *r, l.link.url);
    });
    if (!st.ok()) spdlog::warn("auto-export under {}: {}", l.path, st.ToString());
  }
  return next;
}

int Main(int argc, char** argv) {
  BlockTerminationSignals();
  CLI::App app{"stria-mover: exports dirty files of auto-exporting data repository links"};
  std::string meta, admin = "127.0.0.1:0", port_file, log_file, log_level = "info";
  app.add_option("--meta", meta, "stria-meta HOST:PORT")->required();
  app.add_option("--admin", admin, "HOST:PORT of /metrics and /healthz");
  app.add_option("--port-file", port_file, "write the bound admin address here once connected");
  app.add_option("--log", log_file, "log file (default: stderr)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto fail = [](const Status& st) {
    spdlog::error("{}", st.ToString());
    std::fprintf(stderr, "stria-mover: %s\n", st.ToString().c_str());
    return 1;
  };
  if (Status st = InitLogging(log_file, log_level, "mover"); !st.ok()) return fail(st);
  auto admin_addr = rpc::ParseAddress(admin);
  if (!admin_addr.ok()) return fail(admin_addr.status());
  ClientOptions opt;
  opt.meta = meta;
  opt.name = "stria-mover";
  opt.timeout = std::chrono::seconds(60);
  auto client = Client::Connect(opt);
  if (!client.ok()) return fail(client.status().Prefixed("connect to meta " + meta));
  auto& reg = metrics::Registry::Default();
  auto& files = reg.GetCounter("stria_mover_exported_files_total", "Files auto-exported");
  auto& bytes = reg.GetCounter("stria_mover_exported_bytes_total", "Bytes auto-exported");
  auto& failures = reg.GetCounter("stria_mover_export_failures_total", "Auto-exports that failed (retried)");
  AdminHttp http([] { return Status::Ok(); });
  auto aport = http.Start(admin_addr->first, admin_addr->second);
  if (!aport.ok()) return fail(aport.status());
  std::string admin_address = fmt::format("{}:{}", admin_addr->first, *aport);
  if (!port_file.empty()) {
    if (Status st = WriteFileAtomic(port_file, "admin=" + admin_address + "\n"); !st.ok()) return fail(st);
  }
  spdlog::info("stria-mover for meta {} (admin {})", meta, admin_address);

  std::atomic<bool> stop{false};
  std::thread loop([&] {
    while (!stop) {
      auto wait = Round(**client, files, bytes, failures);
      for (auto waited = std::chrono::milliseconds(0); waited < wait && !stop; waited += std::chrono::milliseconds(100)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
  int sig = WaitForTerminationSignal();
  spdlog::info("signal {}: shutting down", sig);
  stop = true;
  loop.join();
  http.Stop();
  return 0;
}

}  // namespace stria::mover

int main(int argc, char** argv) { return stria::mover::Main(argc, argv); }
