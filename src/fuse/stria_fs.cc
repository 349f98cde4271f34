#include "fuse/stria_fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace stria::fuse {

namespace {

StriaFs* Fs(fuse_req_t req) { return static_cast<StriaFs*>(fuse_req_userdata(req)); }

// The one place a Status becomes an errno for the kernel. Failures that are
// not the caller's mistake are logged.
void ReplyErr(fuse_req_t req, const Status& st, const char* op) {
  int code = st.code() > 0 ? st.code() : EIO;
  switch (code) {
    case ENOENT: case EEXIST: case EACCES: case EPERM: case ENOTEMPTY: case ENOTDIR:
    case EISDIR: case EINVAL: case ENODATA: case ERANGE: case EAGAIN: case ENAMETOOLONG:
    case EXDEV: case EBADF: case EOPNOTSUPP: case ELOOP: case EINTR: case ESTALE:
      spdlog::debug("{}: {}", op, st.ToString());
      break;
    default:
      spdlog::warn("{}: {}", op, st.ToString());
  }
  fuse_reply_err(req, code);
}

// The caller of a request, with its supplementary groups (read from /proc
// only when meta may need them: root passes every check without them).
Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Caller c;
  c.uid = ctx->uid;
  c.gid = ctx->gid;
  if (c.uid != 0) {
    gid_t groups[64];
    int n = fuse_req_getgroups(req, 64, groups);
    if (n > 64) {
      std::vector<gid_t> many(static_cast<size_t>(n));
      n = fuse_req_getgroups(req, n, many.data());
      for (int i = 0; i < n && i < static_cast<int>(many.size()); i++) c.groups.push_back(many[i]);
    } else {
      for (int i = 0; i < n; i++) c.groups.push_back(groups[i]);
    }
  }
  return c;
}

mode_t TypeBits(FileType t) {
  switch (t) {
    case FileType::kDirectory: return S_IFDIR;
    case FileType::kSymlink: return S_IFLNK;
    case FileType::kFifo: return S_IFIFO;
    case FileType::kSocket: return S_IFSOCK;
    case FileType::kChar: return S_IFCHR;
    case FileType::kBlock: return S_IFBLK;
    default: return S_IFREG;
  }
}

timespec Ts(int64_t ns) {
  timespec t;
  t.tv_sec = ns / 1000000000;
  t.tv_nsec = ns % 1000000000;
  if (t.tv_nsec < 0) {
    t.tv_sec--;
    t.tv_nsec += 1000000000;
  }
  return t;
}

struct stat ToStat(const StriaFs& fs, const FileAttr& a) {
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  st.st_ino = fs.ToKernel(a.ino);
  st.st_mode = TypeBits(a.type) | (a.mode & 07777);
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_rdev = static_cast<dev_t>(a.rdev);
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st.st_atim = Ts(a.atime_ns);
  st.st_mtim = Ts(a.mtime_ns);
  st.st_ctim = Ts(a.ctime_ns);
  return st;
}

// Replies to a call that made or found a name: the kernel holds one more
// reference to it from now on.
void ReplyEntry(fuse_req_t req, const FileAttr& a) {
  StriaFs* fs = Fs(req);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = fs->ToKernel(a.ino);
  e.attr = ToStat(*fs, a);
  // An answer from a directory read ahead is as old as that read: the
  // kernel keeps it only for what is left of the timeouts.
  const double age = static_cast<double>(a.age_ms) / 1000.0;
  e.attr_timeout = std::max(0.0, fs->options().attr_timeout - age);
  e.entry_timeout = std::max(0.0, fs->options().entry_timeout - age);
  if (fs->options().writeback && a.type == FileType::kRegular && fs->inodes().ReplaceIfShrunk(a.ino, a.size)) {
    spdlog::debug("inode {} is {} bytes now, less than the kernel keeps: a new kernel inode", a.ino, a.size);
  }
  e.generation = fs->inodes().Ref(a.ino, a.version, 1, a.size);
  if (fuse_reply_entry(req, &e) != 0) fs->inodes().Forget(a.ino, 1);   // the kernel never got it
}

void ReplyAttr(fuse_req_t req, const FileAttr& a) {
  StriaFs* fs = Fs(req);
  struct stat st = ToStat(*fs, a);
  fs->inodes().SawAttr(a.ino, a.version);
  fuse_reply_attr(req, &st, fs->options().attr_timeout);
}

// ------------------------------------------------------------ namespace --

