#include "store/object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <concepts>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <span>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/crc32c.h"
#include "common/util.h"

namespace stria::store {

const Crc32cJoiner& BlockJoiner() {
  static const Crc32cJoiner join(kBlockSize);
  return join;
}

namespace {

// A descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status Sys(int err, const std::string& what) {
  return Status(err, fmt::format("{}: {}", what, std::strerror(err)));
}

constexpr uint64_t kDirectAlign = 4096;   // O_DIRECT's alignment on any disk we expect

constexpr size_t kDirectStage = 4 << 20;   // bytes staged for O_DIRECT at a time

// This thread's kDirectStage bytes, kDirectAlign-aligned, kept for its life.
char* DirectStaging() {
  struct Buf {
    char* p = static_cast<char*>(std::aligned_alloc(kDirectAlign, kDirectStage));
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (!buf.p) throw std::bad_alloc();
  return buf.p;
}

Status PwriteAll(int fd, const char* p, size_t n, uint64_t off, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Sys(errno, what);
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

// What an error names: a string, or a callable that makes one (when it
// is only needed on failure).
const std::string& Describe(const std::string& what) { return what; }
template <std::invocable F>
std::string Describe(const F& what) {
  return what();
}

// Reads up to n bytes; past the end of the file the rest is zero-filled.
// flags: RWF_NOWAIT fails with EAGAIN where the page cache lacks a byte.
template <class What>
Status PreadFull(int fd, char* p, size_t n, uint64_t off, const What& what, int flags = 0) {
  size_t done = 0;
  while (done < n) {
    iovec iov{p + done, n - done};
    ssize_t r = ::preadv2(fd, &iov, 1, static_cast<off_t>(off + done), flags);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      // Not named: the caller reads again where it may wait (a cold read
      // comes here every time), and nobody else sees it.
      if (err == EAGAIN && (flags & RWF_NOWAIT)) return Status(EAGAIN, "not in the page cache");
      return Sys(err, Describe(what));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  std::memset(p + done, 0, n - done);
  return Status::Ok();
}

uint32_t BlockCrc(const char* block) { return Crc32c(0, block, kBlockSize); }

// A block's stored checksum: 4 bytes, little-endian.
std::string CrcBytes(uint32_t c) {
  std::string le(4, '\0');
  for (int b = 0; b < 4; b++) le[b] = static_cast<char>(c >> (8 * b));
  return le;
}

bool AllZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i]) return false;
  }
  return true;
}

uint32_t LoadLe(const char* p) {
  uint32_t c = 0;
  for (int b = 0; b < 4; b++) c |= uint32_t(uint8_t(p[b])) << (8 * b);
  return c;
}

std::string LeBytes(std::span<const uint32_t> crcs) {
  std::string le(crcs.size() * 4, '\0');
  for (size_t i = 0; i < crcs.size(); i++) {
    for (int b = 0; b < 4; b++) le[i * 4 + b] = static_cast<char>(crcs[i] >> (8 * b));
  }
  return le;
}

bool NoUserXattrs(int err) { return err == ENOTSUP || err == EOPNOTSUPP; }

// Whether a block's bytes (whose CRC is actual) disagree with its stored
// CRC; a stored 0 over zeros is a hole.
bool Mismatch(const char* block, uint32_t stored, uint32_t actual) {
  return actual != stored && !(stored == 0 && AllZero(block, kBlockSize));
}

Status MismatchError(const std::string& what, uint64_t b, uint32_t stored, uint32_t actual) {
  return Err(EIO, "{}: checksum mismatch in block {} (bytes {}..{}): stored {:#010x}, data {:#010x}", what, b,
             b * kBlockSize, (b + 1) * kBlockSize, stored, actual);
}

// Opens path, creating it if absent; *created tells which.
int OpenOrCreate(const std::string& path, bool* created) {
  *created = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0 || errno != ENOENT) return fd;
  fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd >= 0) *created = true;
  if (fd < 0 && errno == EEXIST) fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  return fd;
}

}  // namespace

// One object's checksums while a writer changes them (the object's lock
// held): in the data file's kCrcXattr while every block whose stored CRC
// is not 0 lies below kXattrCrcBlocks, else in the .crc file beside it.
// An object moves to the file when a write reaches past that: the file is
// written first and the attribute removed after, so a crash between leaves
// the attribute, which still holds every CRC it held.
class ObjectChecksums {
 public:
  // note(created_file, changed_meta) is called as each change is made: a
  // new .crc file (its directory entry needs a sync), or a changed
  // attribute (the data file then needs fsync, not fdatasync).
  using Note = std::function<void(bool created_file, bool changed_meta)>;
  ObjectChecksums(int data_fd, std::string crc_path, std::atomic<bool>* xattr_ok, Note note)
      : data_fd_(data_fd), crc_path_(std::move(crc_path)), xattr_ok_(xattr_ok), note_(std::move(note)) {}

