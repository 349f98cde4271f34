// Byte-exact content through libstria against an in-memory reference, on a
// real cluster: random pwrite/pread/truncate mixes, sparse files, stripe
// counts 1..N, files from 0 bytes to 1 GiB, shared-file writers.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "tests/system/cluster.h"

namespace stria::systest {
namespace {

class DataTest : public SharedClusterTest {
 protected:
  // Reads the whole file and compares it with ref.
  void ExpectContent(const std::string& path, const std::string& ref) {
    auto a = client_->Stat(path);
    ASSERT_OK(a);
    EXPECT_EQ(a->size, ref.size()) << path;
    auto fd = client_->Open(path, O_RDONLY);
    ASSERT_OK(fd);
    std::string got(ref.size() + 100, '\x7f');
    auto n = client_->Pread(*fd, got.data(), got.size(), 0);
    ASSERT_OK(n);
    ASSERT_EQ(*n, ref.size()) << path;
    got.resize(*n);
    if (got != ref) {
      size_t i = 0;
      while (got[i] == ref[i]) i++;
      FAIL() << path << ": first difference at byte " << i;
    }
    ASSERT_OK(client_->Close(*fd));
  }
};

void Fill(std::mt19937_64& rng, char* p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = static_cast<char>(rng());
}

TEST_F(DataTest, EmptyFile) {
  auto fd = client_->Open("/empty", O_CREAT | O_WRONLY, 0644);
  ASSERT_OK(fd);
  ASSERT_OK(client_->Close(*fd));
  ExpectContent("/empty", "");
}

// The long random mix, for stripe counts 1..3 and small stripes so that every
// operation crosses object boundaries.
TEST_F(DataTest, RandomMixMatchesReference) {
  uint64_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  for (uint32_t count = 1; count <= 3; count++) {
    std::string path = "/mix-" + std::to_string(count);
    ASSERT_OK(client_->SetLayout(path, count, 64 * 1024));
    auto layout = client_->GetLayout(path);
    ASSERT_OK(layout);
    EXPECT_EQ(layout->stripe_count, count);
    auto fd = client_->Open(path, O_RDWR);
    ASSERT_OK(fd);
    std::string ref;
    for (int op = 0; op < 400; op++) {
      int kind = static_cast<int>(rng() % 10);
      uint64_t max_off = 3u << 20;
      if (kind < 5) {   // pwrite, sometimes far past the end (sparse)
        uint64_t off = rng() % max_off;
        size_t len = 1 + rng() % (rng() % 4 == 0 ? 300000 : 9000);
        std::string data(len, '\0');
        Fill(rng, data.data(), len);
        ASSERT_OK(client_->Pwrite(*fd, data.data(), len, off));
        if (ref.size() < off + len) ref.resize(off + len, '\0');
        std::memcpy(ref.data() + off, data.data(), len);
      } else if (kind < 8) {   // pread of a random range, maybe past the end
        uint64_t off = rng() % (ref.size() + 1000);
        size_t len = 1 + rng() % 200000;
        std::string got(len, '\0');
        auto n = client_->Pread(*fd, got.data(), len, off);
        ASSERT_OK(n);
        size_t want = off >= ref.size() ? 0 : std::min<size_t>(len, ref.size() - off);
        ASSERT_EQ(*n, want) << "op " << op << " off " << off;
        ASSERT_EQ(0, std::memcmp(got.data(), ref.data() + std::min<size_t>(off, ref.size()), want))
            << "op " << op << " pread at " << off << " of " << len;
      } else if (kind == 8) {   // truncate, shrink or grow
        uint64_t size = rng() % (ref.size() + 200000);
        if (rng() % 8 == 0) size = 0;
        ASSERT_OK(client_->Ftruncate(*fd, size));
        ref.resize(size, '\0');
      } else {   // fsync, or close and reopen
        if (rng() % 2) {
          ASSERT_OK(client_->Fsync(*fd));
        } else {
          ASSERT_OK(client_->Close(*fd));
          auto again = client_->Open(path, O_RDWR);
          ASSERT_OK(again);
          fd = again;
        }
      }
    }
    ASSERT_OK(client_->Close(*fd));
    ExpectContent(path, ref);
    // A second client (a new session) sees the same bytes: close-to-open.
    auto other = cluster_->Connect();
    std::swap(other, client_);
    ExpectContent(path, ref);
    std::swap(other, client_);
  }
}

// Sequential writes go out behind the writer, one buffer on the wire while
// the next fills. Rewrites of the same bytes in later buffers must land
// after the earlier ones, and another handle reads them all.
TEST_F(DataTest, WriteBehindKeepsWritesInOrder) {
  ASSERT_OK(client_->SetLayout("/behind", 3, 1 << 20));
  auto fd = client_->Open("/behind", O_RDWR);
  ASSERT_OK(fd);
  std::mt19937_64 rng(TestSeed());
  std::string ref(40 << 20, '\0');
  Fill(rng, ref.data(), ref.size());
  for (size_t off = 0; off < ref.size(); off += 1 << 20) {
    ASSERT_OK(client_->Pwrite(*fd, ref.data() + off, 1 << 20, off));
  }
  // Rewrite a range over several buffers, in 300 KB pieces, twice.
  for (int round = 0; round < 2; round++) {
    for (size_t off = 5 << 20; off < (30u << 20); off += 300000) {
      size_t len = std::min<size_t>(300000, (30u << 20) - off);
      Fill(rng, ref.data() + off, len);
      ASSERT_OK(client_->Pwrite(*fd, ref.data() + off, len, off));
    }
  }
  auto reader = client_->Open("/behind", O_RDONLY);
  ASSERT_OK(reader);
  std::string got(ref.size(), '?');
  auto n = client_->Pread(*reader, got.data(), got.size(), 0);
  ASSERT_OK(n);
  ASSERT_EQ(*n, ref.size());
  EXPECT_TRUE(got == ref) << "read through a second handle differs";
  ASSERT_OK(client_->Close(*reader));
  ASSERT_OK(client_->Close(*fd));
  ExpectContent("/behind", ref);
}

// Writes sent to the stores but not yet committed to meta are cut by a
// truncate to 0 too: growing the file again shows zeros, never them (found
// by RandomMixMatchesReference with seed 1192937746).
TEST_F(DataTest, TruncateToZeroForgetsWritesNotYetCommitted) {
  ASSERT_OK(client_->SetLayout("/trunc0", 1, 64 * 1024));
  auto fd = client_->Open("/trunc0", O_RDWR);
  ASSERT_OK(fd);
  std::string data(100000, 'x');
  ASSERT_OK(client_->Pwrite(*fd, data.data(), data.size(), 0));
  ASSERT_OK(client_->Ftruncate(*fd, 0));
  ASSERT_OK(client_->Ftruncate(*fd, 150000));
  std::string got(150000, '?');
  auto n = client_->Pread(*fd, got.data(), got.size(), 0);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 150000u);
  EXPECT_EQ(got, std::string(150000, '\0'));
  ASSERT_OK(client_->Close(*fd));
  ExpectContent("/trunc0", std::string(150000, '\0'));
}

// A small file looked up and then opened read-only has its bytes read while
// the open is on its way (prefetch). Bytes of the version seen at lookup
// must never be served once the file changed before the open.
TEST_F(DataTest, PrefetchAtOpenServesOnlyTheVersionOpened) {
  auto writer = cluster_->Connect();
  ASSERT_NE(writer, nullptr);
  auto put = [&](const std::string& content, int flags) {
    auto fd = writer->Open("/pf", O_CREAT | O_WRONLY | flags, 0644);
    ASSERT_OK(fd);
    ASSERT_OK(writer->Pwrite(*fd, content.data(), content.size(), 0));
    ASSERT_OK(writer->Close(*fd));
  };
  auto read_all = [&](uint64_t ino) -> std::string {
    auto of = client_->Open(Caller{}, ino, O_RDONLY);
    EXPECT_TRUE(of.ok()) << of.status().ToString();
    if (!of.ok()) return "";
    std::string got(200000, '\0');
    auto n = client_->Pread(of->fd, got.data(), got.size(), 0);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    got.resize(n.ok() ? *n : 0);
    EXPECT_TRUE(client_->Close(of->fd).ok());
    return got;
  };
  const uint64_t root = client_->RootIno();
  put(std::string(65536, '1'), 0);
  auto a = client_->Lookup(Caller{}, root, "pf");
  ASSERT_OK(a);
  EXPECT_EQ(read_all(a->ino), std::string(65536, '1'));   // the prefetch itself

  // Rewritten in place between lookup and open: the new bytes.
  ASSERT_OK(client_->Lookup(Caller{}, root, "pf"));
  put(std::string(65536, '2'), 0);
  EXPECT_EQ(read_all(a->ino), std::string(65536, '2'));

  // Truncated to 0 and rewritten (fresh objects) between lookup and open.
  ASSERT_OK(client_->Lookup(Caller{}, root, "pf"));
  put(std::string(70000, '3'), O_TRUNC);
  EXPECT_EQ(read_all(a->ino), std::string(70000, '3'));

  // Written through another handle of this client after the open: the
  // read sees that write, not the prefetched bytes.
  ASSERT_OK(client_->Lookup(Caller{}, root, "pf"));
  auto ro = client_->Open(Caller{}, a->ino, O_RDONLY);
  ASSERT_OK(ro);
  auto rw = client_->Open("/pf", O_WRONLY);
  ASSERT_OK(rw);
  ASSERT_OK(client_->Pwrite(*rw, "xyz", 3, 10));
  std::string got(100, '\0');
  auto n = client_->Pread(ro->fd, got.data(), got.size(), 0);
  ASSERT_OK(n);
  EXPECT_EQ(got.substr(0, 14), "3333333333xyz3");
  ASSERT_OK(client_->Close(*rw));
  ASSERT_OK(client_->Close(ro->fd));
}

// What PreadAsync answers from one store in one round trip gives the bytes
// Pread gives; what it leaves to Pread it refuses without calling back.
TEST_F(DataTest, AsyncReadsMatchPread) {
  const std::string path = "/async";
  ASSERT_OK(client_->SetLayout(path, 3, 64 * 1024));
  std::mt19937_64 rng(TestSeed());
  std::string ref(700000, '\0');
  Fill(rng, ref.data(), 300000);   // then a hole, then a tail
  Fill(rng, ref.data() + 500000, 200000);
  {
    auto fd = client_->Open(path, O_CREAT | O_WRONLY, 0644);
    ASSERT_OK(fd);
    ASSERT_OK(client_->Pwrite(*fd, ref.data(), 300000, 0));
    ASSERT_OK(client_->Pwrite(*fd, ref.data() + 500000, 200000, 500000));
    ASSERT_OK(client_->Close(*fd));
  }
  auto fd = client_->Open(path, O_RDONLY);
  ASSERT_OK(fd);
  struct Got {
    std::mutex mu;
    std::condition_variable cv;
    int calls = 0;
    Status st;
    std::string bytes;
  };
  auto read_async = [&](uint64_t off, size_t n, std::string* out) -> Result<bool> {
    auto g = std::make_shared<Got>();
    bool started = client_->PreadAsync(*fd, n, off, [g](Result<std::span<const char>> r) {
      std::lock_guard lk(g->mu);
      g->calls++;
      if (r.ok()) g->bytes.assign(r->data(), r->size());
      else g->st = r.status();
      g->cv.notify_all();
    });
    if (!started) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::lock_guard lk(g->mu);
      EXPECT_EQ(g->calls, 0) << "a refused read must not call back";
      return false;
    }
    std::unique_lock lk(g->mu);
    g->cv.wait(lk, [&] { return g->calls > 0; });
    if (!g->st.ok()) return g->st;
    *out = g->bytes;
    return true;
  };
  int started = 0;
  for (int i = 0; i < 300; i++) {
    uint64_t off = rng() % (ref.size() + 1000);
    size_t n = 1 + rng() % (i % 3 == 0 ? 200000 : 16384);
    std::string got;
    auto r = read_async(off, n, &got);
    ASSERT_OK(r);
    if (!*r) continue;
    started++;
    std::string want = off >= ref.size() ? "" : ref.substr(off, n);
    ASSERT_EQ(got.size(), want.size()) << "at " << off << " n " << n;
    ASSERT_TRUE(got == want) << "at " << off << " n " << n;
  }
  EXPECT_GT(started, 100);
  std::string got;
  // Over a stripe boundary, and larger than kAsyncReadMax: Pread's.
  EXPECT_FALSE(*read_async(64 * 1024 - 10, 20, &got));
  EXPECT_FALSE(*read_async(0, Client::kAsyncReadMax + 1, &got));
  // Past the end: Pread's (it answers 0 bytes at once).
  EXPECT_FALSE(*read_async(ref.size(), 10, &got));
  // Bytes written through this client and not yet sent: Pread's, which
  // flushes them first.
  auto rw = client_->Open(path, O_RDWR);
  ASSERT_OK(rw);
  ASSERT_OK(client_->Pwrite(*rw, "abc", 3, 100));
  EXPECT_FALSE(*read_async(90, 20, &got));
  ASSERT_OK(client_->Close(*rw));
  ASSERT_TRUE(*read_async(90, 20, &got));
  EXPECT_EQ(got, ref.substr(90, 10) + "abc" + ref.substr(103, 7));
  ASSERT_OK(client_->Close(*fd));
}

