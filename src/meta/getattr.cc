// GetAttr.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "meta/permissions.h"

namespace stria::meta {

Result<std::string> OpGetAttr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::GetAttrRequest>(msg, "getattr"));
  STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, req.ino()));
  proto::GetAttrReply rep;
  *rep.mutable_attr() = r.attr();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
