// stria-bench: storage workloads of AI/ML clusters, on any mounted directory
// (plain POSIX calls: a Stria FUSE mount, the local disk, another file
// system) or through libstria directly, so that all of them run the same
// code in one session.
//
//   stria-bench SUBCOMMAND --dir PATH [flags]            POSIX calls under PATH
//   stria-bench SUBCOMMAND --meta HOST:PORT [flags]      libstria, under --prefix
//
// Subcommands: core, smallfiles, epoch, accelerators, checkpoint, modelload
// (see workloads.h and each workloads_*.cc). Output: "name value unit" per
// figure (the median of --runs), or JSON with every value. Exit status: 0;
// 1 when a phase had errors or the storage cannot be reached (the message
// names the file and the cause); 2 for bad flags.
#include <signal.h>

#include <cstdio>
#include <random>

#include <CLI/CLI.hpp>

#include "workloads.h"

namespace stria::bench {

int Main(int argc, char** argv) {
  CLI::App app{
      "stria-bench: storage workloads of AI/ML clusters, on a mounted directory (--dir, POSIX "
      "calls) or through libstria (--meta)"};
  app.require_subcommand(1);
  CommonOptions common;
  Action action;
  AddCoreCommand(app, common, action);
  AddSmallFilesCommand(app, common, action);
  AddEpochCommand(app, common, action);
  AddAcceleratorsCommand(app, common, action);
  AddCheckpointCommand(app, common, action);
  AddModelLoadCommand(app, common, action);
  // Set after the subcommands are added, which would inherit it.
  app.footer(
      "Every subcommand takes --dir PATH or --meta HOST:PORT (with --prefix, default /bench), "
      "--runs N (default 3; the median is printed), --json, --seed N, --drop-caches / "
      "--no-drop-caches (default on as root) and --setup-threads N.\n"
      "Output: one 'name value unit' line per figure; progress goes to stderr.\n"
      "Datasets (epoch, accelerators, modelload) are created once, untimed, and reused.\n"
      "Run 'stria-bench SUBCOMMAND --help' for its flags.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::string command = app.get_subcommands().front()->get_name();
  auto fail = [&](const Status& st, int code) {
    std::fprintf(stderr, "stria-bench %s: %s\n", command.c_str(), st.ToString().c_str());
    return code;
  };
  if (!common.dir.empty() && !common.meta.empty()) {
    return fail(Err(EINVAL, "give --dir or --meta, not both"), 2);
  }
  if (common.dir.empty() && common.meta.empty() && std::getenv("STRIA_META") == nullptr) {
    return fail(Err(EINVAL, "give --dir PATH (a mounted directory) or --meta HOST:PORT (libstria)"), 2);
  }
  auto backend = common.dir.empty()
                     ? MakeStriaBackend(common.meta, common.prefix, common.timeout_s)
                     : MakePosixBackend(common.dir);
  if (!backend.ok()) return fail(backend.status(), 1);
  uint64_t seed = common.seed_given ? common.seed : std::random_device{}();
  Report report;
  Env env{**backend, common, seed, report, command};
  env.Progress(fmt::format("on {}, seed {}, {} run{}, page cache {}", (*backend)->Describe(), seed,
                           common.runs, common.runs == 1 ? "" : "s",
                           common.drop_caches ? "dropped before reads" : "kept"));
  Status st = action(env);
  if (!st.ok()) return fail(st, 1);
  report.Print(command, (*backend)->Describe(), common, seed);
  return 0;
}

}  // namespace stria::bench

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  return stria::bench::Main(argc, argv);
}
