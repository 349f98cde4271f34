// Target against an in-memory reference, on real files.
#include "store/object_store.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <random>
#include <vector>

#include "common/crc32c.h"

namespace stria::store {
namespace {

std::string TempDir() {
  std::string t = std::filesystem::temp_directory_path().string() + "/stria-target-XXXXXX";
  return mkdtemp(t.data());
}

// Whether any page of [off, off + len) of a file is in the page cache.
// mincore, unlike a read, starts no read-ahead that would put it there.
bool AnyCached(const std::string& path, uint64_t off, size_t len) {
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return true;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE)), span = off + len;
  void* m = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  EXPECT_NE(m, MAP_FAILED) << path;
  if (m == MAP_FAILED) return true;
  std::vector<unsigned char> resident((span + page - 1) / page);
  EXPECT_EQ(::mincore(m, span, resident.data()), 0) << path;
  ::munmap(m, span);
  for (size_t i = off / page; i < resident.size(); i++) {
    if (resident[i] & 1) return true;
  }
  return false;
}

class TargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    auto t = Target::Open(dir_);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    t_ = std::move(t).value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void FlipByte(const std::string& path, uint64_t off) {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(pread(fd, &c, 1, off), 1);
    c ^= 0x20;
    ASSERT_EQ(pwrite(fd, &c, 1, off), 1);
    ::close(fd);
  }
  std::string dir_;
  std::unique_ptr<Target> t_;
};

// Hydration and large client writes go to the disk with O_DIRECT: same
// bytes, same checksums as a buffered write, whatever the alignment.
TEST_F(TargetTest, DirectWritesMatchBufferedOnes) {
  const size_t n = (1 << 20) + 100;   // an aligned body and an unaligned tail
  const size_t big = (9 << 20) + 7;    // staged in more than one piece
  std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(std::aligned_alloc(4096, 10 << 20)), &std::free);
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < big + 3; i++) buf.get()[i] = static_cast<char>(rng());
  ASSERT_TRUE(t_->Write(9, 0, 8192, buf.get(), n, false, /*direct=*/true).ok());
  // Unaligned offset: buffered instead.
  ASSERT_TRUE(t_->Write(9, 1, 100, buf.get() + 1, n - 1, false, /*direct=*/true).ok());
  // Aligned offset, unaligned memory (a payload as received): staged.
  ASSERT_TRUE(t_->Write(9, 2, 4096, buf.get() + 3, big, false, /*direct=*/true).ok());
  struct statfs fs;
  ASSERT_EQ(::statfs(dir_.c_str(), &fs), 0);
  if (fs.f_type != TMPFS_MAGIC) {
    // The direct bodies skipped the page cache (tmpfs keeps them there).
    EXPECT_FALSE(AnyCached(t_->ObjectPath(9, 0), 512 << 10, 4096));
    EXPECT_FALSE(AnyCached(t_->ObjectPath(9, 2), 512 << 10, 4096));
  }
  auto a = t_->Read(9, 0, 0, 2 << 20);
  auto b = t_->Read(9, 1, 0, 2 << 20);
  auto c = t_->Read(9, 2, 0, 16 << 20);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, std::string(8192, '\0') + std::string(buf.get(), n));
  EXPECT_EQ(*b, std::string(100, '\0') + std::string(buf.get() + 1, n - 1));
  EXPECT_TRUE(*c == std::string(4096, '\0') + std::string(buf.get() + 3, big));
  // A buffered write over part of it reads back; the checksums cover both.
  ASSERT_TRUE(t_->Write(9, 0, 8192 + 5000, "hello", 5).ok());
  a = t_->Read(9, 0, 8192 + 4990, 20);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->substr(10, 5), "hello");
  ASSERT_TRUE(t_->Fsync(9, {0, 1}).ok());
  FlipByte(t_->ObjectPath(9, 0), 8192 + 300000);
  EXPECT_EQ(t_->Read(9, 0, 8192 + 299000, 4096).status().code(), EIO);
}

