// GetLayout/SetLayout: a file's striping, or a directory's default for new
// files and subdirectories.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

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