// A read PreadAsync leaves to Pread (here: one that reads ahead) is not
// counted by it: Pread still sees it as sequential and fills its read cache.
TEST_F(DataTest, RefusedAsyncReadKeepsReadAhead) {
  constexpr uint64_t M = 1 << 20;
  std::string data(4 * M, '\0');
  std::mt19937_64 rng(TestSeed());
  Fill(rng, data.data(), data.size());
  {
    auto fd = client_->Open("/ra", O_CREAT | O_WRONLY, 0644);
    ASSERT_OK(fd);
    ASSERT_OK(client_->Pwrite(*fd, data.data(), data.size(), 0));
    ASSERT_OK(client_->Close(*fd));
  }
  auto fd = client_->Open("/ra", O_RDONLY);
  ASSERT_OK(fd);
  auto noop = [](Result<std::span<const char>>) {};
  char buf[4096];
  ASSERT_OK(client_->Pread(*fd, buf, sizeof(buf), M));               // random: nothing ahead
  EXPECT_FALSE(client_->PreadAsync(*fd, 4096, M + 4096, noop));      // sequential: Pread's
  ASSERT_OK(client_->Pread(*fd, buf, sizeof(buf), M + 4096));        // reads ahead
  EXPECT_EQ(std::string(buf, sizeof(buf)), data.substr(M + 4096, 4096));
  EXPECT_FALSE(client_->PreadAsync(*fd, 4096, M + 100000, noop));    // in the read cache
  ASSERT_OK(client_->Close(*fd));
}

