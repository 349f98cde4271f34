// A read-only dataset of N files of S bytes in D directories, created once
// (not timed) and reused by later runs and invocations: epoch,
// accelerators and modelload read it.
//
// Layout under ROOT/dataset-<N>f-<S>b-<D>d/: files d00000/f00000000 …, file
// i in directory i % D, each carrying the pattern with key Key(i) (fixed,
// not seeded, so a dataset made by one invocation verifies in the next).
// MANIFEST, written last, records N, S, D and the pattern version; a dataset
// whose MANIFEST matches (and whose first and last files have size S) is
// reused, otherwise it is (re)created. Thread-safe after Prepare.
#pragma once

#include <cstdint>
#include <string>

#include "harness.h"

namespace stria::bench {

struct DatasetSpec {
  uint64_t files = 20000;
  uint64_t size = 110 << 10;
  uint64_t dirs = 200;
};

class Dataset {
 public:
  // Finds or creates the dataset under env's root with env.opt.setup_threads
  // writers. Fails with the first error, naming the file.
  static Result<Dataset> Prepare(Env& env, const DatasetSpec& spec);

  const DatasetSpec& spec() const { return spec_; }
  const std::string& dir() const { return dir_; }
  std::string FilePath(uint64_t i) const;
  uint64_t Key(uint64_t i) const;
  // st with a hint to remove the dataset (a damaged one is reused otherwise).
  Status WithHint(const Status& st) const;

 private:
  Dataset(DatasetSpec spec, std::string dir) : spec_(spec), dir_(std::move(dir)) {}
  std::string Manifest() const;
  // False when missing or different; an error when the storage fails.
  Result<bool> Matches(Backend& b) const;
  Status Create(Env& env) const;

  DatasetSpec spec_;
  std::string dir_;
};

// Adds --files, --size and --dirs (defaults from spec) to a subcommand.
void AddDatasetOptions(CLI::App* app, DatasetSpec& spec);

}  // namespace stria::bench
