// Advisory locks (fcntl byte-range and flock), held in meta's memory so
// that they hold between clients. A holder is (session, owner). Locks die
// with their session (expiry) and are not kept across a meta restart.
// Used under MetaService's state mutex only, so no locking of its own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "common/status.h"
#include "proto/stria.pb.h"

namespace stria::meta {

class LockTable {
 public:
  struct Holder {
    uint64_t session = 0;
    uint64_t owner = 0;
    bool operator==(const Holder&) const = default;
  };
  struct Lock {
    Holder holder;
    proto::LockType type = proto::LK_UNLOCK;
    uint64_t start = 0, end = UINT64_MAX;   // inclusive
    uint32_t pid = 0;
  };

  // The first lock of another holder on ino (same set: flock or POSIX) that
  // conflicts with type over [start, end], if any.
  std::optional<Lock> Conflict(uint64_t ino, bool flock, const Holder& h, proto::LockType type,
                               uint64_t start, uint64_t end) const;
  // Sets lock.type over [start, end] for lock.holder (LK_UNLOCK releases):
  // the holder's own overlapping ranges are replaced, split where needed,
  // and adjacent ranges of the same type merged, as POSIX locks behave.
  // EAGAIN on a conflict with another holder (nothing changes then).
  Status Set(uint64_t ino, bool flock, const Lock& lock);
  // Releases every lock of the session (it ended).
  void DropSession(uint64_t session);
  // Locks held on ino (both sets), for tests and metrics.
  std::vector<Lock> Held(uint64_t ino, bool flock) const;
  size_t size() const;

 private:
  std::map<std::pair<uint64_t, bool>, std::vector<Lock>> locks_;   // (ino, flock) -> locks
};

}  // namespace stria::meta
