// core: the original stria-bench workloads, unchanged in what they measure.
// Sequential write (1 MiB I/O, fsync at the end) and read of one large
// file; 4 KiB random reads for a fixed time (IOPS, p50, p99); create (with a
// write), stat and unlink of many small files in one directory. One thread.
// Reads check their byte counts (not the content: the figures stay
// comparable with earlier ones).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>

#include "workloads.h"

namespace stria::bench {
namespace {

struct CoreOptions {
  uint64_t seq_size = 1ull << 30;
  uint64_t small_files = 10000;
  uint64_t small_size = 4096;
  double rand_seconds = 10;
};

Status ReadExactly(Backend& b, int fd, const std::string& path, char* p, size_t n, uint64_t off) {
  auto got = PreadFull(b, fd, p, n, off);
  if (!got.ok()) return NamedAt(got.status(), "read", path, off);
  if (*got != n) return Err(EIO, "read {}: {} bytes at {}, expected {}", path, *got, off, n);
  return Status::Ok();
}

Status RunOnce(Env& env, const CoreOptions& p, int run) {
  Backend& b = env.b;
  Report& out = env.report;
  std::string dir = env.Path(fmt::format("stria-bench-{}-{}", getpid(), run));
  STRIA_RETURN_IF_ERROR(b.Mkdir(dir));
  std::string big = dir + "/seq";
  const size_t kIo = 1 << 20;
  std::string buf(kIo, '\0');
  std::mt19937_64 rng(run);
  for (auto& c : buf) c = static_cast<char>(rng());

  STRIA_ASSIGN_OR_RETURN(int fd, b.Open(big, O_CREAT | O_WRONLY | O_TRUNC));
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < p.seq_size; off += kIo) {
    STRIA_RETURN_IF_ERROR(Named(PwriteFull(b, fd, buf.data(), kIo, off), "write", big));
  }
  STRIA_RETURN_IF_ERROR(Named(b.Fsync(fd), "fsync", big));
  STRIA_RETURN_IF_ERROR(Named(b.Close(fd), "close", big));
  out.Add("seq_write_MiBps", "MiB/s", double(p.seq_size) / (1 << 20) / Seconds(t0));

  STRIA_RETURN_IF_ERROR(env.DropCaches());
  STRIA_ASSIGN_OR_RETURN(fd, b.Open(big, O_RDONLY));
  t0 = Clock::now();
  for (uint64_t off = 0; off < p.seq_size; off += kIo) {
    STRIA_RETURN_IF_ERROR(ReadExactly(b, fd, big, buf.data(), kIo, off));
  }
  out.Add("seq_read_MiBps", "MiB/s", double(p.seq_size) / (1 << 20) / Seconds(t0));

  STRIA_RETURN_IF_ERROR(env.DropCaches());
  std::vector<double> lat;
  t0 = Clock::now();
  uint64_t blocks = p.seq_size / 4096;
  do {
    uint64_t off = (rng() % blocks) * 4096;
    auto s = Clock::now();
    STRIA_RETURN_IF_ERROR(ReadExactly(b, fd, big, buf.data(), 4096, off));
    lat.push_back(Seconds(s));
  } while (Seconds(t0) < p.rand_seconds);
  out.Add("rand_read_4k_iops", "IOPS", double(lat.size()) / Seconds(t0));
  std::sort(lat.begin(), lat.end());
  out.Add("rand_read_4k_p50_us", "us", lat[lat.size() / 2] * 1e6);
  out.Add("rand_read_4k_p99_us", "us", lat[lat.size() * 99 / 100] * 1e6);
  STRIA_RETURN_IF_ERROR(Named(b.Close(fd), "close", big));
  STRIA_RETURN_IF_ERROR(b.Unlink(big));

  std::string small(p.small_size, 's');
  auto name = [&](uint64_t i) { return dir + "/s" + std::to_string(i); };
  t0 = Clock::now();
  for (uint64_t i = 0; i < p.small_files; i++) {
    STRIA_ASSIGN_OR_RETURN(int f, b.Open(name(i), O_CREAT | O_WRONLY | O_TRUNC));
    STRIA_RETURN_IF_ERROR(Named(PwriteFull(b, f, small.data(), small.size(), 0), "write", name(i)));
    STRIA_RETURN_IF_ERROR(Named(b.Close(f), "close", name(i)));
  }
  out.Add("small_create_per_s", "files/s", double(p.small_files) / Seconds(t0));
  t0 = Clock::now();
  for (uint64_t i = 0; i < p.small_files; i++) {
    STRIA_ASSIGN_OR_RETURN(FileStat st, b.Stat(name(i)));
    if (st.size != p.small_size) {
      return Err(EIO, "stat {}: size {}, expected {}", name(i), st.size, p.small_size);
    }
  }
  out.Add("small_stat_per_s", "files/s", double(p.small_files) / Seconds(t0));
  t0 = Clock::now();
  for (uint64_t i = 0; i < p.small_files; i++) STRIA_RETURN_IF_ERROR(b.Unlink(name(i)));
  out.Add("small_unlink_per_s", "files/s", double(p.small_files) / Seconds(t0));
  return b.Rmdir(dir);
}

Status RunCore(Env& env, const CoreOptions& p) {
  env.report.Param("seq_size", p.seq_size);
  env.report.Param("small_files", p.small_files);
  env.report.Param("small_size", p.small_size);
  env.report.Param("rand_seconds", p.rand_seconds);
  for (int r = 0; r < env.opt.runs; r++) {
    STRIA_RETURN_IF_ERROR(RunOnce(env, p, r));
    env.Progress(fmt::format("run {}/{} done", r + 1, env.opt.runs));
  }
  return Status::Ok();
}

}  // namespace

void AddCoreCommand(CLI::App& app, CommonOptions& common, Action& action) {
  auto p = std::make_shared<CoreOptions>();
  auto* sub = app.add_subcommand(
      "core",
      "the original workloads: sequential write/read of one file (1 MiB I/O), 4 KiB random "
      "reads, create/stat/unlink of small files (1 thread)");
  // The old spelling of --dir, kept for existing scripts.
  sub->add_option("--local", common.dir, "same as --dir")->group("");
  AddSizeOption(sub, "--seq-size", p->seq_size, "size of the sequential file, rounded down to whole MiB");
  sub->add_option("--small-files", p->small_files, "number of small files")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  sub->add_option("--small-size", p->small_size, "bytes per small file")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 30))
      ->capture_default_str();
  sub->add_option("--rand-seconds", p->rand_seconds, "seconds of random 4 KiB reads")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  AddCommonOptions(sub, common);
  sub->footer("Figures: seq_write_MiBps, seq_read_MiBps (MiB/s), rand_read_4k_iops, rand_read_4k_p50_us, rand_read_4k_p99_us, small_create_per_s, small_stat_per_s, small_unlink_per_s (files/s).");
  sub->callback([p, &action] {
    p->seq_size = std::max<uint64_t>(p->seq_size >> 20, 1) << 20;
    action = [p](Env& env) { return RunCore(env, *p); };
  });
}

}  // namespace stria::bench
