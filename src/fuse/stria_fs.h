// StriaFs: the FUSE low-level operations of a Stria mount, on libstria.
//
// Handlers are thin: each turns the request into one libstria call made for
// the request's caller (uid, gid, supplementary groups), and the Status into
// an errno. Permissions are checked by stria-meta (and, when the mount
// says default_permissions, by the kernel first). File handles are
// libstria fds; directory handles hold the last page read from meta.
//
// Threading: libfuse calls the handlers from its worker threads; StriaFs
// and libstria are thread-safe.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "fuse/inode_table.h"
#include "fuse/mount_options.h"
#include "stria/client.h"

namespace stria::fuse {

class StriaFs {
 public:
  StriaFs(std::unique_ptr<Client> client, MountOptions opt);

  // The operation table to pass to fuse_session_new (userdata: this).
  static const fuse_lowlevel_ops* Ops();
  // Set once the session exists (for cache invalidation notices).
  void set_session(fuse_session* se) { se_ = se; }

  Client& client() { return *client_; }
  // Closes the client once the session loop has ended: its files are
  // flushed, and the reads it answers from its own thread have all been
  // replied to before the session goes.
  void CloseClient() { client_.reset(); }
  const MountOptions& options() const { return opt_; }
  InodeTable& inodes() { return inodes_; }
  fuse_session* session() const { return se_; }
  // Whether the kernel's INIT has been answered (set by the init handler).
  bool initialized() const { return initialized_.load(); }
  void MarkInitialized() { initialized_.store(true); }

  // Stria's inode number for the kernel's (the root is FUSE_ROOT_ID).
  uint64_t ToStria(fuse_ino_t ino) const { return ino == FUSE_ROOT_ID ? root_ : ino; }
  fuse_ino_t ToKernel(uint64_t ino) const { return ino == root_ ? FUSE_ROOT_ID : ino; }

  // Inodes this mount ever asked a lock for: only their closes must send
  // meta an unlock (a round trip every other close is spared).
  void MarkLocked(uint64_t ino) {
    std::lock_guard lk(locked_mu_);
    locked_.insert(ino);
  }
  bool EverLocked(uint64_t ino) const {
    std::lock_guard lk(locked_mu_);
    return locked_.count(ino) != 0;
  }
  // The lock owners that took a byte-range lock through handle fh. An OFD
  // lock's owner is its open file description, and the kernel tells a FUSE
  // server nothing when that goes but the handle's RELEASE: the locks of
  // the owners still noted go then. A process's POSIX locks go at each of
  // its closes (FLUSH, whose owner is the process), which forgets it here:
  // the handle's RELEASE must not drop what it locks later through another.
  void NoteLockOwner(uint64_t fh, uint64_t owner) {
    std::lock_guard lk(locked_mu_);
    owners_[fh].insert(owner);
  }
  void ForgetLockOwner(uint64_t fh, uint64_t owner) {
    std::lock_guard lk(locked_mu_);
    auto it = owners_.find(fh);
    if (it == owners_.end()) return;
    it->second.erase(owner);
    if (it->second.empty()) owners_.erase(it);
  }
  std::set<uint64_t> TakeLockOwners(uint64_t fh) {
    std::lock_guard lk(locked_mu_);
    auto it = owners_.find(fh);
    if (it == owners_.end()) return {};
    std::set<uint64_t> out = std::move(it->second);
    owners_.erase(it);
    return out;
  }

  // Held while an open decides whether to pass a file's size on to the
  // kernel (writeback cache) and while a write open is counted, so that
  // no page written here can be overwritten by what the open stores.
  std::mutex& SizeLock(uint64_t ino) { return size_locks_[ino % kSizeLocks]; }

 private:
  std::unique_ptr<Client> client_;
  MountOptions opt_;
  InodeTable inodes_;
  uint64_t root_;
  fuse_session* se_ = nullptr;
  std::atomic<bool> initialized_{false};
  static constexpr size_t kSizeLocks = 64;
  std::mutex size_locks_[kSizeLocks];
  mutable std::mutex locked_mu_;
  std::unordered_set<uint64_t> locked_;   // GUARDED_BY(locked_mu_)
  std::unordered_map<uint64_t, std::set<uint64_t>> owners_;   // GUARDED_BY(locked_mu_), by handle
};

}  // namespace stria::fuse
