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
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "stria/status.h"

namespace stria {

struct ClientOptions {
  // HOST:PORT of stria-meta. Empty: the STRIA_META environment variable.
  std::string meta;
  // Deadline of one operation, retries included. Default 15 s.
  std::chrono::milliseconds timeout{15000};
  // Sequential read-ahead window in bytes (at least one stripe row is read);
  // 0: none (the FUSE mount leaves read-ahead to the kernel).
  uint64_t readahead = 8u << 20;
  // Bytes of writes buffered per open file before they are sent. A full
  // buffer is sent behind the writer (one per file on the wire at a time);
  // a store's error on it is returned by the next write, read, fsync or
  // close of the file. fsync and close return once all is durable.
  uint64_t write_buffer = 8u << 20;
  // The caller's identity for permission checks; default: this process's.
  int64_t uid = -1;
  int64_t gid = -1;
  std::vector<uint32_t> groups;
  // Name of this client in the servers' logs; default host:pid.
  std::string name;
  // Statahead: once 8 names of one directory have been looked up from meta
  // within a twentieth of this, the directory is read whole (names, attributes,
  // layouts) and its next lookups are answered from that copy while it is
  // younger than this and this client has changed nothing since
  // (FileAttr::age_ms says how old such an answer is). Missing names still
  // ask meta. 0 (default): off. The FUSE mount sets its cache timeout.
  std::chrono::milliseconds lookup_ahead{0};
};

enum class FileType { kNone = 0, kRegular, kDirectory, kSymlink, kFifo, kSocket, kChar, kBlock };
const char* FileTypeName(FileType t);

// A file's data under a data repository link: only in the bucket, the
// same in Stria and the bucket, or changed since the last export.
enum class RepoState { kNone = 0, kReleased, kResident, kDirty };
const char* RepoStateName(RepoState s);

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
  RepoState repo_state = RepoState::kNone;   // as meta last said
  // Under a link: the bucket key and ETag the content is at (empty for a
  // file never exported).
  std::string repo_key, repo_etag;
  // How old this answer is, when a lookup took it from a directory read
  // ahead (ClientOptions::lookup_ahead); 0 when meta just gave it.
  int64_t age_ms = 0;
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

// A directory's link to a bucket prefix (docs/data_repositories.md). It
// holds no secret: each process that talks to S3 reads its own credentials.
struct RepoLinkSpec {
  std::string url;                  // s3://bucket/prefix/
  std::string endpoint;             // http(s)://host[:port]
  std::string region;
  bool virtual_host = false;        // bucket.host addressing
  std::string profile;              // shared-credentials profile; empty: the default chain
  uint32_t auto_export_delay_s = 0; // 0: off
  bool export_deletes = false;
};

// Files and bytes under a link, by state.
struct RepoCounts {
  uint64_t released_files = 0, released_bytes = 0;
  uint64_t resident_files = 0, resident_bytes = 0;
  uint64_t dirty_files = 0, dirty_bytes = 0;
  // Directories renamed under the link, and how many of those a whole-link
  // export has caught up with (their files copied to their new keys).
  uint64_t renames = 0, renames_exported = 0;
};

struct RepoLinkInfo {
  uint64_t ino = 0;
  std::string path;
  RepoLinkSpec link;
  int64_t created_ns = 0;
  RepoCounts counts;
};

// What `repo sync` changed.
struct RepoSyncResult {
  uint64_t directories = 0;   // levels compared with the bucket
  uint64_t created = 0;       // new objects and prefixes
  uint64_t changed = 0;       // clean files whose object changed: released, to be fetched anew
  uint64_t removed = 0;       // clean files whose object is gone
  uint64_t skipped = 0;       // dirty or open files left as they are, objects of files removed or renamed
                              // here (until exported), names that cannot be files
};

// A resident file the watermark release may free (RepoColdest).
struct RepoColdFile {
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t last_use_ns = 0;   // last open seen by stria-meta, else mtime
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

// Who a call acts for. Path calls act for the client itself (ClientOptions);
// the inode calls below take the caller of each request, so that one client
// (the FUSE mount) can serve many users with their own permissions.
struct Caller {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;   // supplementary groups
};

// Which fields SetAttr changes (mask bits), as setattr(2)/utimensat(2).
struct SetAttrArgs {
  enum : uint32_t {
    kMode = 1, kUid = 2, kGid = 4, kSize = 8,
    kAtime = 16, kMtime = 32, kAtimeNow = 64, kMtimeNow = 128,
    // With kMtime: an mtime the kernel's writeback cache chose (the time
    // of a write, a truncate or a utimensat to now; it refuses a chosen
    // one to anyone but the owner itself), which a writer that does not
    // own the file may set.
    kWriteTimes = 256,
  };
  uint32_t mask = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0, mtime_ns = 0;
};

// An open file: the handle and the attributes meta returned with it.
struct OpenedFile {
  int fd = -1;
  FileAttr attr;
};

// A byte-range lock as fcntl(F_SETLK) and flock(2) see it. end is
// inclusive; UINT64_MAX means "to the end of the file, however it grows".
struct LockRange {
  enum Type { kUnlock = 0, kRead = 1, kWrite = 2 };
  Type type = kUnlock;
  uint64_t start = 0, end = UINT64_MAX;
  uint32_t pid = 0;   // the holder's pid, reported by GetLock
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
  // Pread without waiting, for a read that one store answers in one round
  // trip: done runs once, on the client's network thread (it must not call
  // the client back and wait), with the bytes (valid during the call; short
  // only at the end of the file) or the error. Returns false, and never
  // calls done, for a read that Pread must do (larger than kAsyncReadMax, over
  // two stripes, unsent writes, read-ahead, a released file, the read
  // cache). fd must stay open until done has run.
  using ReadDone = std::function<void(Result<std::span<const char>>)>;
  static constexpr size_t kAsyncReadMax = 128 * 1024;
  bool PreadAsync(int fd, size_t n, uint64_t offset, ReadDone done);
  Result<size_t> Write(int fd, const void* buf, size_t n);
  Result<size_t> Pwrite(int fd, const void* buf, size_t n, uint64_t offset);
  // SEEK_SET, SEEK_CUR, SEEK_END; and SEEK_DATA and SEEK_HOLE, answered by
  // the stores (block-sized holes, as their file system keeps them; a
  // released file is all data). ENXIO for those two at or past the end.
  Result<uint64_t> Seek(int fd, int64_t offset, int whence);
  Status Fsync(int fd);              // durable on the stores and in meta
  Status Ftruncate(int fd, uint64_t size);
  Result<FileAttr> Fstat(int fd);
  Status Close(int fd);              // flushes and makes durable, then closes
  // Lets fd serve reads though it was opened write-only: the FUSE kernel's
  // writeback cache reads the rest of a page through whatever handle
  // writes part of it (the opener's permissions were checked for writing).
  Status AllowCacheReads(int fd);

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

