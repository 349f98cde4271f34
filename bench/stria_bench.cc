// stria-bench: the core workloads, through libstria or on a local directory
// (the baseline), so that both run the same code path in one session.
//
//   stria-bench --meta HOST:PORT [--runs 3]       through libstria
//   stria-bench --local DIR [--runs 3]            POSIX calls on DIR
//
// Workloads: sequential write (1 MiB I/O, fsync at the end) and read of one
// large file; 4 KiB random reads per second; create/stat/unlink per second
// of many small files. Prints the median of --runs per figure, and JSON with
// --json. The local baseline drops the page cache before reads when root.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "stria/client.h"

namespace stria::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The few file operations the workloads need, on either backend.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<int> Open(const std::string& path, int flags) = 0;
  virtual Result<size_t> Pwrite(int fd, const char* p, size_t n, uint64_t off) = 0;
  virtual Result<size_t> Pread(int fd, char* p, size_t n, uint64_t off) = 0;
  virtual Status Fsync(int fd) = 0;
  virtual Status Close(int fd) = 0;
  virtual Status Stat(const std::string& path) = 0;
  virtual Status Unlink(const std::string& path) = 0;
  virtual Status Mkdir(const std::string& path) = 0;
  virtual void DropCaches() {}
};

class StriaBackend : public Backend {
 public:
  explicit StriaBackend(std::unique_ptr<Client> c) : c_(std::move(c)) {}
  Result<int> Open(const std::string& p, int flags) override { return c_->Open(p, flags, 0644); }
  Result<size_t> Pwrite(int fd, const char* p, size_t n, uint64_t off) override {
    return c_->Pwrite(fd, p, n, off);
  }
  Result<size_t> Pread(int fd, char* p, size_t n, uint64_t off) override {
    return c_->Pread(fd, p, n, off);
  }
  Status Fsync(int fd) override { return c_->Fsync(fd); }
  Status Close(int fd) override { return c_->Close(fd); }
  Status Stat(const std::string& p) override { return c_->Stat(p).status(); }
  Status Unlink(const std::string& p) override { return c_->Unlink(p); }
  Status Mkdir(const std::string& p) override {
    Status st = c_->Mkdir(p);
    return st.code() == EEXIST ? Status::Ok() : st;
  }
  // The stores' files live in the page cache too (same machine): drop it.
  void DropCaches() override { LocalDrop(); }
  static void LocalDrop() {
    sync();
    int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd >= 0) {
      (void)!::write(fd, "3", 1);
      ::close(fd);
    }
  }

 private:
  std::unique_ptr<Client> c_;
};

class LocalBackend : public Backend {
 public:
  explicit LocalBackend(std::string root) : root_(std::move(root)) {}
  Result<int> Open(const std::string& p, int flags) override {
    int fd = ::open((root_ + p).c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) return Err(errno, "open {}: {}", p, std::strerror(errno));
    return fd;
  }
  Result<size_t> Pwrite(int fd, const char* p, size_t n, uint64_t off) override {
    ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (r < 0) return Err(errno, "pwrite: {}", std::strerror(errno));
    return static_cast<size_t>(r);
  }
  Result<size_t> Pread(int fd, char* p, size_t n, uint64_t off) override {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) return Err(errno, "pread: {}", std::strerror(errno));
    return static_cast<size_t>(r);
  }
  Status Fsync(int fd) override {
    return ::fsync(fd) == 0 ? Status::Ok() : Err(errno, "fsync: {}", std::strerror(errno));
  }
  Status Close(int fd) override {
    return ::close(fd) == 0 ? Status::Ok() : Err(errno, "close: {}", std::strerror(errno));
  }
  Status Stat(const std::string& p) override {
    struct stat st;
    return ::stat((root_ + p).c_str(), &st) == 0 ? Status::Ok()
                                                 : Err(errno, "stat {}: {}", p, std::strerror(errno));
  }
  Status Unlink(const std::string& p) override {
    return ::unlink((root_ + p).c_str()) == 0 ? Status::Ok()
                                              : Err(errno, "unlink {}: {}", p, std::strerror(errno));
  }
  Status Mkdir(const std::string& p) override {
    if (::mkdir((root_ + p).c_str(), 0755) == 0 || errno == EEXIST) return Status::Ok();
    return Err(errno, "mkdir {}: {}", p, std::strerror(errno));
  }
  void DropCaches() override { StriaBackend::LocalDrop(); }

 private:
  std::string root_;
};

struct Params {
  uint64_t seq_size = 1ull << 30;
  size_t small_files = 10000;
  size_t small_size = 4096;
  double rand_seconds = 10;
};

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

#define BENCH_CHECK(expr)                                                    \
  do {                                                                       \
    auto&& _r = (expr);                                                      \
    if (!_r.ok()) {                                                          \
      std::fprintf(stderr, "stria-bench: %s\n", _r.status().ToString().c_str()); \
      std::exit(1);                                                          \
    }                                                                        \
  } while (0)

