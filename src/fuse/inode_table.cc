#include "fuse/inode_table.h"

namespace stria::fuse {

void InodeTable::Ref(uint64_t ino, uint64_t version, uint64_t n) {
  std::lock_guard lk(mu_);
  Entry& e = map_[ino];
  e.refs += n;
  e.attr_version = version;
}

void InodeTable::SawAttr(uint64_t ino, uint64_t version) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it != map_.end()) it->second.attr_version = version;
}

bool InodeTable::Forget(uint64_t ino, uint64_t n) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it == map_.end() || it->second.refs < n) {
    if (it != map_.end()) map_.erase(it);
    return false;
  }
  it->second.refs -= n;
  if (it->second.refs == 0) map_.erase(it);
  return true;
}

InodeTable::OpenDecision InodeTable::Open(uint64_t ino, uint64_t version) {
  std::lock_guard lk(mu_);
  OpenDecision d;
  auto it = map_.find(ino);
  if (it == map_.end()) {
    d.stale_attr = true;   // unknown to us: be safe
    return d;
  }
  Entry& e = it->second;
  d.keep_cache = e.pages_version == version;
  d.stale_attr = e.attr_version != version;
  e.pages_version = version;
  e.attr_version = version;
  return d;
}

bool InodeTable::MayHavePages(uint64_t ino) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  return it != map_.end() && it->second.pages_version != 0;
}

uint64_t InodeTable::Refs(uint64_t ino) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  return it == map_.end() ? 0 : it->second.refs;
}

size_t InodeTable::size() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

}  // namespace stria::fuse