// SEEK_DATA and SEEK_HOLE over three stripe objects: every object is
// asked, and their answers mapped back to file offsets.
TEST_F(DataTest, SeekDataAndHoleOverStripes) {
  constexpr uint64_t K = 1024;
  const std::string path = "/seek";
  ASSERT_OK(client_->SetLayout(path, 3, 64 * K));
  {
    auto fd = client_->Open(path, O_CREAT | O_WRONLY, 0644);
    ASSERT_OK(fd);
    std::string unit(64 * K, 'u');
    ASSERT_OK(client_->Pwrite(*fd, unit.data(), unit.size(), 0));          // unit 0: object 0
    ASSERT_OK(client_->Pwrite(*fd, unit.data(), unit.size(), 256 * K));    // unit 4: object 1
    ASSERT_OK(client_->Pwrite(*fd, "ten bytes!", 10, 700 * K));            // unit 10: object 1
    ASSERT_OK(client_->Ftruncate(*fd, 1024 * K));
    ASSERT_OK(client_->Close(*fd));
  }
  auto fd = client_->Open(path, O_RDONLY);
  ASSERT_OK(fd);
  auto at = [&](uint64_t off, int whence) -> int64_t {
    auto r = client_->Seek(*fd, static_cast<int64_t>(off), whence);
    if (!r.ok()) return -r.status().code();
    return static_cast<int64_t>(*r);
  };
  EXPECT_EQ(at(0, SEEK_DATA), 0);
  EXPECT_EQ(at(1000, SEEK_DATA), 1000);
  EXPECT_EQ(at(0, SEEK_HOLE), int64_t(64 * K));
  EXPECT_EQ(at(64 * K, SEEK_DATA), int64_t(256 * K));
  EXPECT_EQ(at(100 * K, SEEK_HOLE), int64_t(100 * K));
  EXPECT_EQ(at(256 * K, SEEK_HOLE), int64_t(320 * K));
  EXPECT_EQ(at(320 * K, SEEK_DATA), int64_t(700 * K));
  EXPECT_EQ(at(700 * K, SEEK_HOLE), int64_t(700 * K + 10));   // its object ends there
  EXPECT_EQ(at(700 * K + 10, SEEK_DATA), -ENXIO);
  EXPECT_EQ(at(1024 * K - 1, SEEK_HOLE), int64_t(1024 * K - 1));
  EXPECT_EQ(at(1024 * K, SEEK_HOLE), -ENXIO);
  EXPECT_EQ(at(5000 * K, SEEK_DATA), -ENXIO);
  // The position moves to the answer, as lseek's.
  ASSERT_OK(client_->Seek(*fd, 64 * K, SEEK_DATA));
  char c = 0;
  ASSERT_OK(client_->Read(*fd, &c, 1));
  EXPECT_EQ(c, 'u');
  ASSERT_OK(client_->Close(*fd));
}