  // ---- data repositories (root only for link and unlink) ----
  // Links an empty directory to a bucket prefix. Checks only what stria-meta
  // can (the bucket is checked by the caller: the CLI does).
  Status RepoLink(const std::string& path, const RepoLinkSpec& link);
  // EBUSY while files under it are released or dirty, unless force.
  Status RepoUnlink(const std::string& path, bool force);
  Result<std::vector<RepoLinkInfo>> RepoList();
  // A released file: fetches all of it into Stria now (each store its own
  // stripes, all at once). Returns the bytes fetched (0: not released).
  Result<uint64_t> RepoWarm(const std::string& path);
  // A dirty file: uploads it to its place in the link's bucket (one PUT, or
  // a multipart upload with parts in parallel), then it is resident unless
  // it changed meanwhile. A clean file whose content is at another key
  // (a directory above it was renamed): copied there on the server (a
  // resident file whose old object changed is uploaded instead). Returns
  // the bytes uploaded or copied (0: nothing to do).
  Result<uint64_t> RepoExport(const std::string& path);
  // Exports files RepoExport answered EBUSY for (each one's key still holds
  // the content of another released file, renamed away): tries them again
  // while any of them goes. Where none does because they wait for one
  // another in a ring (directories that swapped names), fetches one of the
  // ring (RepoWarm): its content then needs its old key no longer, and the
  // others go. Calls done once per path with its last result.
  void RepoExportWaiting(std::vector<std::string> paths,
                         const std::function<void(const std::string&, const Result<uint64_t>&)>& done);
  // An export walked all of link (its root's path) after `renames`
  // directory renames (RepoCounts before the walk) and left no moved file
  // behind.
  Status RepoRenamesExported(const std::string& link_path, uint64_t renames);
  // The bucket key of path (absolute, under link): the link's prefix and
  // the path below the link's directory.
  static Result<std::string> RepoKeyOf(const RepoLinkInfo& link, const std::string& path);
  // The link of path exports deletions (--export-deletes): deletes from the
  // bucket the objects of files removed from Stria since (an object that
  // changed in the bucket since is left alone). Returns how many it deleted.
  // Nothing to do for other links.
  Result<uint64_t> RepoExportDeletions(const std::string& path);
  // A resident file: frees its data in Stria and keeps its metadata; a
  // later read fetches it again. EBUSY while it is open anywhere. Returns
  // the bytes freed (0: not resident).
  Result<uint64_t> RepoRelease(const std::string& path);
  // Brings the directory at path and every listed one below it in step
  // with the bucket: new objects appear, changed ones are fetched anew on
  // their next read, deleted ones go (dirty files stay: their export puts
  // them back). Levels never looked at need nothing: they import whole.
  Result<RepoSyncResult> RepoSync(const std::string& path);
  // Root only: resident files under any link, not open, least recently
  // used first, until their sizes reach bytes (at most max_files).
  Result<std::vector<RepoColdFile>> RepoColdest(uint64_t bytes, uint32_t max_files);
  // RepoRelease by inode number (what RepoColdest gives).
  Result<uint64_t> RepoReleaseIno(uint64_t ino);

