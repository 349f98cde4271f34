// Extended attributes and layouts (getstripe/setstripe).
#include <rocksdb/db.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/permissions.h"

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

Result<std::string> OpGetLayout(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::GetLayoutRequest>(msg, "getlayout"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  proto::GetLayoutReply rep;
  if (rec.attr().type() == proto::FT_DIR) {
    *rep.mutable_layout() = rec.default_layout();
    rep.set_is_default(true);
  } else {
    *rep.mutable_layout() = rec.layout();
  }
  return rep.SerializeAsString();
}

Result<std::string> OpSetLayout(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SetLayoutRequest>(msg, "setlayout"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  const auto& l = req.layout();
  if (l.stripe_size() % 4096 != 0 || l.stripe_size() > (4ull << 30)) {
    return Err(EINVAL, "setstripe: stripe size {} is not a multiple of 4096 up to 4 GiB", l.stripe_size());
  }
  size_t up = 0;
  for (auto& [id, tr] : c.targets) up += tr.info().state() == proto::TS_UP;
  if (l.stripe_count() > c.targets.size()) {
    return Err(EINVAL, "setstripe: stripe count {} exceeds the {} targets", l.stripe_count(), c.targets.size());
  }
  if (rec.attr().uid() != req.cred().uid() && req.cred().uid() != 0) {
    return Err(EPERM, "setstripe: not the owner of inode {}", req.ino());
  }
  proto::SetLayoutReply rep;
  if (rec.attr().type() == proto::FT_DIR) {
    auto* d = rec.mutable_default_layout();
    d->set_stripe_size(l.stripe_size());
    d->set_stripe_count(l.stripe_count());
    d->clear_targets();
    *rep.mutable_layout() = *d;
  } else if (rec.attr().type() == proto::FT_REG) {
    if (rec.attr().size() != 0 || rec.attr().version() > 1) {
      return Err(EBUSY, "setstripe: inode {} already holds data; a layout can change only while a file is new and empty", req.ino());
    }
    uint64_t ss = l.stripe_size() ? l.stripe_size() : rec.layout().stripe_size();
    uint32_t count = l.stripe_count() ? l.stripe_count() : rec.layout().stripe_count();
    STRIA_ASSIGN_OR_RETURN(auto nl, c.ChooseLayout(rec.attr().ino(), ss, count));
    nl.set_object_id(rec.layout().object_id() ? rec.layout().object_id() : rec.attr().ino());
    if (l.targets_size() == static_cast<int>(count)) {
      for (auto id : l.targets()) {
        if (!c.targets.count(id)) return Err(EINVAL, "setstripe: target {} does not exist", id);
      }
      nl.mutable_targets()->CopyFrom(l.targets());
    }
    *rec.mutable_layout() = nl;
    *rep.mutable_layout() = nl;
  } else {
    return Err(EINVAL, "setstripe: inode {} has no data layout", req.ino());
  }
  rec.mutable_attr()->set_ctime_ns(NowNs());
  c.PutInode(t, rec);
  (void)up;
  return rep.SerializeAsString();
}

}  // namespace stria::meta
