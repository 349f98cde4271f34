#include "meta/locks.h"

#include <algorithm>

namespace stria::meta {

namespace {

bool Overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) { return a0 <= b1 && b0 <= a1; }

bool Conflicts(proto::LockType a, proto::LockType b) {
  return a == proto::LK_WRITE || b == proto::LK_WRITE;
}

}  // namespace

std::optional<LockTable::Lock> LockTable::Conflict(uint64_t ino, bool flock, const Holder& h,
                                                   proto::LockType type, uint64_t start,
                                                   uint64_t end) const {
  if (type == proto::LK_UNLOCK) return std::nullopt;
  auto it = locks_.find({ino, flock});
  if (it == locks_.end()) return std::nullopt;
  for (const Lock& l : it->second) {
    if (l.holder == h) continue;
    if (Overlaps(l.start, l.end, start, end) && Conflicts(l.type, type)) return l;
  }
  return std::nullopt;
}

Status LockTable::Set(uint64_t ino, bool flock, const Lock& lock) {
  if (lock.start > lock.end) return Err(EINVAL, "lock on inode {}: start {} after end {}", ino, lock.start, lock.end);
  if (auto c = Conflict(ino, flock, lock.holder, lock.type, lock.start, lock.end)) {
    return Err(EAGAIN, "lock on inode {}: bytes {}..{} are locked by pid {}", ino, c->start, c->end, c->pid);
  }
  auto& list = locks_[{ino, flock}];
  std::vector<Lock> out;
  out.reserve(list.size() + 2);
  // Cut the holder's ranges around [start, end]; others stay as they are.
  for (const Lock& l : list) {
    if (!(l.holder == lock.holder) || !Overlaps(l.start, l.end, lock.start, lock.end)) {
      out.push_back(l);
      continue;
    }
    if (l.start < lock.start) {
      Lock left = l;
      left.end = lock.start - 1;
      out.push_back(left);
    }
    if (l.end > lock.end) {
      Lock right = l;
      right.start = lock.end + 1;
      out.push_back(right);
    }
  }
  if (lock.type != proto::LK_UNLOCK) {
    Lock merged = lock;
    // Absorb the holder's ranges of the same type that touch the new one.
    std::vector<Lock> rest;
    for (const Lock& l : out) {
      bool touches = l.holder == lock.holder && l.type == lock.type &&
                     (Overlaps(l.start, l.end, merged.start, merged.end) ||
                      (merged.end != UINT64_MAX && l.start == merged.end + 1) ||
                      (merged.start != 0 && l.end == merged.start - 1));
      if (touches) {
        merged.start = std::min(merged.start, l.start);
        merged.end = std::max(merged.end, l.end);
      } else {
        rest.push_back(l);
      }
    }
    rest.push_back(merged);
    out.swap(rest);
  }
  if (out.empty()) {
    locks_.erase({ino, flock});
  } else {
    list.swap(out);
  }
  return Status::Ok();
}

void LockTable::DropSession(uint64_t session) {
  for (auto it = locks_.begin(); it != locks_.end();) {
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const Lock& l) { return l.holder.session == session; }),
            v.end());
    it = v.empty() ? locks_.erase(it) : std::next(it);
  }
}

std::vector<LockTable::Lock> LockTable::Held(uint64_t ino, bool flock) const {
  auto it = locks_.find({ino, flock});
  if (it == locks_.end()) return {};
  std::vector<Lock> v = it->second;
  std::sort(v.begin(), v.end(), [](const Lock& a, const Lock& b) { return a.start < b.start; });
  return v;
}

size_t LockTable::size() const {
  size_t n = 0;
  for (const auto& [k, v] : locks_) n += v.size();
  return n;
}

}  // namespace stria::meta
