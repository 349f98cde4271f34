// Link: another name for a non-directory.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::string> OpLink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::LinkRequest>(msg, "link"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  if (rec.attr().type() == proto::FT_DIR) return Err(EPERM, "link: inode {} is a directory", req.ino());
  if (rec.attr().nlink() == 0) return Err(ENOENT, "link: inode {} was removed", req.ino());
  if (rec.attr().nlink() >= 65000) return Err(EMLINK, "link: inode {} has too many links", req.ino());
  STRIA_ASSIGN_OR_RETURN(auto dir, PrepareAdd(c, t, req.new_parent(), req.new_name(), req.cred(), "link"));
  if (dir.repo_root() != rec.repo_root()) {
    return Err(EXDEV, "link: inode {} and directory {} belong to different data repository links (or one to none)",
               req.ino(), req.new_parent());
  }
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.new_name(), rec.attr().ino(), rec.attr().type()));
  rec.mutable_attr()->set_nlink(rec.attr().nlink() + 1);
  rec.mutable_attr()->set_ctime_ns(NowNs());
  c.PutInode(t, rec);
  proto::LinkReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
