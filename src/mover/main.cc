// stria-mover: the data-repository policies (docs/data_repositories.md).
//
//   stria-mover --meta HOST:PORT [--admin HOST:PORT] [--port-file F] [--log F]
//
// Auto-export: a link whose auto_export_delay_s is set gets each dirty file
// under it exported once the file has not changed for that long (its mtime
// moves with every commit of a write, which a close or fsync makes): a
// checkpoint reaches the bucket without a separate step. A link with no
// dirty file costs one RepoList a round.
//
// Watermark release (--high-watermark, --low-watermark: percent of the
// targets' capacity in use): above the high mark, the least recently used
// resident files under any link (not open) are released until the use
// would be under the low mark; a read brings them back from the bucket.
// The stores free the space a heartbeat or two later, so the mover waits
// --cooldown-s before it looks again. The mover is a plain libstria
// client: credentials come from its environment or shared credentials file,
// as for the CLI. Export is safe to repeat and to race with writers: a file
// changed during its upload stays dirty and goes again next round.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
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

// Calls fn for every regular file at or under dir that pick chooses.
Status ForFiles(Client& c, const std::string& dir, const std::function<bool(const std::string&, const FileAttr&)>& pick,
                const std::function<void(const std::string&, const FileAttr&)>& fn) {
  uint64_t cookie = 0;
  std::vector<std::string> subdirs;
  while (true) {
    auto page = c.ReadDirPage(dir, cookie, 1024, true);
    if (!page.ok()) return page.status();
    for (size_t i = 0; i < page->entries.size(); i++) {
      const auto& e = page->entries[i];
      cookie = e.cookie;
      if (e.type == FileType::kDirectory) subdirs.push_back(Join(dir, e.name));
      else if (e.type == FileType::kRegular && pick(Join(dir, e.name), page->attrs[i])) {
        fn(Join(dir, e.name), page->attrs[i]);
      }
    }
    if (page->eof || page->entries.empty()) break;
  }
  for (const auto& d : subdirs) STRIA_RETURN_IF_ERROR(ForFiles(c, d, pick, fn));
  return Status::Ok();
}

}  // namespace

struct Watermarks {
  double high = 0, low = 0;   // percent; high 0: off
  int cooldown_s = 10;
};