  // ---- cluster ----
  Result<ClusterStatus> GetClusterStatus();
  Result<FsStat> StatFs();

  // ---- by inode, for a given caller (the FUSE mount's interface) ----
  // Inode numbers are the cluster's, the same on every client. Errors are
  // meta's errno with a message naming the inode or name.
  uint64_t RootIno() const;
  Caller Self() const;   // the identity the path calls use
  // Attributes count this client's own unflushed writes (as stat does).
  Result<FileAttr> Lookup(const Caller& c, uint64_t parent, const std::string& name);
  Result<FileAttr> GetAttr(const Caller& c, uint64_t ino);
  // access(2): mask of R_OK|W_OK|X_OK (0: existence); EACCES when denied.
  Status Access(const Caller& c, uint64_t ino, int mask);
  // A size change truncates the stores' objects too (after flushing this
  // client's buffered writes to the file).
  Result<FileAttr> SetAttr(const Caller& c, uint64_t ino, const SetAttrArgs& args);
  // Regular files, FIFOs, sockets and device nodes (type), as mknod(2).
  Result<FileAttr> Mknod(const Caller& c, uint64_t parent, const std::string& name, FileType type,
                         uint32_t mode, uint64_t rdev);
  Result<FileAttr> Mkdir(const Caller& c, uint64_t parent, const std::string& name, uint32_t mode);
  Result<FileAttr> Symlink(const Caller& c, const std::string& target, uint64_t parent,
                           const std::string& name);
  Result<FileAttr> Link(const Caller& c, uint64_t ino, uint64_t new_parent,
                        const std::string& new_name);
  Status Unlink(const Caller& c, uint64_t parent, const std::string& name);
  Status Rmdir(const Caller& c, uint64_t parent, const std::string& name);
  Status Rename(const Caller& c, uint64_t parent, const std::string& name, uint64_t new_parent,
                const std::string& new_name, unsigned flags = 0);
  Result<std::string> Readlink(const Caller& c, uint64_t ino);
  Result<DirPage> ReadDir(const Caller& c, uint64_t ino, uint64_t cookie, uint32_t max, bool plus);
  // Opens for the caller (permissions checked as open(2) with flags); the
  // fd works with every fd call above, which then act for that caller.
  // A small file looked up just before and opened read-only has its bytes
  // read while the open is on its way to meta (prefetch; pass false when
  // the caller will not read, e.g. the kernel holds the pages already).
  Result<OpenedFile> Open(const Caller& c, uint64_t ino, int flags, bool prefetch = true);
  // Creates (or, without O_EXCL, opens) name in parent.
  Result<OpenedFile> Create(const Caller& c, uint64_t parent, const std::string& name, int flags,
                            uint32_t mode);
  Status SetXattr(const Caller& c, uint64_t ino, const std::string& name, const std::string& value,
                  int flags);
  Result<std::string> GetXattr(const Caller& c, uint64_t ino, const std::string& name);
  Result<std::vector<std::string>> ListXattr(const Caller& c, uint64_t ino);
  Status RemoveXattr(const Caller& c, uint64_t ino, const std::string& name);

  // fallocate(2) on an open file: mode 0 (reserve space, growing the size),
  // FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE (the
  // range reads as zeros) and FALLOC_FL_ZERO_RANGE, with or without
  // KEEP_SIZE (zeros, space reserved). Others: EOPNOTSUPP.
  Status Fallocate(int fd, int mode, uint64_t offset, uint64_t length);

  // Advisory locks held in meta, so they hold between clients. owner names
  // the holder within this client (the kernel's lock owner); flock and
  // POSIX locks are separate sets, as on Linux. SetLock fails with EAGAIN
  // on a conflict (callers that must wait retry); kUnlock releases the
  // range. GetLock returns the first conflicting lock, or type kUnlock.
  Result<LockRange> GetLock(uint64_t ino, uint64_t owner, const LockRange& want, bool flock);
  Status SetLock(uint64_t ino, uint64_t owner, const LockRange& lock, bool flock);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stria
