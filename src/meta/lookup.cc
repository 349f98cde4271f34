// Lookup: one name in one directory.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

// Looks name up in dir (an InodeRecord), checking search permission.
Result<InodeRecord> Child(Ctx& c, Txn& t, const InodeRecord& dir, const std::string& name,
                          const proto::Cred& cred) {
  if (dir.attr().type() != proto::FT_DIR) {
    return Err(ENOTDIR, "inode {} is not a directory", dir.attr().ino());
  }
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), cred, kMayExec, "lookup"));
  if (name.empty()) return Err(ENOENT, "lookup: empty name");
  STRIA_RETURN_IF_ERROR(CheckListed(c, t, dir));
  if (name.size() > 255) return Err(ENAMETOOLONG, "name of {} bytes is longer than 255", name.size());
  if (name.find('\0') != std::string::npos) return Err(EINVAL, "lookup: name contains NUL");
  STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, dir.attr().ino(), name));
  if (!e) return Err(ENOENT, "no entry '{}' in directory {}", name, dir.attr().ino());
  return c.GetInode(t, e->ino());
}

Result<std::string> OpLookup(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::LookupRequest>(msg, "lookup"));
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, req.parent()));
  if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "lookup: inode {} is not a directory", req.parent());
  if (req.name() == "." || req.name() == "..") {
    STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), req.cred(), kMayExec, "lookup"));
    uint64_t ino = req.name() == "." ? dir.attr().ino() : dir.parent();
    STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, ino ? ino : 1));
    proto::LookupReply rep;
    *rep.mutable_attr() = r.attr();
    return rep.SerializeAsString();
  }
  STRIA_ASSIGN_OR_RETURN(auto r, Child(c, t, dir, req.name(), req.cred()));
  proto::LookupReply rep;
  *rep.mutable_attr() = r.attr();
  if (LookupGivesLayout(r)) *rep.mutable_layout() = r.layout();
  return rep.SerializeAsString();
}

// The layout lets a client read a small file while its OPEN is on the way;
// a released file's objects are not filled yet: no layout then.
bool LookupGivesLayout(const InodeRecord& r) {
  return r.attr().type() == proto::FT_REG && RepoStateOf(r) != proto::RS_RELEASED;
}

}  // namespace stria::meta
