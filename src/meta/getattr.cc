// GetAttr and Access.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::string> OpGetAttr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::GetAttrRequest>(msg, "getattr"));
  STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, req.ino()));
  proto::GetAttrReply rep;
  *rep.mutable_attr() = r.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpAccess(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::AccessRequest>(msg, "access"));
  if (req.mask() & ~7u) return Err(EINVAL, "access: mask {:#o} is not R_OK|W_OK|X_OK", req.mask());
  STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, req.ino()));
  if (req.mask()) STRIA_RETURN_IF_ERROR(CheckAccess(r.attr(), req.cred(), static_cast<int>(req.mask()), "access"));
  proto::AccessReply rep;
  *rep.mutable_attr() = r.attr();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