TEST_F(DataTest, SparseFileReadsZeros) {
  auto fd = client_->Open("/sparse", O_CREAT | O_RDWR, 0644);
  ASSERT_OK(fd);
  std::string tail = "end of a sparse file";
  uint64_t off = (5u << 20) + 12345;
  ASSERT_OK(client_->Pwrite(*fd, tail.data(), tail.size(), off));
  ASSERT_OK(client_->Close(*fd));
  std::string ref(off, '\0');
  ref += tail;
  ExpectContent("/sparse", ref);
}

// Read-ahead windows reuse one buffer: a window over a hole after windows
// over data reads zeros, not the bytes the buffer held before.
TEST_F(DataTest, SequentialReadsOverHolesAfterDataReadZeros) {
  constexpr size_t kMiB = 1u << 20;
  std::mt19937_64 rng(11);
  std::string ref(30 * kMiB, '\0');
  Fill(rng, ref.data(), 12 * kMiB);             // data, then a hole of 16 MiB,
  Fill(rng, ref.data() + 28 * kMiB, 2 * kMiB);  // then data again
  auto fd = client_->Open("/holes-after-data", O_CREAT | O_RDWR, 0644);
  ASSERT_OK(fd);
  ASSERT_OK(client_->Pwrite(*fd, ref.data(), 12 * kMiB, 0));
  ASSERT_OK(client_->Pwrite(*fd, ref.data() + 28 * kMiB, 2 * kMiB, 28 * kMiB));
  ASSERT_OK(client_->Close(*fd));
  fd = client_->Open("/holes-after-data", O_RDONLY);
  ASSERT_OK(fd);
  std::string got(kMiB, '\x7f');
  for (size_t off = 0; off < ref.size(); off += kMiB) {
    auto n = client_->Pread(*fd, got.data(), kMiB, off);
    ASSERT_OK(n);
    ASSERT_EQ(*n, kMiB);
    ASSERT_TRUE(got == std::string_view(ref).substr(off, kMiB)) << "MiB at " << off / kMiB;
  }
  ASSERT_OK(client_->Close(*fd));
}