  // Finds where the object keeps them (nowhere yet, for a new object).
  Status Load(const std::string& what) {
    char buf[kXattrCrcBlocks * 4];
    ssize_t n = ::fgetxattr(data_fd_, kCrcXattr, buf, sizeof buf);
    if (n >= 0) {
      if (n % 4 != 0) return Err(EIO, "{} (checksums): attribute {} of {} bytes", what, kCrcXattr, n);
      kind_ = kXattr;
      inline_.resize(static_cast<size_t>(n / 4));
      for (size_t i = 0; i < inline_.size(); i++) inline_[i] = LoadLe(buf + i * 4);
      return Status::Ok();
    }
    if (errno == ERANGE) {
      return Err(EIO, "{} (checksums): attribute {} longer than {} bytes", what, kCrcXattr, sizeof buf);
    }
    if (errno != ENODATA && !NoUserXattrs(errno)) return Sys(errno, what + " (checksums)");
    file_.fd = ::open(crc_path_.c_str(), O_RDWR | O_CLOEXEC);
    if (file_.fd >= 0) {
      kind_ = kFile;
      return Status::Ok();
    }
    if (errno != ENOENT) return Sys(errno, what + " (checksums)");
    return Status::Ok();
  }

  // Reserves the file's space for the CRCs of blocks [first, end) when
  // they will go to the file, so that a full disk fails a write before any
  // byte changes. (An attribute is set before the data instead.)
  Status Reserve(uint64_t first, uint64_t end, const std::string& what) {
    if (WillBeXattr(end)) return Status::Ok();
    STRIA_RETURN_IF_ERROR(OpenFile(what));
    if (::fallocate(file_.fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(first * 4),
                    static_cast<off_t>((end - first) * 4)) != 0 && errno != EOPNOTSUPP) {
      return Sys(errno, what + " (checksums)");
    }
    return Status::Ok();
  }

  // Stores the CRCs of blocks [first, first + crcs.size()).
  Status Put(uint64_t first, std::span<const uint32_t> crcs, const std::string& what) {
    const uint64_t end = first + crcs.size();
    if (kind_ != kFile && xattr_ok_->load(std::memory_order_relaxed)) {
      std::vector<uint32_t> next = inline_;
      if (next.size() < end) next.resize(end, 0);
      std::copy(crcs.begin(), crcs.end(), next.begin() + static_cast<ptrdiff_t>(first));
      while (!next.empty() && next.back() == 0) next.pop_back();   // a missing CRC is a stored 0
      if (next.size() <= kXattrCrcBlocks) {
        const std::string le = LeBytes(next);
        if (::fsetxattr(data_fd_, kCrcXattr, le.data(), le.size(), 0) == 0) {
          had_attr_ = kind_ == kXattr;
          undo_ = std::move(inline_);
          inline_ = std::move(next);
          kind_ = kXattr;
          Changed(false, true);
          return Status::Ok();
        }
        if (!NoUserXattrs(errno) || kind_ == kXattr) return Sys(errno, what + " (checksums)");
        xattr_ok_->store(false);   // a file system without user attributes: files from now on
      }
    }
    STRIA_RETURN_IF_ERROR(OpenFile(what));
    if (kind_ == kXattr) {
      // Moving to the file: what the attribute held, then the new CRCs,
      // then the attribute goes.
      const std::string old = LeBytes(inline_);
      STRIA_RETURN_IF_ERROR(PwriteAll(file_.fd, old.data(), old.size(), 0, what + " (checksums)"));
    }
    const std::string le = LeBytes(crcs);
    STRIA_RETURN_IF_ERROR(PwriteAll(file_.fd, le.data(), le.size(), first * 4, what + " (checksums)"));
    if (kind_ == kXattr) {
      if (::fremovexattr(data_fd_, kCrcXattr) != 0) return Sys(errno, what + " (checksums)");
      inline_.clear();
      Changed(false, true);
    }
    kind_ = kFile;
    return Status::Ok();
  }

  // The object now has nblocks blocks; last: the last one's CRC, when the
  // new end cuts it (the bytes past the end count as zeros).
  Status Cut(uint64_t nblocks, std::optional<uint32_t> last, const std::string& what) {
    if (kind_ == kFile) {
      if (::ftruncate(file_.fd, static_cast<off_t>(nblocks * 4)) != 0) return Sys(errno, what);
      if (!last) return Status::Ok();
      const std::string le = CrcBytes(*last);
      return PwriteAll(file_.fd, le.data(), 4, (nblocks - 1) * 4, what + " (checksums)");
    }
    if (kind_ == kNone) return Status::Ok();   // none stored: every block reads as a hole
    const std::vector<uint32_t> before = inline_;
    if (inline_.size() > nblocks) inline_.resize(nblocks);
    if (last && nblocks - 1 < inline_.size()) inline_[nblocks - 1] = *last;
    while (!inline_.empty() && inline_.back() == 0) inline_.pop_back();
    if (inline_ == before) return Status::Ok();   // a truncate that grows the object
    const std::string le = LeBytes(inline_);
    if (::fsetxattr(data_fd_, kCrcXattr, le.data(), le.size(), 0) != 0) return Sys(errno, what + " (checksums)");
    Changed(false, true);
    return Status::Ok();
  }

  // Best effort: the attribute as it was before the last Put into it
  // (the write whose CRCs it took failed).
  void Undo() {
    if (!undo_) return;
    if (undo_->empty() && !had_attr_) {
      ::fremovexattr(data_fd_, kCrcXattr);
    } else {
      const std::string le = LeBytes(*undo_);
      ::fsetxattr(data_fd_, kCrcXattr, le.data(), le.size(), 0);
    }
    inline_ = std::move(*undo_);
    undo_.reset();
  }

