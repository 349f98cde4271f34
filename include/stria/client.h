// libstria: the client library of the Stria parallel file system.
//
// A Client talks to one cluster: it asks stria-meta for names, attributes and
// a file's layout once per open, then moves data directly between the
// caller and the stores, striping across all of the file's targets in
// parallel. Writes are buffered per open file and made durable by Fsync and
// Close (close-to-open consistency, as NFS). Sequential reads are read ahead.
//
// Threading: a Client is thread-safe; one open file may be used from several
// threads (calls on it are serialized). Paths are absolute within Stria
// ("/data/train/000.tar"). Every call returns within the configured timeout
// (with retries inside it), never hangs on a dead server.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stria/status.h"

namespace stria {

struct ClientOptions {
  // HOST:PORT of stria-meta. Empty: the STRIA_META environment variable.
  std::string meta;
  // Deadline of one operation, retries included. Default 15 s.
  std::chrono::milliseconds timeout{15000};
  // Sequential read-ahead window in bytes (at least one stripe row is read).
  uint64_t readahead = 8u << 20;
  // Bytes of writes buffered per open file before they are sent.
  uint64_t write_buffer = 8u << 20;
  // The caller's identity for permission checks; default: this process's.
  int64_t uid = -1;
  int64_t gid = -1;
  std::vector<uint32_t> groups;
  // Name of this client in the servers' logs; default host:pid.
  std::string name;
};

enum class FileType { kNone = 0, kRegular, kDirectory, kSymlink, kFifo, kSocket, kChar, kBlock };
const char* FileTypeName(FileType t);

struct FileAttr {
  uint64_t ino = 0;
  FileType type = FileType::kNone;
  uint32_t mode = 0;   // permission bits
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  uint32_t nlink = 0;
  uint64_t version = 0;
  uint64_t rdev = 0;
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  FileType type = FileType::kNone;
  uint64_t cookie = 0;   // pass back to ReadDirPage to continue after this one
};

struct DirPage {
  std::vector<DirEntry> entries;
  std::vector<FileAttr> attrs;   // parallel to entries
  bool eof = false;
};

// Where a file's bytes live: byte o is in object (o / stripe_size) %
// stripe_count, which is stored on targets[that index].
struct Layout {
  uint64_t stripe_size = 0;
  uint32_t stripe_count = 0;
  std::vector<uint32_t> targets;
  uint64_t object_id = 0;
  bool is_default = false;   // a directory's default for new files
};

struct TargetStatus {
  uint32_t id = 0;
  uint32_t store_id = 0;
  std::string address;
  std::string path;
  bool up = false;
  uint64_t capacity = 0, used = 0;
};

struct StoreStatus {
  uint32_t id = 0;
  std::string address, admin_address;
  bool up = false;
  int64_t last_heartbeat_ms = 0;
};

struct ClusterStatus {
  std::string meta;
  std::string meta_admin;
  uint64_t version = 0;
  std::vector<TargetStatus> targets;
  std::vector<StoreStatus> stores;
};

struct FsStat {
  uint64_t capacity = 0, used = 0, inodes = 0;
};

class Client {
 public:
  // Connects to meta and opens a session. ECONNREFUSED/ETIMEDOUT name the
  // address when meta cannot be reached.
  static Result<std::unique_ptr<Client>> Connect(ClientOptions options);
  ~Client();   // closes open files (errors are logged), ends the session
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- files (POSIX-like; fd is this client's own handle number) ----
  Result<int> Open(const std::string& path, int flags, uint32_t mode = 0644);
  Result<size_t> Read(int fd, void* buf, size_t n);
  Result<size_t> Pread(int fd, void* buf, size_t n, uint64_t offset);
  Result<size_t> Write(int fd, const void* buf, size_t n);
  Result<size_t> Pwrite(int fd, const void* buf, size_t n, uint64_t offset);
  Result<uint64_t> Seek(int fd, int64_t offset, int whence);
  Status Fsync(int fd);              // durable on the stores and in meta
  Status Ftruncate(int fd, uint64_t size);
  Result<FileAttr> Fstat(int fd);
  Status Close(int fd);              // flushes and makes durable, then closes

  // ---- namespace ----
  Result<FileAttr> Stat(const std::string& path);    // follows a final symlink
  Result<FileAttr> Lstat(const std::string& path);
  Status Mkdir(const std::string& path, uint32_t mode = 0755);
  Status Rmdir(const std::string& path);
  Status Unlink(const std::string& path);
  // flags: 0, RENAME_NOREPLACE (1) or RENAME_EXCHANGE (2) as renameat2.
  Status Rename(const std::string& from, const std::string& to, unsigned flags = 0);
  Status Symlink(const std::string& target, const std::string& link_path);
  Status Link(const std::string& existing, const std::string& new_path);
  Result<std::string> Readlink(const std::string& path);
  Status Truncate(const std::string& path, uint64_t size);
  Status Chmod(const std::string& path, uint32_t mode);
  Status Chown(const std::string& path, int64_t uid, int64_t gid);   // -1 keeps
  Status Utimens(const std::string& path, int64_t atime_ns, int64_t mtime_ns);
  Result<std::vector<DirEntry>> ReadDir(const std::string& path);
  Result<DirPage> ReadDirPage(const std::string& path, uint64_t cookie, uint32_t max, bool plus);

  // ---- xattrs (flags: 0, XATTR_CREATE 1, XATTR_REPLACE 2) ----
  Status SetXattr(const std::string& path, const std::string& name, const std::string& value,
                  int flags = 0);
  Result<std::string> GetXattr(const std::string& path, const std::string& name);
  Result<std::vector<std::string>> ListXattr(const std::string& path);
  Status RemoveXattr(const std::string& path, const std::string& name);

  // ---- layouts ----
  Result<Layout> GetLayout(const std::string& path);
  // A directory: sets the default of new files under it. An existing empty
  // file: re-stripes it. A missing path: creates an empty file with it.
  // stripe_count 0 keeps the current count (or "all targets"); size 0 too.
  Status SetLayout(const std::string& path, uint32_t stripe_count, uint64_t stripe_size);

  // ---- cluster ----
  Result<ClusterStatus> GetClusterStatus();
  Result<FsStat> StatFs();

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stria
