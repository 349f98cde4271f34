// SetAttr (chmod, chown, truncate, utimes) and the size-0 truncation that
// gives a file fresh objects.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

// Size 0 without touching the stores: new object id, old objects to garbage.
Status FreshObjects(Ctx& c, Txn& t, InodeRecord& rec) {
  if (rec.layout().targets_size() == 0) return Status::Ok();
  STRIA_RETURN_IF_ERROR(c.QueueGarbage(t, rec.layout()));
  STRIA_ASSIGN_OR_RETURN(uint64_t oid, c.NextCounter(t, "ino", 2));
  rec.mutable_layout()->set_object_id(oid);
  return Status::Ok();
}

Status TruncateToZero(Ctx& c, Txn& t, InodeRecord& rec, const proto::Cred& cred) {
  auto* a = rec.mutable_attr();
  // Always fresh objects: a size of 0 here does not mean empty objects, as
  // a client may have sent writes it has not committed yet (their bytes
  // would come back when the file grows again).
  STRIA_RETURN_IF_ERROR(FreshObjects(c, t, rec));
  int64_t now = NowNs();
  a->set_size(0);
  a->set_mtime_ns(now);
  a->set_ctime_ns(now);
  a->set_version(a->version() + 1);
  a->set_mode(ModeAfterWrite(*a, cred));
  return Status::Ok();
}

Result<std::string> OpSetAttr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SetAttrRequest>(msg, "setattr"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  auto* a = rec.mutable_attr();
  const auto& cred = req.cred();
  bool owner = cred.uid() == 0 || cred.uid() == a->uid();
  uint32_t m = req.mask();
  int64_t now = NowNs();
  if (m & proto::SA_MODE) {
    uint32_t mode = req.mode() & 07777;
    if (!owner) {
      // A writer may drop set-uid/set-gid (a kernel that clears them on
      // write sends that as a chmod with the writer's identity); nothing else.
      bool only_drops_priv = (mode | 06000) == (a->mode() | 06000) && (mode & ~a->mode()) == 0;
      if (!only_drops_priv) return Err(EPERM, "chmod inode {}: not the owner", a->ino());
      STRIA_RETURN_IF_ERROR(CheckAccess(*a, cred, kMayWrite, "chmod"));
    } else if (cred.uid() != 0 && !InGroup(cred, a->gid())) {
      // A non-root owner outside the file's group cannot set set-gid.
      mode &= ~02000u;
    }
    a->set_mode(mode);
  }
  if (m & (proto::SA_UID | proto::SA_GID)) {
    // As Linux: without root, only the owner may chown, to itself, and
    // chgrp, to the file's group or one of its own.
    bool is_owner = cred.uid() == a->uid();
    if ((m & proto::SA_UID) && cred.uid() != 0 && !(is_owner && req.uid() == a->uid())) {
      return Err(EPERM, "chown inode {}: only root may give a file away", a->ino());
    }
    if ((m & proto::SA_GID) && cred.uid() != 0 &&
        !(is_owner && (req.gid() == a->gid() || InGroup(cred, req.gid())))) {
      return Err(EPERM, "chgrp inode {}: not the owner or not a member of group {}", a->ino(), req.gid());
    }
    if (m & proto::SA_UID) a->set_uid(req.uid());
    if (m & proto::SA_GID) a->set_gid(req.gid());
    // As Linux: chown (by anyone, even to the same ids) clears set-uid, and
    // set-gid when group-executable.
    if (a->type() != proto::FT_DIR) {
      uint32_t clear = 04000 | ((a->mode() & 010) ? 02000 : 0);
      a->set_mode(a->mode() & ~clear);
    }
  }
  if (m & proto::SA_SIZE) {
    if (a->type() == proto::FT_DIR) return Err(EISDIR, "truncate inode {}: is a directory", a->ino());
    if (a->type() != proto::FT_REG) return Err(EINVAL, "truncate inode {}: not a regular file", a->ino());
    if (!req.open_for_write()) STRIA_RETURN_IF_ERROR(CheckAccess(*a, cred, kMayWrite, "truncate"));
    a->set_mode(ModeAfterWrite(*a, cred));
    if (req.size() == 0) {
      STRIA_RETURN_IF_ERROR(TruncateToZero(c, t, rec, req.cred()));
    } else if (req.size() != a->size()) {
      STRIA_RETURN_IF_ERROR(CheckHydrated(rec, "truncate"));
      a->set_size(req.size());
      a->set_mtime_ns(now);
      a->set_version(a->version() + 1);
    }
  }
  bool times = m & (proto::SA_ATIME | proto::SA_MTIME | proto::SA_ATIME_NOW | proto::SA_MTIME_NOW);
  if (times) {
    // SA_WRITE_TIMES: an mtime the kernel's writeback cache chose (the
    // time of a write, truncate or utimensat to now; the kernel itself
    // refused a chosen one to anyone but the owner), not the caller.
    bool kernel_mtime = (m & proto::SA_WRITE_TIMES) && (m & proto::SA_MTIME);
    bool chosen = (m & proto::SA_ATIME) || ((m & proto::SA_MTIME) && !kernel_mtime);
    if (!owner) {
      if (chosen) return Err(EPERM, "utimes inode {}: not the owner", a->ino());
      // A handle opened for writing vouches for the time of its writes.
      if (!(kernel_mtime && req.open_for_write())) STRIA_RETURN_IF_ERROR(CheckAccess(*a, cred, kMayWrite, "utimes"));
    }
    if (m & proto::SA_ATIME) a->set_atime_ns(req.atime_ns());
    if (m & proto::SA_MTIME) a->set_mtime_ns(req.mtime_ns());
    if (m & proto::SA_ATIME_NOW) a->set_atime_ns(now);
    if (m & proto::SA_MTIME_NOW) a->set_mtime_ns(now);
  }
  a->set_ctime_ns(now);
  c.PutInode(t, rec);
  proto::SetAttrReply rep;
  *rep.mutable_attr() = rec.attr();
  if (a->type() == proto::FT_REG) *rep.mutable_layout() = rec.layout();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