// Releases cold resident files while the targets are above the high mark.
// Returns whether it released any.
bool Release(Client& c, const Watermarks& w, metrics::Counter& released) {
  auto cs = c.GetClusterStatus();
  if (!cs.ok()) {
    spdlog::warn("cluster status: {}", cs.status().ToString());
    return false;
  }
  uint64_t cap = 0, used = 0;
  for (const auto& t : cs->targets) {
    if (!t.up) continue;
    cap += t.capacity;
    used += t.used;
  }
  if (cap == 0 || used * 100.0 <= w.high * cap) return false;
  uint64_t goal = static_cast<uint64_t>(w.low * cap / 100.0);
  uint64_t need = used > goal ? used - goal : 0;
  auto cold = c.RepoColdest(need, 10000);
  if (!cold.ok()) {
    spdlog::warn("watermark release: {}", cold.status().ToString());
    return false;
  }
  uint64_t freed = 0, files = 0;
  for (const auto& f : *cold) {
    auto r = c.RepoReleaseIno(f.ino);
    if (!r.ok()) {   // opened meanwhile, or gone: the next one
      spdlog::info("watermark release of inode {}: {}", f.ino, r.status().ToString());
      continue;
    }
    freed += *r;
    files += *r ? 1 : 0;
  }
  released.Inc(files);
  // Nothing left to release is said once a round at debug level only.
  spdlog::log(files ? spdlog::level::info : spdlog::level::debug,
              "targets {:.1f}% used (high watermark {}%): released {} files, {} bytes, toward {}%",
              used * 100.0 / cap, w.high, files, freed, w.low);
  return files > 0;
}

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
    bool failed = false;
    std::vector<std::string> waiting;   // EBUSY: after the others (RepoExportWaiting)
    auto sent = [&](const std::string& path, const Result<uint64_t>& r) {
      if (!r.ok()) {
        failed = true;
        failures.Inc();
        spdlog::warn("auto-export of {}: {}", path, r.status().ToString());
        return;
      }
      files.Inc();
      bytes.Inc(*r);
      spdlog::info("auto-exported {} ({} bytes) to {}", path, *r, l.link.url);
    };
    auto send = [&](const std::string& path, const FileAttr&) {
      auto r = c.RepoExport(path);
      if (!r.ok() && r.status().code() == EBUSY) {
        waiting.push_back(path);
        return;
      }
      sent(path, r);
    };
    // Directories renamed since the last whole export: their clean files
    // are copied to their new keys first, while the old keys still hold
    // what they need (as `stria repo export` does). A walk that left files
    // behind is tried again after a wait that doubles (5 s to 5 min), not
    // every round.
    static std::map<uint64_t, std::pair<int64_t, int64_t>> retry;   // link -> (not before, wait), ns
    if (l.counts.renames > l.counts.renames_exported && now >= retry[l.ino].first) {
      Status st = ForFiles(
          c, l.path,
          [&](const std::string& path, const FileAttr& a) {
            if (a.repo_key.empty() || (a.repo_state != RepoState::kResident && a.repo_state != RepoState::kReleased)) {
              return false;
            }
            auto key = Client::RepoKeyOf(l, path);
            return key.ok() && *key != a.repo_key;
          },
          send);
      if (!st.ok()) spdlog::warn("auto-export under {}: {}", l.path, st.ToString());
      c.RepoExportWaiting(std::move(waiting), sent);
      waiting.clear();
      Status done = st.ok() && !failed ? c.RepoRenamesExported(l.path, l.counts.renames)
                                       : Err(EAGAIN, "files of renamed directories under {} left behind", l.path);
      if (done.ok()) {
        retry.erase(l.ino);
      } else {
        auto& [at, wait] = retry[l.ino];
        wait = std::clamp<int64_t>(wait * 2, 5'000'000'000, 300'000'000'000);
        at = now + wait;
        spdlog::warn("{}: trying again in {} s", done.ToString(), wait / 1'000'000'000);
      }
    }
    if (l.link.export_deletes) {
      auto n = c.RepoExportDeletions(l.path);
      if (!n.ok()) spdlog::warn("auto-export of deletions under {}: {}", l.path, n.status().ToString());
      else if (*n) spdlog::info("auto-export: deleted {} objects of files removed under {}", *n, l.path);
    }
    if (l.counts.dirty_files == 0) continue;
    Status st = ForFiles(
        c, l.path,
        [&](const std::string&, const FileAttr& a) {
          // Changed lately: not yet.
          return a.repo_state == RepoState::kDirty && now - a.mtime_ns >= int64_t(delay) * 1000000000;
        },
        send);
    if (!st.ok()) spdlog::warn("auto-export under {}: {}", l.path, st.ToString());
    c.RepoExportWaiting(std::move(waiting), sent);
    waiting.clear();
  }
  return next;
}

int Main(int argc, char** argv) {
  BlockTerminationSignals();
  CLI::App app{"stria-mover: exports dirty files of auto-exporting data repository links"};
  std::string meta, admin = "127.0.0.1:0", port_file, log_file, log_level = "info";
  Watermarks w;
  app.add_option("--meta", meta, "stria-meta HOST:PORT")->required();
  app.add_option("--admin", admin, "HOST:PORT of /metrics and /healthz");
  app.add_option("--port-file", port_file, "write the bound admin address here once connected");
  app.add_option("--log", log_file, "log file (default: stderr)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--high-watermark", w.high, "release cold files above this percent of the targets used (0: off)")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--low-watermark", w.low, "... until under this percent")->check(CLI::Range(0.0, 100.0));
  app.add_option("--cooldown-s", w.cooldown_s, "seconds between releases (the stores free space lazily)")
      ->check(CLI::Range(0, 3600));
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
  if (w.high > 0 && w.low >= w.high) return fail(Err(EINVAL, "--low-watermark must be under --high-watermark"));
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
  auto& released = reg.GetCounter("stria_mover_released_files_total", "Files released by the watermark");
  AdminHttp http([] { return Status::Ok(); });
  auto aport = http.Start(admin_addr->first, admin_addr->second);
  if (!aport.ok()) return fail(aport.status());
  std::string admin_address = fmt::format("{}:{}", admin_addr->first, *aport);
  if (!port_file.empty()) {
    if (Status st = ReplaceFile(port_file, "admin=" + admin_address + "\n"); !st.ok()) return fail(st);
  }
  spdlog::info("stria-mover for meta {} (admin {})", meta, admin_address);

  std::atomic<bool> stop{false};
  std::thread loop([&] {
    auto next_release = std::chrono::steady_clock::now();
    while (!stop) {
      auto wait = Round(**client, files, bytes, failures);
      if (w.high > 0 && std::chrono::steady_clock::now() >= next_release) {
        if (Release(**client, w, released)) {
          next_release = std::chrono::steady_clock::now() + std::chrono::seconds(w.cooldown_s);
        }
        wait = std::min<std::chrono::milliseconds>(wait, std::chrono::milliseconds(1000));
      }
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