// A read that must not wait: served from the page cache, else EAGAIN (and
// the caller reads again where it may wait).
TEST_F(TargetTest, NoWaitReadsComeFromThePageCacheOnly) {
  std::string data(64 << 10, 'q');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(t_->Write(11, 0, 0, data.data(), data.size(), /*sync=*/true).ok());
  auto hot = t_->Read(11, 0, 1000, 5000, /*nowait=*/true);
  ASSERT_TRUE(hot.ok()) << hot.status().ToString();
  EXPECT_EQ(*hot, data.substr(1000, 5000));
  // Whether such a read is refused depends on the kernel and the disk: a
  // read that must not wait still starts the kernel's read-ahead, and a
  // fast disk can finish it before the read looks, so the bytes come back.
  // So each try evicts the object's file (its checksums are in its inode),
  // checks it is gone, and reads through the target; then evicts again
  // and asks the kernel itself, as a control.
  // Where the kernel refuses many such reads, the target must refuse some
  // (with a kernel that refuses a few in a hundred, a correct target may
  // by chance refuse none: that is a skip, not a failure).
  const std::string data_path = t_->ObjectPath(11, 0);
  auto evict = [&] {
    int fd = ::open(data_path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << data_path;
    EXPECT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ::close(fd);
    return !AnyCached(data_path, 0, data.size());
  };
  int target_refused = 0, kernel_refused = 0, evicted = 0;
  for (int attempt = 0; attempt < 200 && target_refused == 0; attempt++) {
    if (!evict()) continue;
    evicted++;
    auto r = t_->Read(11, 0, 1000, 5000, /*nowait=*/true);
    if (r.ok()) EXPECT_EQ(*r, data.substr(1000, 5000));
    else EXPECT_EQ(r.status().code(), EAGAIN) << r.status().ToString();
    target_refused += r.status().code() == EAGAIN;
    if (!evict()) continue;
    int fd = ::open(data_path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    char buf[8192];
    iovec iov{buf, sizeof buf};
    kernel_refused += ::preadv2(fd, &iov, 1, 0, RWF_NOWAIT) < 0 && errno == EAGAIN;
    ::close(fd);
  }
  if (target_refused == 0 && kernel_refused < 10) {
    GTEST_SKIP() << "the kernel refused " << kernel_refused << " of " << evicted << " reads of evicted pages that "
                 << "must not wait: this disk cannot tell such a read from one that waits";
  }
  EXPECT_GT(target_refused, 0) << "the kernel refused " << kernel_refused << " reads of evicted pages that "
                               << "must not wait, the target none of " << evicted;
  auto cold = t_->Read(11, 0, 1000, 5000);
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  EXPECT_EQ(*cold, data.substr(1000, 5000));
  EXPECT_TRUE(t_->Read(11, 0, 1000, 5000, /*nowait=*/true).ok());   // cached again
}

// A seeded mix of every call on object 7.index against a reference;
// writes start below max_off and are at most max_len bytes.
void RandomMix(Target* t, uint32_t index, uint64_t max_off, size_t max_len) {
  unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  std::string ref;
  for (int op = 0; op < 2000; op++) {
    int kind = static_cast<int>(rng() % 10);
    if (kind < 5) {
      uint64_t off = rng() % max_off;
      std::string data(1 + rng() % max_len, '\0');
      for (auto& c : data) c = static_cast<char>(rng());
      bool sync = rng() % 4 == 0;   // a write that is also made durable
      ASSERT_TRUE(t->Write(7, index, off, data.data(), data.size(), sync).ok());
      if (ref.size() < off + data.size()) ref.resize(off + data.size(), '\0');
      ref.replace(off, data.size(), data);
    } else if (kind < 9) {
      uint64_t off = rng() % (ref.size() + 5000);
      size_t len = rng() % 30000;
      std::string want = off >= ref.size() ? "" : ref.substr(off, len);
      if (rng() % 2) {
        auto got = t->Read(7, index, off, len);
        ASSERT_TRUE(got.ok()) << got.status().ToString() << " op " << op;
        ASSERT_EQ(*got, want) << "op " << op << " off " << off << " len " << len;
      } else {
        // A reply's payload: its CRC, combined from the blocks' (holes,
        // partial first and last blocks included), is the bytes' CRC.
        auto got = t->ReadPayload(7, index, off, len);
        ASSERT_TRUE(got.ok()) << got.status().ToString() << " op " << op;
        ASSERT_EQ(std::string(got->data, got->length), want) << "op " << op << " off " << off << " len " << len;
        if (got->length > 0) {
          ASSERT_TRUE(got->crc.has_value()) << "op " << op;
          ASSERT_EQ(*got->crc, Crc32c(0, want.data(), want.size())) << "op " << op << " off " << off;
        }
      }
    } else if (rng() % 3 == 0) {
      uint64_t len = rng() % (ref.size() + 10000);
      ASSERT_TRUE(t->Truncate(7, index, len).ok());
      ref.resize(len, '\0');
    } else if (rng() % 2 == 0) {
      // A punched range reads as zeros; past the end nothing changes.
      uint64_t off = rng() % (ref.size() + 5000);
      uint64_t len = 1 + rng() % 40000;
      ASSERT_TRUE(t->PunchHole(7, index, off, len).ok()) << "op " << op;
      for (uint64_t i = off; i < off + len && i < ref.size(); i++) ref[i] = '\0';
    } else {
      // Reserved space changes neither size nor content.
      ASSERT_TRUE(t->Allocate(7, index, rng() % (2 << 20), 1 + rng() % 100000).ok());
    }
  }
}

TEST_F(TargetTest, RandomMixMatchesReference) { RandomMix(t_.get(), 1, 1 << 20, 20000); }

// Objects whose checksums stay in the data file's attribute (every write
// ends below kXattrCrcBlocks blocks; truncates and punches go past it).
TEST_F(TargetTest, RandomMixInTheAttributeMatchesReference) {
  RandomMix(t_.get(), 2, kXattrCrcBlocks * kBlockSize * 3 / 4, kXattrCrcBlocks * kBlockSize / 4);
  EXPECT_FALSE(std::filesystem::exists(t_->ObjectPath(7, 2) + ".crc"));
}

// Objects that move from the attribute to the .crc file and shrink again.
TEST_F(TargetTest, RandomMixAcrossTheAttributesEndMatchesReference) {
  RandomMix(t_.get(), 3, kXattrCrcBlocks * kBlockSize, kXattrCrcBlocks * kBlockSize / 4);
}

// Synced writes that create objects (and their bucket directories) from
// many threads at once: every one reads back whole.
TEST_F(TargetTest, SyncedWritesOfNewObjects) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int th = 0; th < 4; th++) {
    threads.emplace_back([&, th] {
      for (uint64_t oid = th; oid < 200; oid += 4) {
        std::string data(1000 + oid * 37, static_cast<char>('a' + oid % 26));
        if (!t_->Write(oid, 0, 0, data.data(), data.size(), true).ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (uint64_t oid = 0; oid < 200; oid++) {
    auto got = t_->Read(oid, 0, 0, 1 << 20);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, std::string(1000 + oid * 37, static_cast<char>('a' + oid % 26))) << oid;
  }
}

// SEEK_DATA and SEEK_HOLE on an object, block by block, also after a punch.
TEST_F(TargetTest, SeekFindsDataAndHoles) {
  constexpr uint64_t K = 1024;
  std::string data(64 * K, 'd');
  ASSERT_TRUE(t_->Write(5, 2, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(t_->Write(5, 2, 1024 * K, data.data(), data.size()).ok());
  auto seek = [&](uint64_t off, bool hole) {
    auto r = t_->Seek(5, 2, off, hole);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::optional<uint64_t>(12345);
  };
  EXPECT_EQ(seek(0, false), 0u);
  EXPECT_EQ(seek(100, false), 100u);
  EXPECT_EQ(seek(0, true), 64 * K);
  EXPECT_EQ(seek(64 * K, false), 1024 * K);
  EXPECT_EQ(seek(500 * K, true), 500 * K);
  EXPECT_EQ(seek(1024 * K + 5, true), 1088 * K);   // the object's end
  EXPECT_EQ(seek(1088 * K, false), std::nullopt);
  EXPECT_EQ(seek(5000 * K, true), 5000 * K);
  // Whole blocks punched inside the first extent become a hole; the
  // edges of a punch that cuts blocks stay data.
  ASSERT_TRUE(t_->PunchHole(5, 2, 16 * K - 100, 16 * K + 200).ok());
  EXPECT_EQ(seek(0, true), 16 * K);
  EXPECT_EQ(seek(16 * K, false), 32 * K);
  auto r = t_->Read(5, 2, 0, 64 * K);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string want = data;
  std::fill(want.begin() + 16 * K - 100, want.begin() + 32 * K + 100, '\0');
  EXPECT_EQ(*r, want);
  // An absent object: a hole everywhere.
  EXPECT_EQ(*t_->Seek(77, 0, 10, true), 10u);
  EXPECT_EQ(*t_->Seek(77, 0, 10, false), std::nullopt);
}

TEST_F(TargetTest, AbsentObjectIsAHole) {
  auto r = t_->Read(99, 0, 0, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_TRUE(t_->Remove(99, 3).ok());
}

TEST_F(TargetTest, SparseWriteReadsZerosBefore) {
  ASSERT_TRUE(t_->Write(1, 0, 100000, "abc", 3).ok());
  auto r = t_->Read(1, 0, 0, 200000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 100003u);
  EXPECT_EQ(r->substr(0, 100000), std::string(100000, '\0'));
  EXPECT_EQ(r->substr(100000), "abc");
}

// Checksums in the data file's attribute (a small object) and in the
// .crc file (a larger one) catch the same damage.
TEST_F(TargetTest, CorruptDataOrChecksumIsEio) {
  for (size_t size : {3 * kBlockSize + 100, 40 * kBlockSize + 100, 70 * kBlockSize + 100}) {
    SCOPED_TRACE(size);
    const bool in_file = size > kXattrCrcBlocks * kBlockSize;
    std::string data(size, 'd');
    ASSERT_TRUE(t_->Write(5, 2, 0, data.data(), data.size()).ok());
    const std::string path = t_->ObjectPath(5, 2);
    EXPECT_EQ(std::filesystem::exists(path + ".crc"), in_file);
    EXPECT_EQ(::getxattr(path.c_str(), kCrcXattr, nullptr, 0), in_file ? -1 : ssize_t(size / kBlockSize + 1) * 4);
    FlipByte(path, kBlockSize + 7);
    auto r = t_->Read(5, 2, 0, data.size());
    EXPECT_EQ(r.status().code(), EIO);
    EXPECT_NE(r.status().message().find("block 1"), std::string::npos) << r.status().ToString();
    // Blocks that are intact still read.
    EXPECT_TRUE(t_->Read(5, 2, 2 * kBlockSize, 10).ok());
    ASSERT_TRUE(t_->Remove(5, 3).ok());

    ASSERT_TRUE(t_->Write(5, 3, 0, data.data(), data.size()).ok());
    const std::string path3 = t_->ObjectPath(5, 3);
    if (in_file) {
      FlipByte(path3 + ".crc", 0);
    } else {
      char crcs[kXattrCrcBlocks * 4];
      const ssize_t n = ::getxattr(path3.c_str(), kCrcXattr, crcs, sizeof crcs);
      ASSERT_EQ(n, ssize_t(size / kBlockSize + 1) * 4);
      crcs[0] ^= 1;
      ASSERT_EQ(::setxattr(path3.c_str(), kCrcXattr, crcs, static_cast<size_t>(n), 0), 0);
    }
    r = t_->Read(5, 3, 0, 10);
    EXPECT_EQ(r.status().code(), EIO) << r.status().ToString();
    EXPECT_NE(r.status().message().find("block 0"), std::string::npos) << r.status().ToString();
    ASSERT_TRUE(t_->Remove(5, 4).ok());
  }
}

// A write into part of a damaged block, a truncate or a punched hole
// through one fails with EIO and leaves the damage visible: none of them
// may give the block a fresh CRC over the bad bytes. In both homes of the
// checksums (the attribute, and the .crc file of a larger object).
TEST_F(TargetTest, ChangesToADamagedBlockDoNotHideTheDamage) {
  for (size_t size : {4 * kBlockSize, 40 * kBlockSize}) {
    SCOPED_TRACE(size);
    std::string data(size, 'd');
    ASSERT_TRUE(t_->Write(8, 0, 0, data.data(), data.size()).ok());
    FlipByte(t_->ObjectPath(8, 0), kBlockSize + 10);
    auto st = t_->Write(8, 0, kBlockSize + 100, "x", 1);
    EXPECT_EQ(st.code(), EIO) << st.ToString();
    EXPECT_NE(st.message().find("block 1"), std::string::npos) << st.ToString();
    st = t_->Truncate(8, 0, kBlockSize + 50);
    EXPECT_EQ(st.code(), EIO) << st.ToString();
    st = t_->PunchHole(8, 0, kBlockSize + 2000, 10);
    EXPECT_EQ(st.code(), EIO) << st.ToString();
    EXPECT_EQ(t_->Read(8, 0, kBlockSize, 10).status().code(), EIO);
    // Intact blocks still take all three, and a whole-block write heals.
    EXPECT_TRUE(t_->Write(8, 0, 100, "y", 1).ok());
    EXPECT_TRUE(t_->PunchHole(8, 0, 2 * kBlockSize + 10, 10).ok());
    EXPECT_TRUE(t_->Write(8, 0, kBlockSize, data.data(), kBlockSize).ok());
    EXPECT_TRUE(t_->Truncate(8, 0, kBlockSize + 50).ok());
    auto r = t_->Read(8, 0, 0, 1 << 20);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, std::string(100, 'd') + "y" + std::string(kBlockSize + 50 - 101, 'd'));
    ASSERT_TRUE(t_->Remove(8, 1).ok());
  }
}

// An object that grows past what the attribute holds moves its checksums
// to the .crc file, keeping the old ones; a file that an earlier move left
// (a crash before the attribute went) is replaced, not trusted.
TEST_F(TargetTest, GrowingObjectsMoveTheirChecksumsToAFile) {
  std::string head(2 * kBlockSize, 'h'), tail(100, 't');
  ASSERT_TRUE(t_->Write(6, 0, 0, head.data(), head.size(), /*sync=*/true).ok());
  const std::string path = t_->ObjectPath(6, 0);
  EXPECT_EQ(::getxattr(path.c_str(), kCrcXattr, nullptr, 0), 8);
  {
    std::ofstream stale(path + ".crc");
    stale << std::string(400, 'x');   // CRCs that match nothing
  }
  ASSERT_TRUE(t_->Write(6, 0, 100 * kBlockSize, tail.data(), tail.size(), /*sync=*/true).ok());
  EXPECT_EQ(::getxattr(path.c_str(), kCrcXattr, nullptr, 0), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(std::filesystem::file_size(path + ".crc"), 101 * 4);
  auto all = t_->Read(6, 0, 0, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, head + std::string(98 * kBlockSize, '\0') + tail);
  FlipByte(path, 5);   // block 0's CRC came over from the attribute
  EXPECT_EQ(t_->Read(6, 0, 0, 10).status().code(), EIO);
  // Shrinking keeps the file.
  ASSERT_TRUE(t_->Truncate(6, 0, 80 * kBlockSize).ok());
  EXPECT_EQ(std::filesystem::file_size(path + ".crc"), 80 * 4);
  EXPECT_EQ(t_->Read(6, 0, 0, 10).status().code(), EIO);
  EXPECT_TRUE(t_->Read(6, 0, kBlockSize, 10).ok());
}

size_t OpenDescriptors() {
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    n++;
  }
  return n;
}

// Reads keep a bounded number of objects' descriptors open; a removed and
// rewritten object is read from its new files, not the unlinked ones.
TEST_F(TargetTest, KeptReadDescriptorsAreBoundedAndFollowRemoval) {
  ASSERT_TRUE(t_->Write(7, 0, 0, "old", 3).ok());
  EXPECT_EQ(*t_->Read(7, 0, 0, 10), "old");
  ASSERT_TRUE(t_->Remove(7, 1).ok());
  EXPECT_EQ(*t_->Read(7, 0, 0, 10), "");   // gone: a hole
  ASSERT_TRUE(t_->Write(7, 0, 0, "new!", 4).ok());
  EXPECT_EQ(*t_->Read(7, 0, 0, 10), "new!");
  // Rewritten in place and truncated behind the kept descriptors: seen.
  ASSERT_TRUE(t_->Write(7, 0, 1, "EW", 2).ok());
  EXPECT_EQ(*t_->Read(7, 0, 0, 10), "nEW!");
  ASSERT_TRUE(t_->Truncate(7, 0, 2).ok());
  EXPECT_EQ(*t_->Read(7, 0, 0, 10), "nE");

  const size_t before = OpenDescriptors();
  for (uint64_t oid = 100; oid < 1100; oid++) {
    std::string body = "object " + std::to_string(oid);
    ASSERT_TRUE(t_->Write(oid, 1, 0, body.data(), body.size()).ok());
    auto r = t_->Read(oid, 1, 0, 100);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(*r, body);
  }
  EXPECT_LE(OpenDescriptors(), before + 2 * 128);
  // The first ones were dropped from the cache and still read.
  EXPECT_EQ(*t_->Read(100, 1, 0, 100), "object 100");
  // A removal of many objects, some cached, some not.
  for (uint64_t oid = 100; oid < 1100; oid += 3) ASSERT_TRUE(t_->Remove(oid, 2).ok());
  for (uint64_t oid = 100; oid < 1100; oid++) {
    auto r = t_->Read(oid, 1, 0, 100);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(*r, (oid - 100) % 3 == 0 ? "" : "object " + std::to_string(oid)) << oid;
  }
}

TEST_F(TargetTest, TruncateShrinkThenGrowReadsZeros) {
  std::string data(10000, 'x');
  ASSERT_TRUE(t_->Write(2, 0, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(t_->Truncate(2, 0, 5000).ok());
  ASSERT_TRUE(t_->Truncate(2, 0, 9000).ok());
  auto r = t_->Read(2, 0, 0, 20000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, std::string(5000, 'x') + std::string(4000, '\0'));
  ASSERT_TRUE(t_->Fsync(2, {0, 1}).ok());
  ASSERT_TRUE(t_->Remove(2, 1).ok());
  EXPECT_FALSE(std::filesystem::exists(t_->ObjectPath(2, 0)));
}

TEST_F(TargetTest, IdentityPersists) {
  ASSERT_TRUE(t_->SetId(42).ok());
  auto again = Target::Open(dir_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->id(), 42u);
  EXPECT_EQ((*again)->uuid(), t_->uuid());
  EXPECT_EQ(Target::Open(dir_ + "/missing").status().code(), ENOENT);
}

TEST(TargetFull, EnospcLosesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  std::string dir = TempDir();
  ASSERT_EQ(mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=4m"), 0) << strerror(errno);
  {
    auto t = Target::Open(dir);
    ASSERT_TRUE(t.ok());
    std::vector<std::string> written;
    Status last;
    for (int i = 0; i < 100 && last.ok(); i++) {
      std::string data(256 * 1024, static_cast<char>('a' + i % 26));
      last = (*t)->Write(i, 0, 0, data.data(), data.size());
      if (last.ok()) written.push_back(data);
    }
    EXPECT_EQ(last.code(), ENOSPC) << last.ToString();
    EXPECT_NE(last.message().find(dir), std::string::npos);
    ASSERT_FALSE(written.empty());
    // Growing an object that does not fit fails cleanly: its old bytes stay.
    std::string big(1 << 20, 'Z');
    EXPECT_EQ((*t)->Write(0, 0, 128 * 1024, big.data(), big.size()).code(), ENOSPC);
    // Overwriting bytes already allocated still works on a full disk.
    std::string patch(4000, 'P');
    ASSERT_TRUE((*t)->Write(0, 0, 1000, patch.data(), patch.size()).ok());
    written[0].replace(1000, patch.size(), patch);
    for (size_t i = 0; i < written.size(); i++) {
      auto r = (*t)->Read(i, 0, 0, written[i].size());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_TRUE(*r == written[i]) << "object " << i;
    }
  }
  umount2(dir.c_str(), MNT_DETACH);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stria::store
