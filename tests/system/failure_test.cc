// Failures on a real cluster: kill -9 and restart of each daemon (also
// when meta's port is taken), a stopped store, a full target, hostile
// frames, objects freed also when a store was down, and the admin endpoints.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <asio.hpp>
#include <filesystem>
#include <httplib.h>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "common/rpc.h"
#include "common/util.h"
#include "proto/stria.pb.h"
#include "tests/system/cluster.h"

namespace stria::systest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

void WriteFile(Client& c, const std::string& path, const std::string& data, bool fsync = true) {
  auto fd = c.Open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_OK(fd);
  ASSERT_OK(c.Write(*fd, data.data(), data.size()));
  if (fsync) ASSERT_OK(c.Fsync(*fd));
  ASSERT_OK(c.Close(*fd));
}

Result<std::string> ReadFileAll(Client& c, const std::string& path) {
  auto fd = c.Open(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  auto a = c.Fstat(*fd);
  if (!a.ok()) return a.status();
  std::string out(a->size, '\0');
  auto n = c.Pread(*fd, out.data(), out.size(), 0);
  (void)c.Close(*fd);
  if (!n.ok()) return n.status();
  out.resize(*n);
  return out;
}

size_t CountObjects(const std::string& target_dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(target_dir + "/objects", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() != ".crc") n++;
  }
  return n;
}

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& ch : s) ch = static_cast<char>(rng());
  return s;
}

TEST(Failure, MetaKilledAndRestartedLosesNothingAcknowledged) {
  Cluster cluster(3);
  ASSERT_OK(cluster.Up());
  auto c = cluster.Connect(seconds(30));
  ASSERT_OK(c->Mkdir("/keep"));
  std::string data = Pattern(5 << 20, 1);
  WriteFile(*c, "/keep/data", data);
  ASSERT_OK(c->Symlink("data", "/keep/link"));
  ASSERT_OK(c->SetXattr("/keep/data", "user.k", "v"));
  for (int i = 0; i < 50; i++) ASSERT_OK(c->Mkdir("/keep/d" + std::to_string(i)));
  ASSERT_OK(c->Rename("/keep/d0", "/keep/renamed"));
  ASSERT_OK(cluster.Kill("meta", SIGKILL));
  ASSERT_OK(cluster.Up());
  // The same client goes on (its calls retry until meta is back).
  EXPECT_EQ(*ReadFileAll(*c, "/keep/data"), data);
  EXPECT_EQ(*c->Readlink("/keep/link"), "data");
  EXPECT_EQ(*c->GetXattr("/keep/data", "user.k"), "v");
  EXPECT_OK(c->Stat("/keep/renamed"));
  EXPECT_EQ(c->Stat("/keep/d0").status().code(), ENOENT);
  auto list = c->ReadDir("/keep");
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 52u);
  // A new client too; and the namespace still takes mutations.
  auto c2 = cluster.Connect();
  EXPECT_EQ(*ReadFileAll(*c2, "/keep/data"), data);
  EXPECT_OK(c2->Mkdir("/after-restart"));
}

// Holds a TCP port on loopback with a listening socket (which a daemon's
// bind cannot share) until Release().
class PortHolder {
 public:
  explicit PortHolder(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // The dead daemon's connections may hold the port for a moment.
    auto deadline = steady_clock::now() + seconds(30);
    while (!held_ && steady_clock::now() < deadline) {
      fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      held_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && ::listen(fd_, 1) == 0;
      if (!held_) {
        Release();
        std::this_thread::sleep_for(milliseconds(20));
      }
    }
  }
  ~PortHolder() { Release(); }
  bool held() const { return held_; }
  void Release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool held_ = false;
};

uint16_t PortOf(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
  return n;
}

