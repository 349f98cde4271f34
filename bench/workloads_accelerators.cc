// accelerators: emulated accelerators fed from storage, as MLPerf Storage
// measures. Each accelerator owns a shard of the dataset (file k of a
// seeded permutation goes to accelerator k % N) and its own data loader: R
// reader threads each take the next B samples of the shard (reshuffled at
// every pass), read them whole and verified, and queue the batch; at most P
// batches wait read. The accelerator takes a batch and "computes" for C ms
// (a sleep). Its utilization (AU) is its compute time within the measured
// window divided by the window; the trial's AU is the average over all
// accelerators. The headline is the largest N whose AU stays at or above
// --target-au: N = 1, 2, 4, … until one falls short (or --max), then
// bisection between the last good and the first bad N.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "dataset.h"
#include "pattern.h"
#include "workloads.h"

namespace stria::bench {
namespace {

struct AcceleratorOptions {
  DatasetSpec data;
  int batch = 8;
  int readers = 2;
  int prefetch = 2;
  double compute_ms = 50;
  double seconds = 10;
  double warmup = 2;
  int max = 256;
  double target_au = 90;
  double within = 0;      // percent: bisection stops when the bounds are this close
};

constexpr size_t kIo = 1 << 20;

struct Trial {
  int n = 0;
  double au = 0;          // percent, averaged over the accelerators
  double mbps = 0;        // MB/s (10^6) of samples read inside the window
  double samples_s = 0;
};

// One accelerator with its loader's state.
struct Accelerator {
  std::mutex mu;   // guards everything below but busy_s
  std::condition_variable cv;   // a batch became ready, a slot became free, or stop
  std::vector<uint64_t> shard;
  size_t pos = 0;
  std::mt19937_64 rng;
  int ready = 0;         // batches read and not yet taken (at most --prefetch)
  double busy_s = 0;     // compute inside the window; written by its own thread only

  std::vector<uint64_t> NextBatch(int b) {
    std::lock_guard lk(mu);
    std::vector<uint64_t> out;
    for (int k = 0; k < b; k++) {
      if (pos == shard.size()) {
        std::shuffle(shard.begin(), shard.end(), rng);
        pos = 0;
      }
      out.push_back(shard[pos++]);
    }
    return out;
  }
};

double Overlap(Clock::time_point s, Clock::time_point e, Clock::time_point w0,
               Clock::time_point w1) {
  auto a = std::max(s, w0), b = std::min(e, w1);
  return b > a ? Seconds(a, b) : 0;
}

Result<Trial> RunTrial(Env& env, const Dataset& ds, const AcceleratorOptions& o, int n,
                       uint64_t seed) {
  STRIA_RETURN_IF_ERROR(env.DropCaches());
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> perm(ds.spec().files);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<std::unique_ptr<Accelerator>> acc;
  for (int a = 0; a < n; a++) {
    auto x = std::make_unique<Accelerator>();
    for (size_t k = a; k < perm.size(); k += n) x->shard.push_back(perm[k]);
    if (x->shard.empty()) x->shard.push_back(perm[a % perm.size()]);   // more accelerators than files
    x->rng.seed(rng());
    std::shuffle(x->shard.begin(), x->shard.end(), x->rng);
    acc.push_back(std::move(x));
  }

  ErrorLog errors;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes{0}, samples{0};
  const auto compute = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(o.compute_ms));
  const auto w0 = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(o.warmup));
  const auto w1 = w0 + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(o.seconds));

  auto reader = [&](Accelerator& a) {
    std::string buf;
    while (!stop) {
      for (uint64_t i : a.NextBatch(o.batch)) {
        if (stop) return;
        Status st = ReadPatternFile(env.b, ds.FilePath(i), ds.Key(i), ds.spec().size, kIo, buf);
        if (!st.ok()) {
          errors.Add(st);
          continue;
        }
        auto t = Clock::now();
        if (t >= w0 && t < w1) {
          bytes += ds.spec().size;
          samples++;
        }
      }
      std::unique_lock lk(a.mu);
      a.cv.wait(lk, [&] { return a.ready < o.prefetch || stop; });
      if (stop) return;
      a.ready++;
      lk.unlock();
      a.cv.notify_all();
    }
  };
  auto accelerator = [&](Accelerator& a) {
    while (true) {
      {
        std::unique_lock lk(a.mu);
        a.cv.wait(lk, [&] { return a.ready > 0 || stop; });
        if (stop) return;
        a.ready--;
      }
      a.cv.notify_all();
      auto s = Clock::now();
      std::this_thread::sleep_until(s + compute);
      auto e = Clock::now();
      a.busy_s += Overlap(s, e, w0, w1);
      if (e >= w1) return;
    }
  };

  std::vector<std::thread> threads;
  for (auto& a : acc) {
    threads.emplace_back(accelerator, std::ref(*a));
    for (int r = 0; r < o.readers; r++) threads.emplace_back(reader, std::ref(*a));
  }
  // Polls so that a failing storage ends the trial early.
  while (Clock::now() < w1 && errors.count() == 0) {   // any error ends the trial
    std::this_thread::sleep_until(std::min(w1, Clock::now() + std::chrono::milliseconds(100)));
  }
  stop = true;
  for (auto& a : acc) {
    std::lock_guard lk(a->mu);   // no waiter can miss the flag
    a->cv.notify_all();
  }
  for (auto& t : threads) t.join();
  STRIA_RETURN_IF_ERROR(ds.WithHint(errors.Summary(fmt::format("{} accelerators", n))));

  Trial t;
  t.n = n;
  double busy = 0;
  for (auto& a : acc) busy += a->busy_s;
  t.au = 100 * busy / n / o.seconds;
  t.mbps = double(bytes) / 1e6 / o.seconds;
  t.samples_s = double(samples) / o.seconds;
  return t;
}

