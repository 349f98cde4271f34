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
#include <unordered_map>

namespace stria::fuse {

class InodeTable {
 public:
  // The kernel now holds n more references to ino (lookup, create, ...)
  // and got attributes of content version `version` with them.
  void Ref(uint64_t ino, uint64_t version, uint64_t n = 1);
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
  };
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> map_;   // GUARDED_BY(mu_)
};

}  // namespace stria::fuse