// A restarted meta whose port is held for a moment (a retrying client's
// socket can hold it) comes back on the same port, so that running clients
// find it again; one whose port stays taken comes back on another.
TEST(Failure, RestartedMetaKeepsItsPortWhenItFreesSoon) {
  Cluster cluster(1);
  ASSERT_OK(cluster.Up());
  std::string before = cluster.meta();
  auto c = cluster.Connect(seconds(60));
  WriteFile(*c, "/f", "kept");
  ASSERT_OK(cluster.Kill("meta", SIGKILL));
  PortHolder hold(PortOf(before));
  ASSERT_TRUE(hold.held()) << "could not hold meta's port " << before;
  auto up = std::async(std::launch::async, [&] { return cluster.Up(); });
  // Free the port once meta has failed on it once.
  std::string out_file = cluster.dir() + "/meta/meta.out";
  auto deadline = steady_clock::now() + seconds(60);
  while (steady_clock::now() < deadline) {
    auto out = ReadFile(out_file);
    if (out.ok() && Count(*out, "cannot listen on") >= 1) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  hold.Release();
  ASSERT_OK(up.get());
  EXPECT_EQ(cluster.meta(), before);
  auto kept = ReadFileAll(*c, "/f");   // the old client goes on
  ASSERT_OK(kept);
  EXPECT_EQ(*kept, "kept");
}

TEST(Failure, RestartedMetaMovesWhenItsPortStaysTaken) {
  Cluster cluster(1);
  ASSERT_OK(cluster.Up());
  std::string before = cluster.meta();
  {
    auto c = cluster.Connect();
    WriteFile(*c, "/f", "kept");
  }
  ASSERT_OK(cluster.Kill("meta", SIGKILL));
  PortHolder hold(PortOf(before));
  ASSERT_TRUE(hold.held()) << "could not hold meta's port " << before;
  std::string log_file = cluster.dir() + "/meta/meta.log";
  size_t registered = Count(*ReadFile(log_file), "registered at");
  ASSERT_OK(cluster.Up());
  EXPECT_NE(cluster.meta(), before);
  auto c = cluster.Connect();
  auto kept = ReadFileAll(*c, "/f");
  ASSERT_OK(kept);
  EXPECT_EQ(*kept, "kept");
  // The store was started again, pointing at the meta that serves.
  auto deadline = steady_clock::now() + seconds(60);
  while (Count(*ReadFile(log_file), "registered at") == registered && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GT(Count(*ReadFile(log_file), "registered at"), registered);
  WriteFile(*c, "/g", "new");
  auto fresh = ReadFileAll(*c, "/g");
  ASSERT_OK(fresh);
  EXPECT_EQ(*fresh, "new");
}

// The same through a mount: `local up` mounts again when the mount's
// daemon calls a meta that has moved.
TEST(Failure, MountFollowsAMetaThatMoved) {
  if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
  Cluster cluster(1);
  std::string mp = cluster.dir() + "/mnt";
  cluster.SetMount(mp);
  ASSERT_OK(cluster.Up());
  auto put = [](const std::string& path, const std::string& data) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Err(errno, "open {}: {}", path, std::strerror(errno));
    bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    return ok ? Status::Ok() : Err(err, "write {}: {}", path, std::strerror(err));
  };
  ASSERT_OK(put(mp + "/f", "kept"));
  std::string before = cluster.meta();
  ASSERT_OK(cluster.Kill("meta", SIGKILL));
  PortHolder hold(PortOf(before));
  ASSERT_TRUE(hold.held()) << "could not hold meta's port " << before;
  ASSERT_OK(cluster.Up());
  EXPECT_NE(cluster.meta(), before);
  auto kept = ReadFile(mp + "/f");
  ASSERT_OK(kept);
  EXPECT_EQ(*kept, "kept");
  ASSERT_OK(put(mp + "/g", "new"));
  auto fresh = ReadFile(mp + "/g");
  ASSERT_OK(fresh);
  EXPECT_EQ(*fresh, "new");
}

TEST(Failure, StoreKilledAndRestartedKeepsFsyncedData) {
  Cluster cluster(3);
  ASSERT_OK(cluster.Up());
  auto c = cluster.Connect(seconds(30));
  std::string data = Pattern(7 << 20, 2);
  WriteFile(*c, "/f", data);
  ASSERT_OK(cluster.Kill("store-1", SIGKILL));
  ASSERT_OK(cluster.Up());
  EXPECT_EQ(*ReadFileAll(*c, "/f"), data);
  // Writes work again after the restart, through the same client.
  std::string more = Pattern(3 << 20, 3);
  WriteFile(*c, "/g", more);
  EXPECT_EQ(*ReadFileAll(*c, "/g"), more);
}

TEST(Failure, StoppedStoreGivesClearErrorWithinDeadline) {
  Cluster cluster(3);
  ASSERT_OK(cluster.Up());
  auto c = cluster.Connect(seconds(3));
  std::string data = Pattern(4 << 20, 4);
  WriteFile(*c, "/f", data);
  ASSERT_OK(cluster.Kill("store-0", SIGKILL));
  auto t0 = steady_clock::now();
  auto r = ReadFileAll(*c, "/f");
  auto took = steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == ECONNREFUSED || r.status().code() == ETIMEDOUT)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("target"), std::string::npos) << r.status().ToString();
  EXPECT_LT(took, seconds(10)) << "the client must not hang on a dead store";
  // Writes fail the same way, and the file's other data is intact once it is back.
  auto fd = c->Open("/f", O_WRONLY);
  ASSERT_OK(fd);
  std::string junk(4 << 20, 'j');
  auto w = c->Pwrite(*fd, junk.data(), junk.size(), 0);
  Status closed = c->Close(*fd);
  EXPECT_FALSE(w.ok() && closed.ok());
  ASSERT_OK(cluster.Up());
}

