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

// Runs fn on ino's entry under the lock, if the kernel holds ino.
template <typename Fn>
void InodeTable::Update(uint64_t ino, Fn&& fn) {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  if (it != map_.end()) fn(it->second);
}

// fn(entry) under the lock; `none` when the kernel does not hold ino.
template <typename T, typename Fn>
T InodeTable::Read(uint64_t ino, T none, Fn&& fn) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(ino);
  return it == map_.end() ? none : fn(it->second);
}

uint64_t InodeTable::KernelSize(uint64_t ino) const {
  return Read(ino, uint64_t{0}, [](const Entry& e) { return e.kernel_size; });
}

void InodeTable::SawSize(uint64_t ino, uint64_t size) {
  Update(ino, [&](Entry& e) { e.kernel_size = size; });
}

void InodeTable::NoteWrite(uint64_t ino, uint64_t end) {
  Update(ino, [&](Entry& e) { e.kernel_size = std::max(e.kernel_size, end); });
}

void InodeTable::HandleOpened(uint64_t ino, bool write) {
  Update(ino, [&](Entry& e) {
    e.opens++;
    if (write) e.writers++;
  });
}

void InodeTable::HandleClosed(uint64_t ino, bool write) {
  Update(ino, [&](Entry& e) {
    if (e.opens > 0) e.opens--;
    if (write && e.writers > 0) e.writers--;
  });
}

uint32_t InodeTable::Writers(uint64_t ino) const {
  return Read(ino, uint32_t{0}, [](const Entry& e) { return e.writers; });
}

bool InodeTable::ShrunkLocked(const Entry& e, uint64_t size) {
  return size < e.kernel_size && e.opens == 0 && e.resizing == 0;
}

bool InodeTable::ShrunkElsewhere(uint64_t ino, uint64_t size) const {
  return Read(ino, false, [&](const Entry& e) { return ShrunkLocked(e, size); });
}

uint64_t InodeTable::Generation(uint64_t ino) const {
  return Read(ino, uint64_t{0}, [](const Entry& e) { return e.generation; });
}

bool InodeTable::ReplaceIfShrunk(uint64_t ino, uint64_t size) {
  bool replaced = false;
  Update(ino, [&](Entry& e) {
    if (!ShrunkLocked(e, size)) return;
    e.generation++;
    e.kernel_size = size;
    e.pages_version = 0;   // the new inode has no pages
    replaced = true;
  });
  return replaced;
}

void InodeTable::SawAttr(uint64_t ino, uint64_t version) {
  Update(ino, [&](Entry& e) { e.attr_version = version; });
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
  Update(ino, [](Entry& e) {
    e.resizing++;
    e.resizes++;
  });
}

void InodeTable::ResizeEnd(uint64_t ino) {
  Update(ino, [](Entry& e) {
    if (e.resizing > 0) e.resizing--;
  });
}

std::optional<uint64_t> InodeTable::ResizeMark(uint64_t ino) const {
  // Unknown to the kernel: nothing to pass on.
  return Read(ino, std::optional<uint64_t>(), [](const Entry& e) {
    return e.resizing > 0 ? std::nullopt : std::optional<uint64_t>(e.resizes);
  });
}

bool InodeTable::MayHavePages(uint64_t ino) const {
  return Read(ino, false, [](const Entry& e) { return e.pages_version != 0; });
}

uint64_t InodeTable::Refs(uint64_t ino) const {
  return Read(ino, uint64_t{0}, [](const Entry& e) { return e.refs; });
}

size_t InodeTable::size() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

}  // namespace stria::fuse
