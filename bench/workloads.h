// The subcommands of stria-bench. Each Add*Command adds its subcommand with
// its own flags (and the common ones) to app; when the subcommand is
// parsed, its callback sets action to the workload. A workload records
// every run's figures in env.report and returns the first error (a phase
// with errors fails the whole command, naming the file and the cause).
#pragma once

#include <CLI/CLI.hpp>

#include "harness.h"

namespace stria::bench {

void AddCoreCommand(CLI::App& app, CommonOptions& common, Action& action);
void AddSmallFilesCommand(CLI::App& app, CommonOptions& common, Action& action);
void AddEpochCommand(CLI::App& app, CommonOptions& common, Action& action);
void AddAcceleratorsCommand(CLI::App& app, CommonOptions& common, Action& action);
void AddCheckpointCommand(CLI::App& app, CommonOptions& common, Action& action);
void AddModelLoadCommand(CLI::App& app, CommonOptions& common, Action& action);

}  // namespace stria::bench
