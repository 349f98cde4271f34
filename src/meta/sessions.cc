// Sessions: the table, and the SESSION_OPEN / SESSION_HEARTBEAT operations.
#include "meta/sessions.h"

#include <algorithm>
#include <random>

#include "common/util.h"
#include "meta/meta_service.h"

namespace stria::meta {

namespace {
// Sessions opened while writes are stopped carry this bit: the counter
// never reaches it.
constexpr uint64_t kUncountedSession = uint64_t{1} << 62;
}  // namespace

void Sessions::Touch(uint64_t id, int64_t now_ms) { sessions_[id].last_ms = now_ms; }

void Sessions::AddOpen(uint64_t id, uint64_t ino, int64_t now_ms) {
  auto& s = sessions_[id];
  s.last_ms = now_ms;
  s.opens[ino]++;
  s.opened_ms[ino] = now_ms;
  open_count_[ino]++;
}

void Sessions::NoteUse(uint64_t ino, int64_t now_ns) {
  // Bounded memory: past a million files, the oldest knowledge goes (those
  // files fall back to their mtime, which is never later).
  if (last_use_.size() >= 1000000 && !last_use_.count(ino)) last_use_.clear();
  last_use_[ino] = now_ns;
}

void Sessions::DropOpen(uint64_t id, uint64_t ino) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  auto o = it->second.opens.find(ino);
  if (o == it->second.opens.end()) return;
  if (--o->second <= 0) it->second.opens.erase(o);
  if (--open_count_[ino] <= 0) open_count_.erase(ino);
}

void Sessions::Forget(Session& s) {
  for (const auto& [ino, n] : s.opens) {
    if ((open_count_[ino] -= n) <= 0) open_count_.erase(ino);
  }
  s.opens.clear();
}

void Sessions::ReplaceOpens(uint64_t id, const std::vector<uint64_t>& inos, int64_t now_ms, int64_t grace_ms) {
  auto& s = sessions_[id];
  std::map<uint64_t, int> opens;
  for (auto ino : inos) opens[ino]++;
  for (auto it = s.opened_ms.begin(); it != s.opened_ms.end();) {
    if (now_ms - it->second > grace_ms) {
      it = s.opened_ms.erase(it);
      continue;
    }
    auto old = s.opens.find(it->first);
    if (old != s.opens.end()) opens[it->first] = std::max(opens[it->first], old->second);
    ++it;
  }
  Forget(s);
  for (const auto& [ino, n] : opens) {
    s.opens[ino] = n;
    open_count_[ino] += n;
  }
}

std::vector<uint64_t> Sessions::Expire(int64_t now_ms, int64_t timeout_ms) {
  std::vector<uint64_t> gone;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now_ms - it->second.last_ms > timeout_ms) {
      gone.push_back(it->first);
      Forget(it->second);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

Result<std::string> OpSessionOpen(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SessionOpenRequest>(msg, "session open"));
  uint64_t id = req.resume_session();
  int64_t now = MonoMs();
  if (id == 0 && c.writes_stopped()) {
    // No counter can be written: a random id above any the counter gives
    // (it counts from 1), so that new clients can still mount and read.
    static thread_local std::mt19937_64 rng(std::random_device{}());
    do {
      id = kUncountedSession | (rng() & ((uint64_t{1} << 48) - 1));
    } while (c.sessions.Exists(id));
  } else if (id == 0) {
    STRIA_ASSIGN_OR_RETURN(id, c.NextCounter(t, "session", 1));
  }
  // A resumed session (meta restarted, or the lease ran out) brings back
  // its opens, so its unlinked-but-open files stay alive.
  if (req.resume_session() == 0 || !c.sessions.Exists(id)) {
    c.sessions.ReplaceOpens(id, {req.open_inodes().begin(), req.open_inodes().end()});
  }
  c.sessions.Touch(id, now);
  proto::SessionOpenReply rep;
  rep.set_session(id);
  rep.set_root_ino(1);
  rep.set_heartbeat_ms(c.options().session_heartbeat_ms);
  return rep.SerializeAsString();
}

Result<std::string> OpSessionHeartbeat(Ctx& c, Txn&, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SessionHeartbeatRequest>(msg, "session heartbeat"));
  if (!c.sessions.Exists(req.session())) {
    return Err(ENOENT, "session {} is unknown (expired or meta restarted)", req.session());
  }
  int64_t now = MonoMs();
  c.sessions.Touch(req.session(), now);
  // The heartbeat left the client up to a heartbeat period ago (its
  // timeout): opens since then may be missing from it.
  c.sessions.ReplaceOpens(req.session(), {req.open_inodes().begin(), req.open_inodes().end()}, now,
                          2 * int64_t{c.options().session_heartbeat_ms});
  return proto::SessionHeartbeatReply().SerializeAsString();
}

}  // namespace stria::meta
