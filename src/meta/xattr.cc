// Extended attributes: user.* (file permissions), trusted.* (root only),
// security.* and system.*; names up to 255 bytes, values up to 64 KiB.
#include <rocksdb/db.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

namespace {

constexpr size_t kMaxXattrValue = 64 * 1024;

// Namespace rules: user.* follows the file's permissions; trusted.* is root's.
Status CheckXattr(const proto::Attr& a, const proto::Cred& cred, const std::string& name, int mask) {
  if (name.empty() || name.size() > 255) return Err(ERANGE, "xattr name of {} bytes", name.size());
  if (name.rfind("trusted.", 0) == 0) {
    if (cred.uid() != 0) return Err(EPERM, "xattr {}: trusted.* is for root only", name);
    return Status::Ok();
  }
  if (name.rfind("user.", 0) == 0) {
    if (a.type() != proto::FT_REG && a.type() != proto::FT_DIR) {
      return Err(EPERM, "xattr {}: user.* only on files and directories", name);
    }
    return CheckAccess(a, cred, mask, "xattr");
  }
  if (name.rfind("security.", 0) == 0 || name.rfind("system.", 0) == 0) {
    if (mask == kMayWrite && cred.uid() != 0 && cred.uid() != a.uid()) {
      return Err(EPERM, "xattr {}: not the owner", name);
    }
    return Status::Ok();
  }
  return Err(EOPNOTSUPP, "xattr {}: unknown namespace (use user., trusted., security., system.)", name);
}

void Touch(InodeRecord& rec) { rec.mutable_attr()->set_ctime_ns(NowNs()); }

}  // namespace

Result<std::string> OpSetXattr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SetXattrRequest>(msg, "setxattr"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  STRIA_RETURN_IF_ERROR(CheckXattr(rec.attr(), req.cred(), req.name(), kMayWrite));
  if (req.value().size() > kMaxXattrValue) return Err(E2BIG, "xattr {}: value over 64 KiB", req.name());
  STRIA_ASSIGN_OR_RETURN(auto cur, t.Get(keys::Xattr(req.ino(), req.name())));
  if ((req.flags() & proto::XA_CREATE) && cur) return Err(EEXIST, "xattr {} exists", req.name());
  if ((req.flags() & proto::XA_REPLACE) && !cur) return Err(ENODATA, "xattr {} does not exist", req.name());
  t.Put(keys::Xattr(req.ino(), req.name()), req.value());
  Touch(rec);
  c.PutInode(t, rec);
  return proto::SetXattrReply().SerializeAsString();
}

Result<std::string> OpGetXattr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::GetXattrRequest>(msg, "getxattr"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  STRIA_RETURN_IF_ERROR(CheckXattr(rec.attr(), req.cred(), req.name(), kMayRead));
  STRIA_ASSIGN_OR_RETURN(auto v, t.Get(keys::Xattr(req.ino(), req.name())));
  if (!v) return Err(ENODATA, "xattr {} does not exist", req.name());
  proto::GetXattrReply rep;
  rep.set_value(*v);
  return rep.SerializeAsString();
}

Result<std::string> OpListXattr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::ListXattrRequest>(msg, "listxattr"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  proto::ListXattrReply rep;
  std::string prefix = keys::XattrPrefix(req.ino());
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string name = it->key().ToString().substr(prefix.size());
    if (name.rfind("trusted.", 0) == 0 && req.cred().uid() != 0) continue;
    rep.add_names(name);
  }
  return rep.SerializeAsString();
}

Result<std::string> OpRemoveXattr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RemoveXattrRequest>(msg, "removexattr"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  STRIA_RETURN_IF_ERROR(CheckXattr(rec.attr(), req.cred(), req.name(), kMayWrite));
  STRIA_ASSIGN_OR_RETURN(auto cur, t.Get(keys::Xattr(req.ino(), req.name())));
  if (!cur) return Err(ENODATA, "xattr {} does not exist", req.name());
  t.Delete(keys::Xattr(req.ino(), req.name()));
  Touch(rec);
  c.PutInode(t, rec);
  return proto::RemoveXattrReply().SerializeAsString();
}

}  // namespace stria::meta