void Init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<StriaFs*>(userdata);
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_POSIX_LOCKS);
  want(FUSE_CAP_FLOCK_LOCKS);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_EXPORT_SUPPORT);
  // stria-meta clears set-uid/set-gid on write, truncate and chown itself.
  want(FUSE_CAP_HANDLE_KILLPRIV);
  // Pages are dropped at open when the content changed (keep_cache), not
  // whenever mtime moves.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // The kernel's writeback cache only when asked for (-o writeback_cache):
  // it keeps file sizes of its own (MountOptions::writeback). Otherwise
  // every write(2) reaches libstria, which buffers and sends them behind.
  if (fs->options().writeback) {
    if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else spdlog::warn("the kernel offers no writeback cache: writeback_cache ignored");
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  // 1 MiB reads and writes (libfuse asks for max_pages to match).
  conn->max_write = 1u << 20;
  conn->max_readahead = std::max(conn->max_readahead, 1u << 20);
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
  fs->MarkInitialized();
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().Lookup(CallerOf(req), fs->ToStria(parent), name);
  if (!r.ok()) {
    if (r.status().code() == ENOENT && fs->options().negative_timeout > 0) {
      // Inode 0: the kernel remembers the miss for negative_timeout.
      fuse_entry_param e;
      std::memset(&e, 0, sizeof(e));
      e.entry_timeout = fs->options().negative_timeout;
      fuse_reply_entry(req, &e);
      return;
    }
    return ReplyErr(req, r.status(), "lookup");
  }
  ReplyEntry(req, *r);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  StriaFs* fs = Fs(req);
  if (!fs->inodes().Forget(fs->ToStria(ino), nlookup)) {
    spdlog::debug("forget inode {}: kernel dropped {} references we did not count", ino, nlookup);
  }
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  StriaFs* fs = Fs(req);
  for (size_t i = 0; i < count; i++) fs->inodes().Forget(fs->ToStria(forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().GetAttr(CallerOf(req), fs->ToStria(ino));
  if (!r.ok()) return ReplyErr(req, r.status(), "getattr");
  ReplyAttr(req, *r);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  SetAttrArgs a;
  if (to_set & FUSE_SET_ATTR_MODE) a.mask |= SetAttrArgs::kMode, a.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) a.mask |= SetAttrArgs::kUid, a.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) a.mask |= SetAttrArgs::kGid, a.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) a.mask |= SetAttrArgs::kSize, a.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) a.mask |= SetAttrArgs::kAtimeNow;
  else if (to_set & FUSE_SET_ATTR_ATIME) {
    a.mask |= SetAttrArgs::kAtime;
    a.atime_ns = int64_t(attr->st_atim.tv_sec) * 1000000000 + attr->st_atim.tv_nsec;
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) a.mask |= SetAttrArgs::kMtimeNow;
  else if (to_set & FUSE_SET_ATTR_MTIME) {
    a.mask |= SetAttrArgs::kMtime;
    a.mtime_ns = int64_t(attr->st_mtim.tv_sec) * 1000000000 + attr->st_mtim.tv_nsec;
  }
  // With the writeback cache the kernel keeps mtime and ctime itself and
  // sends them with a ctime: an mtime it chose (of writes, truncates,
  // utimensat to now), after checking that only the owner chooses one
  // (default_permissions comes with writeback_cache).
  if (fs->options().writeback && (to_set & FUSE_SET_ATTR_CTIME) && (a.mask & SetAttrArgs::kMtime)) {
    a.mask |= SetAttrArgs::kWriteTimes;
  }
  uint64_t sino = fs->ToStria(ino);
  bool resize = a.mask & SetAttrArgs::kSize;
  if (resize) fs->inodes().ResizeStart(sino);
  Result<FileAttr> r = Status::Ok();
  if (a.mask == 0) {
    // Nothing Stria stores (ctime alone, or a kill-priv the kernel left to us).
    r = fs->client().GetAttr(CallerOf(req), fs->ToStria(ino));
  } else {
    r = fs->client().SetAttr(CallerOf(req), sino, a);
  }
  (void)fi;
  if (!r.ok()) {
    ReplyErr(req, r.status(), "setattr");
  } else {
    if (resize) fs->inodes().SawSize(sino, r->size);   // the kernel takes a new size from the reply
    ReplyAttr(req, *r);
  }
  if (resize) fs->inodes().ResizeEnd(sino);
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().Readlink(CallerOf(req), fs->ToStria(ino));
  if (!r.ok()) return ReplyErr(req, r.status(), "readlink");
  fuse_reply_readlink(req, r->c_str());
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  StriaFs* fs = Fs(req);
  FileType t;
  switch (mode & S_IFMT) {
    case S_IFREG: case 0: t = FileType::kRegular; break;
    case S_IFIFO: t = FileType::kFifo; break;
    case S_IFSOCK: t = FileType::kSocket; break;
    case S_IFCHR: t = FileType::kChar; break;
    case S_IFBLK: t = FileType::kBlock; break;
    default:
      fuse_reply_err(req, EINVAL);
      return;
  }
  auto r = fs->client().Mknod(CallerOf(req), fs->ToStria(parent), name, t, mode & 07777, rdev);
  if (!r.ok()) return ReplyErr(req, r.status(), "mknod");
  ReplyEntry(req, *r);
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().Mkdir(CallerOf(req), fs->ToStria(parent), name, mode & 07777);
  if (!r.ok()) return ReplyErr(req, r.status(), "mkdir");
  ReplyEntry(req, *r);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  StriaFs* fs = Fs(req);
  Status st = fs->client().Unlink(CallerOf(req), fs->ToStria(parent), name);
  if (!st.ok()) return ReplyErr(req, st, "unlink");
  fuse_reply_err(req, 0);
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  StriaFs* fs = Fs(req);
  Status st = fs->client().Rmdir(CallerOf(req), fs->ToStria(parent), name);
  if (!st.ok()) return ReplyErr(req, st, "rmdir");
  fuse_reply_err(req, 0);
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().Symlink(CallerOf(req), target, fs->ToStria(parent), name);
  if (!r.ok()) return ReplyErr(req, r.status(), "symlink");
  ReplyEntry(req, *r);
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  StriaFs* fs = Fs(req);
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return (void)fuse_reply_err(req, EINVAL);
  Status st = fs->client().Rename(CallerOf(req), fs->ToStria(parent), name, fs->ToStria(newparent), newname,
                                  flags);
  if (!st.ok()) return ReplyErr(req, st, "rename");
  fuse_reply_err(req, 0);
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().Link(CallerOf(req), fs->ToStria(ino), fs->ToStria(newparent), newname);
  if (!r.ok()) return ReplyErr(req, r.status(), "link");
  ReplyEntry(req, *r);
}

