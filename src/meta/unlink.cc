// Operations that remove names: Unlink and Rmdir.
#include <rocksdb/db.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

// True when directory ino has no entries (including ones written in t).
Result<bool> DirIsEmpty(Ctx& c, Txn& t, uint64_t ino) {
  std::string prefix = keys::EntryPrefix(ino);
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    STRIA_ASSIGN_OR_RETURN(auto v, t.Get(it->key().ToString()));
    if (v) return false;   // not deleted earlier in this operation
  }
  return true;
}

namespace {

struct Victim {
  InodeRecord dir;
  EntryRecord entry;
  InodeRecord rec;
};

Result<Victim> FindVictim(Ctx& c, Txn& t, uint64_t parent, const std::string& name,
                          const proto::Cred& cred, const char* what) {
  STRIA_RETURN_IF_ERROR(CheckName(name));
  Victim v;
  STRIA_ASSIGN_OR_RETURN(v.dir, c.GetInode(t, parent));
  if (v.dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "{}: inode {} is not a directory", what, parent);
  STRIA_RETURN_IF_ERROR(CheckAccess(v.dir.attr(), cred, kMayWrite | kMayExec, what));
  STRIA_RETURN_IF_ERROR(CheckListed(c, t, v.dir));
  STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, parent, name));
  if (!e) return Err(ENOENT, "{}: no entry '{}' in directory {}", what, name, parent);
  v.entry = *e;
  STRIA_ASSIGN_OR_RETURN(v.rec, c.GetInode(t, e->ino()));
  STRIA_RETURN_IF_ERROR(CheckSticky(v.dir.attr(), v.rec.attr(), cred));
  return v;
}

}  // namespace

Result<std::string> OpUnlink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::UnlinkRequest>(msg, "unlink"));
  STRIA_ASSIGN_OR_RETURN(auto v, FindVictim(c, t, req.parent(), req.name(), req.cred(), "unlink"));
  if (v.rec.attr().type() == proto::FT_DIR) return Err(EISDIR, "unlink: '{}' is a directory", req.name());
  STRIA_RETURN_IF_ERROR(NoteRepoDeletion(c, t, v.rec));
  STRIA_RETURN_IF_ERROR(c.RemoveEntry(t, req.parent(), req.name(), v.entry));
  STRIA_RETURN_IF_ERROR(c.DropLink(t, v.rec));
  return proto::UnlinkReply().SerializeAsString();
}

Result<std::string> OpRmdir(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RmdirRequest>(msg, "rmdir"));
  STRIA_ASSIGN_OR_RETURN(auto v, FindVictim(c, t, req.parent(), req.name(), req.cred(), "rmdir"));
  if (v.rec.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "rmdir: '{}' is not a directory", req.name());
  if (v.rec.has_repo_link()) {
    return Err(EBUSY, "rmdir: '{}' is linked to {}; repo unlink it first", req.name(), v.rec.repo_link().url());
  }
  STRIA_ASSIGN_OR_RETURN(bool empty, DirIsEmpty(c, t, v.rec.attr().ino()));
  if (!empty) return Err(ENOTEMPTY, "rmdir: directory '{}' is not empty", req.name());
  STRIA_RETURN_IF_ERROR(c.RemoveEntry(t, req.parent(), req.name(), v.entry));
  STRIA_RETURN_IF_ERROR(c.DropLink(t, v.rec));
  return proto::RmdirReply().SerializeAsString();
}

}  // namespace stria::meta