  // The stored CRC of block b (0: none, a hole).
  Result<uint32_t> Stored(uint64_t b, const std::string& what) const {
    if (kind_ == kXattr) return b < inline_.size() ? inline_[b] : 0;
    if (file_.fd < 0) return 0;
    char le[4];
    STRIA_RETURN_IF_ERROR(PreadFull(file_.fd, le, 4, b * 4, what + " (checksums)"));
    return LoadLe(le);
  }

  // Whether CRCs of blocks up to end would go to the attribute.
  bool WillBeXattr(uint64_t end) const {
    if (kind_ == kFile || !xattr_ok_->load(std::memory_order_relaxed)) return false;
    return end <= kXattrCrcBlocks;
  }

  int file_fd() const { return file_.fd; }
  // The data file's inode changed beyond its size (the attribute was set
  // or removed).
  bool changed_meta() const { return changed_meta_; }

 private:
  enum Kind { kNone, kXattr, kFile };
  Status OpenFile(const std::string& what) {
    if (file_.fd >= 0) return Status::Ok();
    bool created = false;
    file_.fd = OpenOrCreate(crc_path_, &created);
    if (file_.fd < 0) return Sys(errno, what + " (checksums)");
    if (created) Changed(true, false);
    // An attribute's object moving: a file left by a crash in an earlier
    // move holds stale CRCs.
    if (kind_ == kXattr && !created && ::ftruncate(file_.fd, 0) != 0) return Sys(errno, what + " (checksums)");
    return Status::Ok();
  }

  void Changed(bool created_file, bool changed_meta) {
    changed_meta_ |= changed_meta;
    note_(created_file, changed_meta);
  }

  int data_fd_;
  std::string crc_path_;
  std::atomic<bool>* xattr_ok_;
  Note note_;
  Kind kind_ = kNone;
  std::vector<uint32_t> inline_;   // kXattr: the attribute's CRCs
  std::optional<std::vector<uint32_t>> undo_;   // what the last Put into the attribute replaced
  bool had_attr_ = false;                       // and whether there was an attribute
  Fd file_;
  bool changed_meta_ = false;
};

Result<std::unique_ptr<Target>> Target::Open(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Sys(errno, "target " + dir);
  if (!S_ISDIR(st.st_mode)) return Err(ENOTDIR, "target {}: not a directory", dir);
  if (::access(dir.c_str(), W_OK) != 0) return Sys(errno, "target " + dir + " is not writable");
  std::unique_ptr<Target> t(new Target());
  t->dir_ = dir;
  std::string objects = dir + "/objects";
  if (::mkdir(objects.c_str(), 0755) != 0 && errno != EEXIST) return Sys(errno, "mkdir " + objects);
  std::string meta_file = dir + "/target.json";
  auto text = ReadFile(meta_file);
  if (text.ok()) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.contains("uuid")) {
      return Err(EINVAL, "target {}: {} is damaged", dir, meta_file);
    }
    t->uuid_ = j["uuid"].get<std::string>();
    t->id_ = j.value("id", 0u);
  } else {
    std::random_device rd;
    t->uuid_ = fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
    STRIA_RETURN_IF_ERROR(WriteFileAtomic(meta_file, nlohmann::json{{"uuid", t->uuid_}, {"id", 0}}.dump() + "\n"));
  }
  // What a crashed earlier run left unsynced (directory entries of objects
  // it created) becomes durable now: this run remembers only its own.
  {
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.fd >= 0 && ::syncfs(d.fd) != 0) return Sys(errno, "target " + dir + ": syncfs");
  }
  t->crc_errors_ = &metrics::Registry::Default().GetCounter(
      "stria_store_checksum_errors_total", "Blocks whose CRC32C did not match on read");
  return t;
}

Status Target::SetId(uint32_t id) {
  id_ = id;
  return WriteFileAtomic(dir_ + "/target.json",
                         nlohmann::json{{"uuid", uuid_}, {"id", id}}.dump() + "\n");
}

std::string Target::ObjectPath(uint64_t object_id, uint32_t index) const {
  return fmt::format("{}/objects/{:02x}/{:016x}.{}", dir_, object_id % 256, object_id, index);
}

std::mutex& Target::LockFor(uint64_t object_id, uint32_t index) {
  return locks_[(object_id * 31 + index) % locks_.size()];
}

int Target::OpenForWrite(uint64_t oid, uint32_t index, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0 || errno != ENOENT) return fd;
  fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  bool new_bucket = false;
  if (fd < 0 && errno == ENOENT) {
    std::string bucket = path.substr(0, path.rfind('/'));
    if (::mkdir(bucket.c_str(), 0755) != 0) {
      if (errno != EEXIST) return -1;
    } else {
      new_bucket = true;
    }
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  }
  if (fd >= 0) {
    std::lock_guard lk(new_mu_);
    created_.insert({oid, index});
    if (new_bucket) new_buckets_.insert(oid % 256);
  }
  return fd;
}