TEST_F(DataTest, TruncateOnOpenStartsEmpty) {
  std::string data(3 << 20, 'a');
  auto fd = client_->Open("/trunc", O_CREAT | O_WRONLY, 0644);
  ASSERT_OK(fd);
  ASSERT_OK(client_->Write(*fd, data.data(), data.size()));
  ASSERT_OK(client_->Close(*fd));
  fd = client_->Open("/trunc", O_WRONLY | O_TRUNC);
  ASSERT_OK(fd);
  ASSERT_OK(client_->Pwrite(*fd, "xyz", 3, 2u << 20));
  ASSERT_OK(client_->Close(*fd));
  std::string ref((2u << 20) + 3, '\0');
  std::memcpy(ref.data() + (2u << 20), "xyz", 3);
  ExpectContent("/trunc", ref);
}

// Writers in separate processes fill disjoint ranges of one shared file (a
// checkpoint of many ranks), each with its own client; the result is whole.
TEST_F(DataTest, SharedFileWritersInSeparateProcesses) {
  constexpr int kRanks = 4;
  constexpr size_t kPart = 3u << 20;   // not a multiple of the stripe row
  ASSERT_OK(client_->SetLayout("/ckpt", 3, 1 << 20));
  CloseClientBeforeFork();
  std::vector<pid_t> kids;
  for (int rank = 0; rank < kRanks; rank++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ClientOptions o;
      o.meta = cluster_->meta();
      auto c = Client::Connect(o);
      if (!c.ok()) _exit(10);
      auto fd = (*c)->Open("/ckpt", O_WRONLY);
      if (!fd.ok()) _exit(11);
      std::string part(kPart, static_cast<char>('A' + rank));
      if (!(*c)->Pwrite(*fd, part.data(), part.size(), rank * kPart).ok()) _exit(12);
      if (!(*c)->Close(*fd).ok()) _exit(13);
      c->reset();
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "rank exit " << status;
  }
  Reconnect();
  std::string ref;
  for (int rank = 0; rank < kRanks; rank++) ref += std::string(kPart, static_cast<char>('A' + rank));
  ExpectContent("/ckpt", ref);
}

