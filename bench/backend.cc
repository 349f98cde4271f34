#include "backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "stria/client.h"

namespace stria::bench {
namespace {

Status Errno(const std::string& what) {
  int e = errno;
  return Err(e, "{}: {}", what, std::strerror(e));
}

class PosixBackend : public Backend {
 public:
  explicit PosixBackend(std::string root) : root_(std::move(root)) {}
  const std::string& root() const override { return root_; }
  std::string Describe() const override { return "dir:" + root_; }

  Result<int> Open(const std::string& p, int flags) override {
    int fd = ::open(p.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("open " + p);
    return fd;
  }
  Result<size_t> Pwrite(int fd, const char* p, size_t n, uint64_t off) override {
    ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (r < 0) return Errno("pwrite");
    return static_cast<size_t>(r);
  }
  Result<size_t> Pread(int fd, char* p, size_t n, uint64_t off) override {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) return Errno("pread");
    return static_cast<size_t>(r);
  }
  Status Fsync(int fd) override { return ::fsync(fd) == 0 ? Status::Ok() : Errno("fsync"); }
  Status Close(int fd) override { return ::close(fd) == 0 ? Status::Ok() : Errno("close"); }
  Result<FileStat> Stat(const std::string& p) override {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) return Errno("stat " + p);
    return FileStat{static_cast<uint64_t>(st.st_size), S_ISDIR(st.st_mode)};
  }
  Status Unlink(const std::string& p) override {
    return ::unlink(p.c_str()) == 0 ? Status::Ok() : Errno("unlink " + p);
  }
  Status Mkdir(const std::string& p) override {
    if (::mkdir(p.c_str(), 0755) == 0 || errno == EEXIST) return Status::Ok();
    return Errno("mkdir " + p);
  }
  Status Rmdir(const std::string& p) override {
    return ::rmdir(p.c_str()) == 0 ? Status::Ok() : Errno("rmdir " + p);
  }

 private:
  std::string root_;
};

class StriaBackend : public Backend {
 public:
  StriaBackend(std::unique_ptr<Client> c, std::string meta, std::string root)
      : c_(std::move(c)), meta_(std::move(meta)), root_(std::move(root)) {}
  const std::string& root() const override { return root_; }
  std::string Describe() const override { return "stria:" + meta_ + ":" + root_; }

  Result<int> Open(const std::string& p, int flags) override { return c_->Open(p, flags, 0644); }
  Result<size_t> Pwrite(int fd, const char* p, size_t n, uint64_t off) override {
    return c_->Pwrite(fd, p, n, off);
  }
  Result<size_t> Pread(int fd, char* p, size_t n, uint64_t off) override {
    return c_->Pread(fd, p, n, off);
  }
  Status Fsync(int fd) override { return c_->Fsync(fd); }
  Status Close(int fd) override { return c_->Close(fd); }
  Result<FileStat> Stat(const std::string& p) override {
    auto a = c_->Stat(p);
    if (!a.ok()) return a.status();
    return FileStat{a->size, a->type == FileType::kDirectory};
  }
  Status Unlink(const std::string& p) override { return c_->Unlink(p); }
  Status Mkdir(const std::string& p) override {
    Status st = c_->Mkdir(p);
    return st.code() == EEXIST ? Status::Ok() : st;
  }
  Status Rmdir(const std::string& p) override { return c_->Rmdir(p); }

 private:
  std::unique_ptr<Client> c_;
  std::string meta_;
  std::string root_;
};

std::string StripSlashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

Result<std::unique_ptr<Backend>> MakePosixBackend(const std::string& dir) {
  std::string root = StripSlashes(dir);
  struct stat st;
  // The last component is made when missing (a fresh mount has no work
  // directory yet); a missing parent is an error, as it is most likely a typo.
  if (::stat(root.c_str(), &st) != 0 && errno == ENOENT && ::mkdir(root.c_str(), 0755) != 0) {
    return Errno("--dir " + root);
  }
  if (::stat(root.c_str(), &st) != 0) return Errno("--dir " + root);
  if (!S_ISDIR(st.st_mode)) return Err(ENOTDIR, "--dir {}: not a directory", root);
  return std::unique_ptr<Backend>(new PosixBackend(root));
}

Result<std::unique_ptr<Backend>> MakeStriaBackend(const std::string& meta,
                                                  const std::string& prefix, int timeout_s) {
  std::string root = StripSlashes(prefix);
  if (root.empty() || root[0] != '/') {
    return Err(EINVAL, "--prefix {}: must be an absolute path inside Stria", prefix);
  }
  ClientOptions o;
  o.meta = meta;
  o.timeout = std::chrono::seconds(timeout_s);
  auto c = Client::Connect(o);
  if (!c.ok()) return c.status().Prefixed("connect to stria-meta");
  std::string shown = meta;
  if (shown.empty()) {
    const char* env = std::getenv("STRIA_META");
    shown = env ? env : "";
  }
  auto b = std::make_unique<StriaBackend>(std::move(c).value(), shown, root);
  // mkdir -p: each component in turn, an existing one is fine.
  for (size_t pos = 1; pos <= root.size(); pos++) {
    if (pos == root.size() || root[pos] == '/') {
      if (pos > 1) STRIA_RETURN_IF_ERROR(b->Mkdir(root.substr(0, pos)).Prefixed("--prefix"));
    }
  }
  auto st = b->Stat(root);
  if (!st.ok()) return st.status().Prefixed("--prefix");
  if (!st->is_dir) return Err(ENOTDIR, "--prefix {}: not a directory in Stria", root);
  return std::unique_ptr<Backend>(std::move(b));
}

Status DropPageCache() {
  ::sync();
  const char* kPath = "/proc/sys/vm/drop_caches";
  int fd = ::open(kPath, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Errno(fmt::format("--drop-caches: open {} (needs root)", kPath));
  bool ok = ::write(fd, "3", 1) == 1;
  Status st = ok ? Status::Ok() : Errno(fmt::format("--drop-caches: write {}", kPath));
  ::close(fd);
  return st;
}

Status Named(const Status& st, const std::string& op, const std::string& path) {
  if (st.ok() || st.message().find(path) != std::string::npos) return st;
  return st.Prefixed(op + " " + path);
}

Status NamedAt(const Status& st, const std::string& op, const std::string& path, uint64_t off) {
  if (st.ok()) return st;
  if (st.message().find(path) != std::string::npos) {
    return Status(st.code(), fmt::format("{} (at byte {})", st.message(), off));
  }
  return st.Prefixed(fmt::format("{} {} at byte {}", op, path, off));
}

Result<size_t> PreadFull(Backend& b, int fd, char* p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    auto r = b.Pread(fd, p + done, n - done, off + done);
    if (!r.ok()) return r.status();
    if (*r == 0) break;   // end of file
    done += *r;
  }
  return done;
}

Status PwriteFull(Backend& b, int fd, const char* p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    auto r = b.Pwrite(fd, p + done, n - done, off + done);
    if (!r.ok()) return r.status();
    if (*r == 0) return Err(EIO, "pwrite at {} wrote nothing", off + done);
    done += *r;
  }
  return Status::Ok();
}

}  // namespace stria::bench