void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  StriaFs* fs = Fs(req);
  Status st = fs->client().Access(CallerOf(req), fs->ToStria(ino), mask & 7);
  if (!st.ok()) return ReplyErr(req, st, "access");
  fuse_reply_err(req, 0);
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().StatFs();
  if (!r.ok()) return ReplyErr(req, r.status(), "statfs");
  struct statvfs sv;
  std::memset(&sv, 0, sizeof(sv));
  const unsigned long kBlock = 4096;
  sv.f_bsize = kBlock;
  sv.f_frsize = kBlock;
  sv.f_blocks = r->capacity / kBlock;
  sv.f_bfree = (r->capacity - std::min(r->used, r->capacity)) / kBlock;
  sv.f_bavail = sv.f_bfree;
  // Inodes are not a fixed pool: report room for many more.
  sv.f_files = r->inodes + (1ull << 32);
  sv.f_ffree = 1ull << 32;
  sv.f_favail = sv.f_ffree;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
}

// --------------------------------------------------------------- xattrs --

bool PosixAcl(const char* name) { return std::strncmp(name, "system.posix_acl_", 17) == 0; }
// File capabilities: the kernel asks for them before every write (to clear
// them), a round trip each. A network file system does not carry them (as
// NFS): they are refused, and asking needs no round trip.
bool FileCaps(const char* name) { return std::strcmp(name, "security.capability") == 0; }

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  StriaFs* fs = Fs(req);
  if (PosixAcl(name) || FileCaps(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);   // not carried
  Status st = fs->client().SetXattr(CallerOf(req), fs->ToStria(ino), name, std::string(value, size), flags);
  if (!st.ok()) return ReplyErr(req, st, "setxattr");
  fuse_reply_err(req, 0);
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  StriaFs* fs = Fs(req);
  if (PosixAcl(name) || FileCaps(name)) return (void)fuse_reply_err(req, ENODATA);
  auto r = fs->client().GetXattr(CallerOf(req), fs->ToStria(ino), name);
  if (!r.ok()) return ReplyErr(req, r.status(), "getxattr");
  if (size == 0) return (void)fuse_reply_xattr(req, r->size());
  if (size < r->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, r->data(), r->size());
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().ListXattr(CallerOf(req), fs->ToStria(ino));
  if (!r.ok()) return ReplyErr(req, r.status(), "listxattr");
  std::string out;
  for (const auto& n : *r) {
    out += n;
    out.push_back('\0');
  }
  if (size == 0) return (void)fuse_reply_xattr(req, out.size());
  if (size < out.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, out.data(), out.size());
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  StriaFs* fs = Fs(req);
  if (PosixAcl(name)) return (void)fuse_reply_err(req, ENODATA);
  Status st = fs->client().RemoveXattr(CallerOf(req), fs->ToStria(ino), name);
  if (!st.ok()) return ReplyErr(req, st, "removexattr");
  fuse_reply_err(req, 0);
}

