// Mkdir.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::string> OpMkdir(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::MkdirRequest>(msg, "mkdir"));
  STRIA_ASSIGN_OR_RETURN(auto dir, PrepareAdd(c, t, req.parent(), req.name(), req.cred(), "mkdir"));
  STRIA_ASSIGN_OR_RETURN(auto rec, NewInode(c, t, dir, proto::FT_DIR, req.mode(), req.cred()));
  rec.set_parent(req.parent());
  rec.set_next_cookie(1);
  // As Lustre's default striping: a new directory starts with its parent's.
  if (dir.has_default_layout()) *rec.mutable_default_layout() = dir.default_layout();
  InheritRepo(dir, req.name(), rec);
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.name(), rec.attr().ino(), proto::FT_DIR));
  c.PutInode(t, rec);
  proto::MkdirReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
