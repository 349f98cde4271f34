// Client sessions and their open files, in memory only: clients re-send
// their open sets with every heartbeat (and when resuming after a meta
// restart), so nothing here needs to survive a restart. Used under
// MetaService's state mutex only, so no locking of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

namespace stria::meta {

class Sessions {
 public:
  bool Exists(uint64_t id) const { return sessions_.count(id) != 0; }
  // Creates the session if needed and renews its lease.
  void Touch(uint64_t id, int64_t now_ms);
  // One more open of ino by session id (which is touched).
  void AddOpen(uint64_t id, uint64_t ino, int64_t now_ms);
  // One open fewer; unknown sessions or inodes are ignored.
  void DropOpen(uint64_t id, uint64_t ino);
  // The session's open set becomes inos (a heartbeat's view), except for
  // files the session opened in the last grace_ms: the client took its
  // view before sending the heartbeat, maybe before those opens reached
  // meta, so their counts stay (a close that got lost is repaired by a
  // later heartbeat).
  void ReplaceOpens(uint64_t id, const std::vector<uint64_t>& inos, int64_t now_ms = 0, int64_t grace_ms = 0);
  // Whether any live session holds ino open.
  bool IsOpen(uint64_t ino) const { return open_count_.count(ino) != 0; }
  // Drops sessions without a touch for timeout_ms; returns their ids.
  std::vector<uint64_t> Expire(int64_t now_ms, int64_t timeout_ms);
  size_t size() const { return sessions_.size(); }
  // When ino was last opened (ns since the epoch; 0: not since meta
  // started): what the watermark release calls "used".
  void NoteUse(uint64_t ino, int64_t now_ns);
  int64_t LastUse(uint64_t ino) const {
    auto it = last_use_.find(ino);
    return it == last_use_.end() ? 0 : it->second;
  }

 private:
  struct Session {
    int64_t last_ms = 0;
    std::map<uint64_t, int> opens;   // ino -> count
    std::map<uint64_t, int64_t> opened_ms;   // ino -> its last AddOpen (pruned by ReplaceOpens)
  };
  void Forget(Session& s);

  std::unordered_map<uint64_t, Session> sessions_;
  std::unordered_map<uint64_t, int> open_count_;   // ino -> opens over all sessions
  std::unordered_map<uint64_t, int64_t> last_use_;  // ino -> last open, bounded (NoteUse)
};

}  // namespace stria::meta