// ---------------------------------------------------------------- files --

// Open flags for libstria. Without the writeback cache O_APPEND stays: the
// kernel puts an appending write at the end of file it has cached, which
// may predate another mount's close; libstria appends at the end it knows
// from meta at open. With it, the kernel writes appended pages back at the
// offsets it chose (its size is brought up to meta's at open).
int StriaFlags(const StriaFs& fs, int flags) {
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
  if (fs.options().writeback) flags &= ~O_APPEND;
  return flags;
}

// The writeback cache reads the rest of a page it writes part of, through
// the writing handle, even one opened write-only.
void AllowCacheReads(StriaFs* fs, const fuse_file_info* fi, int fd) {
  if (!fs->options().writeback || (fi->flags & O_ACCMODE) != O_WRONLY) return;
  Status st = fs->client().AllowCacheReads(fd);
  if (!st.ok()) spdlog::warn("open: {}", st.ToString());
}

bool OpensForWrite(const fuse_file_info* fi) { return (fi->flags & O_ACCMODE) != O_RDONLY; }

// What an open and a create reply with alike: the handle, and how the
// kernel is to use its page cache for it.
void SetHandle(StriaFs* fs, fuse_file_info* fi, int fd) {
  fi->fh = static_cast<uint64_t>(fd);
  // Appends bypass the page cache: the kernel would cache them at the
  // offset it computed, not where libstria put them.
  if ((fi->flags & O_APPEND) && !fs->options().writeback) fi->direct_io = 1;
  AllowCacheReads(fs, fi, fd);
}

// Writeback cache: the kernel takes no size from attributes once it holds
// an inode, so a file another mount's close made longer would end here at
// the old size. Storing the file's last byte in the kernel's cache is how
// it learns the new end (a shorter size never gets through: see
// MountOptions::writeback). Only while no handle of this mount writes the
// file (no page here may be newer than the stores' bytes), and not when
// this mount changed the size since meta answered the open (resize_mark).
void PassOnSize(StriaFs* fs, const OpenedFile& of, std::optional<uint64_t> resize_mark) {
  uint64_t ino = of.attr.ino, size = of.attr.size;
  if (of.attr.type != FileType::kRegular || size == 0 || size <= fs->inodes().KernelSize(ino)) return;
  if (!resize_mark || fs->inodes().ResizeMark(ino) != resize_mark || fs->inodes().Writers(ino) > 0) return;
  char last = 0;
  auto r = fs->client().Pread(of.fd, &last, 1, size - 1);
  if (!r.ok() || *r != 1) {
    spdlog::debug("pass on the size of inode {}: {}", ino, r.ok() ? "short read" : r.status().ToString());
    return;
  }
  fuse_bufvec one = FUSE_BUFVEC_INIT(1);
  one.buf[0].mem = &last;
  int rc = fuse_lowlevel_notify_store(fs->session(), fs->ToKernel(ino), static_cast<off_t>(size - 1), &one,
                                      FUSE_BUF_SPLICE_NONBLOCK);
  if (rc == 0) fs->inodes().SawSize(ino, size);
  else if (rc != -ENOENT) spdlog::debug("pass on the size of inode {}: {}", ino, rc);
}