Status Target::ReadOldBlock(int fd, const ObjectChecksums& sums, uint64_t b, char* block, const std::string& what) {
  STRIA_RETURN_IF_ERROR(PreadFull(fd, block, kBlockSize, b * kBlockSize, what));
  STRIA_ASSIGN_OR_RETURN(const uint32_t stored, sums.Stored(b, what));
  const uint32_t actual = BlockCrc(block);
  if (!Mismatch(block, stored, actual)) return Status::Ok();
  crc_errors_->Inc();
  return MismatchError(what, b, stored, actual);
}

Status Target::Write(uint64_t oid, uint32_t index, uint64_t off, const char* data, size_t len, bool sync,
                     bool direct, const uint32_t* block_crcs) {
  if (off % kBlockSize != 0) block_crcs = nullptr;   // they would not be this object's blocks
  if (len == 0) return sync ? Fsync(oid, {index}) : Status::Ok();
  std::lock_guard lk(LockFor(oid, index));
  std::string path = ObjectPath(oid, index);
  std::string what = fmt::format("target {}: write object {:x}.{}", dir_, oid, index);
  Fd fd(OpenForWrite(oid, index, path));
  if (fd.fd < 0) return Sys(errno, what);
  ObjectChecksums sums(fd.fd, path + ".crc", &xattr_ok_, Noter(oid, index));
  STRIA_RETURN_IF_ERROR(sums.Load(what));

  uint64_t first = off / kBlockSize, last = (off + len - 1) / kBlockSize;
  size_t nblocks = static_cast<size_t>(last - first + 1);
  // Reserve space first, so that a full disk fails before any byte changes.
  if (::fallocate(fd.fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) != 0 &&
      errno != EOPNOTSUPP) {
    return Sys(errno, what);
  }
  STRIA_RETURN_IF_ERROR(sums.Reserve(first, last + 1, what));
  std::vector<uint32_t> crcs(nblocks);
  char block[kBlockSize];
  for (size_t i = 0; i < nblocks; i++) {
    uint64_t bstart = (first + i) * kBlockSize;
    uint64_t lo = std::max(bstart, off), hi = std::min(bstart + kBlockSize, off + len);
    if (lo == bstart && hi == bstart + kBlockSize) {
      crcs[i] = block_crcs ? block_crcs[i] : BlockCrc(data + (bstart - off));
      continue;
    }
    // A partly written block: merge with what is on disk.
    STRIA_RETURN_IF_ERROR(ReadOldBlock(fd.fd, sums, first + i, block, what));
    std::memcpy(block + (lo - bstart), data + (lo - off), hi - lo);
    crcs[i] = BlockCrc(block);
  }
  // Into an attribute, the new CRCs go before the data: setting it is
  // what may need a block (past the inode's room), and a full disk must
  // fail the write before any byte changes. If the data then fails, the
  // old CRCs go back.
  const bool attr_first = sums.WillBeXattr(last + 1);
  if (attr_first) STRIA_RETURN_IF_ERROR(sums.Put(first, crcs, what));
  struct UndoUnlessDone {
    ObjectChecksums* sums;
    bool armed;
    ~UndoUnlessDone() {
      if (armed) sums->Undo();
    }
  } undo{&sums, attr_first};
  size_t body = 0;   // bytes written with O_DIRECT
  if (direct && off % kDirectAlign == 0 && direct_ok_.load(std::memory_order_relaxed)) {
    body = len / kDirectAlign * kDirectAlign;
    Fd dfd(body ? ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_DIRECT) : -1);
    if (dfd.fd >= 0) {
      Status st;
      if (reinterpret_cast<uintptr_t>(data) % kDirectAlign == 0) {
        st = PwriteAll(dfd.fd, data, body, off, what + " (direct)");
      } else {
        // O_DIRECT needs aligned memory too. Copying into a buffer this
        // thread keeps costs far less than the page cache's copy into
        // newly allocated pages, which is what a buffered write pays.
        char* stage = DirectStaging();
        for (size_t done = 0; done < body && st.ok(); done += kDirectStage) {
          size_t piece = std::min<size_t>(kDirectStage, body - done);
          std::memcpy(stage, data + done, piece);
          st = PwriteAll(dfd.fd, stage, piece, off + done, what + " (direct)");
        }
      }
      if (st.code() == EINVAL) {
        // A disk that wants a larger alignment: as above (the body is
        // written again below).
        direct_ok_ = false;
        body = 0;
      } else if (!st.ok()) {
        return st;
      }
    } else if (body && errno != EINVAL) {
      return Sys(errno, what + " (direct)");
    } else {
      if (body) direct_ok_ = false;   // no O_DIRECT here (old tmpfs): buffered from now on
      body = 0;
    }
  }
  if (body < len) STRIA_RETURN_IF_ERROR(PwriteAll(fd.fd, data + body, len - body, off + body, what));
  undo.armed = false;
  if (!attr_first) STRIA_RETURN_IF_ERROR(sums.Put(first, crcs, what));
  return sync ? SyncOpen(oid, index, fd.fd, sums.file_fd(), sums.changed_meta()) : Status::Ok();
}

std::function<void(bool, bool)> Target::Noter(uint64_t oid, uint32_t index) {
  return [this, oid, index](bool created_file, bool changed_meta) {
    std::lock_guard lk(new_mu_);
    if (created_file) created_.insert({oid, index});
    if (changed_meta) meta_changed_.insert({oid, index});
  };
}

