// checkpoint: R ranks save a checkpoint, then restart from it.
//   N-to-N: rank r writes its own file rank<r> (S bytes, --io writes), fsync.
//   N-to-1: rank r writes [r*S, (r+1)*S) of one shared file, fsync.
// Per mode: GB/s (10^9) and the time to durable, from the first write to the
// last fsync returning (files are opened before the clock starts and closed
// after it stops). Restart: the R ranks read both checkpoints back (caches
// dropped first), GB/s, verifying the content: rank r's file carries key
// K(r); the shared file one key for the whole file, so its content depends
// only on the offset, whoever wrote it. Each run removes its files.
#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "pattern.h"
#include "workloads.h"

namespace stria::bench {
namespace {

struct CheckpointOptions {
  int ranks = 4;
  uint64_t size = 256ull << 20;
  uint64_t io = 1 << 20;
};

// Opens path for every rank (not timed), runs body(rank, fd) on one thread
// per rank, closes; returns the seconds from the start of the threads to the
// last body's end.
Result<double> PerRank(Env& env, const CheckpointOptions& o, int flags,
                       const std::function<std::string(int)>& path,
                       const std::function<Status(int, int, std::string&)>& body) {
  std::vector<int> fds;
  Status st;
  for (int r = 0; r < o.ranks && st.ok(); r++) {
    auto fd = env.b.Open(path(r), flags);
    if (fd.ok()) fds.push_back(*fd);
    else st = fd.status();
  }
  ErrorLog errors;
  std::vector<Clock::time_point> end(o.ranks);
  auto t0 = Clock::now();
  if (st.ok()) {
    RunThreads(o.ranks, [&](int r) {
      std::string buf;
      Status s = body(r, fds[r], buf);
      end[r] = Clock::now();
      if (!s.ok()) errors.Add(s);
    });
  }
  double secs = 0;
  for (auto e : end) secs = std::max(secs, Seconds(t0, e));
  for (size_t r = 0; r < fds.size(); r++) {
    Status cl = env.b.Close(fds[r]);
    if (!cl.ok()) errors.Add(Named(cl, "close", path(static_cast<int>(r))));
  }
  STRIA_RETURN_IF_ERROR(st);
  STRIA_RETURN_IF_ERROR(errors.Summary("ranks"));
  return secs;
}

Status CheckSize(Backend& b, const std::string& path, uint64_t want) {
  STRIA_ASSIGN_OR_RETURN(FileStat st, b.Stat(path));
  if (st.size != want) return Err(EIO, "stat {}: size {}, expected {}", path, st.size, want);
  return Status::Ok();
}

Status RunOnce(Env& env, const CheckpointOptions& o, int run) {
  Backend& b = env.b;
  std::string dir = env.Path(fmt::format("checkpoint-{}-{}", getpid(), run));
  STRIA_RETURN_IF_ERROR(b.Mkdir(dir));
  uint64_t base = Mix64(env.seed ^ Mix64(run));
  auto own = [&](int r) { return fmt::format("{}/rank{:04}", dir, r); };
  auto own_key = [&](int r) { return Mix64(base ^ static_cast<uint64_t>(r)); };
  std::string shared = dir + "/shared";
  uint64_t shared_key = Mix64(base ^ 0xC0FFEE);
  auto shared_path = [&](int) { return shared; };
  double total = double(o.ranks) * double(o.size);
  size_t io = static_cast<size_t>(o.io);

  // N-to-N.
  STRIA_ASSIGN_OR_RETURN(
      double nn_write,
      PerRank(env, o, O_CREAT | O_WRONLY | O_TRUNC, own, [&](int r, int fd, std::string& buf) {
        STRIA_RETURN_IF_ERROR(WritePatternRange(b, fd, own(r), own_key(r), 0, o.size, io, buf));
        return Named(b.Fsync(fd), "fsync", own(r));
      }));
  for (int r = 0; r < o.ranks; r++) STRIA_RETURN_IF_ERROR(CheckSize(b, own(r), o.size));

  // N-to-1: the file exists (empty) before the ranks open it.
  {
    STRIA_ASSIGN_OR_RETURN(int fd, b.Open(shared, O_CREAT | O_WRONLY | O_TRUNC));
    STRIA_RETURN_IF_ERROR(Named(b.Close(fd), "close", shared));
  }
  STRIA_ASSIGN_OR_RETURN(
      double n1_write, PerRank(env, o, O_WRONLY, shared_path, [&](int r, int fd, std::string& buf) {
        uint64_t off = static_cast<uint64_t>(r) * o.size;
        STRIA_RETURN_IF_ERROR(WritePatternRange(b, fd, shared, shared_key, off, o.size, io, buf));
        return Named(b.Fsync(fd), fmt::format("rank {}: fsync", r), shared);
      }));
  STRIA_RETURN_IF_ERROR(CheckSize(b, shared, static_cast<uint64_t>(o.ranks) * o.size));

  // Restart.
  STRIA_RETURN_IF_ERROR(env.DropCaches());
  STRIA_ASSIGN_OR_RETURN(double nn_read,
                         PerRank(env, o, O_RDONLY, own, [&](int r, int fd, std::string& buf) {
                           return ReadVerifyRange(b, fd, own(r), own_key(r), 0, o.size, io, buf);
                         }));
  STRIA_RETURN_IF_ERROR(env.DropCaches());
  STRIA_ASSIGN_OR_RETURN(
      double n1_read, PerRank(env, o, O_RDONLY, shared_path, [&](int r, int fd, std::string& buf) {
        uint64_t off = static_cast<uint64_t>(r) * o.size;
        return ReadVerifyRange(b, fd, shared, shared_key, off, o.size, io, buf);
      }));

  for (int r = 0; r < o.ranks; r++) STRIA_RETURN_IF_ERROR(b.Unlink(own(r)));
  STRIA_RETURN_IF_ERROR(b.Unlink(shared));
  STRIA_RETURN_IF_ERROR(b.Rmdir(dir));

  Report& rep = env.report;
  rep.Add("n_to_n_write_GBps", "GB/s", total / 1e9 / nn_write);
  rep.Add("n_to_n_durable_s", "s", nn_write);
  rep.Add("n_to_1_write_GBps", "GB/s", total / 1e9 / n1_write);
  rep.Add("n_to_1_durable_s", "s", n1_write);
  rep.Add("n_to_n_restart_GBps", "GB/s", total / 1e9 / nn_read);
  rep.Add("n_to_1_restart_GBps", "GB/s", total / 1e9 / n1_read);
  env.Progress(fmt::format(
      "run {}/{}: N-to-N write {:.3f} s ({:.3f} GB/s), N-to-1 write {:.3f} s ({:.3f} GB/s), "
      "restart N-to-N {:.3f} GB/s, N-to-1 {:.3f} GB/s",
      run + 1, env.opt.runs, nn_write, total / 1e9 / nn_write, n1_write, total / 1e9 / n1_write,
      total / 1e9 / nn_read, total / 1e9 / n1_read));
  return Status::Ok();
}

Status RunCheckpoint(Env& env, const CheckpointOptions& o) {
  env.report.Param("ranks", o.ranks);
  env.report.Param("size", o.size);
  env.report.Param("io", o.io);
  for (int r = 0; r < env.opt.runs; r++) STRIA_RETURN_IF_ERROR(RunOnce(env, o, r));
  return Status::Ok();
}

}  // namespace

void AddCheckpointCommand(CLI::App& app, CommonOptions& common, Action& action) {
  auto o = std::make_shared<CheckpointOptions>();
  auto* sub = app.add_subcommand(
      "checkpoint",
      "R ranks write a checkpoint N-to-N (a file each) and N-to-1 (disjoint ranges of one "
      "file), fsync, then read both back (restart); GB/s and time to durable");
  sub->add_option("--writers,--ranks", o->ranks, "ranks (one thread each), writers then readers")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  AddSizeOption(sub, "--size", o->size, "bytes per rank");
  AddSizeOption(sub, "--io", o->io, "bytes per write and per read, at most 1G");
  AddCommonOptions(sub, common);
  sub->footer("Figures: n_to_n_write_GBps, n_to_1_write_GBps (GB/s, 10^9), n_to_n_durable_s, n_to_1_durable_s (first write to last fsync), n_to_n_restart_GBps, n_to_1_restart_GBps. Content is verified on restart; each run removes its files.");
  sub->callback([o, &action] {
    if (o->io > (1u << 30)) throw CLI::ValidationError("--io", "must be at most 1G");
    action = [o](Env& env) { return RunCheckpoint(env, *o); };
  });
}

}  // namespace stria::bench
