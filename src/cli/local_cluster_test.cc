// The local-cluster runner. SpawnDetached is called from processes with
// other threads (a test whose client retries its calls while a daemon
// restarts). After fork the child may make only async-signal-safe calls
// until its exec: another thread may have held the allocator's lock at the
// fork, and an allocation would then wait on it forever (seen once in CI: a
// restarted meta that never came up). This binary replaces operator new so
// that an allocation in a forked child ends that child at once, which makes
// such a bug fail here every time.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <thread>

#include "cli/local_cluster.h"
#include "common/util.h"

namespace {
std::atomic<pid_t> g_watched_parent{0};   // while set, other processes may not allocate
}

void* operator new(std::size_t n) {
  pid_t parent = g_watched_parent.load(std::memory_order_relaxed);
  if (parent != 0 && getpid() != parent) _exit(97);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace stria::cli {
namespace {

TEST(SpawnDetached, ChildMakesNoAllocationBeforeExec) {
  char tmpl[] = "/tmp/stria-spawn-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::vector<std::string> argv = {"/bin/sh", "-c", "echo started"};
  g_watched_parent = getpid();
  Status st = SpawnDetached(argv, dir + "/out", dir + "/pid");
  g_watched_parent = 0;
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto pid = ReadFile(dir + "/pid");
  ASSERT_TRUE(pid.ok());
  EXPECT_GT(std::atoi(pid->c_str()), 1) << *pid;
  // The program ran, with its output where asked.
  std::string out;
  for (int i = 0; i < 500 && out != "started\n"; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto r = ReadFile(dir + "/out");
    if (r.ok()) out = *r;
  }
  EXPECT_EQ(out, "started\n");
  std::filesystem::remove_all(dir);
}

TEST(SpawnDetached, EmptyArgvIsAnError) {
  EXPECT_EQ(SpawnDetached({}, "/dev/null", "/dev/null").code(), EINVAL);
}

// A daemon that never serves: `local up` gives up at its deadline, kills
// it, and says what the process was doing.
TEST(LocalUp, DaemonThatNeverServesGivesAClearTimeout) {
  char tmpl[] = "/tmp/stria-spawn-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::filesystem::create_directories(dir + "/bin");
  std::string fake = dir + "/bin/stria-meta";
  ASSERT_TRUE(ReplaceFile(fake, "#!/bin/sh\nwhile :; do sleep 1; done\n").ok());
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);
  LocalOptions opt;
  opt.dir = dir + "/cluster";
  opt.bin_dir = dir + "/bin";
  opt.timeout_s = 1;
  auto r = LocalUp(opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ETIMEDOUT);
  EXPECT_NE(r.status().message().find("meta did not come up within 1 s (pid "), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("(stria-meta), state "), std::string::npos) << r.status().ToString();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stria::cli