Status RunOnce(Env& env, const Dataset& ds, const AcceleratorOptions& o, int run,
               std::mt19937_64& rng) {
  std::map<int, Trial> tried;
  auto passes = [&](int n) -> Result<bool> {
    STRIA_ASSIGN_OR_RETURN(Trial t, RunTrial(env, ds, o, n, rng()));
    tried[n] = t;
    env.Progress(fmt::format("run {}/{}: {} accelerator{}: AU {:.1f}%, {:.1f} MB/s, {:.1f} samples/s",
                             run + 1, env.opt.runs, n, n == 1 ? "" : "s", t.au, t.mbps, t.samples_s));
    return t.au >= o.target_au;
  };
  int good = 0, bad = 0;   // bad 0: none failed yet
  for (int n = 1; bad == 0;) {
    STRIA_ASSIGN_OR_RETURN(bool ok, passes(n));
    (ok ? good : bad) = n;
    if (n == o.max) break;
    n = std::min(2 * n, o.max);
  }
  auto close_enough = [&] { return bad - good <= std::max(1, int(good * o.within / 100)); };
  while (bad != 0 && !close_enough()) {
    int mid = good + (bad - good) / 2;
    STRIA_ASSIGN_OR_RETURN(bool ok, passes(mid));
    (ok ? good : bad) = mid;
  }
  env.report.Add("accelerators", "accelerators", good);
  if (good > 0) {
    env.report.Add("au_at_n", "%", tried[good].au);
    env.report.Add("MBps_at_n", "MB/s", tried[good].mbps);
    env.report.Add("samples_per_sec_at_n", "samples/s", tried[good].samples_s);
  }
  if (bad != 0) {
    env.report.Add("next_tried", "accelerators", bad);
    env.report.Add("au_at_next", "%", tried[bad].au);
  } else {
    env.Progress(fmt::format("run {}/{}: every N up to --max {} kept AU >= {}%", run + 1,
                             env.opt.runs, o.max, o.target_au));
  }
  return Status::Ok();
}

Status RunAccelerators(Env& env, const AcceleratorOptions& o) {
  env.report.Param("files", o.data.files);
  env.report.Param("size", o.data.size);
  env.report.Param("dirs", o.data.dirs);
  env.report.Param("batch", o.batch);
  env.report.Param("readers", o.readers);
  env.report.Param("prefetch", o.prefetch);
  env.report.Param("compute_ms", o.compute_ms);
  env.report.Param("seconds", o.seconds);
  env.report.Param("warmup", o.warmup);
  env.report.Param("max", o.max);
  env.report.Param("target_au", o.target_au);
  env.report.Param("within", o.within);
  STRIA_ASSIGN_OR_RETURN(Dataset ds, Dataset::Prepare(env, o.data));
  env.report.Param("dataset", ds.dir());
  std::mt19937_64 rng(env.seed);
  for (int r = 0; r < env.opt.runs; r++) STRIA_RETURN_IF_ERROR(RunOnce(env, ds, o, r, rng));
  return Status::Ok();
}

}  // namespace

void AddAcceleratorsCommand(CLI::App& app, CommonOptions& common, Action& action) {
  auto o = std::make_shared<AcceleratorOptions>();
  auto* sub = app.add_subcommand(
      "accelerators",
      "emulated accelerators (as MLPerf Storage): each takes batches of samples that its own "
      "loader reads in random order, then computes for C ms; finds the most accelerators whose "
      "average utilization (AU) stays >= 90%");
  AddDatasetOptions(sub, o->data);
  const char* g = "Accelerators";
  sub->add_option("--batch", o->batch, "samples (files) per batch")
      ->group(g)->check(CLI::Range(1, 65536))->capture_default_str();
  sub->add_option("--readers", o->readers, "reader threads per accelerator's data loader")
      ->group(g)->check(CLI::Range(1, 256))->capture_default_str();
  sub->add_option("--prefetch", o->prefetch, "batches each loader may hold read ahead")
      ->group(g)->check(CLI::Range(1, 1024))->capture_default_str();
  sub->add_option("--compute-ms", o->compute_ms, "emulated compute per batch (ms, a sleep)")
      ->group(g)->check(CLI::Range(0.01, 1e6))->capture_default_str();
  sub->add_option("--seconds", o->seconds, "measured seconds of each trial")
      ->group(g)->check(CLI::Range(0.1, 86400.0))->capture_default_str();
  sub->add_option("--warmup", o->warmup, "seconds before the measurement starts in each trial")
      ->group(g)->check(CLI::Range(0.0, 3600.0))->capture_default_str();
  sub->add_option("--max", o->max, "most accelerators to try")
      ->group(g)->check(CLI::Range(1, 4096))->capture_default_str();
  sub->add_option("--target-au", o->target_au, "AU (%) an accelerator count must reach to pass")
      ->group(g)->check(CLI::Range(1.0, 100.0))->capture_default_str();
  sub->add_option("--within", o->within,
                  "stop the bisection when the failing N is within this percent of the passing one "
                  "(0: exact)")
      ->group(g)->check(CLI::Range(0.0, 100.0))->capture_default_str();
  AddCommonOptions(sub, common);
  sub->footer("Search: N = 1, 2, 4, ... until the AU falls below --target-au (or --max), then bisection (to --within). Each trial drops the caches, warms up, then measures --seconds. Figures: accelerators (the largest N that passed), au_at_n (%), MBps_at_n (MB/s), samples_per_sec_at_n, next_tried (the smallest N that failed) and au_at_next (%).");
  sub->callback([o, &action] { action = [o](Env& env) { return RunAccelerators(env, *o); }; });
}

}  // namespace stria::bench
