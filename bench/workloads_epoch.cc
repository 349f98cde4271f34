// epoch: training epochs over a dataset, as a PyTorch DataLoader reads it.
// Each epoch visits every file once in a new random order (one seeded
// generator for the whole command) and K reader threads take the next file
// of that order and read it whole (1 MiB reads, or one read of the file's
// size when smaller), verifying its content. Files/s and MB/s (10^6) per
// epoch; the median is over every epoch of every run.
#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <random>

#include "dataset.h"
#include "pattern.h"
#include "workloads.h"

namespace stria::bench {
namespace {

struct EpochOptions {
  DatasetSpec data;   // image-like by default: 20,000 files of 110 KiB in 200 dirs
  int epochs = 2;
  int readers = 4;
};

constexpr size_t kIo = 1 << 20;

Status RunEpoch(Env& env, const EpochOptions& o) {
  env.report.Param("files", o.data.files);
  env.report.Param("size", o.data.size);
  env.report.Param("dirs", o.data.dirs);
  env.report.Param("epochs", o.epochs);
  env.report.Param("readers", o.readers);
  STRIA_ASSIGN_OR_RETURN(Dataset ds, Dataset::Prepare(env, o.data));
  env.report.Param("dataset", ds.dir());
  std::mt19937_64 rng(env.seed);
  std::vector<uint64_t> order(o.data.files);
  std::iota(order.begin(), order.end(), 0);
  for (int r = 0; r < env.opt.runs; r++) {
    for (int e = 0; e < o.epochs; e++) {
      std::shuffle(order.begin(), order.end(), rng);
      STRIA_RETURN_IF_ERROR(env.DropCaches());
      ErrorLog errors;
      std::atomic<uint64_t> next{0};
      auto t0 = Clock::now();
      RunThreads(o.readers, [&](int) {
        std::string buf;
        for (uint64_t k; (k = next++) < order.size() && !errors.TooMany();) {
          uint64_t i = order[k];
          Status st = ReadPatternFile(env.b, ds.FilePath(i), ds.Key(i), o.data.size, kIo, buf);
          if (!st.ok()) errors.Add(st);
        }
      });
      double secs = Seconds(t0);
      STRIA_RETURN_IF_ERROR(ds.WithHint(errors.Summary(fmt::format("epoch {} of run {}", e + 1, r + 1))));
      double files_s = double(o.data.files) / secs;
      double mb_s = double(o.data.files) * double(o.data.size) / 1e6 / secs;
      env.report.Add("files_per_sec", "files/s", files_s);
      env.report.Add("MBps", "MB/s", mb_s);
      env.Progress(fmt::format("run {}/{} epoch {}/{}: {:.3f} s, {:.1f} files/s, {:.1f} MB/s", r + 1,
                               env.opt.runs, e + 1, o.epochs, secs, files_s, mb_s));
    }
  }
  return Status::Ok();
}

}  // namespace

void AddEpochCommand(CLI::App& app, CommonOptions& common, Action& action) {
  auto o = std::make_shared<EpochOptions>();
  auto* sub = app.add_subcommand(
      "epoch",
      "training epochs: every file of a dataset read whole, in a new seeded random order each "
      "epoch, by K reader threads (as a PyTorch DataLoader); files/s and MB/s per epoch. "
      "Default dataset image-like (20000 x 110K in 200 dirs); volume-like: "
      "--files 16 --size 140M --dirs 1");
  AddDatasetOptions(sub, o->data);
  sub->add_option("--epochs", o->epochs, "epochs per run")->check(CLI::Range(1, 1000))->capture_default_str();
  sub->add_option("--readers,--threads", o->readers, "reader threads (DataLoader workers)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  AddCommonOptions(sub, common);
  sub->footer("Figures: files_per_sec (files/s), MBps (MB/s, 10^6), median over every epoch of every run. Reads use a 1 MiB buffer (the file size when smaller); content is verified.");
  sub->callback([o, &action] { action = [o](Env& env) { return RunEpoch(env, *o); }; });
}

}  // namespace stria::bench
