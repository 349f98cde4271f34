#include "harness.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "common/util.h"

namespace stria::bench {

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

void Report::Add(const std::string& name, const std::string& unit, double value) {
  for (auto& f : figures_) {
    if (f.name == name) {
      f.values.push_back(value);
      return;
    }
  }
  figures_.push_back(Figure{name, unit, {value}});
}

namespace {

// Enough digits to compare, without noise: 12345.6, 123.4, 1.234.
std::string Number(double v) {
  if (std::isnan(v)) return "nan";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);   // counts
  return std::fabs(v) >= 100 ? fmt::format("{:.1f}", v) : fmt::format("{:.3f}", v);
}

}  // namespace

void Report::Print(const std::string& command, const std::string& system,
                   const CommonOptions& o, uint64_t seed) const {
  if (!o.json) {
    for (const auto& f : figures_) {
      std::printf("%s %s %s\n", f.name.c_str(), Number(Median(f.values)).c_str(), f.unit.c_str());
    }
    std::fflush(stdout);
    return;
  }
  nlohmann::ordered_json j;
  j["command"] = command;
  j["system"] = system;
  j["runs"] = o.runs;
  j["seed"] = seed;
  j["drop_caches"] = o.drop_caches;
  j["params"] = params_;
  j["figures"] = nlohmann::ordered_json::object();
  for (const auto& f : figures_) {
    j["figures"][f.name] = {{"unit", f.unit}, {"median", Median(f.values)}, {"all", f.values}};
  }
  std::printf("%s\n", j.dump(2).c_str());
  std::fflush(stdout);
}

void ErrorLog::Add(const Status& st) {
  std::lock_guard lk(mu_);
  if (count_++ == 0) first_code_ = st.code() ? st.code() : EIO;
  if (first_.size() < kKeep) first_.push_back(st.ToString());
}

uint64_t ErrorLog::count() const {
  std::lock_guard lk(mu_);
  return count_;
}

Status ErrorLog::Summary(const std::string& phase) const {
  std::lock_guard lk(mu_);
  if (count_ == 0) return Status::Ok();
  std::string msg = fmt::format("{}: {} error{}{}", phase, count_, count_ == 1 ? "" : "s",
                                count_ >= kStopAfter ? " (stopped there)" : "");
  // One error per line: each is long (path and cause).
  for (size_t i = 0; i < first_.size(); i++) msg += (i == 0 ? "; first:\n  " : "\n  ") + first_[i];
  if (count_ > first_.size()) msg += fmt::format("\n  … and {} more", count_ - first_.size());
  return Status(first_code_, msg);
}

Status Env::DropCaches() const {
  return opt.drop_caches ? DropPageCache() : Status::Ok();
}

void Env::Progress(const std::string& line) const {
  std::fprintf(stderr, "stria-bench %s: %s\n", command.c_str(), line.c_str());
}

void RunThreads(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; i++) threads.emplace_back(fn, i);
  for (auto& t : threads) t.join();
}

std::string SizeText(uint64_t b) {
  static const char* kUnits[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && b >= 1024 && b % 1024 == 0) {
    b /= 1024;
    u++;
  }
  return std::to_string(b) + kUnits[u];
}

CLI::Option* AddSizeOption(CLI::App* app, const std::string& name, uint64_t& value,
                           const std::string& help) {
  auto* opt = app->add_option_function<std::string>(
      name,
      [&value, name](const std::string& text) {
        auto v = ParseSize(text);
        // CLI11 reports a ValidationError as a usage error (exit 2).
        if (!v.ok()) throw CLI::ValidationError(name, v.status().message());
        if (*v == 0) throw CLI::ValidationError(name, "must be more than 0 bytes");
        value = *v;
      },
      help + " (K, M, G, T = 1024^n)");
  opt->type_name("SIZE")->default_str(SizeText(value));
  return opt;
}

void AddCommonOptions(CLI::App* app, CommonOptions& o) {
  const char* g = "Where and how (every subcommand)";
  auto* dir = app->add_option("--dir", o.dir,
                              "work with plain POSIX calls under this directory (a Stria FUSE "
                              "mount, a local disk, any file system; created if missing, not its parent)")
                  ->group(g)
                  ->type_name("PATH");
  app->add_option("--meta", o.meta,
                  "work through libstria with this stria-meta HOST:PORT "
                  "(default: $STRIA_META when --dir is not given)")
      ->group(g)
      ->type_name("HOST:PORT")
      ->excludes(dir);
  app->add_option("--prefix", o.prefix, "with --meta: directory inside Stria to work under (created)")
      ->group(g)
      ->capture_default_str();
  app->add_option("--timeout", o.timeout_s, "with --meta: seconds before a libstria call gives up")
      ->group(g)
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app->add_option("--runs", o.runs, "repeats of the measured phase; the median is reported")
      ->group(g)
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app->add_flag("--json", o.json, "print JSON (every run's values and the median) instead of lines")
      ->group(g);
  app->add_option("--seed", o.seed, "seed of every random choice (default: random, printed)")
      ->group(g)
      ->each([&o](const std::string&) { o.seed_given = true; });
  o.drop_caches = ::geteuid() == 0;
  auto* drop = app->add_flag_callback(
                      "--drop-caches", [&o] { o.drop_caches = true; },
                      "sync and drop this machine's page cache before every read phase "
                      "(needs root; the default when root)")
                  ->group(g);
  app->add_flag_callback("--no-drop-caches", [&o] { o.drop_caches = false; },
                         "keep the page cache (the default when not root)")
      ->group(g)
      ->excludes(drop);
  app->add_option("--setup-threads", o.setup_threads,
                  "threads that create a dataset when it is missing (not timed)")
      ->group(g)
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
}

}  // namespace stria::bench
