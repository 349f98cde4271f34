// RepoExported and RepoRelease: the two ends of a file's life in the fast
// tier (docs/data_repositories.md). A client uploads a dirty file and says
// so; stria-meta makes it clean only if nothing changed it meanwhile.
// Release frees a clean file's data and keeps its name and attributes.
#include <algorithm>
#include <memory>
#include <set>

#include <rocksdb/db.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

namespace {

// A regular file under a link that the caller may read (the export's
// steps), or EINVAL/EACCES naming `what`.
Result<InodeRecord> LinkedFile(Ctx& c, Txn& t, uint64_t ino, const proto::Cred& cred, const char* what) {
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, ino));
  STRIA_RETURN_IF_ERROR(CheckAccess(rec.attr(), cred, kMayRead, what));
  if (rec.repo_root() == 0 || rec.attr().type() != proto::FT_REG) {
    return Err(EINVAL, "{}: inode {} is not a file under a data repository link", what, ino);
  }
  return rec;
}

}  // namespace

Result<std::string> OpRepoExported(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoExportedRequest>(msg, "repo exported"));
  STRIA_ASSIGN_OR_RETURN(auto rec, LinkedFile(c, t, req.ino(), req.cred(), "repo export"));
  if (req.key().empty() || req.etag().empty()) return Err(EINVAL, "repo export: no key or ETag");
  // Uploaded what is still the content: clean now. Otherwise a later
  // export sends the newer content.
  auto state = RepoStateOf(rec);
  if (state != proto::RS_RELEASED && rec.attr().version() == req.version() && rec.attr().size() == req.size()) {
    // Its old key (renamed since, or a directory above it) is vacated.
    if (rec.repo_key() != req.key()) STRIA_RETURN_IF_ERROR(NoteRepoDeletion(c, t, rec));
    rec.set_repo_key(req.key());
    rec.set_repo_etag(req.etag());
    rec.set_repo_clean_version(rec.attr().version());
    rec.set_repo_state(proto::RS_RESIDENT);
    c.PutInode(t, rec);
    STRIA_ASSIGN_OR_RETURN(rec, c.GetInode(t, req.ino()));
  }
  proto::RepoExportedReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpRepoRelease(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoReleaseRequest>(msg, "repo release"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  STRIA_RETURN_IF_ERROR(CheckAccess(rec.attr(), req.cred(), kMayWrite, "repo release"));
  if (RepoStateOf(rec) == proto::RS_RESIDENT && rec.attr().size() > 0) {
    // An open file keeps reading its objects: they must stay.
    if (c.sessions.IsOpen(req.ino())) return Err(EBUSY, "repo release: inode {} is open", req.ino());
    STRIA_ASSIGN_OR_RETURN(auto root, LinkRoot(c, t, rec));
    if (!root) return Err(EINVAL, "repo release: the link of inode {} is gone", req.ino());
    STRIA_RETURN_IF_ERROR(FreshObjects(c, t, rec));
    // A new version: caches of the old objects must not be trusted.
    auto* a = rec.mutable_attr();
    a->set_version(a->version() + 1);
    a->set_ctime_ns(NowNs());
    rec.set_repo_clean_version(a->version());
    rec.set_repo_state(proto::RS_RELEASED);
    rec.clear_repo_hydrated();
    c.PutInode(t, rec);
    STRIA_ASSIGN_OR_RETURN(rec, c.GetInode(t, req.ino()));
  }
  proto::RepoReleaseReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpRepoColdest(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoColdestRequest>(msg, "repo coldest"));
  if (req.cred().uid() != 0) return Err(EPERM, "repo coldest: root only");
  // A scan of every inode: this runs only when the fast tier is above its
  // high watermark.
  std::vector<proto::RepoColdFile> files;
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = "I";
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    InodeRecord rec;
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
    if (RepoStateOf(rec) != proto::RS_RESIDENT || rec.attr().size() == 0) continue;
    if (c.sessions.IsOpen(rec.attr().ino())) continue;
    proto::RepoColdFile f;
    f.set_ino(rec.attr().ino());
    f.set_size(rec.attr().size());
    STRIA_ASSIGN_OR_RETURN(auto kept, t.Get(keys::LastUse(rec.attr().ino())));
    int64_t stored = kept && kept->size() == 8 ? static_cast<int64_t>(keys::GetBE(*kept, 0)) : 0;
    f.set_last_use_ns(std::max({c.sessions.LastUse(rec.attr().ino()), stored, rec.attr().mtime_ns()}));
    files.push_back(std::move(f));
  }
  if (!it->status().ok()) return Err(EIO, "repo coldest: {}", it->status().ToString());
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.last_use_ns() < b.last_use_ns(); });
  proto::RepoColdestReply rep;
  uint64_t sum = 0;
  uint32_t max = req.max_files() ? req.max_files() : 10000;
  for (auto& f : files) {
    if (sum >= req.bytes() || static_cast<uint32_t>(rep.files_size()) >= max) break;
    sum += f.size();
    *rep.add_files() = std::move(f);
  }
  return rep.SerializeAsString();
}