// Fills in the reply to an open; an error when the open must not go on
// (the caller closes the handle and replies with it).
Status SetOpenReply(StriaFs* fs, fuse_file_info* fi, const OpenedFile& of, std::optional<uint64_t> resize_mark) {
  SetHandle(fs, fi, of.fd);
  auto d = fs->inodes().Open(of.attr.ino, of.attr.version);
  fi->keep_cache = fs->options().cache && d.keep_cache;
  if (d.stale_attr && fs->session()) {
    // The kernel's cached size may be from before another mount's close:
    // drop it now, so that reads after this open see the whole file.
    int rc = fuse_lowlevel_notify_inval_inode(fs->session(), fs->ToKernel(of.attr.ino), -1, 0);
    if (rc != 0 && rc != -ENOENT) spdlog::debug("invalidate attributes of inode {}: {}", of.attr.ino, rc);
  }
  if (!fs->options().writeback) return Status::Ok();
  std::lock_guard lk(fs->SizeLock(of.attr.ino));
  if (fi->flags & O_TRUNC) fs->inodes().SawSize(of.attr.ino, 0);   // the kernel empties it after this reply
  if (of.attr.type == FileType::kRegular && !(fi->flags & O_TRUNC)) {
    if (fs->inodes().ShrunkElsewhere(of.attr.ino, of.attr.size)) {
      // The kernel would keep the old, larger size: ESTALE makes it look
      // the name up again, and that lookup gives it a new inode.
      return Err(ESTALE, "open inode {}: {} bytes now, less than the kernel keeps; look it up again",
                 of.attr.ino, of.attr.size);
    }
    if (fs->session()) PassOnSize(fs, of, resize_mark);
  }
  fs->inodes().HandleOpened(of.attr.ino, OpensForWrite(fi));
  return Status::Ok();
}

// An open the kernel never got (its reply failed): nobody will release it.
void DropOpen(StriaFs* fs, const fuse_file_info* fi, uint64_t ino, int fd) {
  if (fs->options().writeback) fs->inodes().HandleClosed(ino, OpensForWrite(fi));
  (void)fs->client().Close(fd);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  int flags = StriaFlags(*fs, fi->flags);
  // Pages the kernel may keep make libstria's prefetch of the bytes waste.
  bool prefetch = !(fs->options().cache && fs->inodes().MayHavePages(fs->ToStria(ino)));
  auto resize_mark = fs->inodes().ResizeMark(fs->ToStria(ino));
  auto r = fs->client().Open(CallerOf(req), fs->ToStria(ino), flags, prefetch);
  if (!r.ok()) return ReplyErr(req, r.status(), "open");
  Status st = SetOpenReply(fs, fi, *r, resize_mark);
  if (!st.ok()) {
    (void)fs->client().Close(r->fd);
    return ReplyErr(req, st, "open");
  }
  if (fuse_reply_open(req, fi) != 0) DropOpen(fs, fi, r->attr.ino, r->fd);   // interrupted
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  int flags = StriaFlags(*fs, fi->flags) | O_CREAT | (fi->flags & O_EXCL);
  auto r = fs->client().Create(CallerOf(req), fs->ToStria(parent), name, flags, mode & 07777);
  if (!r.ok()) return ReplyErr(req, r.status(), "create");
  SetHandle(fs, fi, r->fd);
  uint64_t generation = fs->inodes().Ref(r->attr.ino, r->attr.version, 1, r->attr.size);
  (void)fs->inodes().Open(r->attr.ino, r->attr.version);
  if (fs->options().writeback) {
    std::lock_guard lk(fs->SizeLock(r->attr.ino));
    fs->inodes().HandleOpened(r->attr.ino, OpensForWrite(fi));
  }
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = fs->ToKernel(r->attr.ino);
  e.generation = generation;
  e.attr = ToStat(*fs, r->attr);
  e.attr_timeout = fs->options().attr_timeout;
  e.entry_timeout = fs->options().entry_timeout;
  if (fuse_reply_create(req, &e, fi) != 0) {
    DropOpen(fs, fi, r->attr.ino, r->fd);
    fs->inodes().Forget(r->attr.ino, 1);
  }
}

