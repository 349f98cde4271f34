// smallfiles: N files of S bytes in D directories by T threads, in four
// timed phases: create (open, write, close), stat, read whole, unlink.
// Files/s per phase. Each run works in a fresh directory, removed at its end.
// Thread t handles files t, t + T, … so that every thread touches every
// directory, as independent writers do.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <memory>

#include "pattern.h"
#include "workloads.h"

namespace stria::bench {
namespace {

struct SmallFilesOptions {
  uint64_t files = 10000;
  uint64_t size = 64 << 10;
  uint64_t dirs = 10;
  int threads = 1;
  bool fsync = false;
};

constexpr size_t kIo = 1 << 20;

// Runs fn(i) for every file on opt.threads threads; returns files/s.
double Phase(const SmallFilesOptions& o, ErrorLog& errors,
             const std::function<Status(uint64_t, std::string&)>& fn) {
  auto t0 = Clock::now();
  RunThreads(o.threads, [&](int t) {
    std::string buf;
    for (uint64_t i = t; i < o.files && !errors.TooMany(); i += o.threads) {
      Status st = fn(i, buf);
      if (!st.ok()) errors.Add(st);
    }
  });
  return double(o.files) / Seconds(t0);
}

Status RunOnce(Env& env, const SmallFilesOptions& o, int run) {
  Backend& b = env.b;
  std::string dir = env.Path(fmt::format("smallfiles-{}-{}", getpid(), run));
  STRIA_RETURN_IF_ERROR(b.Mkdir(dir));
  for (uint64_t d = 0; d < o.dirs; d++) STRIA_RETURN_IF_ERROR(b.Mkdir(fmt::format("{}/d{:05}", dir, d)));
  auto path = [&](uint64_t i) { return fmt::format("{}/d{:05}/f{:08}", dir, i % o.dirs, i); };
  uint64_t base = Mix64(env.seed ^ Mix64(run));
  auto key = [&](uint64_t i) { return Mix64(base ^ i); };

  ErrorLog errors;
  double create = Phase(o, errors, [&](uint64_t i, std::string& buf) {
    return CreatePatternFile(b, path(i), key(i), o.size, kIo, o.fsync, buf);
  });
  STRIA_RETURN_IF_ERROR(errors.Summary("create"));

  STRIA_RETURN_IF_ERROR(env.DropCaches());
  double stat = Phase(o, errors, [&](uint64_t i, std::string&) {
    auto st = b.Stat(path(i));
    if (!st.ok()) return st.status();
    if (st->size != o.size) return Err(EIO, "stat {}: size {}, expected {}", path(i), st->size, o.size);
    return Status::Ok();
  });
  STRIA_RETURN_IF_ERROR(errors.Summary("stat"));

  STRIA_RETURN_IF_ERROR(env.DropCaches());
  double read = Phase(o, errors, [&](uint64_t i, std::string& buf) {
    return ReadPatternFile(b, path(i), key(i), o.size, kIo, buf);
  });
  STRIA_RETURN_IF_ERROR(errors.Summary("read"));

  double unlink = Phase(o, errors, [&](uint64_t i, std::string&) { return b.Unlink(path(i)); });
  STRIA_RETURN_IF_ERROR(errors.Summary("unlink"));
  for (uint64_t d = 0; d < o.dirs; d++) STRIA_RETURN_IF_ERROR(b.Rmdir(fmt::format("{}/d{:05}", dir, d)));
  STRIA_RETURN_IF_ERROR(b.Rmdir(dir));

  env.report.Add("create", "files/s", create);
  env.report.Add("stat", "files/s", stat);
  env.report.Add("read", "files/s", read);
  env.report.Add("unlink", "files/s", unlink);
  env.Progress(fmt::format("run {}/{}: create {:.0f}, stat {:.0f}, read {:.0f}, unlink {:.0f} files/s",
                           run + 1, env.opt.runs, create, stat, read, unlink));
  return Status::Ok();
}

Status RunSmallFiles(Env& env, const SmallFilesOptions& o) {
  env.report.Param("files", o.files);
  env.report.Param("size", o.size);
  env.report.Param("dirs", o.dirs);
  env.report.Param("threads", o.threads);
  env.report.Param("fsync", o.fsync);
  for (int r = 0; r < env.opt.runs; r++) STRIA_RETURN_IF_ERROR(RunOnce(env, o, r));
  return Status::Ok();
}

}  // namespace

void AddSmallFilesCommand(CLI::App& app, CommonOptions& common, Action& action) {
  auto o = std::make_shared<SmallFilesOptions>();
  auto* sub = app.add_subcommand(
      "smallfiles",
      "create (open/write/close), stat, read whole and unlink N small files in D directories "
      "with T threads; files/s per phase");
  sub->add_option("--files", o->files, "number of files")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  AddSizeOption(sub, "--size", o->size, "bytes per file");
  sub->add_option("--dirs", o->dirs, "directories the files are spread over")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}))
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "threads, each on its own share of the files")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_flag("--fsync", o->fsync, "fsync each file before closing it (create phase)");
  AddCommonOptions(sub, common);
  sub->footer("Figures: create, stat, read, unlink (files/s). Each run works in a fresh directory under the root and removes it. Reads are verified (per-file pattern), stat checks sizes.");
  sub->callback([o, &action] { action = [o](Env& env) { return RunSmallFiles(env, *o); }; });
}

}  // namespace stria::bench