// 1 GiB written sequentially with 1 MiB writes, then read back: content is
// a function of the offset, so no reference copy is kept.
TEST_F(DataTest, OneGiBFile) {
  constexpr uint64_t kSize = 1ull << 30;
  constexpr size_t kIo = 1 << 20;
  auto word = [](uint64_t off) { return off * 0x9E3779B97F4A7C15ull + 17; };
  std::vector<uint64_t> buf(kIo / 8);
  auto fd = client_->Open("/big", O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_OK(fd);
  for (uint64_t off = 0; off < kSize; off += kIo) {
    for (size_t i = 0; i < buf.size(); i++) buf[i] = word(off + i * 8);
    auto n = client_->Write(*fd, buf.data(), kIo);
    ASSERT_OK(n);
  }
  ASSERT_OK(client_->Close(*fd));
  auto a = client_->Stat("/big");
  ASSERT_OK(a);
  ASSERT_EQ(a->size, kSize);
  fd = client_->Open("/big", O_RDONLY);
  ASSERT_OK(fd);
  for (uint64_t off = 0; off < kSize; off += kIo) {
    auto n = client_->Read(*fd, buf.data(), kIo);
    ASSERT_OK(n);
    ASSERT_EQ(*n, kIo);
    for (size_t i = 0; i < buf.size(); i++) {
      ASSERT_EQ(buf[i], word(off + i * 8)) << "at byte " << off + i * 8;
    }
  }
  uint64_t extra;
  auto n = client_->Read(*fd, &extra, 8);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0u);
  ASSERT_OK(client_->Close(*fd));
  ASSERT_OK(client_->Unlink("/big"));
}

}  // namespace
}  // namespace stria::systest
