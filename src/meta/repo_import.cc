// RepoDirInfo and RepoImport: a linked directory's bucket levels become
// entries lazily (docs/data_repositories.md). Clients list a level of the
// bucket when stria-meta says EREMOTE for a directory, and send what they
// found here; stria-meta itself never talks to S3.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::optional<InodeRecord>> LinkRoot(Ctx& c, Txn& t, const InodeRecord& dir) {
  if (dir.repo_root() == 0) return std::optional<InodeRecord>();
  if (dir.repo_root() == dir.attr().ino()) {
    return dir.has_repo_link() ? std::optional<InodeRecord>(dir) : std::optional<InodeRecord>();
  }
  auto root = c.GetInode(t, dir.repo_root());
  if (root.status().code() == ENOENT) return std::optional<InodeRecord>();
  if (!root.ok()) return root.status();
  if (!root->has_repo_link()) return std::optional<InodeRecord>();
  return std::optional<InodeRecord>(std::move(*root));
}

namespace {

bool ValidName(const std::string& n) {
  return !n.empty() && n != "." && n != ".." && n.size() <= 255 && n.find('/') == std::string::npos &&
         n.find('\0') == std::string::npos;
}

// Directory ino, which the caller may search, and the linked directory
// above it; ENOTDIR or EINVAL (not under a link) otherwise.
Result<std::pair<InodeRecord, InodeRecord>> LinkedDir(Ctx& c, Txn& t, uint64_t ino, const proto::Cred& cred,
                                                      const char* what) {
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, ino));
  if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "{}: inode {} is not a directory", what, ino);
  STRIA_ASSIGN_OR_RETURN(auto root, LinkRoot(c, t, dir));
  if (!root) return Err(EINVAL, "{}: directory {} is not under a data repository link", what, ino);
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), cred, kMayExec, what));
  return std::make_pair(std::move(dir), std::move(*root));
}

}  // namespace

Status CheckListed(Ctx& c, Txn& t, const InodeRecord& dir) {
  if (!dir.repo_unlisted()) return Status::Ok();
  STRIA_ASSIGN_OR_RETURN(auto root, LinkRoot(c, t, dir));
  if (!root) return Status::Ok();   // its link is gone: nothing more will come
  return Err(EREMOTE, "directory {} is linked to {} and its level '{}' is not imported yet", dir.attr().ino(),
             root->repo_link().url(), dir.repo_key());
}

void InheritRepo(const InodeRecord& dir, const std::string& name, InodeRecord& child) {
  if (dir.repo_root() == 0) return;
  child.set_repo_root(dir.repo_root());
  if (child.attr().type() == proto::FT_DIR) {
    child.set_repo_key(dir.repo_key() + name + "/");
  } else if (child.attr().type() == proto::FT_REG) {
    child.set_repo_key(dir.repo_key() + name);
    child.set_repo_state(proto::RS_DIRTY);   // not in the bucket until exported
  }
}

Status CheckSameRepo(const InodeRecord& from_dir, const InodeRecord& to_dir) {
  if (from_dir.repo_root() == to_dir.repo_root()) return Status::Ok();
  return Err(EXDEV, "rename: directories {} and {} belong to different data repository links (or one to none)",
             from_dir.attr().ino(), to_dir.attr().ino());
}

Result<std::string> OpRepoDirInfo(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoDirInfoRequest>(msg, "repo dir info"));
  STRIA_ASSIGN_OR_RETURN(auto found, LinkedDir(c, t, req.ino(), req.cred(), "repo dir info"));
  auto& [dir, root] = found;
  proto::RepoDirInfoReply rep;
  rep.set_root(root.attr().ino());
  *rep.mutable_link() = root.repo_link();
  rep.set_prefix(dir.repo_key());
  rep.set_unlisted(dir.repo_unlisted());
  return rep.SerializeAsString();
}

// Whether any record of the link's starts with key_prefix.
bool AnyRecordUnder(Ctx& c, const std::string& key_prefix) {
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  it->Seek(key_prefix);
  return it->Valid() && it->key().starts_with(key_prefix);
}