// A read answered from the client's network thread (PreadAsync, as the
// mount's small reads are) retries through a store's restart as Pread does,
// and gives a dead store's error, naming the target, within the deadline.
TEST(Failure, AsyncReadsRetryThroughAStoreRestart) {
  Cluster cluster(3);
  ASSERT_OK(cluster.Up());
  auto c = cluster.Connect(seconds(20));
  std::string data = Pattern(3 << 20, 5);
  WriteFile(*c, "/f", data);
  auto fd = c->Open("/f", O_RDONLY);
  ASSERT_OK(fd);
  struct Got {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Result<std::string> r = std::string();
  };
  auto start_on = [](Client& client, int file, uint64_t off, size_t n) {
    auto g = std::make_shared<Got>();
    bool started = client.PreadAsync(file, n, off, [g](Result<std::span<const char>> r) {
      std::lock_guard lk(g->mu);
      if (r.ok()) g->r = std::string(r->data(), r->size());
      else g->r = r.status();
      g->done = true;
      g->cv.notify_all();
    });
    EXPECT_TRUE(started);
    return g;
  };
  auto start = [&](uint64_t off, size_t n) { return start_on(*c, *fd, off, n); };
  auto wait = [](const std::shared_ptr<Got>& g) {
    std::unique_lock lk(g->mu);
    g->cv.wait(lk, [&] { return g->done; });
    return g->r;
  };
  // Every store serves one read first (the client connects to each).
  for (uint64_t off : {0ull, 1ull << 20, 2ull << 20}) ASSERT_EQ(*wait(start(off + 5, 4096)), data.substr(off + 5, 4096));
  ASSERT_OK(cluster.Kill("store-1", SIGKILL));
  std::vector<std::shared_ptr<Got>> pending;   // one of them is store-1's
  for (uint64_t off : {0ull, 1ull << 20, 2ull << 20}) pending.push_back(start(off + 100, 8192));
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_OK(cluster.Up());
  for (int i = 0; i < 3; i++) {
    auto r = wait(pending[i]);
    ASSERT_OK(r);
    EXPECT_EQ(*r, data.substr((uint64_t(i) << 20) + 100, 8192));
  }

  // A store that stays down: its error within the client's deadline.
  auto c2 = cluster.Connect(seconds(3));
  auto fd2 = c2->Open("/f", O_RDONLY);
  ASSERT_OK(fd2);
  ASSERT_OK(cluster.Kill("store-0", SIGKILL));
  auto t0 = steady_clock::now();
  int failed = 0;
  for (uint64_t off : {0ull, 1ull << 20, 2ull << 20}) {   // one of them is store-0's
    auto r = wait(start_on(*c2, *fd2, off + 10, 4096));
    if (r.ok()) {
      EXPECT_EQ(*r, data.substr(off + 10, 4096));
      continue;
    }
    failed++;
    EXPECT_TRUE(r.status().code() == ECONNREFUSED || r.status().code() == ETIMEDOUT) << r.status().ToString();
    EXPECT_NE(r.status().message().find("target"), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ(failed, 1);
  EXPECT_LT(steady_clock::now() - t0, seconds(10)) << "the client must not hang on a dead store";
  ASSERT_OK(c->Close(*fd));
  ASSERT_OK(cluster.Up());
}

// A small tmpfs at DIR/SUB, for a disk that fills: unmounted, and DIR
// removed, however the test ends. Declared before the cluster, so that the
// cluster stops first.
struct SmallTmpfs {
  std::string dir, at;
  bool mounted = false;
  SmallTmpfs(const std::string& dir, const std::string& sub, const char* size) : dir(dir), at(dir + "/" + sub) {
    std::filesystem::create_directories(at);
    std::string opts = std::string("size=") + size;
    mounted = mount("tmpfs", at.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    EXPECT_TRUE(mounted) << "mount a tmpfs at " << at << ": " << strerror(errno);
  }
  ~SmallTmpfs() {
    if (mounted) umount2(at.c_str(), MNT_DETACH);
    if (!std::getenv("STRIA_KEEP_TEST_DIRS")) std::filesystem::remove_all(dir);
  }
};

TEST(Failure, FullTargetGivesEnospcAndLosesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  SmallTmpfs tmpfs(MakeTempDir("full"), "store-0/target", "24m");
  ASSERT_TRUE(tmpfs.mounted);
  const std::string& dir = tmpfs.dir;
  {
    Cluster cluster(1, dir);
    ASSERT_OK(cluster.Up());
    auto c = cluster.Connect(seconds(10));
    std::vector<std::string> kept;
    Status last;
    for (int i = 0; i < 100; i++) {
      std::string data = Pattern(1 << 20, 100 + i);
      std::string path = "/f" + std::to_string(i);
      auto fd = c->Open(path, O_CREAT | O_WRONLY, 0644);
      ASSERT_OK(fd);
      auto w = c->Write(*fd, data.data(), data.size());
      Status st = w.ok() ? c->Fsync(*fd) : w.status();
      Status cl = c->Close(*fd);
      if (st.ok()) st = cl;
      if (!st.ok()) {
        last = st;
        break;
      }
      kept.push_back(data);
    }
    ASSERT_FALSE(last.ok()) << "the 24 MiB target never filled";
    EXPECT_EQ(last.code(), ENOSPC) << last.ToString();
    EXPECT_GT(kept.size(), 5u);
    for (size_t i = 0; i < kept.size(); i++) {
      auto got = ReadFileAll(*c, "/f" + std::to_string(i));
      ASSERT_OK(got);
      EXPECT_TRUE(*got == kept[i]) << "file " << i << " changed after ENOSPC";
    }
    // Space comes back when files go.
    for (size_t i = 0; i < kept.size(); i++) ASSERT_OK(c->Unlink("/f" + std::to_string(i)));
  }
}

// Fills the file system below DIR to leave `leave` bytes free (0: none):
// returns the filler's path.
std::string Fill(const std::string& dir, uint64_t leave) {
  std::string path = dir + "/filler";
  struct statvfs v;
  EXPECT_EQ(statvfs(dir.c_str(), &v), 0);
  uint64_t avail = uint64_t(v.f_bavail) * v.f_frsize;
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0600);
  EXPECT_GE(fd, 0);
  std::string mib(1 << 20, 'f');
  for (uint64_t put = 0; put + leave < avail;) {
    size_t n = std::min<uint64_t>(mib.size(), avail - leave - put);
    ssize_t w = write(fd, mib.data(), n);
    if (w <= 0) break;   // full
    put += uint64_t(w);
  }
  close(fd);
  return path;
}

TEST(Failure, MetaDiskFullRefusesChangesClearlyAndLosesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  SmallTmpfs tmpfs(MakeTempDir("metafull"), "meta/db", "48m");
  ASSERT_TRUE(tmpfs.mounted);
  const std::string &dir = tmpfs.dir, &db = tmpfs.at;
  {
    Cluster cluster(1, dir);
    cluster.SetMetaArgs("--reserve-mib 16");
    ASSERT_OK(cluster.Up());
    auto c = cluster.Connect(seconds(10));
    ASSERT_NE(c, nullptr);
    std::vector<std::string> kept;
    for (int i = 0; i < 4; i++) {
      kept.push_back(Pattern(100000, 300 + i));
      WriteFile(*c, "/keep" + std::to_string(i), kept.back());
    }
    ASSERT_OK(c->Mkdir("/dir"));

    // Under the reserve: what adds names fails with ENOSPC naming meta's
    // disk; reads, renames, unlinks and new clients go on.
    std::string filler = Fill(db, 8 << 20);
    auto fd = c->Open("/new", O_CREAT | O_WRONLY, 0644);
    ASSERT_FALSE(fd.ok());
    EXPECT_EQ(fd.status().code(), ENOSPC) << fd.status().ToString();
    EXPECT_NE(fd.status().message().find("stria-meta's disk is nearly full"), std::string::npos)
        << fd.status().ToString();
    EXPECT_NE(fd.status().message().find(db), std::string::npos) << fd.status().ToString();
    EXPECT_EQ(c->Mkdir("/dir/sub").code(), ENOSPC);
    ASSERT_OK(c->Rename("/keep3", "/dir/keep3"));
    ASSERT_OK(c->Unlink("/dir/keep3"));
    kept.pop_back();
    auto other = cluster.Connect(seconds(10));
    ASSERT_NE(other, nullptr);
    for (size_t i = 0; i < kept.size(); i++) {
      auto got = ReadFileAll(*other, "/keep" + std::to_string(i));
      ASSERT_OK(got);
      EXPECT_TRUE(*got == kept[i]) << "file " << i;
    }
    // Space back: creates work again, without a restart.
    ASSERT_EQ(unlink(filler.c_str()), 0);
    WriteFile(*c, "/after-reserve", "back");

    // Wholly full: a change whose write RocksDB cannot make stops every
    // later change, with a clear error, and meta goes on serving reads,
    // to new clients too.
    filler = Fill(db, 0);
    Status failed;
    std::string at = "/keep0";
    for (int i = 0; i < 5000 && failed.ok(); i++) {
      std::string to = at == "/keep0" ? "/dir/keep0" : "/keep0";
      failed = c->Rename(at, to);
      if (failed.ok()) at = to;
    }
    ASSERT_FALSE(failed.ok()) << "the full disk never failed a write";
    EXPECT_TRUE(failed.code() == ENOSPC || failed.code() == EIO) << failed.ToString();
    Status again = c->Rename(at, at == "/keep0" ? "/dir/keep0" : "/keep0");
    EXPECT_FALSE(again.ok());
    EXPECT_NE(again.message().find("restart stria-meta"), std::string::npos) << again.ToString();
    auto got = ReadFileAll(*c, at);
    ASSERT_OK(got);
    EXPECT_TRUE(*got == kept[0]);
    // A new client still connects and reads (its session is not written).
    auto late = cluster.Connect(seconds(10));
    ASSERT_NE(late, nullptr);
    got = ReadFileAll(*late, "/keep1");
    ASSERT_OK(got);
    EXPECT_TRUE(*got == kept[1]);
    late.reset();

    // Restarted with space: everything acknowledged is there, and changes work.
    ASSERT_EQ(unlink(filler.c_str()), 0);
    c.reset();
    other.reset();
    ASSERT_OK(cluster.Kill("meta"));
    ASSERT_OK(cluster.Up());
    c = cluster.Connect(seconds(10));
    ASSERT_NE(c, nullptr);
    got = ReadFileAll(*c, at);
    ASSERT_OK(got);
    EXPECT_TRUE(*got == kept[0]) << at;
    for (size_t i = 1; i < kept.size(); i++) {
      got = ReadFileAll(*c, "/keep" + std::to_string(i));
      ASSERT_OK(got);
      EXPECT_TRUE(*got == kept[i]) << "file " << i;
    }
    got = ReadFileAll(*c, "/after-reserve");
    ASSERT_OK(got);
    EXPECT_EQ(*got, "back");
    WriteFile(*c, "/after-restart", "ok");
  }
}

TEST(Failure, HostileFramesAreRejectedWhileServing) {
  Cluster cluster(1);
  ASSERT_OK(cluster.Up());
  auto c = cluster.Connect();
  auto cs = c->GetClusterStatus();
  ASSERT_OK(cs);
  ASSERT_FALSE(cs->targets.empty());
  for (std::string addr : {cluster.meta(), cs->targets[0].address}) {
    SCOPED_TRACE(addr);
    auto hp = rpc::ParseAddress(addr);
    ASSERT_OK(hp);
    // Garbage bytes: this connection is dropped.
    {
      asio::io_context io;
      asio::ip::tcp::socket s(io);
      s.connect({asio::ip::make_address(hp->first), hp->second});
      std::string junk = Pattern(4096, 9);
      asio::error_code ec;
      asio::write(s, asio::buffer(junk), ec);
      char ch;
      s.read_some(asio::buffer(&ch, 1), ec);
      EXPECT_TRUE(ec);
    }
    rpc::IoThread io;
    auto ch = rpc::Channel::Create(io.io(), addr);
    // Unknown type, then a message that does not parse: errors, connection kept.
    auto r = ch->CallSync(999, "", {}, {});
    EXPECT_EQ(r.status.code(), ENOSYS) << r.status.ToString();
    uint16_t typed = addr == cluster.meta() ? proto::LOOKUP : proto::OBJ_READ;
    r = ch->CallSync(typed, std::string("\xff\xff\xff\xff\x0f", 5), {}, {});
    EXPECT_EQ(r.status.code(), EBADMSG) << r.status.ToString();
    r = ch->CallSync(proto::PING, proto::PingRequest().SerializeAsString(), {}, {});
    EXPECT_TRUE(r.status.ok() || r.status.code() == ENOSYS) << r.status.ToString();
  }
  // The cluster still serves real work.
  WriteFile(*c, "/after", "fine");
  EXPECT_EQ(*ReadFileAll(*c, "/after"), "fine");
}

TEST(Failure, RemovedFilesFreeTheirObjectsEvenIfAStoreWasDown) {
  Cluster cluster(3);
  ASSERT_OK(cluster.Up());
  auto c = cluster.Connect(seconds(30));
  WriteFile(*c, "/a", Pattern(6 << 20, 5));
  WriteFile(*c, "/b", Pattern(6 << 20, 6));
  for (int s = 0; s < 3; s++) EXPECT_EQ(CountObjects(cluster.TargetDir(s)), 2u) << "store " << s;
  ASSERT_OK(c->Unlink("/a"));
  auto wait_for = [&](int store, size_t want) {
    auto deadline = steady_clock::now() + seconds(30);
    while (CountObjects(cluster.TargetDir(store)) != want && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    return CountObjects(cluster.TargetDir(store));
  };
  for (int s = 0; s < 3; s++) EXPECT_EQ(wait_for(s, 1), 1u) << "store " << s;
  // Store 2 is down while /b goes; it frees /b's object when it returns.
  ASSERT_OK(cluster.Kill("store-2", SIGKILL));
  ASSERT_OK(c->Unlink("/b"));
  EXPECT_EQ(wait_for(0, 0), 0u);
  EXPECT_EQ(CountObjects(cluster.TargetDir(2)), 1u);
  ASSERT_OK(cluster.Up());
  EXPECT_EQ(wait_for(2, 0), 0u);
}

TEST(Failure, AdminEndpointsServeMetricsAndHealth) {
  Cluster cluster(1);
  ASSERT_OK(cluster.Up());
  auto c = cluster.Connect();
  WriteFile(*c, "/m", "metrics");
  auto procs = cli::LocalStatus(cluster.dir());
  ASSERT_OK(procs);
  for (auto& p : *procs) {
    SCOPED_TRACE(p.name);
    auto hp = rpc::ParseAddress(p.admin);
    ASSERT_OK(hp);
    httplib::Client http(hp->first, hp->second);
    auto health = http.Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto m = http.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200);
    if (p.name == "mover") {   // a client only: its own counters
      EXPECT_NE(m->body.find("stria_mover_exported_files_total"), std::string::npos);
      continue;
    }
    EXPECT_NE(m->body.find("stria_rpc_requests_total"), std::string::npos);
    EXPECT_NE(m->body.find("stria_rpc_latency_seconds_bucket"), std::string::npos);
  }
}

}  // namespace
}  // namespace stria::systest
