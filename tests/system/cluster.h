// A real local cluster for system tests: stria-meta and N stria-store
// processes started from this build's bin/ in a fresh temporary directory,
// and stopped (by pid) when the test ends.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "cli/local_cluster.h"
#include "stria/client.h"

namespace stria::systest {

inline std::string MakeTempDir(const std::string& tag) {
  std::string base = std::filesystem::temp_directory_path().string();
  std::string tmpl = base + "/stria-" + tag + "-XXXXXX";
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : std::string();
}

// Seed from STRIA_TEST_SEED or random; printed so a failure can be replayed.
inline uint64_t TestSeed() {
  const char* env = std::getenv("STRIA_TEST_SEED");
  uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("seed %llu (rerun with STRIA_TEST_SEED=%llu)\n", (unsigned long long)seed,
              (unsigned long long)seed);
  return seed;
}

class Cluster {
 public:
  explicit Cluster(int stores = 3, std::string dir = "") {
    opt_.dir = dir.empty() ? MakeTempDir("cluster") : dir;
    opt_.stores = stores;
    opt_.bin_dir = STRIA_BIN_DIR;
    opt_.timeout_s = 60;
  }
  ~Cluster() {
    Status st = cli::LocalDown(opt_.dir);
    if (!st.ok()) std::fprintf(stderr, "cluster down: %s\n", st.ToString().c_str());
    if (!std::getenv("STRIA_KEEP_TEST_DIRS")) {
      std::error_code ec;
      std::filesystem::remove_all(opt_.dir, ec);
    }
  }

  // Starts (or restarts whatever is not running). ASSERTs inside callers.
  Status Up() {
    auto r = cli::LocalUp(opt_);
    if (!r.ok()) return r.status();
    meta_ = *r;
    return Status::Ok();
  }
  // Up() also mounts the cluster there (stria-fuse).
  void SetMount(const std::string& mountpoint) { opt_.mount = mountpoint; }
  // More stria-meta flags for the next Up() (space-separated).
  void SetMetaArgs(const std::string& args) { opt_.meta_args = args; }
  Status Kill(const std::string& name, int sig = 9) { return cli::LocalKill(opt_.dir, name, sig); }

  std::unique_ptr<Client> Connect(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    ClientOptions o;
    o.meta = meta_;
    o.timeout = timeout;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  const std::string& meta() const { return meta_; }
  const std::string& dir() const { return opt_.dir; }
  std::string TargetDir(int store) const {
    return opt_.dir + "/store-" + std::to_string(store) + "/target";
  }

 private:
  cli::LocalOptions opt_;
  std::string meta_;
};

// A test suite that shares one 3-store cluster; each test gets a client.
class SharedClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new Cluster(3);
    Status st = cluster_->Up();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    client_ = cluster_->Connect();
    ASSERT_NE(client_, nullptr);
  }

  // Tests that fork children which run a client of their own close this
  // process's client first, and so its threads: the sanitizers' allocator
  // is not fork-safe, and a lock one of those threads held at the fork
  // would stay held in the child for ever. Reconnect() after the forks.
  void CloseClientBeforeFork() {
    client_.reset();
    size_t threads = 0;
    for ([[maybe_unused]] auto& t : std::filesystem::directory_iterator("/proc/self/task")) threads++;
    EXPECT_EQ(threads, 1u) << "threads left running while forking";
  }
  void Reconnect() {
    client_ = cluster_->Connect();
    ASSERT_NE(client_, nullptr);
  }

  static inline Cluster* cluster_ = nullptr;
  std::unique_ptr<Client> client_;
};

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    auto&& _r = (expr);                                  \
    ASSERT_TRUE(_r.ok()) << _r.status().ToString();      \
  } while (0)
#define EXPECT_OK(expr)                                  \
  do {                                                   \
    auto&& _r = (expr);                                  \
    EXPECT_TRUE(_r.ok()) << _r.status().ToString();      \
  } while (0)

}  // namespace stria::systest