// An object of a file removed here (the export is to delete it) or
// renamed away (its content is still at this key, for that file): not new
// to Stria, not to be imported again. A prefix is known the same way while
// any key under it is: the directory was removed or renamed here, and
// would otherwise come back (empty of those files) until the export.
Result<bool> KnownHere(Ctx& c, Txn& t, const std::string& prefix, const InodeRecord& root,
                       const proto::RepoObject& o) {
  const std::string key = prefix + o.name();
  const uint64_t link = root.attr().ino();
  if (o.is_dir()) {
    return AnyRecordUnder(c, keys::RepoKeyOwner(link, key + "/")) ||
           AnyRecordUnder(c, keys::RepoDeletion(link, key + "/"));
  }
  STRIA_ASSIGN_OR_RETURN(auto deleted, t.Get(keys::RepoDeletion(link, key)));
  if (deleted) return true;
  STRIA_ASSIGN_OR_RETURN(auto owner, t.Get(keys::RepoKeyOwner(link, key)));
  return owner.has_value();
}

Result<bool> ImportObject(Ctx& c, Txn& t, InodeRecord& dir, const std::string& prefix, const InodeRecord& root,
                          const proto::RepoObject& o, int64_t now) {
  if (!ValidName(o.name())) return false;
  STRIA_ASSIGN_OR_RETURN(auto existing, c.GetEntry(t, dir.attr().ino(), o.name()));
  if (existing) return true;   // a file made here, or a key seen both as object and as prefix
  // Imported names belong to the directory's owner.
  proto::Cred owner;
  owner.set_uid(dir.attr().uid());
  owner.set_gid(dir.attr().gid());
  proto::FileType type = o.is_dir() ? proto::FT_DIR : proto::FT_REG;
  STRIA_ASSIGN_OR_RETURN(auto rec, NewInode(c, t, dir, type, o.is_dir() ? 0755 : 0644, owner));
  auto* a = rec.mutable_attr();
  rec.set_repo_root(root.attr().ino());
  if (o.is_dir()) {
    rec.set_parent(dir.attr().ino());
    rec.set_next_cookie(1);
    rec.set_repo_key(prefix + o.name() + "/");
    rec.set_repo_unlisted(true);
  } else {
    int64_t mtime = o.mtime_ns() ? o.mtime_ns() : now;
    a->set_size(o.size());
    a->set_mtime_ns(mtime);
    a->set_atime_ns(mtime);
    // Each stripe unit of a released file is fetched with one GET: larger
    // units than usual, since an S3 server's cost is mostly per request.
    uint64_t ss = dir.default_layout().stripe_size() ? dir.default_layout().stripe_size() : kBucketStripe;
    STRIA_ASSIGN_OR_RETURN(auto layout, c.ChooseLayout(a->ino(), ss, dir.default_layout().stripe_count()));
    *rec.mutable_layout() = layout;
    rec.set_repo_key(prefix + o.name());
    rec.set_repo_etag(o.etag());
    // An empty object has nothing to fetch: resident at once.
    rec.set_repo_state(o.size() ? proto::RS_RELEASED : proto::RS_RESIDENT);
    rec.set_repo_clean_version(a->version());
  }
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, o.name(), a->ino(), type));
  c.PutInode(t, rec);
  return true;
}

Result<std::string> OpRepoImport(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoImportRequest>(msg, "repo import"));
  STRIA_ASSIGN_OR_RETURN(auto found, LinkedDir(c, t, req.ino(), req.cred(), "repo import"));
  auto& [dir, root] = found;
  if (req.objects_size() > 10000) return Err(EINVAL, "repo import: {} objects in one request (10,000 at most)", req.objects_size());
  proto::RepoImportReply rep;
  if (!dir.repo_unlisted()) return rep.SerializeAsString();   // another client was first
  int64_t now = NowNs();
  for (const auto& o : req.objects()) {
    STRIA_ASSIGN_OR_RETURN(auto existed, c.GetEntry(t, dir.attr().ino(), o.name()));
    STRIA_ASSIGN_OR_RETURN(bool known, KnownHere(c, t, dir.repo_key(), root, o));
    if (!existed && known) continue;
    STRIA_ASSIGN_OR_RETURN(bool valid, ImportObject(c, t, dir, dir.repo_key(), root, o, now));
    if (!valid) rep.set_skipped(rep.skipped() + 1);
    else if (!existed) rep.set_created(rep.created() + 1);
  }
  if (req.complete()) {
    dir.set_repo_unlisted(false);
    c.PutInode(t, dir);
  }
  return rep.SerializeAsString();
}

