#include "dataset.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>

#include "pattern.h"

namespace stria::bench {
namespace {

constexpr int kPatternVersion = 1;
constexpr size_t kSetupIo = 1 << 20;

}  // namespace

std::string Dataset::FilePath(uint64_t i) const {
  return fmt::format("{}/d{:05}/f{:08}", dir_, i % spec_.dirs, i);
}

uint64_t Dataset::Key(uint64_t i) const { return Mix64(Mix64(spec_.size) ^ i); }

Status Dataset::WithHint(const Status& st) const {
  // Only what a damaged dataset causes; an unreachable store is not that.
  if (st.code() != EIO && st.code() != ENOENT) return st;
  return Status(st.code(), st.message() + "\n(if the dataset was damaged, remove " + dir_ + " to recreate it)");
}

std::string Dataset::Manifest() const {
  return fmt::format("stria-bench dataset\npattern {}\nfiles {}\nsize {}\ndirs {}\n",
                     kPatternVersion, spec_.files, spec_.size, spec_.dirs);
}

Result<bool> Dataset::Matches(Backend& b) const {
  // A storage error is not a mismatch: recreating would destroy a good dataset.
  std::string path = dir_ + "/MANIFEST";
  auto fd = b.Open(path, O_RDONLY);
  if (!fd.ok()) return fd.status().code() == ENOENT ? Result<bool>(false) : fd.status();
  std::string want = Manifest();
  std::string got(want.size() + 1, '\0');
  auto n = PreadFull(b, *fd, got.data(), got.size(), 0);
  (void)b.Close(*fd);   // read-only: nothing to lose
  if (!n.ok()) return Named(n.status(), "read", path);
  if (got.substr(0, *n) != want) return false;
  // Cheap guard against a dataset changed by hand since.
  for (uint64_t i : {uint64_t{0}, spec_.files - 1}) {
    auto st = b.Stat(FilePath(i));
    if (!st.ok()) return st.status().code() == ENOENT ? Result<bool>(false) : st.status();
    if (st->size != spec_.size) return false;
  }
  return true;
}

Status Dataset::Create(Env& env) const {
  Backend& b = env.b;
  STRIA_RETURN_IF_ERROR(b.Mkdir(dir_));
  // A half-made dataset must not look complete if this is interrupted.
  Status gone = b.Unlink(dir_ + "/MANIFEST");
  if (!gone.ok() && gone.code() != ENOENT) return gone;
  for (uint64_t d = 0; d < spec_.dirs && d < spec_.files; d++) {
    STRIA_RETURN_IF_ERROR(b.Mkdir(fmt::format("{}/d{:05}", dir_, d)));
  }
  ErrorLog errors;
  std::atomic<uint64_t> next{0};
  auto t0 = Clock::now();
  RunThreads(env.opt.setup_threads, [&](int) {
    std::string buf;
    for (uint64_t i; (i = next++) < spec_.files && !errors.TooMany();) {
      Status st = CreatePatternFile(b, FilePath(i), Key(i), spec_.size, kSetupIo, false, buf);
      if (!st.ok()) errors.Add(st);
    }
  });
  STRIA_RETURN_IF_ERROR(errors.Summary("create dataset " + dir_));
  // Written back now, so that the first timed phase does not pay for it.
  ::sync();
  std::string m = Manifest();
  std::string path = dir_ + "/MANIFEST";
  auto fd = b.Open(path, O_CREAT | O_WRONLY | O_TRUNC);
  if (!fd.ok()) return fd.status();
  Status st = Named(PwriteFull(b, *fd, m.data(), m.size(), 0), "write", path);
  if (st.ok()) st = Named(b.Fsync(*fd), "fsync", path);
  Status cl = Named(b.Close(*fd), "close", path);
  STRIA_RETURN_IF_ERROR(st.ok() ? cl : st);
  env.Progress(fmt::format("created {} ({} file{} of {} in {} dir{}) in {:.1f} s", dir_, spec_.files,
                           spec_.files == 1 ? "" : "s", SizeText(spec_.size), spec_.dirs,
                           spec_.dirs == 1 ? "" : "s", Seconds(t0)));
  return Status::Ok();
}

Result<Dataset> Dataset::Prepare(Env& env, const DatasetSpec& spec) {
  Dataset ds(spec, env.Path(fmt::format("dataset-{}f-{}b-{}d", spec.files, spec.size, spec.dirs)));
  STRIA_ASSIGN_OR_RETURN(bool matches, ds.Matches(env.b));
  if (matches) {
    env.Progress("reusing " + ds.dir_);
    return ds;
  }
  env.Progress(fmt::format("creating {} (not timed)", ds.dir_));
  STRIA_RETURN_IF_ERROR(ds.Create(env));
  return ds;
}

void AddDatasetOptions(CLI::App* app, DatasetSpec& spec) {
  const char* g = "Dataset (created once, reused while its MANIFEST matches)";
  app->add_option("--files", spec.files, "number of files")
      ->group(g)
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  AddSizeOption(app, "--size", spec.size, "bytes per file")->group(g);
  app->add_option("--dirs", spec.dirs, "directories the files are spread over")
      ->group(g)
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}))
      ->capture_default_str();
}

}  // namespace stria::bench