// One buffer per worker thread for reads (up to max_read, 1 MiB), reused.
thread_local std::vector<char> tls_read_buf;

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  // A small read that one store answers is replied to from the client's
  // network thread as the bytes arrive: handing them back to this worker
  // would cost a thread wake-up per read.
  bool started = fs->client().PreadAsync(static_cast<int>(fi->fh), size, static_cast<uint64_t>(off),
                                         [req](Result<std::span<const char>> r) {
    if (!r.ok()) return ReplyErr(req, r.status(), "read");
    fuse_reply_buf(req, r->data(), r->size());
  });
  if (started) return;
  if (tls_read_buf.size() < size) tls_read_buf.resize(size);
  auto r = fs->client().Pread(static_cast<int>(fi->fh), tls_read_buf.data(), size, static_cast<uint64_t>(off));
  if (!r.ok()) return ReplyErr(req, r.status(), "read");
  fuse_reply_buf(req, tls_read_buf.data(), *r);
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().Pwrite(static_cast<int>(fi->fh), buf, size, static_cast<uint64_t>(off));
  if (!r.ok()) return ReplyErr(req, r.status(), "write");
  if (fs->options().writeback) fs->inodes().NoteWrite(fs->ToStria(ino), static_cast<uint64_t>(off) + *r);
  fuse_reply_write(req, *r);
}

LockRange WholeFile(LockRange::Type t) {
  LockRange l;
  l.type = t;
  return l;
}

// Every close(2) of a descriptor: data becomes durable (close-to-open), and
// the closing process's POSIX locks on the file go, as POSIX says.
void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  Status st = fs->client().Fsync(static_cast<int>(fi->fh));
  if (fs->EverLocked(fs->ToStria(ino))) {
    Status lk = fs->client().SetLock(fs->ToStria(ino), fi->lock_owner, WholeFile(LockRange::kUnlock), false);
    if (!lk.ok()) spdlog::warn("release POSIX locks on inode {}: {}", ino, lk.ToString());
    fs->ForgetLockOwner(fi->fh, fi->lock_owner);
  }
  if (!st.ok()) return ReplyErr(req, st, "flush");
  fuse_reply_err(req, 0);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  if (fi->flock_release && fs->EverLocked(fs->ToStria(ino))) {
    Status lk = fs->client().SetLock(fs->ToStria(ino), fi->lock_owner, WholeFile(LockRange::kUnlock), true);
    if (!lk.ok()) spdlog::warn("release flock on inode {}: {}", ino, lk.ToString());
  }
  for (uint64_t owner : fs->TakeLockOwners(fi->fh)) {   // OFD locks (see NoteLockOwner)
    Status lk = fs->client().SetLock(fs->ToStria(ino), owner, WholeFile(LockRange::kUnlock), false);
    if (!lk.ok()) spdlog::warn("release byte-range locks on inode {}: {}", ino, lk.ToString());
  }
  Status st = fs->client().Close(static_cast<int>(fi->fh));
  if (fs->options().writeback) fs->inodes().HandleClosed(fs->ToStria(ino), OpensForWrite(fi));
  if (!st.ok()) return ReplyErr(req, st, "release");
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  Status st = fs->client().Fsync(static_cast<int>(fi->fh));
  if (!st.ok()) return ReplyErr(req, st, "fsync");
  fuse_reply_err(req, 0);
}

// The kernel asks only for SEEK_DATA and SEEK_HOLE (it moves the file
// position itself for the others): where the stores keep data and holes.
void Lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().Seek(static_cast<int>(fi->fh), off, whence);
  if (!r.ok()) {
    if (r.status().code() == ENXIO) return (void)fuse_reply_err(req, ENXIO);   // past the data: no news
    return ReplyErr(req, r.status(), "lseek");
  }
  fuse_reply_lseek(req, static_cast<off_t>(*r));
}

void Fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  if (offset < 0 || length <= 0) return (void)fuse_reply_err(req, EINVAL);
  Status st = fs->client().Fallocate(static_cast<int>(fi->fh), mode, static_cast<uint64_t>(offset),
                                     static_cast<uint64_t>(length));
  if (!st.ok()) return ReplyErr(req, st, "fallocate");
  fuse_reply_err(req, 0);
}

// ---------------------------------------------------------- directories --

// A directory handle keeps the last page read from meta: the kernel asks
// for a few KiB at a time, meta answers with many entries at once.
struct DirHandle {
  std::mutex mu;
  uint64_t ino = 0;
  DirPage page;             // entries after cookie `from`
  uint64_t from = UINT64_MAX;
};

// Offsets the kernel sees: 1 after ".", 2 after "..", cookie + 2 after an
// entry (meta's cookies start at 1 and stay valid while the directory changes).
constexpr off_t kAfterDot = 1, kAfterDotDot = 2;

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  StriaFs* fs = Fs(req);
  // Reading a directory needs read permission on it (the kernel only sends
  // opendir for directories).
  Status st = fs->client().Access(CallerOf(req), fs->ToStria(ino), R_OK);
  if (!st.ok()) return ReplyErr(req, st, "opendir");
  auto* d = new DirHandle();
  d->ino = fs->ToStria(ino);
  fi->fh = reinterpret_cast<uint64_t>(d);
  fi->cache_readdir = 0;
  if (fuse_reply_open(req, fi) != 0) delete d;
}

