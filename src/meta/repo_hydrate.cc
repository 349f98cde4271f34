// Hydration of released files (docs/data_repositories.md, "Hydration"):
// stria-meta hands out where a released file's bytes are, refuses changes
// to data that is not all in Stria yet, and marks a file resident once the
// stores (or a client) report all of its stripe objects fetched. It never
// talks to S3 itself.
#include <algorithm>
#include <set>

#include "client/striping.h"
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Result<std::optional<proto::RepoSource>> SourceOf(Ctx& c, Txn& t, const InodeRecord& file) {
  if (RepoStateOf(file) != proto::RS_RELEASED || file.attr().size() == 0) return std::optional<proto::RepoSource>();
  STRIA_ASSIGN_OR_RETURN(auto root, LinkRoot(c, t, file));
  if (!root) {
    return Err(EIO, "inode {} is released (its data only in a bucket, object '{}') and its link is gone",
               file.attr().ino(), file.repo_key());
  }
  proto::RepoSource s;
  *s.mutable_link() = root->repo_link();
  s.set_key(file.repo_key());
  s.set_etag(file.repo_etag());
  s.set_size(file.attr().size());
  s.set_ino(file.attr().ino());
  return std::optional<proto::RepoSource>(std::move(s));
}

Status CheckHydrated(const InodeRecord& file, const char* what) {
  if (RepoStateOf(file) != proto::RS_RELEASED || file.attr().size() == 0) return Status::Ok();
  return Err(ENODATA, "{}: inode {} is released (its data is still in the bucket, object '{}'): "
             "it must be hydrated before its data changes", what, file.attr().ino(), file.repo_key());
}

Status ApplyHydrated(Ctx& c, Txn& t, const proto::RepoHydrated& h) {
  auto got = c.GetInode(t, h.ino());
  if (got.status().code() == ENOENT) return Status::Ok();   // removed meanwhile
  if (!got.ok()) return got.status();
  InodeRecord& rec = *got;
  // Only reports about the objects the file has now count: a file
  // refreshed, truncated or released since has other objects.
  if (RepoStateOf(rec) != proto::RS_RELEASED || rec.layout().object_id() != h.object_id()) return Status::Ok();
  const auto& l = rec.layout();
  std::set<uint32_t> have(rec.repo_hydrated().begin(), rec.repo_hydrated().end());
  for (uint32_t i : h.indexes()) {
    if (i < l.stripe_count()) have.insert(i);
  }
  bool all = true;
  for (uint32_t i = 0; i < l.stripe_count(); i++) {
    bool holds_data = client::ObjectLength(l.stripe_size(), l.stripe_count(), i, rec.attr().size()) > 0;
    if (holds_data && !have.count(i)) all = false;
  }
  rec.clear_repo_hydrated();
  if (all) {
    rec.set_repo_state(proto::RS_RESIDENT);
  } else {
    for (uint32_t i : have) rec.add_repo_hydrated(i);
  }
  c.PutInode(t, rec);
  return Status::Ok();
}

Result<std::string> OpRepoHydrated(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoHydratedRequest>(msg, "repo hydrated"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.hydrated().ino()));
  STRIA_RETURN_IF_ERROR(CheckAccess(rec.attr(), req.cred(), kMayRead, "repo hydrated"));
  STRIA_RETURN_IF_ERROR(ApplyHydrated(c, t, req.hydrated()));
  STRIA_ASSIGN_OR_RETURN(rec, c.GetInode(t, req.hydrated().ino()));
  proto::RepoHydratedReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

Status Rebase(Ctx& c, Txn& t, InodeRecord& rec, uint64_t size, const std::string& etag, int64_t mtime_ns) {
  if (size > (1ull << 60)) return Err(EINVAL, "inode {}: object size {} is out of range", rec.attr().ino(), size);
  // Fresh objects: chunks of the old content may be in the old ones.
  STRIA_RETURN_IF_ERROR(FreshObjects(c, t, rec));
  auto* a = rec.mutable_attr();
  a->set_size(size);
  if (mtime_ns) a->set_mtime_ns(mtime_ns);
  a->set_ctime_ns(NowNs());
  a->set_version(a->version() + 1);
  rec.set_repo_clean_version(a->version());   // the bucket's content, not a change of ours
  rec.set_repo_etag(etag);
  rec.clear_repo_hydrated();
  rec.set_repo_state(size ? proto::RS_RELEASED : proto::RS_RESIDENT);
  c.PutInode(t, rec);
  return Status::Ok();
}

Result<std::string> OpRepoRefresh(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RepoRefreshRequest>(msg, "repo refresh"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  STRIA_RETURN_IF_ERROR(CheckAccess(rec.attr(), req.cred(), kMayRead, "repo refresh"));
  if (RepoStateOf(rec) == proto::RS_RELEASED && rec.repo_etag() == req.old_etag() && req.etag() != req.old_etag()) {
    STRIA_RETURN_IF_ERROR(Rebase(c, t, rec, req.size(), req.etag(), req.mtime_ns()));
    STRIA_ASSIGN_OR_RETURN(rec, c.GetInode(t, req.ino()));
  }
  proto::RepoRefreshReply rep;
  *rep.mutable_attr() = rec.attr();
  *rep.mutable_layout() = rec.layout();
  STRIA_ASSIGN_OR_RETURN(auto source, SourceOf(c, t, rec));
  if (source) *rep.mutable_source() = std::move(*source);
  return rep.SerializeAsString();
}

}  // namespace stria::meta
