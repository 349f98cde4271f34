// `stria repo ...`: data repository links (docs/data_repositories.md).
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "stria/client.h"

namespace stria::cli {

// Adds the repo subcommands to app. add_client_flags gives a subcommand
// --meta and --timeout; the chosen subcommand sets action (run with a
// connected client) and cmd_name. timeout_s and json_out are the globals'.
void AddRepoCommands(CLI::App& app, const std::function<void(CLI::App*)>& add_client_flags, const int& timeout_s,
                     bool& json_out, std::function<Status(Client&)>& action, std::string& cmd_name);

}  // namespace stria::cli