// Fills buf with entries from offset off. Runs under the handle's lock;
// the caller replies after releasing it (the reply may let the kernel
// release the handle at once, from another thread).
Status FillDir(fuse_req_t req, fuse_ino_t ino, DirHandle* d, std::vector<char>& buf, size_t* used_out,
               off_t off, bool plus) {
  StriaFs* fs = Fs(req);
  size_t size = buf.size();
  size_t& used = *used_out;
  auto add = [&](const char* name, const struct stat& st, off_t next, const FileAttr* attr) -> bool {
    size_t n;
    if (plus) {
      fuse_entry_param e;
      std::memset(&e, 0, sizeof(e));
      e.attr = st;
      if (attr) {
        e.ino = st.st_ino;
        e.generation = fs->inodes().Generation(attr->ino);
        e.attr_timeout = fs->options().attr_timeout;
        e.entry_timeout = fs->options().entry_timeout;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
    } else {
      n = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
    }
    if (n > size - used) return false;
    used += n;
    if (plus && attr) fs->inodes().Ref(attr->ino, attr->version, 1, attr->size);
    return true;
  };
  struct stat dot;
  std::memset(&dot, 0, sizeof(dot));
  dot.st_mode = S_IFDIR;
  if (off < kAfterDot) {
    dot.st_ino = ino;
    if (!add(".", dot, kAfterDot, nullptr)) return Status::Ok();
    off = kAfterDot;
  }
  if (off < kAfterDotDot) {
    // The parent is not known here; any non-zero number keeps readdir(3)
    // from skipping the entry (stat("..") asks the kernel, which knows).
    dot.st_ino = FUSE_ROOT_ID;
    if (!add("..", dot, kAfterDotDot, nullptr)) return Status::Ok();
    off = kAfterDotDot;
  }
  uint64_t cookie = static_cast<uint64_t>(off - kAfterDotDot);
  Caller caller = CallerOf(req);
  while (true) {
    // The cached page serves this offset when it starts at or before it.
    bool cached = d->from != UINT64_MAX && d->from <= cookie &&
                  (d->page.entries.empty() || d->page.entries.back().cookie > cookie || d->page.eof);
    if (!cached) {
      uint32_t want = static_cast<uint32_t>(std::clamp<size_t>(size / 24, 32, 1024));
      auto r = fs->client().ReadDir(caller, d->ino, cookie, want, plus);
      if (!r.ok()) return used > 0 ? Status::Ok() : r.status();
      d->page = std::move(r).value();
      d->from = cookie;
    }
    for (size_t i = 0; i < d->page.entries.size(); i++) {
      const DirEntry& e = d->page.entries[i];
      if (e.cookie <= cookie) continue;
      struct stat st;
      const FileAttr* attr = nullptr;
      if (plus && i < d->page.attrs.size() && d->page.attrs[i].ino != 0) {
        attr = &d->page.attrs[i];
        st = ToStat(*fs, *attr);
      } else {
        std::memset(&st, 0, sizeof(st));
        st.st_ino = fs->ToKernel(e.ino);
        st.st_mode = TypeBits(e.type);
      }
      if (!add(e.name.c_str(), st, static_cast<off_t>(e.cookie) + kAfterDotDot, attr)) return Status::Ok();
      cookie = e.cookie;
    }
    if (d->page.eof || d->page.entries.empty()) return Status::Ok();
    // This page is used up and more entries follow: read the next.
    d->from = UINT64_MAX;
  }
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  auto* d = reinterpret_cast<DirHandle*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  Status st;
  {
    std::lock_guard lk(d->mu);
    st = FillDir(req, ino, d, buf, &used, off, plus);
  }
  if (!st.ok()) return ReplyErr(req, st, "readdir");
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, ino, size, off, fi, false);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, ino, size, off, fi, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);   // every namespace change is durable before its reply
}

// ---------------------------------------------------------------- locks --