Result<std::string> OpRepoSync(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoSyncRequest>(msg, "repo sync"));
  STRIA_ASSIGN_OR_RETURN(auto found, LinkedDir(c, t, req.ino(), req.cred(), "repo sync"));
  auto& [dir, root] = found;
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), req.cred(), kMayWrite, "repo sync"));
  if (req.objects_size() + req.deleted_size() > 10000) {
    return Err(EINVAL, "repo sync: {} names in one request (10,000 at most)", req.objects_size() + req.deleted_size());
  }
  proto::RepoSyncReply rep;
  if (dir.repo_unlisted()) return rep.SerializeAsString();   // imported whole at its first look
  // The level compared: the directory's path now (it may have been renamed
  // since it was listed), as the client found it, below the link's prefix.
  const std::string& link_prefix = root.repo_key();
  const std::string prefix = req.has_prefix() ? req.prefix() : dir.repo_key();
  if (!prefix.starts_with(link_prefix) || (prefix != link_prefix && !prefix.ends_with("/")) ||
      prefix.find("//", link_prefix.empty() ? 0 : link_prefix.size() - 1) != std::string::npos) {
    return Err(EINVAL, "repo sync: prefix '{}' of directory {} is not a level below its link's prefix '{}'", prefix,
               dir.attr().ino(), link_prefix);
  }
  if (dir.repo_key() != prefix && dir.attr().ino() != root.attr().ino()) {
    // What the directory's new files and directories inherit from now.
    dir.set_repo_key(prefix);
    c.PutInode(t, dir);
  }
  int64_t now = NowNs();
  for (const auto& o : req.objects()) {
    STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, dir.attr().ino(), o.name()));
    if (!e) {
      STRIA_ASSIGN_OR_RETURN(bool known, KnownHere(c, t, prefix, root, o));
      if (known) {
        rep.set_skipped(rep.skipped() + 1);
        continue;
      }
      STRIA_ASSIGN_OR_RETURN(bool valid, ImportObject(c, t, dir, prefix, root, o, now));
      if (valid) rep.set_created(rep.created() + 1);
      else rep.set_skipped(rep.skipped() + 1);
      continue;
    }
    if (o.is_dir() || e->type() != proto::FT_REG) continue;
    STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, e->ino()));
    if (rec.repo_etag() == o.etag()) continue;
    // Its content is at another key now (its directory was renamed and
    // exported): this object is not its.
    if (rec.repo_key() != prefix + o.name()) continue;
    auto state = RepoStateOf(rec);
    // A dirty file is exported over the object; an open resident file
    // keeps reading its objects (synced when it is closed, next time).
    if (state == proto::RS_DIRTY || state == proto::RS_NONE ||
        (state == proto::RS_RESIDENT && c.sessions.IsOpen(rec.attr().ino()))) {
      rep.set_skipped(rep.skipped() + 1);
      continue;
    }
    STRIA_RETURN_IF_ERROR(Rebase(c, t, rec, o.size(), o.etag(), o.mtime_ns()));
    rep.set_changed(rep.changed() + 1);
  }
  for (const auto& name : req.deleted()) {
    STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, dir.attr().ino(), name));
    if (!e || e->type() != proto::FT_REG) continue;
    STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, e->ino()));
    auto state = RepoStateOf(rec);
    if (rec.repo_key() != prefix + name) continue;   // at another key now: not gone
    if (state != proto::RS_RELEASED && state != proto::RS_RESIDENT) {
      rep.set_skipped(rep.skipped() + 1);
      continue;
    }
    STRIA_RETURN_IF_ERROR(c.RemoveEntry(t, dir.attr().ino(), name, *e));
    STRIA_RETURN_IF_ERROR(c.DropLink(t, rec));
    rep.set_removed(rep.removed() + 1);
  }
  return rep.SerializeAsString();
}

}  // namespace stria::meta
