#include "fuse/inode_table.h"

#include <algorithm>

namespace stria::fuse {

uint64_t InodeTable::Ref(uint64_t ino, uint64_t version, uint64_t n, uint64_t size) {
  std::lock_guard lk(mu_);
  auto [it, fresh] = map_.try_emplace(ino);
  Entry& e = it->second;
  if (fresh) e.kernel_size = size;   // a new kernel inode takes it; one it holds keeps its own
  e.refs += n;
  e.attr_version = version;
  return e.generation;
}

uint64_t InodeTable::KernelSize(uint64_t ino) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  return it == map_.end() ? 0 : it->second.kernel_size;
}

void InodeTable::SawSize(uint64_t ino, uint64_t size) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it != map_.end()) it->second.kernel_size = size;
}

void InodeTable::NoteWrite(uint64_t ino, uint64_t end) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it != map_.end()) it->second.kernel_size = std::max(it->second.kernel_size, end);
}

void InodeTable::HandleOpened(uint64_t ino, bool write) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it == map_.end()) return;
  it->second.opens++;
  if (write) it->second.writers++;
}

void InodeTable::HandleClosed(uint64_t ino, bool write) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it == map_.end()) return;
  if (it->second.opens > 0) it->second.opens--;
  if (write && it->second.writers > 0) it->second.writers--;
}

bool InodeTable::ShrunkLocked(const Entry& e, uint64_t size) {
  return size < e.kernel_size && e.opens == 0 && e.resizing == 0;
}

bool InodeTable::ShrunkElsewhere(uint64_t ino, uint64_t size) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  return it != map_.end() && ShrunkLocked(it->second, size);
}

uint64_t InodeTable::Generation(uint64_t ino) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  return it == map_.end() ? 0 : it->second.generation;
}

bool InodeTable::ReplaceIfShrunk(uint64_t ino, uint64_t size) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it == map_.end() || !ShrunkLocked(it->second, size)) return false;
  Entry& e = it->second;
  e.generation++;
  e.kernel_size = size;
  e.pages_version = 0;   // the new inode has no pages
  return true;
}

uint32_t InodeTable::Writers(uint64_t ino) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  return it == map_.end() ? 0 : it->second.writers;
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

void InodeTable::ResizeStart(uint64_t ino) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it == map_.end()) return;
  it->second.resizing++;
  it->second.resizes++;
}

void InodeTable::ResizeEnd(uint64_t ino) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it != map_.end() && it->second.resizing > 0) it->second.resizing--;
}

std::optional<uint64_t> InodeTable::ResizeMark(uint64_t ino) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it == map_.end()) return std::nullopt;   // not known to the kernel: nothing to pass on
  if (it->second.resizing > 0) return std::nullopt;
  return it->second.resizes;
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
