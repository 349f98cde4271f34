// RepoLink/RepoUnlink/RepoList: directories linked to a bucket prefix
// (docs/data_repositories.md). The link lives in the directory's inode
// record; an index key L ino lists them without a scan.
#include <memory>

#include <rocksdb/db.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"

namespace stria::meta {

namespace {

Status CheckRoot(const proto::Cred& cred, const char* what) {
  if (cred.uid() != 0) return Err(EPERM, "{}: only root may change data repository links", what);
  return Status::Ok();
}

// The path of directory ino from the root, found by walking up its parents
// and looking for its entry in each (a scan of the parent: used by the
// listing of links only).
Result<std::string> PathOf(Ctx& c, Txn& t, uint64_t ino) {
  std::string path;
  for (int depth = 0; depth < 4096; depth++) {
    STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, ino));
    uint64_t parent = rec.parent();
    if (parent == 0 || parent == ino) return path.empty() ? std::string("/") : path;
    std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
    const std::string prefix = keys::EntryPrefix(parent);
    std::string name;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      EntryRecord e;
      if (e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) && e.ino() == ino) {
        name = it->key().ToString().substr(prefix.size());
        break;
      }
    }
    if (name.empty()) return Err(EIO, "directory inode {} has no entry in its parent {}", ino, parent);
    path = "/" + name + path;
    ino = parent;
  }
  return Err(ELOOP, "directory inode {}: too deep", ino);
}

}  // namespace

Result<proto::RepoCounts> Counts(Txn& t, uint64_t root) {
  proto::RepoCounts n;
  STRIA_ASSIGN_OR_RETURN(auto v, t.Get(keys::RepoCounts(root)));
  if (v && !n.ParseFromString(*v)) return Err(EIO, "repository counts of {} are damaged", root);
  return n;
}

Result<std::string> OpRepoLink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoLinkRequest>(msg, "repo link"));
  STRIA_RETURN_IF_ERROR(CheckRoot(req.cred(), "repo link"));
  const auto& l = req.link();
  if (l.url().rfind("s3://", 0) != 0 || l.url().size() <= 5) {
    return Err(EINVAL, "repo link: '{}' is not an s3://BUCKET[/PREFIX] URL", l.url());
  }
  if (l.endpoint().rfind("http://", 0) != 0 && l.endpoint().rfind("https://", 0) != 0) {
    return Err(EINVAL, "repo link: endpoint '{}' is not an http:// or https:// URL", l.endpoint());
  }
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, req.ino()));
  if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "repo link: inode {} is not a directory", req.ino());
  if (dir.has_repo_link()) {
    return Err(EEXIST, "repo link: inode {} is already linked to {}", req.ino(), dir.repo_link().url());
  }
  STRIA_ASSIGN_OR_RETURN(bool empty, DirIsEmpty(c, t, req.ino()));
  if (!empty) return Err(ENOTEMPTY, "repo link: directory inode {} is not empty", req.ino());
  // No link inside another: walk up to the root.
  for (uint64_t up = dir.parent(); up != 0;) {
    STRIA_ASSIGN_OR_RETURN(auto anc, c.GetInode(t, up));
    if (anc.has_repo_link()) {
      return Err(EINVAL, "repo link: inode {} is inside directory inode {}, linked to {}", req.ino(), up,
                 anc.repo_link().url());
    }
    if (up == anc.parent()) break;   // the root is its own parent
    up = anc.parent();
  }
  std::string rest = l.url().substr(5);
  auto slash = rest.find('/');
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  *dir.mutable_repo_link() = l;
  dir.mutable_repo_link()->set_created_ns(NowNs());
  dir.set_repo_root(req.ino());
  dir.set_repo_key(prefix);
  dir.set_repo_unlisted(true);   // its bucket level is imported at first lookup
  dir.mutable_attr()->set_ctime_ns(NowNs());
  c.PutInode(t, dir);
  t.Put(keys::RepoLink(req.ino()), "");
  t.Put(keys::RepoCounts(req.ino()), proto::RepoCounts().SerializeAsString());
  return proto::RepoLinkReply().SerializeAsString();
}

Result<std::string> OpRepoUnlink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoUnlinkRequest>(msg, "repo unlink"));
  STRIA_RETURN_IF_ERROR(CheckRoot(req.cred(), "repo unlink"));
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, req.ino()));
  if (!dir.has_repo_link()) return Err(EINVAL, "repo unlink: inode {} is not linked to a bucket", req.ino());
  STRIA_ASSIGN_OR_RETURN(auto n, Counts(t, req.ino()));
  if (!req.force() && (n.released_files() || n.dirty_files())) {
    return Err(EBUSY,
               "repo unlink: {} files under it are released (data only in the bucket) and {} are dirty "
               "(not exported); export and hydrate them first, or force",
               n.released_files(), n.dirty_files());
  }
  // What is under it stays as it is; with the link gone it is no longer
  // counted, and directories never imported read as empty.
  dir.clear_repo_link();
  dir.set_repo_root(0);
  dir.clear_repo_key();
  dir.set_repo_unlisted(false);
  dir.mutable_attr()->set_ctime_ns(NowNs());
  c.PutInode(t, dir);
  t.Delete(keys::RepoLink(req.ino()));
  t.Delete(keys::RepoCounts(req.ino()));
  return proto::RepoUnlinkReply().SerializeAsString();
}

Result<std::string> OpRepoList(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoListRequest>(msg, "repo list"));
  proto::RepoListReply rep;
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = keys::RepoLinkPrefix();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    uint64_t ino = keys::GetBE(it->key().ToStringView(), 1);
    STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, ino));
    auto* info = rep.add_links();
    info->set_ino(ino);
    auto path = PathOf(c, t, ino);
    info->set_path(path.ok() ? *path : "?");
    *info->mutable_link() = dir.repo_link();
    STRIA_ASSIGN_OR_RETURN(*info->mutable_counts(), Counts(t, ino));
  }
  if (!it->status().ok()) return Err(EIO, "repo list: {}", it->status().ToString());
  (void)req;
  return rep.SerializeAsString();
}

}  // namespace stria::meta