LockRange FromFlock(const struct flock* l) {
  LockRange r;
  r.type = l->l_type == F_RDLCK ? LockRange::kRead : l->l_type == F_WRLCK ? LockRange::kWrite : LockRange::kUnlock;
  r.start = static_cast<uint64_t>(l->l_start);
  r.end = l->l_len == 0 ? UINT64_MAX : static_cast<uint64_t>(l->l_start + l->l_len - 1);
  r.pid = static_cast<uint32_t>(l->l_pid);
  return r;
}

void GetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) {
  StriaFs* fs = Fs(req);
  auto r = fs->client().GetLock(fs->ToStria(ino), fi->lock_owner, FromFlock(lock), false);
  if (!r.ok()) return ReplyErr(req, r.status(), "getlk");
  struct flock out = *lock;
  if (r->type == LockRange::kUnlock) {
    out.l_type = F_UNLCK;
  } else {
    out.l_type = r->type == LockRange::kRead ? F_RDLCK : F_WRLCK;
    out.l_start = static_cast<off_t>(r->start);
    out.l_len = r->end == UINT64_MAX ? 0 : static_cast<off_t>(r->end - r->start + 1);
    out.l_pid = static_cast<pid_t>(r->pid);
  }
  fuse_reply_lock(req, &out);
}

// Sets a lock; when it must wait (F_SETLKW, flock without LOCK_NB), retries
// until it is granted or the caller is interrupted (a signal: EINTR).
void SetLockWaiting(fuse_req_t req, fuse_ino_t ino, uint64_t owner, const LockRange& l, bool flock, bool wait) {
  StriaFs* fs = Fs(req);
  auto pause = std::chrono::milliseconds(1);
  if (l.type != LockRange::kUnlock) fs->MarkLocked(fs->ToStria(ino));
  while (true) {
    Status st = fs->client().SetLock(fs->ToStria(ino), owner, l, flock);
    if (st.ok()) return (void)fuse_reply_err(req, 0);
    if (st.code() != EAGAIN || !wait) return ReplyErr(req, st, flock ? "flock" : "setlk");
    if (fuse_req_interrupted(req)) return (void)fuse_reply_err(req, EINTR);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

void SetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep) {
  LockRange l = FromFlock(lock);
  l.pid = static_cast<uint32_t>(fuse_req_ctx(req)->pid);
  if (l.type != LockRange::kUnlock) Fs(req)->NoteLockOwner(fi->fh, fi->lock_owner);
  SetLockWaiting(req, ino, fi->lock_owner, l, false, sleep != 0);
}

void Flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) {
  LockRange l = WholeFile((op & LOCK_SH) ? LockRange::kRead : (op & LOCK_EX) ? LockRange::kWrite : LockRange::kUnlock);
  l.pid = static_cast<uint32_t>(fuse_req_ctx(req)->pid);
  SetLockWaiting(req, ino, fi->lock_owner, l, true, !(op & LOCK_NB) && l.type != LockRange::kUnlock);
}

}  // namespace

StriaFs::StriaFs(std::unique_ptr<Client> client, MountOptions opt)
    : client_(std::move(client)), opt_(std::move(opt)), root_(client_->RootIno()) {}

const fuse_lowlevel_ops* StriaFs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o;
    std::memset(&o, 0, sizeof(o));
    o.init = Init;
    o.lookup = Lookup;
    o.forget = Forget;
    o.forget_multi = ForgetMulti;
    o.getattr = GetAttr;
    o.setattr = SetAttr;
    o.readlink = Readlink;
    o.mknod = Mknod;
    o.mkdir = Mkdir;
    o.unlink = Unlink;
    o.rmdir = Rmdir;
    o.symlink = Symlink;
    o.rename = Rename;
    o.link = Link;
    o.open = Open;
    o.read = Read;
    o.write = Write;
    o.flush = Flush;
    o.release = Release;
    o.fsync = Fsync;
    o.opendir = OpenDir;
    o.readdir = ReadDir;
    o.readdirplus = ReadDirPlus;
    o.releasedir = ReleaseDir;
    o.fsyncdir = FsyncDir;
    o.statfs = StatFs;
    o.setxattr = SetXattr;
    o.getxattr = GetXattr;
    o.listxattr = ListXattr;
    o.removexattr = RemoveXattr;
    o.access = Access;
    o.create = Create;
    o.getlk = GetLk;
    o.setlk = SetLk;
    o.flock = Flock;
    o.fallocate = Fallocate;
    o.lseek = Lseek;
    return o;
  }();
  return &ops;
}

}  // namespace stria::fuse
