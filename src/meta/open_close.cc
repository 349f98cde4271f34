// Client sessions and open files: SessionOpen/Heartbeat, Open, Close and
// CommitWrite. Opens are kept in memory per session; a client re-sends its
// open set with every heartbeat, so a restarted meta learns it again.
#include <fcntl.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/permissions.h"

namespace stria::meta {

Status TruncateToZero(Ctx& c, Txn& t, InodeRecord& rec);   // setattr.cc

Status OpenForSession(Ctx& c, uint64_t session, uint64_t ino) {
  if (session == 0) return Status::Ok();   // a one-off caller without a session
  auto& s = c.sessions[session];
  s.last_ms = MonoMs();
  s.opens[ino]++;
  return Status::Ok();
}

Result<std::string> OpSessionOpen(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SessionOpenRequest>(msg, "session open"));
  uint64_t id = req.resume_session();
  if (id == 0 || !c.sessions.count(id)) {
    if (id == 0) {
      STRIA_ASSIGN_OR_RETURN(id, c.NextCounter(t, "session", 1));
    }
    auto& s = c.sessions[id];
    s.last_ms = MonoMs();
    for (auto ino : req.open_inodes()) s.opens[ino]++;
  }
  c.sessions[id].last_ms = MonoMs();
  proto::SessionOpenReply rep;
  rep.set_session(id);
  rep.set_root_ino(1);
  rep.set_heartbeat_ms(c.options().session_heartbeat_ms);
  return rep.SerializeAsString();
}

Result<std::string> OpSessionHeartbeat(Ctx& c, Txn&, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SessionHeartbeatRequest>(msg, "session heartbeat"));
  auto it = c.sessions.find(req.session());
  if (it == c.sessions.end()) return Err(ENOENT, "session {} is unknown (expired or meta restarted)", req.session());
  it->second.last_ms = MonoMs();
  std::map<uint64_t, int> opens;
  for (auto ino : req.open_inodes()) opens[ino]++;
  it->second.opens = std::move(opens);
  return proto::SessionHeartbeatReply().SerializeAsString();
}

Result<std::string> OpOpen(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::OpenRequest>(msg, "open"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  int acc = static_cast<int>(req.flags()) & O_ACCMODE;
  bool write = acc == O_WRONLY || acc == O_RDWR || (req.flags() & O_TRUNC);
  if (rec.attr().type() == proto::FT_DIR && write) return Err(EISDIR, "open: inode {} is a directory", req.ino());
  int mask = (acc == O_RDONLY || acc == O_RDWR ? kMayRead : 0) | (write ? kMayWrite : 0);
  STRIA_RETURN_IF_ERROR(CheckAccess(rec.attr(), req.cred(), mask, "open"));
  if ((req.flags() & O_TRUNC) && rec.attr().type() == proto::FT_REG) {
    STRIA_RETURN_IF_ERROR(TruncateToZero(c, t, rec));
    c.PutInode(t, rec);
  }
  STRIA_RETURN_IF_ERROR(OpenForSession(c, req.session(), req.ino()));
  proto::OpenReply rep;
  *rep.mutable_attr() = rec.attr();
  *rep.mutable_layout() = rec.layout();
  return rep.SerializeAsString();
}

Result<std::string> OpClose(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::CloseRequest>(msg, "close"));
  auto it = c.sessions.find(req.session());
  if (it != c.sessions.end()) {
    it->second.last_ms = MonoMs();
    auto o = it->second.opens.find(req.ino());
    if (o != it->second.opens.end() && --o->second <= 0) it->second.opens.erase(o);
  }
  // The last close of an unlinked file frees it.
  if (!c.IsOpen(req.ino())) {
    STRIA_ASSIGN_OR_RETURN(auto orphan, t.Get(keys::Orphan(req.ino())));
    if (orphan) {
      auto rec = c.GetInode(t, req.ino());
      if (rec.ok() && rec->attr().nlink() == 0) STRIA_RETURN_IF_ERROR(c.DeleteInode(t, *rec));
      else t.Delete(keys::Orphan(req.ino()));
    }
  }
  return proto::CloseReply().SerializeAsString();
}

Result<std::string> OpCommitWrite(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::CommitWriteRequest>(msg, "commit write"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  if (rec.attr().type() != proto::FT_REG) return Err(EINVAL, "commit: inode {} is not a regular file", req.ino());
  auto* a = rec.mutable_attr();
  a->set_size(std::max(a->size(), req.min_size()));
  int64_t mtime = req.mtime_ns() ? req.mtime_ns() : NowNs();
  a->set_mtime_ns(mtime);
  a->set_ctime_ns(std::max(mtime, a->ctime_ns()));
  a->set_version(a->version() + 1);
  // Writes by a non-owner clear set-uid (and set-gid when group-executable).
  if (req.cred().uid() != 0 && req.cred().uid() != a->uid() && (a->mode() & 06000)) {
    a->set_mode(a->mode() & ~(04000u | ((a->mode() & 010) ? 02000u : 0u)));
  }
  c.PutInode(t, rec);
  proto::CommitWriteReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