namespace {

// Threads that only run fsync-type calls, so that the syncs one write needs
// (data, checksums, directories) overlap: the file system then commits its
// journal once for all of them instead of once each.
class SyncThreads {
 public:
  explicit SyncThreads(int n) {
    for (int i = 0; i < n; i++) threads_.emplace_back([this] { Loop(); });
  }
  ~SyncThreads() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // fn returns 0 or an errno value.
  std::future<int> Run(std::function<int()> fn) {
    std::packaged_task<int()> task(std::move(fn));
    auto f = task.get_future();
    {
      std::lock_guard lk(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return f;
  }

 private:
  void Loop() {
    while (true) {
      std::packaged_task<int()> task;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<int()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

SyncThreads& Syncs() {
  static SyncThreads* s = new SyncThreads(4);   // lives until exit: workers may sync at any time
  return *s;
}

}  // namespace

Status Target::SyncOpen(uint64_t oid, uint32_t index, int data_fd, int crc_fd, bool meta) {
  std::string what = fmt::format("target {}: sync object {:x}.{}", dir_, oid, index);
  bool created = false, new_bucket = false;
  {
    std::lock_guard lk(new_mu_);
    created = created_.count({oid, index}) != 0;
    new_bucket = created && new_buckets_.count(oid % 256) != 0;
    meta |= meta_changed_.count({oid, index}) != 0;
  }
  // A new object's directory entry (and a new bucket's) must survive too.
  std::vector<std::string> dirs;
  if (created) dirs.push_back(fmt::format("{}/objects/{:02x}", dir_, oid % 256));
  if (new_bucket) dirs.push_back(dir_ + "/objects");
  std::vector<Fd> dir_fds;
  for (const std::string& d : dirs) {
    dir_fds.emplace_back(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fds.back().fd < 0) return Sys(errno, what + ": open " + d);
  }
  std::vector<std::pair<std::string, std::future<int>>> side;
  if (crc_fd >= 0) {
    side.emplace_back("checksums", Syncs().Run([crc_fd] { return ::fdatasync(crc_fd) == 0 ? 0 : errno; }));
  }
  for (size_t i = 0; i < dir_fds.size(); i++) {
    int dfd = dir_fds[i].fd;
    side.emplace_back(dirs[i], Syncs().Run([dfd] { return ::fsync(dfd) == 0 ? 0 : errno; }));
  }
  // Unless the checksum attribute changed, the size is the only metadata a
  // read needs: fdatasync keeps it.
  int err = (meta ? ::fsync(data_fd) : ::fdatasync(data_fd)) == 0 ? 0 : errno;
  std::string failed = "data";
  for (auto& [name, f] : side) {
    int e = f.get();   // every sync ends before its descriptor closes
    if (e && !err) {
      err = e;
      failed = name;
    }
  }
  if (err) return Sys(err, what + " (" + failed + ")");
  std::lock_guard lk(new_mu_);
  meta_changed_.erase({oid, index});
  if (created) {
    created_.erase({oid, index});
    if (new_bucket) new_buckets_.erase(oid % 256);
  }
  return Status::Ok();
}

struct Target::ReadHandles {
  Fd data, crc;   // crc.fd < 0: no checksum file (yet), or an attribute holds them
};

std::string Target::ReadWhat(uint64_t oid, uint32_t index) const {
  return fmt::format("target {}: read object {:x}.{}", dir_, oid, index);
}

Result<std::shared_ptr<Target::ReadHandles>> Target::HandlesForRead(uint64_t oid, uint32_t index) {
  const ObjectKey key{oid, index};
  {
    std::lock_guard lk(handles_mu_);
    auto it = handles_.find(key);
    if (it != handles_.end()) {
      handles_lru_.splice(handles_lru_.begin(), handles_lru_, it->second.second);
      return it->second.first;
    }
  }
  const std::string path = ObjectPath(oid, index);
  auto h = std::make_shared<ReadHandles>();
  h->data.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (h->data.fd < 0) {
    const int err = errno;
    if (err == ENOENT) return std::shared_ptr<ReadHandles>();   // never written: a hole
    return Sys(err, ReadWhat(oid, index));
  }
  if (::fgetxattr(h->data.fd, kCrcXattr, nullptr, 0) < 0) {
    h->crc.fd = ::open((path + ".crc").c_str(), O_RDONLY | O_CLOEXEC);
    if (h->crc.fd < 0 && errno != ENOENT) {
      const int err = errno;
      return Sys(err, ReadWhat(oid, index) + " (checksums)");
    }
  }
  std::shared_ptr<ReadHandles> dropped;   // closed after the lock is released
  std::lock_guard lk(handles_mu_);
  auto [it, added] = handles_.try_emplace(key);
  if (!added) return it->second.first;
  handles_lru_.push_front(key);
  it->second = {h, handles_lru_.begin()};
  if (handles_.size() > kReadHandles) {
    auto victim = handles_.find(handles_lru_.back());
    dropped = std::move(victim->second.first);
    handles_.erase(victim);
    handles_lru_.pop_back();
  }
  return h;
}

void Target::DropHandles(uint64_t oid, uint32_t index) {
  std::shared_ptr<ReadHandles> dropped;   // closed after the lock is released
  std::lock_guard lk(handles_mu_);
  auto it = handles_.find({oid, index});
  if (it == handles_.end()) return;
  dropped = std::move(it->second.first);
  handles_lru_.erase(it->second.second);
  handles_.erase(it);
}

Result<std::string> Target::Read(uint64_t oid, uint32_t index, uint64_t off, size_t len, bool nowait) {
  STRIA_ASSIGN_OR_RETURN(auto p, ReadPayload(oid, index, off, len, nowait));
  return std::string(p.data, p.length);
}

Result<rpc::Payload> Target::ReadPayload(uint64_t oid, uint32_t index, uint64_t off, size_t len, bool nowait) {
  std::unique_lock lk(LockFor(oid, index), std::defer_lock);
  if (!nowait) lk.lock();
  else if (!lk.try_lock()) return Err(EAGAIN, "object {:x}.{} is being written", oid, index);
  const int flags = nowait ? RWF_NOWAIT : 0;
  auto what = [&] { return ReadWhat(oid, index); };
  auto crc_what = [&] { return ReadWhat(oid, index) + " (checksums)"; };
  STRIA_ASSIGN_OR_RETURN(auto handles, HandlesForRead(oid, index));
  if (!handles) return rpc::Payload();   // never written: a hole
  const int fd = handles->data.fd, crc = handles->crc.fd;   // crc: as the handles were opened
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    return Sys(err, what());
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (off >= size || len == 0) return rpc::Payload();
  uint64_t end = std::min<uint64_t>(off + len, size);
  uint64_t first = off / kBlockSize, last = (end - 1) / kBlockSize;
  size_t nblocks = static_cast<size_t>(last - first + 1);
  // Not zeroed first: every byte is read or, past the file's end, cleared.
  auto owner = std::make_shared_for_overwrite<char[]>(nblocks * kBlockSize);
  const std::span<char> buf(owner.get(), nblocks * kBlockSize);
  // Bytes the disk must give: the data's read and a .crc file's are
  // started at once (another inode, another disk read), and without
  // waiting here. A try that must not wait hands the read to a worker next, which
  // then finds them on their way.
  auto ahead = [&] {
    ::posix_fadvise(fd, static_cast<off_t>(first * kBlockSize), static_cast<off_t>(nblocks * kBlockSize),
                    POSIX_FADV_WILLNEED);
    if (crc >= 0) {
      ::posix_fadvise(crc, static_cast<off_t>(first * 4), static_cast<off_t>(nblocks * 4), POSIX_FADV_WILLNEED);
    }
  };
  // The stored CRCs come from the attribute or from the file; past what
  // either holds they are 0 (holes). An attribute too large for the inode
  // is a disk block of its own: a read that may wait fetches it while the
  // data's read-ahead is on its way; one that must not wait fetches it
  // only once the data came from the page cache.
  char attr[kXattrCrcBlocks * 4];
  ssize_t n = -1;
  int attr_err = 0;
  auto get_attr = [&] {
    n = ::fgetxattr(fd, kCrcXattr, attr, sizeof attr);
    attr_err = n < 0 ? errno : 0;
  };
  if (!nowait) {
    ahead();
    get_attr();
  }
  Status got = PreadFull(fd, buf.data(), buf.size(), first * kBlockSize, what, flags);
  if (!got.ok()) {
    if (got.code() == EAGAIN && nowait) ahead();
    return got;
  }
  if (nowait) get_attr();
  std::string le(nblocks * 4, '\0');
  if (n >= 0) {
    for (uint64_t b = first; b <= last && (b + 1) * 4 <= static_cast<uint64_t>(n); b++) {
      std::memcpy(le.data() + (b - first) * 4, attr + b * 4, 4);
    }
  } else if (attr_err == ERANGE) {
    return Err(EIO, "{}: checksum attribute {} longer than {} bytes", what(), kCrcXattr, sizeof attr);
  } else if (attr_err != ENODATA && !NoUserXattrs(attr_err)) {
    return Sys(attr_err, crc_what());
  } else {
    if (handles->crc.fd < 0) {
      // Written since the handles were opened, or moved from the attribute.
      handles->crc.fd = ::open((ObjectPath(oid, index) + ".crc").c_str(), O_RDONLY | O_CLOEXEC);
      if (handles->crc.fd < 0 && errno != ENOENT) {
        const int err = errno;
        return Sys(err, crc_what());
      }
    }
    if (handles->crc.fd >= 0) got = PreadFull(handles->crc.fd, le.data(), le.size(), first * 4, crc_what, flags);
    if (!got.ok()) {
      if (got.code() == EAGAIN && nowait) ahead();
      return got;
    }
  }
  std::vector<uint32_t> actual(nblocks);   // the blocks' CRCs, as read
  for (size_t i = 0; i < nblocks; i++) {
    const uint32_t stored = LoadLe(le.data() + i * 4);
    const char* block = buf.data() + i * kBlockSize;
    actual[i] = BlockCrc(block);
    if (!Mismatch(block, stored, actual[i])) continue;
    crc_errors_->Inc();
    return MismatchError(what(), first + i, stored, actual[i]);
  }
  const size_t skip = off - first * kBlockSize, stop = end - first * kBlockSize;   // what is returned
  rpc::Payload p(std::move(owner), buf.data() + skip, stop - skip);
  p.crc = Crc32cOfRange(BlockJoiner(), buf.data(), skip, stop, actual);
  return p;
}

Status Target::Truncate(uint64_t oid, uint32_t index, uint64_t length) {
  std::lock_guard lk(LockFor(oid, index));
  std::string path = ObjectPath(oid, index);
  std::string what = fmt::format("target {}: truncate object {:x}.{}", dir_, oid, index);
  Fd fd(length > 0 ? OpenForWrite(oid, index, path) : ::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.fd < 0) return errno == ENOENT ? Status::Ok() : Sys(errno, what);
  ObjectChecksums sums(fd.fd, path + ".crc", &xattr_ok_, Noter(oid, index));
  STRIA_RETURN_IF_ERROR(sums.Load(what));
  uint64_t nblocks = (length + kBlockSize - 1) / kBlockSize;
  std::optional<uint32_t> last;
  if (length % kBlockSize != 0) {
    // The new last block, read (and checked) before the cut: the bytes
    // past the new end count as zeros.
    char block[kBlockSize];
    STRIA_RETURN_IF_ERROR(ReadOldBlock(fd.fd, sums, nblocks - 1, block, what));
    const size_t keep = length % kBlockSize;
    std::memset(block + keep, 0, kBlockSize - keep);
    last = AllZero(block, kBlockSize) ? 0 : BlockCrc(block);
  }
  if (::ftruncate(fd.fd, static_cast<off_t>(length)) != 0) return Sys(errno, what);
  STRIA_RETURN_IF_ERROR(sums.Cut(nblocks, last, what));
  return Status::Ok();
}

Status Target::Allocate(uint64_t oid, uint32_t index, uint64_t off, uint64_t len) {
  if (len == 0) return Status::Ok();
  std::lock_guard lk(LockFor(oid, index));
  std::string path = ObjectPath(oid, index);
  std::string what = fmt::format("target {}: allocate object {:x}.{}", dir_, oid, index);
  Fd fd(OpenForWrite(oid, index, path));
  if (fd.fd < 0) return Sys(errno, what);
  if (::fallocate(fd.fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) != 0 &&
      errno != EOPNOTSUPP) {
    return Sys(errno, what);
  }
  return Status::Ok();
}

Status Target::PunchHole(uint64_t oid, uint32_t index, uint64_t off, uint64_t len) {
  if (len == 0) return Status::Ok();
  std::lock_guard lk(LockFor(oid, index));
  std::string path = ObjectPath(oid, index);
  std::string what = fmt::format("target {}: punch hole in object {:x}.{}", dir_, oid, index);
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.fd < 0) return errno == ENOENT ? Status::Ok() : Sys(errno, what);
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return Sys(errno, what);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (off >= size) return Status::Ok();
  uint64_t end = std::min(off + len, size);
  ObjectChecksums sums(fd.fd, path + ".crc", &xattr_ok_, Noter(oid, index));
  STRIA_RETURN_IF_ERROR(sums.Load(what));
  uint64_t first = off / kBlockSize, last = (end - 1) / kBlockSize;
  // Blocks cut at an edge keep their other bytes: each is rewritten whole.
  auto cut = [&](uint64_t b) -> Status {
    uint64_t bstart = b * kBlockSize;
    uint64_t lo = std::max(bstart, off), hi = std::min(bstart + kBlockSize, end);
    char block[kBlockSize];
    STRIA_RETURN_IF_ERROR(ReadOldBlock(fd.fd, sums, b, block, what));
    std::memset(block + (lo - bstart), 0, hi - lo);
    uint64_t keep = std::min<uint64_t>(kBlockSize, size - bstart);
    STRIA_RETURN_IF_ERROR(PwriteAll(fd.fd, block, keep, bstart, what));
    const uint32_t c = AllZero(block, kBlockSize) ? 0 : BlockCrc(block);   // 0: a hole
    return sums.Put(b, std::span<const uint32_t>(&c, 1), what);
  };
  auto whole = [&](uint64_t b) { return b * kBlockSize >= off && (b + 1) * kBlockSize <= end; };
  uint64_t lo = first, hi = last + 1;   // the whole blocks: [lo, hi)
  if (!whole(first)) {
    STRIA_RETURN_IF_ERROR(cut(first));
    lo = first + 1;
  }
  if (last >= lo && !whole(last)) {
    STRIA_RETURN_IF_ERROR(cut(last));
    hi = last;
  }
  if (hi <= lo) return Status::Ok();
  // The whole blocks at once: freed, and their stored CRCs 0 (a hole).
  off_t pstart = static_cast<off_t>(lo * kBlockSize), plen = static_cast<off_t>((hi - lo) * kBlockSize);
  if (::fallocate(fd.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pstart, plen) != 0) {
    if (errno != EOPNOTSUPP) return Sys(errno, what);
    std::string zeros(std::min<uint64_t>(plen, 1u << 20), '\0');
    for (off_t at = pstart; at < pstart + plen; at += static_cast<off_t>(zeros.size())) {
      size_t n = static_cast<size_t>(std::min<off_t>(static_cast<off_t>(zeros.size()), pstart + plen - at));
      STRIA_RETURN_IF_ERROR(PwriteAll(fd.fd, zeros.data(), n, static_cast<uint64_t>(at), what));
    }
  }
  const std::vector<uint32_t> holes(hi - lo, 0);
  STRIA_RETURN_IF_ERROR(sums.Put(lo, holes, what));
  return Status::Ok();
}

Result<std::optional<uint64_t>> Target::Seek(uint64_t oid, uint32_t index, uint64_t offset, bool hole) {
  std::string path = ObjectPath(oid, index);
  std::string what = fmt::format("target {}: seek in object {:x}.{}", dir_, oid, index);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) {
    if (errno != ENOENT) return Sys(errno, what);
    return hole ? std::optional<uint64_t>(offset) : std::nullopt;
  }
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return Sys(errno, what);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (offset >= size) return hole ? std::optional<uint64_t>(offset) : std::nullopt;
  off_t at = ::lseek(fd.fd, static_cast<off_t>(offset), hole ? SEEK_HOLE : SEEK_DATA);
  if (at < 0) {
    if (errno == ENXIO) return hole ? std::optional<uint64_t>(size) : std::nullopt;
    return Sys(errno, what);
  }
  return std::optional<uint64_t>(static_cast<uint64_t>(at));
}

Status Target::Fsync(uint64_t oid, const std::vector<uint32_t>& indexes) {
  bool created = false;
  for (uint32_t index : indexes) {
    std::string path = ObjectPath(oid, index);
    // Taken before the sync: a write that changes the attribute during it
    // marks the object again.
    bool meta = false;
    {
      std::lock_guard lk(new_mu_);
      meta = meta_changed_.erase({oid, index}) != 0;
    }
    for (const std::string& p : {path, path + ".crc", path + ".res"}) {
      Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.fd < 0) {
        if (errno == ENOENT) continue;
        if (meta) Noter(oid, index)(false, true);
        return Sys(errno, "target " + dir_ + ": fsync " + p);
      }
      // Unless the data file's checksum attribute changed, the size is the
      // only metadata a read needs: fdatasync keeps it.
      const bool full = meta && p == path;
      if ((full ? ::fsync(fd.fd) : ::fdatasync(fd.fd)) != 0) {
        const int err = errno;
        if (meta) Noter(oid, index)(false, true);
        return Sys(err, "target " + dir_ + ": fsync " + p);
      }
    }
    std::lock_guard lk(new_mu_);
    created |= created_.count({oid, index}) != 0;
  }
  if (!created) return Status::Ok();
  // New files and buckets must survive too: sync their directories (the
  // objects directory only when the bucket itself is new).
  std::string bucket = fmt::format("{}/objects/{:02x}", dir_, oid % 256);
  std::vector<std::string> dirs = {bucket};
  {
    std::lock_guard lk(new_mu_);
    if (new_buckets_.count(oid % 256)) dirs.push_back(dir_ + "/objects");
  }
  for (const std::string& d : dirs) {
    Fd fd(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.fd < 0) {
      if (errno == ENOENT) continue;
      return Sys(errno, "target " + dir_ + ": fsync " + d);
    }
    if (::fsync(fd.fd) != 0) return Sys(errno, "target " + dir_ + ": fsync " + d);
  }
  std::lock_guard lk(new_mu_);
  for (uint32_t index : indexes) created_.erase({oid, index});
  if (dirs.size() > 1) new_buckets_.erase(oid % 256);
  return Status::Ok();
}

Status Target::Remove(uint64_t oid, uint32_t count) {
  {
    std::lock_guard lk(new_mu_);
    for (uint32_t index = 0; index < count; index++) {
      created_.erase({oid, index});
      meta_changed_.erase({oid, index});
    }
  }
  for (uint32_t index = 0; index < count; index++) {
    std::lock_guard lk(LockFor(oid, index));
    DropHandles(oid, index);   // or reads would go on from the unlinked files
    std::string path = ObjectPath(oid, index);
    for (const std::string& p : {path, path + ".crc"}) {
      if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
        return Sys(errno, "target " + dir_ + ": remove " + p);
      }
    }
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> Target::LoadResidency(uint64_t oid, uint32_t index) {
  std::lock_guard lk(LockFor(oid, index));
  std::string path = ObjectPath(oid, index) + ".res";
  std::vector<uint8_t> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    return Sys(errno, "target " + dir_ + ": open " + path);
  }
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Sys(e, "target " + dir_ + ": read " + path);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

Status Target::MarkResident(uint64_t oid, uint32_t index, const std::vector<uint64_t>& chunks) {
  std::lock_guard lk(LockFor(oid, index));
  std::string path = ObjectPath(oid, index) + ".res";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Sys(errno, "target " + dir_ + ": open " + path);
  const char one = 1;
  for (uint64_t c : chunks) {
    ssize_t n = ::pwrite(fd, &one, 1, static_cast<off_t>(c));
    if (n != 1) {
      int e = errno;
      ::close(fd);
      return Sys(n < 0 ? e : EIO, "target " + dir_ + ": write " + path);
    }
  }
  ::close(fd);
  return Status::Ok();
}

Status Target::Capacity(uint64_t* capacity, uint64_t* used) const {
  struct statvfs sv;
  if (::statvfs(dir_.c_str(), &sv) != 0) return Sys(errno, "statvfs " + dir_);
  *capacity = uint64_t(sv.f_blocks) * sv.f_frsize;
  *used = uint64_t(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
  return Status::Ok();
}

}  // namespace stria::store
