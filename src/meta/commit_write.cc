// CommitWrite: a client made data durable; size grows, mtime and version move.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::string> OpCommitWrite(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::CommitWriteRequest>(msg, "commit write"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  if (rec.attr().type() != proto::FT_REG) return Err(EINVAL, "commit: inode {} is not a regular file", req.ino());
  if (req.object_id() && req.object_id() != rec.layout().object_id()) {
    return Err(ESTALE,
               "commit: inode {} was truncated to 0 by another client while open here; the writes made "
               "since went to its old objects and are not in the file",
               req.ino());
  }
  STRIA_RETURN_IF_ERROR(CheckHydrated(rec, "commit"));
  auto* a = rec.mutable_attr();
  a->set_size(std::max(a->size(), req.min_size()));
  int64_t mtime = req.mtime_ns() ? req.mtime_ns() : NowNs();
  a->set_mtime_ns(mtime);
  a->set_ctime_ns(std::max(mtime, a->ctime_ns()));
  a->set_version(a->version() + 1);
  // A write without root clears set-uid/set-gid, as Linux does.
  a->set_mode(ModeAfterWrite(*a, req.cred()));
  c.PutInode(t, rec);
  proto::CommitWriteReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
