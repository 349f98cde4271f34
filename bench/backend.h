// Backend: the few file operations stria-bench's workloads need, either as
// plain POSIX calls on a mounted directory (a Stria FUSE mount, the local
// disk, any other file system) or through libstria directly.
//
// Paths are full paths in the backend's own namespace: a local path for the
// POSIX backend, a path inside Stria for libstria. root() is where the
// benchmark puts its files. Every call is thread-safe (libstria's Client is;
// the POSIX calls are). Errors name the path or the call and the cause.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "stria/status.h"

namespace stria::bench {

struct FileStat {
  uint64_t size = 0;
  bool is_dir = false;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The directory the workloads work under (--dir, or --prefix in Stria).
  virtual const std::string& root() const = 0;
  // "dir:/mnt/x" or "stria:HOST:PORT:/bench", for reports.
  virtual std::string Describe() const = 0;

  virtual Result<int> Open(const std::string& path, int flags) = 0;
  // May return fewer bytes than asked (as pread/pwrite); see PreadFull.
  virtual Result<size_t> Pwrite(int fd, const char* p, size_t n, uint64_t off) = 0;
  virtual Result<size_t> Pread(int fd, char* p, size_t n, uint64_t off) = 0;
  virtual Status Fsync(int fd) = 0;
  virtual Status Close(int fd) = 0;
  virtual Result<FileStat> Stat(const std::string& path) = 0;
  virtual Status Unlink(const std::string& path) = 0;
  // An existing directory is success.
  virtual Status Mkdir(const std::string& path) = 0;
  virtual Status Rmdir(const std::string& path) = 0;
};

// --dir PATH: POSIX calls. PATH is created when missing, but not its parent
// (ENOENT naming PATH); ENOTDIR when PATH is not a directory.
Result<std::unique_ptr<Backend>> MakePosixBackend(const std::string& dir);

// --meta HOST:PORT (empty: $STRIA_META): one libstria Client shared by all
// threads. Creates prefix (and its parents) in Stria when missing.
Result<std::unique_ptr<Backend>> MakeStriaBackend(const std::string& meta,
                                                  const std::string& prefix, int timeout_s);

// sync(), then drops the page, dentry and inode caches of this machine
// (needs root). Also drops what a local cluster's stores keep in the cache.
Status DropPageCache();

// st with the call and the path in front ("fsync /x/y: …"), unless its
// message names the path already (libstria's do). Ok stays Ok.
Status Named(const Status& st, const std::string& op, const std::string& path);
// The same with the file offset: "read /x/y at byte 4096: …".
Status NamedAt(const Status& st, const std::string& op, const std::string& path, uint64_t off);

// pread/pwrite until n bytes or EOF (reads) are done; returns the count.
Result<size_t> PreadFull(Backend& b, int fd, char* p, size_t n, uint64_t off);
Status PwriteFull(Backend& b, int fd, const char* p, size_t n, uint64_t off);

}  // namespace stria::bench
