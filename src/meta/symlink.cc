// Symlink and Readlink.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::string> OpSymlink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SymlinkRequest>(msg, "symlink"));
  if (req.target().empty()) return Err(ENOENT, "symlink: empty target");
  if (req.target().size() > 4095) return Err(ENAMETOOLONG, "symlink: target longer than 4095 bytes");
  STRIA_ASSIGN_OR_RETURN(auto dir, PrepareAdd(c, t, req.parent(), req.name(), req.cred(), "symlink"));
  STRIA_ASSIGN_OR_RETURN(auto rec, NewInode(c, t, dir, proto::FT_SYMLINK, 0777, req.cred()));
  rec.set_symlink(req.target());
  rec.mutable_attr()->set_size(req.target().size());
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.name(), rec.attr().ino(), proto::FT_SYMLINK));
  c.PutInode(t, rec);
  proto::SymlinkReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpReadlink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::ReadlinkRequest>(msg, "readlink"));
  STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, req.ino()));
  if (r.attr().type() != proto::FT_SYMLINK) return Err(EINVAL, "inode {} is not a symlink", req.ino());
  proto::ReadlinkReply rep;
  rep.set_target(r.symlink());
  return rep.SerializeAsString();
}

}  // namespace stria::meta