// One run of every workload; figures by name.
std::map<std::string, double> RunOnce(Backend& b, const Params& p, int run) {
  std::map<std::string, double> out;
  std::string dir = "/stria-bench-" + std::to_string(getpid()) + "-" + std::to_string(run);
  BENCH_CHECK(b.Mkdir(dir));
  std::string big = dir + "/seq";
  const size_t kIo = 1 << 20;
  std::string buf(kIo, '\0');
  std::mt19937_64 rng(run);
  for (auto& c : buf) c = static_cast<char>(rng());

  auto fd = b.Open(big, O_CREAT | O_WRONLY | O_TRUNC);
  BENCH_CHECK(fd);
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < p.seq_size; off += kIo) BENCH_CHECK(b.Pwrite(*fd, buf.data(), kIo, off));
  BENCH_CHECK(b.Fsync(*fd));
  BENCH_CHECK(b.Close(*fd));
  out["seq_write_MiBps"] = double(p.seq_size) / (1 << 20) / Seconds(t0);

  b.DropCaches();
  fd = b.Open(big, O_RDONLY);
  BENCH_CHECK(fd);
  t0 = Clock::now();
  for (uint64_t off = 0; off < p.seq_size; off += kIo) BENCH_CHECK(b.Pread(*fd, buf.data(), kIo, off));
  out["seq_read_MiBps"] = double(p.seq_size) / (1 << 20) / Seconds(t0);

  b.DropCaches();
  std::vector<double> lat;
  t0 = Clock::now();
  uint64_t blocks = p.seq_size / 4096;
  while (Seconds(t0) < p.rand_seconds) {
    uint64_t off = (rng() % blocks) * 4096;
    auto s = Clock::now();
    BENCH_CHECK(b.Pread(*fd, buf.data(), 4096, off));
    lat.push_back(Seconds(s));
  }
  out["rand_read_4k_iops"] = double(lat.size()) / Seconds(t0);
  std::sort(lat.begin(), lat.end());
  out["rand_read_4k_p50_us"] = lat[lat.size() / 2] * 1e6;
  out["rand_read_4k_p99_us"] = lat[lat.size() * 99 / 100] * 1e6;
  BENCH_CHECK(b.Close(*fd));
  BENCH_CHECK(b.Unlink(big));

  std::string small(p.small_size, 's');
  t0 = Clock::now();
  for (size_t i = 0; i < p.small_files; i++) {
    auto f = b.Open(dir + "/s" + std::to_string(i), O_CREAT | O_WRONLY | O_TRUNC);
    BENCH_CHECK(f);
    BENCH_CHECK(b.Pwrite(*f, small.data(), small.size(), 0));
    BENCH_CHECK(b.Close(*f));
  }
  out["small_create_per_s"] = double(p.small_files) / Seconds(t0);
  t0 = Clock::now();
  for (size_t i = 0; i < p.small_files; i++) BENCH_CHECK(b.Stat(dir + "/s" + std::to_string(i)));
  out["small_stat_per_s"] = double(p.small_files) / Seconds(t0);
  t0 = Clock::now();
  for (size_t i = 0; i < p.small_files; i++) BENCH_CHECK(b.Unlink(dir + "/s" + std::to_string(i)));
  out["small_unlink_per_s"] = double(p.small_files) / Seconds(t0);
  return out;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"stria-bench: core workloads through libstria or on a local directory"};
  std::string meta, local;
  int runs = 3;
  bool as_json = false;
  std::string seq_size = "1G";
  Params p;
  app.add_option("--meta", meta, "stria-meta HOST:PORT (default $STRIA_META)");
  app.add_option("--local", local, "run on this local directory instead (baseline)");
  app.add_option("--runs", runs, "runs; the median is reported")->check(CLI::Range(1, 100));
  app.add_option("--seq-size", seq_size, "size of the sequential file (e.g. 1G)");
  app.add_option("--small-files", p.small_files, "number of small files");
  app.add_option("--small-size", p.small_size, "bytes per small file");
  app.add_option("--rand-seconds", p.rand_seconds, "seconds of random 4 KiB reads");
  app.add_flag("--json", as_json, "JSON output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  uint64_t mul = 1;
  char unit = seq_size.empty() ? 'G' : seq_size.back();
  if (unit == 'G' || unit == 'g') mul = 1ull << 30;
  else if (unit == 'M' || unit == 'm') mul = 1ull << 20;
  try {
    p.seq_size = std::stoull(seq_size) * mul;
  } catch (...) {
    std::fprintf(stderr, "stria-bench: --seq-size '%s' is not a size like 1G or 256M\n", seq_size.c_str());
    return 2;
  }
  p.seq_size = std::max<uint64_t>(p.seq_size / (1 << 20), 1) << 20;
  std::unique_ptr<Backend> backend;
  std::string label;
  if (!local.empty()) {
    backend = std::make_unique<LocalBackend>(local);
    label = "local:" + local;
  } else {
    ClientOptions o;
    o.meta = meta;
    auto c = Client::Connect(o);
    if (!c.ok()) {
      std::fprintf(stderr, "stria-bench: %s\n", c.status().ToString().c_str());
      return 1;
    }
    label = "stria";
    backend = std::make_unique<StriaBackend>(std::move(c).value());
  }
  std::map<std::string, std::vector<double>> all;
  for (int r = 0; r < runs; r++) {
    for (auto& [k, v] : RunOnce(*backend, p, r)) all[k].push_back(v);
  }
  nlohmann::json j;
  j["system"] = label;
  j["runs"] = runs;
  for (auto& [k, v] : all) {
    std::sort(v.begin(), v.end());
    double median = v[v.size() / 2];
    j["median"][k] = median;
    j["all"][k] = v;
    if (!as_json) std::printf("%-22s %12.1f   (runs: %s)\n", k.c_str(), median, nlohmann::json(v).dump().c_str());
  }
  if (as_json) std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

}  // namespace stria::bench

int main(int argc, char** argv) { return stria::bench::Main(argc, argv); }
