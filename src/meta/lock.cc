// GetLock and SetLock: advisory locks between clients (locks.h).
#include "common/util.h"
#include "meta/meta_service.h"

namespace stria::meta {

namespace {

Status CheckLockRequest(Ctx& c, uint64_t session, uint64_t ino, const proto::LockRange& l, const char* what) {
  if (!c.sessions.Exists(session)) return Err(ENOENT, "{}: session {} is unknown (expired?)", what, session);
  if (l.start() > l.end()) return Err(EINVAL, "{} on inode {}: start {} after end {}", what, ino, l.start(), l.end());
  if (!proto::LockType_IsValid(l.type())) return Err(EINVAL, "{}: lock type {} is unknown", what, static_cast<int>(l.type()));
  return Status::Ok();
}

}  // namespace

Result<std::string> OpGetLock(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::GetLockRequest>(msg, "getlock"));
  STRIA_RETURN_IF_ERROR(CheckLockRequest(c, req.session(), req.ino(), req.lock(), "getlock"));
  STRIA_RETURN_IF_ERROR(c.GetInode(t, req.ino()).status());
  auto conflict = c.locks.Conflict(req.ino(), req.flock(), {req.session(), req.owner()}, req.lock().type(),
                                   req.lock().start(), req.lock().end());
  proto::GetLockReply rep;
  if (conflict) {
    auto* l = rep.mutable_lock();
    l->set_type(conflict->type);
    l->set_start(conflict->start);
    l->set_end(conflict->end);
    l->set_pid(conflict->pid);
  }
  return rep.SerializeAsString();
}

Result<std::string> OpSetLock(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SetLockRequest>(msg, "setlock"));
  STRIA_RETURN_IF_ERROR(CheckLockRequest(c, req.session(), req.ino(), req.lock(), "setlock"));
  if (req.lock().type() != proto::LK_UNLOCK) STRIA_RETURN_IF_ERROR(c.GetInode(t, req.ino()).status());
  c.sessions.Touch(req.session(), MonoMs());
  LockTable::Lock l;
  l.holder = {req.session(), req.owner()};
  l.type = req.lock().type();
  l.start = req.lock().start();
  l.end = req.lock().end();
  l.pid = req.lock().pid();
  STRIA_RETURN_IF_ERROR(c.locks.Set(req.ino(), req.flock(), l));
  return proto::SetLockReply().SerializeAsString();
}

}  // namespace stria::meta
