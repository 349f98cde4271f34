// The kernel's references to inodes (lookup counts) and, per inode, which
// content version the kernel holds: in its attribute cache (the last
// attributes we replied with) and in its page cache (pages read since the
// last open). Stria keeps no descriptor or other resource per inode; this
// table decides, at open, whether the kernel may keep its pages
// (keep_cache) and whether its cached attributes (the size) must be dropped
// first: that is what makes close-to-open consistency hold between mounts.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace stria::fuse {

class InodeTable {
 public:
  // The kernel now holds n more references to ino (lookup, create, ...)
  // and got attributes of content version `version` and size `size` with
  // them. Returns the generation to give the kernel with the entry.
  uint64_t Ref(uint64_t ino, uint64_t version, uint64_t n = 1, uint64_t size = 0);
  // The kernel got attributes of this version (getattr, setattr).
  void SawAttr(uint64_t ino, uint64_t version);
  // The kernel dropped n references (forget). Returns false when that
  // would take the count below zero (a kernel/daemon mismatch).
  bool Forget(uint64_t ino, uint64_t n);

  struct OpenDecision {
    bool keep_cache = false;    // pages cached at this version: keep them
    bool stale_attr = false;    // attributes of another version: drop them
  };
  // At open of ino, whose content is now at version.
  OpenDecision Open(uint64_t ino, uint64_t version);

  // The file size the kernel keeps itself under the writeback cache, as
  // far as this table knows: a new kernel inode takes the size it is given
  // and keeps it against later replies; writes and size changes through
  // this mount move it (writes past the end may go unnoticed: it may be
  // lower than the kernel's, never higher but in a forget/lookup race).
  uint64_t KernelSize(uint64_t ino) const;
  void SawSize(uint64_t ino, uint64_t size);   // the kernel now has exactly this size
  void NoteWrite(uint64_t ino, uint64_t end);  // the kernel wrote up to end

  // Handles of ino open through this mount (write: for writing). While a
  // writer is open, the kernel may hold pages written here and not yet
  // sent.
  void HandleOpened(uint64_t ino, bool write);
  void HandleClosed(uint64_t ino, bool write);
  uint32_t Writers(uint64_t ino) const;

  // Writeback cache: the file is `size` bytes now, less than the kernel
  // keeps, and no handle or size change of this mount is in the way of
  // the kernel taking a fresh inode for it.
  bool ShrunkElsewhere(uint64_t ino, uint64_t size) const;
  // If ShrunkElsewhere, gives ino a new generation (the kernel drops its
  // inode for a new one at the entry replied with it) and returns true.
  bool ReplaceIfShrunk(uint64_t ino, uint64_t size);
  uint64_t Generation(uint64_t ino) const;

  // Size changes this mount sends (truncate), for the writeback cache: a
  // size meta gave before one may be older than the kernel's afterwards.
  // ResizeMark is nullopt while one is in flight; an open may pass its
  // size on to the kernel only if the mark it took before is unchanged.
  void ResizeStart(uint64_t ino);
  void ResizeEnd(uint64_t ino);
  std::optional<uint64_t> ResizeMark(uint64_t ino) const;

  // Whether the kernel may hold pages of ino (it was opened since it was
  // last forgotten).
  bool MayHavePages(uint64_t ino) const;

  uint64_t Refs(uint64_t ino) const;
  size_t size() const;

 private:
  struct Entry {
    uint64_t refs = 0;
    uint64_t attr_version = 0;    // 0: unknown
    uint64_t pages_version = 0;   // 0: no pages known valid
    uint64_t kernel_size = 0;     // see KernelSize
    uint64_t generation = 0;      // given with entries; new: the kernel drops its inode
    uint32_t opens = 0;           // handles open
    uint32_t writers = 0;         // handles open for writing
    uint32_t resizing = 0;        // size changes in flight
    uint64_t resizes = 0;         // size changes started
  };
  static bool ShrunkLocked(const Entry& e, uint64_t size);
  template <typename Fn>
  void Update(uint64_t ino, Fn&& fn);
  template <typename T, typename Fn>
  T Read(uint64_t ino, T none, Fn&& fn) const;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> map_;   // GUARDED_BY(mu_)
};

}  // namespace stria::fuse
