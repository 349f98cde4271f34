// modelload: one large file (a model's weights; created once) read as fast
// as possible by T threads: each takes the next contiguous chunk from a
// shared atomic cursor and preads it whole, verifying it. Each thread opens
// the file itself (--shared-fd: one open file for all; on a FUSE mount the
// kernel's read-ahead of one open file handles strided readers badly). Time
// to load (from the first open to the last chunk read, closes excluded) and
// GB/s (10^9). The page cache is dropped first (--drop-caches).
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <memory>

#include "dataset.h"
#include "pattern.h"
#include "workloads.h"

namespace stria::bench {
namespace {

struct ModelLoadOptions {
  uint64_t size = 2ull << 30;
  int threads = 8;
  uint64_t chunk = 4 << 20;
  bool shared_fd = false;
};

Status RunOnce(Env& env, const Dataset& ds, const ModelLoadOptions& o, int run) {
  STRIA_RETURN_IF_ERROR(env.DropCaches());
  std::string path = ds.FilePath(0);
  uint64_t key = ds.Key(0);
  auto t0 = Clock::now();
  int shared = -1;
  if (o.shared_fd) {
    STRIA_ASSIGN_OR_RETURN(shared, env.b.Open(path, O_RDONLY));
  }
  ErrorLog errors;
  std::atomic<uint64_t> cursor{0};
  std::vector<int> fds(o.threads, shared);
  std::vector<Clock::time_point> end(o.threads, t0);
  RunThreads(o.threads, [&](int t) {
    if (!o.shared_fd) {
      auto fd = env.b.Open(path, O_RDONLY);
      if (!fd.ok()) return errors.Add(fd.status());
      fds[t] = *fd;
    }
    std::string buf;
    for (uint64_t off; (off = cursor.fetch_add(o.chunk)) < o.size && !errors.TooMany();) {
      uint64_t n = std::min(o.chunk, o.size - off);
      Status st = ReadVerifyRange(env.b, fds[t], path, key, off, n, static_cast<size_t>(n), buf);
      if (!st.ok()) errors.Add(st);
    }
    end[t] = Clock::now();
  });
  double secs = Seconds(t0, *std::max_element(end.begin(), end.end()));
  for (int fd : o.shared_fd ? std::vector<int>{shared} : fds) {
    if (fd < 0) continue;
    Status cl = env.b.Close(fd);
    if (!cl.ok()) errors.Add(Named(cl, "close", path));
  }
  STRIA_RETURN_IF_ERROR(ds.WithHint(errors.Summary("load")));
  env.report.Add("load_s", "s", secs);
  env.report.Add("GBps", "GB/s", double(o.size) / 1e9 / secs);
  env.Progress(fmt::format("run {}/{}: loaded {} in {:.3f} s, {:.3f} GB/s", run + 1, env.opt.runs,
                           SizeText(o.size), secs, double(o.size) / 1e9 / secs));
  return Status::Ok();
}

Status RunModelLoad(Env& env, const ModelLoadOptions& o) {
  env.report.Param("size", o.size);
  env.report.Param("threads", o.threads);
  env.report.Param("chunk", o.chunk);
  env.report.Param("shared_fd", o.shared_fd);
  STRIA_ASSIGN_OR_RETURN(Dataset ds, Dataset::Prepare(env, DatasetSpec{1, o.size, 1}));
  env.report.Param("file", ds.FilePath(0));
  for (int r = 0; r < env.opt.runs; r++) STRIA_RETURN_IF_ERROR(RunOnce(env, ds, o, r));
  return Status::Ok();
}

}  // namespace

void AddModelLoadCommand(CLI::App& app, CommonOptions& common, Action& action) {
  auto o = std::make_shared<ModelLoadOptions>();
  auto* sub = app.add_subcommand(
      "modelload",
      "load one large file (model weights, created once) with T threads taking contiguous "
      "chunks from a shared cursor; time to load and GB/s");
  AddSizeOption(sub, "--size", o->size, "size of the model file");
  sub->add_option("--threads", o->threads, "reader threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  AddSizeOption(sub, "--chunk", o->chunk, "bytes per read, at most 1G");
  sub->add_flag("--shared-fd", o->shared_fd, "all threads read through one open file (default: one each)");
  AddCommonOptions(sub, common);
  sub->footer("Figures: load_s (s, open to last chunk read), GBps (GB/s, 10^9). The file is dataset-1f-SIZEb-1d/d00000/f00000000 under the root, created once.");
  sub->callback([o, &action] {
    if (o->chunk > (1u << 30)) throw CLI::ValidationError("--chunk", "must be at most 1G");
    action = [o](Env& env) { return RunModelLoad(env, *o); };
  });
}

}  // namespace stria::bench
