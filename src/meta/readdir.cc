// ReadDir in cookie order: cookies are never reused, so a listing continued
// from a cookie sees every entry that lived through it exactly once.
#include <rocksdb/db.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::string> OpReadDir(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::ReadDirRequest>(msg, "readdir"));
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, req.ino()));
  if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "inode {} is not a directory", req.ino());
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), req.cred(), kMayRead, "readdir"));
  STRIA_RETURN_IF_ERROR(CheckListed(c, t, dir));
  uint32_t max = req.max_entries() ? std::min<uint32_t>(req.max_entries(), 4096) : 1024;
  proto::ReadDirReply rep;
  std::string prefix = keys::CookiePrefix(req.ino());
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  it->Seek(keys::Cookie(req.ino(), req.cookie() + 1));
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (rep.entries_size() >= static_cast<int>(max)) break;
    std::string name = it->value().ToString();
    STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, req.ino(), name));
    if (!e) continue;
    auto* out = rep.add_entries();
    out->set_name(name);
    out->set_ino(e->ino());
    out->set_type(e->type());
    out->set_cookie(keys::GetBE(it->key().ToStringView(), 9));
    if (req.plus()) {
      auto r = c.GetInode(t, e->ino());
      if (r.ok()) {
        *out->mutable_attr() = r->attr();
        if (req.layouts() && LookupGivesLayout(*r)) *out->mutable_layout() = r->layout();
      }
    }
  }
  if (!it->status().ok()) return Err(EIO, "readdir {}: {}", req.ino(), it->status().ToString());
  rep.set_eof(!(it->Valid() && it->key().starts_with(prefix)));
  return rep.SerializeAsString();
}

}  // namespace stria::meta
