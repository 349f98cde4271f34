// What every stria-bench subcommand shares: the common flags, the figures
// report (every run's value and the median, as text or JSON), the error
// counter of a phase, threads, and the CLI helpers for sizes.
//
// Threading: ErrorLog is thread-safe; Report and Env belong to the main
// thread (workers hand their numbers back, the main thread records them).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend.h"

namespace stria::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point from, Clock::time_point to = Clock::now()) {
  return std::chrono::duration<double>(to - from).count();
}

// Flags every subcommand takes (added to each, so that `SUB --help` lists
// them all).
struct CommonOptions {
  std::string dir;                 // --dir: POSIX calls under this directory
  std::string meta;                // --meta: libstria; empty with neither: $STRIA_META
  std::string prefix = "/bench";   // --prefix: the root inside Stria for --meta
  int timeout_s = 30;              // --timeout: libstria's per-operation deadline
  int runs = 3;                    // --runs: repeats of the measured phase
  bool json = false;               // --json
  uint64_t seed = 0;               // --seed; random (and printed) when not given
  bool seed_given = false;
  bool drop_caches = false;        // --drop-caches / --no-drop-caches; default: on as root
  int setup_threads = 4;           // --setup-threads: parallel creation of datasets
};

// The values of one subcommand's figures, run by run, in the order they
// were first added.
class Report {
 public:
  void Add(const std::string& name, const std::string& unit, double value);
  // Parameters shown in the JSON output ("files": 200 …).
  void Param(const std::string& name, nlohmann::ordered_json value) { params_[name] = std::move(value); }
  // "name value unit" per figure (the median), or JSON with every value.
  void Print(const std::string& command, const std::string& system, const CommonOptions& o,
             uint64_t seed) const;

 private:
  struct Figure {
    std::string name, unit;
    std::vector<double> values;
  };
  std::vector<Figure> figures_;
  nlohmann::ordered_json params_ = nlohmann::ordered_json::object();
};

double Median(std::vector<double> v);

// Errors of one phase, from any thread: the count and the first few
// messages (each names the file and the cause).
class ErrorLog {
 public:
  void Add(const Status& st);
  uint64_t count() const;
  // True once there are so many that a phase should stop taking new work
  // (a dead server makes every call wait for its timeout).
  bool TooMany() const { return count() >= kStopAfter; }
  // Ok when there were none; otherwise the first error's code and a message
  // "PHASE: N errors; first: …" (and "stopped" once TooMany).
  Status Summary(const std::string& phase) const;

 private:
  static constexpr size_t kKeep = 3;
  static constexpr uint64_t kStopAfter = 10;
  mutable std::mutex mu_;
  uint64_t count_ = 0;   // GUARDED_BY(mu_)
  int first_code_ = 0;   // GUARDED_BY(mu_)
  std::vector<std::string> first_;   // GUARDED_BY(mu_)
};

// What a subcommand runs with.
struct Env {
  Backend& b;
  const CommonOptions& opt;
  uint64_t seed;
  Report& report;
  std::string command;

  // Before every read phase: drops the page cache when --drop-caches.
  Status DropCaches() const;
  // A progress line on stderr ("stria-bench epoch: …").
  void Progress(const std::string& line) const;
  // root()/name.
  std::string Path(const std::string& name) const { return b.root() + "/" + name; }
};

// Runs fn(0) … fn(n - 1) on n threads and waits for all of them.
void RunThreads(int n, const std::function<void(int)>& fn);

// A size flag ("64K", "140M", "2G"; k/M/G/T are powers of 1024); a bad value
// is a CLI error (exit 2).
CLI::Option* AddSizeOption(CLI::App* app, const std::string& name, uint64_t& value,
                           const std::string& help);
// "64K", "140M", or bytes when not a whole number of K: for messages and help.
std::string SizeText(uint64_t bytes);
void AddCommonOptions(CLI::App* app, CommonOptions& o);

// A subcommand's body, set by its CLI callback.
using Action = std::function<Status(Env&)>;

}  // namespace stria::bench