Status NoteRepoDeletion(Ctx& c, Txn& t, const InodeRecord& rec) {
  // Only a key the bucket has (it came from there, or was exported).
  if (rec.repo_root() == 0 || rec.attr().type() != proto::FT_REG || rec.attr().nlink() > 1 ||
      rec.repo_etag().empty() || rec.repo_key().empty()) {
    return Status::Ok();
  }
  STRIA_ASSIGN_OR_RETURN(auto root, LinkRoot(c, t, rec));
  if (!root || !root->repo_link().export_deletes()) return Status::Ok();
  // A key another file's content is at (it was exported or moved there
  // since) stays.
  std::string me;
  keys::PutBE(me, rec.attr().ino(), 8);
  STRIA_ASSIGN_OR_RETURN(auto owner, t.Get(keys::RepoKeyOwner(root->attr().ino(), rec.repo_key())));
  if (owner && *owner != me) return Status::Ok();
  t.Put(keys::RepoDeletion(root->attr().ino(), rec.repo_key()), rec.repo_etag());
  return Status::Ok();
}

Status NoteRepoRename(Ctx& c, Txn& t, InodeRecord& rec, bool vacated) {
  auto state = RepoStateOf(rec);
  if (state != proto::RS_RESIDENT && state != proto::RS_DIRTY) return Status::Ok();
  if (vacated) STRIA_RETURN_IF_ERROR(NoteRepoDeletion(c, t, rec));
  rec.set_repo_state(proto::RS_DIRTY);
  return Status::Ok();
}

Status CheckRenamable(const InodeRecord& rec, const std::string& name) {
  if (RepoStateOf(rec) != proto::RS_RELEASED) return Status::Ok();
  return Err(ENODATA, "rename: '{}' is released: its data must be read in from the bucket first", name);
}

Result<std::string> OpRepoMoved(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoMovedRequest>(msg, "repo moved"));
  STRIA_ASSIGN_OR_RETURN(auto rec, LinkedFile(c, t, req.ino(), req.cred(), "repo moved"));
  if (req.key().empty() || req.etag().empty()) return Err(EINVAL, "repo moved: no key or ETag");
  auto state = RepoStateOf(rec);
  if ((state == proto::RS_RESIDENT || state == proto::RS_RELEASED) && rec.attr().version() == req.version() &&
      rec.repo_key() == req.old_key() && rec.repo_etag() == req.old_etag() && req.key() != req.old_key()) {
    STRIA_RETURN_IF_ERROR(NoteRepoDeletion(c, t, rec));
    rec.set_repo_key(req.key());
    rec.set_repo_etag(req.etag());
    c.PutInode(t, rec);
    STRIA_ASSIGN_OR_RETURN(rec, c.GetInode(t, req.ino()));
  }
  proto::RepoMovedReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpRepoClaimKey(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoClaimKeyRequest>(msg, "repo claim key"));
  STRIA_ASSIGN_OR_RETURN(auto rec, LinkedFile(c, t, req.ino(), req.cred(), "repo claim key"));
  if (req.key().empty()) return Err(EINVAL, "repo claim key: no key");
  proto::RepoClaimKeyReply rep;
  rep.set_held_by(c.TakeRepoKey(t, rec.repo_root(), req.key(), req.ino()));
  return rep.SerializeAsString();
}

Status NoteRepoDirRename(Ctx& c, Txn& t, const InodeRecord& dir) {
  if (dir.repo_root() == 0 || dir.attr().type() != proto::FT_DIR || dir.has_repo_link()) return Status::Ok();
  STRIA_ASSIGN_OR_RETURN(auto n, Counts(t, dir.repo_root()));
  n.set_renames(n.renames() + 1);
  t.Put(keys::RepoCounts(dir.repo_root()), n.SerializeAsString());
  (void)c;
  return Status::Ok();
}

Result<std::string> OpRepoRenamesExported(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoRenamesExportedRequest>(msg, "repo renames exported"));
  STRIA_ASSIGN_OR_RETURN(auto root, c.GetInode(t, req.root()));
  if (!root.has_repo_link()) return Err(EINVAL, "repo renames exported: inode {} is not a linked directory", req.root());
  STRIA_RETURN_IF_ERROR(CheckAccess(root.attr(), req.cred(), kMayWrite, "repo renames exported"));
  STRIA_ASSIGN_OR_RETURN(auto n, Counts(t, req.root()));
  uint64_t upto = std::min(req.renames(), n.renames());
  if (upto > n.renames_exported()) {
    n.set_renames_exported(upto);
    t.Put(keys::RepoCounts(req.root()), n.SerializeAsString());
  }
  return proto::RepoRenamesExportedReply().SerializeAsString();
}

Result<std::string> OpRepoDeletions(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoDeletionsRequest>(msg, "repo deletions"));
  STRIA_ASSIGN_OR_RETURN(auto root, c.GetInode(t, req.root()));
  if (!root.has_repo_link()) return Err(EINVAL, "repo deletions: inode {} is not a linked directory", req.root());
  STRIA_RETURN_IF_ERROR(CheckAccess(root.attr(), req.cred(), kMayWrite, "repo deletions"));
  std::set<std::string> done(req.done().begin(), req.done().end());
  for (const auto& k : done) t.Delete(keys::RepoDeletion(req.root(), k));
  proto::RepoDeletionsReply rep;
  uint32_t max = req.max() ? std::min<uint32_t>(req.max(), 10000) : 1000;
  const std::string prefix = keys::RepoDeletionPrefix(req.root());
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string key = it->key().ToString().substr(prefix.size());
    if (done.count(key)) continue;
    if (static_cast<uint32_t>(rep.deletions_size()) >= max) break;
    auto* d = rep.add_deletions();
    d->set_key(key);
    d->set_etag(it->value().ToString());
  }
  if (!it->status().ok()) return Err(EIO, "repo deletions: {}", it->status().ToString());
  return rep.SerializeAsString();
}

}  // namespace stria::meta
