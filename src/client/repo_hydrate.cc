// libstria: a file's moves between Stria and its bucket
// (docs/data_repositories.md): whole-file hydration (reads of a released
// file hydrate only what they touch; a writer, a cut or `stria repo warm`
// needs the whole file in first), export of dirty files and release of
// resident ones.
#include <fcntl.h>

#include <map>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "client/client_impl.h"
#include "client/striping.h"
#include "repo/s3_client.h"

namespace stria {

Result<proto::Attr> Client::Impl::Hydrate(const proto::Cred& c, uint64_t ino, const proto::Layout& l,
                                          const proto::RepoSource& source, const std::string& what) {
  if (l.stripe_count() == 0 || l.targets_size() < static_cast<int>(l.stripe_count())) {
    return Err(EIO, "{}: file has no valid layout", what);
  }
  // Every object at once, each in pieces that fit a request's length.
  constexpr uint64_t kPiece = 1ull << 30;
  std::vector<client::StoreOp> ops;
  proto::RepoHydratedRequest done;
  *done.mutable_cred() = c;
  done.mutable_hydrated()->set_ino(ino);
  done.mutable_hydrated()->set_object_id(l.object_id());
  for (uint32_t i = 0; i < l.stripe_count(); i++) {
    uint64_t len = client::ObjectLength(l.stripe_size(), l.stripe_count(), i, source.size());
    if (len == 0) continue;
    done.mutable_hydrated()->add_indexes(i);
    for (uint64_t off = 0; off < len; off += kPiece) {
      proto::ObjReadRequest req;
      req.set_target(l.targets(i));
      req.set_ino(l.object_id());
      req.set_index(i);
      req.set_offset(off);
      req.set_length(static_cast<uint32_t>(std::min(kPiece, len - off)));
      auto* f = req.mutable_fetch();
      *f->mutable_source() = source;
      f->set_stripe_size(l.stripe_size());
      f->set_stripe_count(l.stripe_count());
      f->set_hydrate_only(true);
      client::StoreOp op;
      op.target = l.targets(i);
      op.type = proto::OBJ_READ;
      op.message = req.SerializeAsString();
      ops.push_back(std::move(op));
    }
  }
  STRIA_RETURN_IF_ERROR(RunStoreOps(ops, what));
  auto r = MetaCall<proto::RepoHydratedReply>(proto::REPO_HYDRATED, done);
  if (!r.ok()) return r.status().Prefixed(what);
  return r->attr();
}

Status Client::Impl::HydrateIno(const proto::Cred& c, uint64_t ino, const std::string& what) {
  // An open without a session registers nothing: it only asks where the
  // bytes are.
  proto::OpenRequest req;
  *req.mutable_cred() = c;
  req.set_ino(ino);
  req.set_flags(O_RDONLY);
  auto r = MetaCall<proto::OpenReply>(proto::OPEN, req);
  if (!r.ok()) return r.status().Prefixed(what);
  if (!r->has_source()) return Status::Ok();
  return Hydrate(c, ino, r->layout(), r->source(), what).status();
}

Status Client::Impl::RenameHydrating(proto::RenameRequest req, const std::string& what) {
  *req.mutable_mid() = NextMid();
  auto r = MetaCall<proto::RenameReply>(proto::RENAME, req);
  if (r.ok() || r.status().code() != ENODATA) return r.status().Prefixed(what);
  std::vector<std::pair<uint64_t, std::string>> names = {{req.src_parent(), req.src_name()}};
  if (req.flags() & proto::RN_EXCHANGE) names.emplace_back(req.dst_parent(), req.dst_name());
  for (const auto& [parent, name] : names) {
    proto::LookupRequest lr;
    *lr.mutable_cred() = req.cred();
    lr.set_parent(parent);
    lr.set_name(name);
    auto l = MetaCall<proto::LookupReply>(proto::LOOKUP, lr);
    if (!l.ok()) return l.status().Prefixed(what);
    if (l->attr().type() == proto::FT_REG) STRIA_RETURN_IF_ERROR(HydrateIno(req.cred(), l->attr().ino(), what));
  }
  *req.mutable_mid() = NextMid();   // the refusal may be remembered under the first one
  return MetaCall<proto::RenameReply>(proto::RENAME, req).status().Prefixed(what);
}

Status Client::Impl::HydrateForWrite(const proto::Cred& c, proto::OpenReply& r, int flags, const std::string& what) {
  int acc = flags & O_ACCMODE;
  if (!r.has_source() || acc == O_RDONLY) return Status::Ok();
  auto attr = Hydrate(c, r.attr().ino(), r.layout(), r.source(), what);
  if (!attr.ok()) {
    proto::CloseRequest close;
    close.set_session(session);
    close.set_ino(r.attr().ino());
    (void)MetaCall<proto::CloseReply>(proto::CLOSE, close);
    return attr.status();
  }
  *r.mutable_attr() = *attr;
  r.clear_source();
  return Status::Ok();
}

Result<proto::OpenReply> Client::Impl::OpenedExisting(const proto::Cred& c, const proto::CreateReply& r, int flags,
                                                       const std::string& what) {
  proto::OpenReply o;
  *o.mutable_attr() = r.attr();
  *o.mutable_layout() = r.layout();
  if (r.has_source()) *o.mutable_source() = r.source();
  STRIA_RETURN_IF_ERROR(HydrateForWrite(c, o, flags, what));
  return o;
}

Result<uint64_t> Client::RepoWarm(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  if (r.attr().repo_state() != proto::RS_RELEASED) return uint64_t(0);
  STRIA_RETURN_IF_ERROR(impl_->HydrateIno(impl_->cred, r.attr().ino(), "repo warm " + path));
  return r.attr().size();
}

Result<std::string> Client::RepoKeyOf(const RepoLinkInfo& link, const std::string& path) {
  std::string bucket, prefix;
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(link.link.url, &bucket, &prefix));
  STRIA_ASSIGN_OR_RETURN(std::string p, client::Normalize(path));
  if (link.path == "/") return prefix + p.substr(1);
  if (p.rfind(link.path + "/", 0) == 0) return prefix + p.substr(link.path.size() + 1);
  return Err(EINVAL, "{}: not below its link's directory {} (a symlink in the path?)", path, link.path);
}

Result<uint64_t> Client::RepoExport(const std::string& path) {
  std::string what = "repo export " + path;
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  const auto state = r.attr().repo_state();
  const bool clean = state == proto::RS_RESIDENT || state == proto::RS_RELEASED;
  if (state != proto::RS_DIRTY && !(clean && !r.attr().repo_key().empty())) return uint64_t(0);
  // Where it goes: the link's prefix and the file's path below the link
  // now (a file or directory renamed since it came from the bucket is
  // exported under its new name).
  STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(path));
  proto::RepoDirInfoRequest ir;
  *ir.mutable_cred() = impl_->cred;
  ir.set_ino(pn.first);
  auto info = impl_->MetaCall<proto::RepoDirInfoReply>(proto::REPO_DIR_INFO, ir);
  if (!info.ok()) return info.status().Prefixed(what);
  std::string bucket, link_prefix;
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(info->link().url(), &bucket, &link_prefix));
  STRIA_ASSIGN_OR_RETURN(auto links, RepoList());
  std::string key;
  for (const auto& l : links) {
    if (l.ino != info->root()) continue;
    STRIA_ASSIGN_OR_RETURN(key, RepoKeyOf(l, path));
  }
  if (key.empty()) return Err(EINVAL, "{}: its link is gone", what);
  auto s3 = impl_->S3For(info->link());
  if (!s3.ok()) return s3.status().Prefixed(what);
  if (clean && key == r.attr().repo_key()) return uint64_t(0);   // in its place
  {
    // A released file moved away (with a directory) may still have its
    // content at this key: that goes first (repo export of a link moves
    // such files before it uploads; RepoExportWaiting breaks rings).
    proto::RepoClaimKeyRequest cr;
    *cr.mutable_cred() = impl_->cred;
    cr.set_ino(r.attr().ino());
    cr.set_key(key);
    auto held = impl_->MetaCall<proto::RepoClaimKeyReply>(proto::REPO_CLAIM_KEY, cr);
    if (!held.ok()) return held.status().Prefixed(what);
    if (held->held_by() != 0) {
      return Err(EBUSY, "{}: {}/{} still holds the content of released inode {} (renamed away, not yet exported): "
                 "export again once it has moved, or warm it", what, bucket, key, held->held_by());
    }
  }
  if (clean) {
    // Moved: its content is in the bucket already, at its old key.
    const auto& a = r.attr();
    auto etag = (*s3)->Copy(bucket, a.repo_key(), a.repo_etag(), a.size(), key);
    if (etag.ok()) {
      proto::RepoMovedRequest req;
      *req.mutable_cred() = impl_->cred;
      req.set_ino(a.ino());
      req.set_version(a.version());
      req.set_old_key(a.repo_key());
      req.set_old_etag(a.repo_etag());
      req.set_key(key);
      req.set_etag(*etag);
      auto done = impl_->MetaCall<proto::RepoMovedReply>(proto::REPO_MOVED, req);
      if (!done.ok()) return done.status().Prefixed(what);
      return a.size();
    }
    // The old object changed or went: a resident file still has its
    // content here, a released one nowhere.
    auto code = etag.status().code();
    if (state == proto::RS_RELEASED || (code != ESTALE && code != ENOENT)) {
      return etag.status().Prefixed(fmt::format("{}: copy of {}/{} (its content) to {}", what, bucket,
                                                a.repo_key(), key));
    }
  }
  STRIA_ASSIGN_OR_RETURN(int fd, Open(path, O_RDONLY));
  uint64_t version = 0, size = 0;
  if (auto h = impl_->GetHandle(fd); h.ok()) {
    std::lock_guard lk((*h)->file->mu);
    version = (*h)->file->version;
    size = (*h)->file->size;
  }
  auto read = [&](uint64_t off, uint64_t len, char* buf) -> Status {
    for (uint64_t done = 0; done < len;) {
      STRIA_ASSIGN_OR_RETURN(size_t got, Pread(fd, buf + done, len - done, off + done));
      if (got == 0) return Err(EIO, "{}: the file shrank while it was read", what);
      done += got;
    }
    return Status::Ok();
  };
  auto etag = (*s3)->Upload(bucket, key, size, read);
  (void)Close(fd);
  if (!etag.ok()) return etag.status().Prefixed(fmt::format("{}: upload to {}/{}", what, bucket, key));
  proto::RepoExportedRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_ino(r.attr().ino());
  req.set_version(version);
  req.set_key(key);
  req.set_etag(*etag);
  req.set_size(size);
  auto done = impl_->MetaCall<proto::RepoExportedReply>(proto::REPO_EXPORTED, req);
  if (!done.ok()) return done.status().Prefixed(what);
  return size;
}

void Client::RepoExportWaiting(std::vector<std::string> paths,
                               const std::function<void(const std::string&, const Result<uint64_t>&)>& done) {
  std::map<std::string, Status> busy;
  std::set<std::string> warmed;   // each at most once: the loop ends
  while (!paths.empty()) {
    std::vector<std::string> still;
    for (const auto& p : paths) {
      auto r = RepoExport(p);
      if (r.ok() || r.status().code() != EBUSY) {
        done(p, r);
        busy.erase(p);
      } else {
        still.push_back(p);
        busy[p] = r.status();
      }
    }
    if (still.size() == paths.size()) {
      // None went. Each waits for the released file at the key it wants;
      // a file whose chain of waits comes back to it is in a ring.
      // Fetching it breaks the ring: the one waiting for its key goes.
      auto links = RepoList();
      std::map<std::string, size_t> at;   // key -> released file there
      std::vector<std::string> wants(still.size());
      for (size_t i = 0; links.ok() && i < still.size(); i++) {
        auto a = Stat(still[i]);
        if (!a.ok()) continue;
        const RepoLinkInfo* link = nullptr;
        for (const auto& l : *links) {
          if (l.path == "/" || still[i].rfind(l.path + "/", 0) == 0) {
            if (!link || l.path.size() > link->path.size()) link = &l;
          }
        }
        if (!link) continue;
        if (auto k = RepoKeyOf(*link, still[i]); k.ok()) wants[i] = *k;
        if (a->repo_state == RepoState::kReleased && !a->repo_key.empty()) at[a->repo_key] = i;
      }
      std::optional<size_t> ring;
      for (size_t i = 0; i < still.size() && !ring; i++) {
        if (wants[i].empty() || !at.count(wants[i]) || warmed.count(still[i])) continue;
        size_t j = i;
        for (size_t steps = 0; steps <= still.size(); steps++) {
          auto it = at.find(wants[j]);
          if (it == at.end()) break;
          j = it->second;
          if (j == i) {
            ring = i;
            break;
          }
        }
      }
      if (!ring) break;   // they wait for files not among them
      const std::string p = still[*ring];
      warmed.insert(p);
      auto w = RepoWarm(p);
      if (!w.ok()) {
        done(p, w.status().Prefixed(fmt::format("repo export {}: fetching it to break a ring of files that wait "
                                                "for one another's keys", p)));
        busy.erase(p);
        still.erase(still.begin() + static_cast<std::ptrdiff_t>(*ring));
      } else {
        spdlog::warn("repo export {}: fetched it ({} bytes) from the bucket: files in a ring waited for one "
                     "another's keys",
                     p, *w);
      }
    }
    paths = std::move(still);
  }
  for (const auto& p : paths) done(p, busy[p]);
}

Result<uint64_t> Client::RepoExportDeletions(const std::string& path) {
  std::string what = "repo export (deletions) " + path;
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  uint64_t dir = r.attr().ino();
  if (r.attr().type() != proto::FT_DIR) {
    STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(path));
    dir = pn.first;
  }
  proto::RepoDirInfoRequest ir;
  *ir.mutable_cred() = impl_->cred;
  ir.set_ino(dir);
  auto info = impl_->MetaCall<proto::RepoDirInfoReply>(proto::REPO_DIR_INFO, ir);
  if (!info.ok()) return info.status().Prefixed(what);
  if (!info->link().export_deletes()) return uint64_t(0);
  std::string bucket, link_prefix;
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(info->link().url(), &bucket, &link_prefix));
  auto s3 = impl_->S3For(info->link());
  if (!s3.ok()) return s3.status().Prefixed(what);
  uint64_t deleted = 0;
  std::vector<std::string> done;
  while (true) {
    proto::RepoDeletionsRequest req;
    *req.mutable_cred() = impl_->cred;
    req.set_root(info->root());
    for (auto& k : done) req.add_done(k);
    req.set_max(1000);
    auto list = impl_->MetaCall<proto::RepoDeletionsReply>(proto::REPO_DELETIONS, req);
    if (!list.ok()) return list.status().Prefixed(what);
    done.clear();
    if (list->deletions_size() == 0) return deleted;
    for (const auto& d : list->deletions()) {
      // Only the object the file had: one put there since stays.
      auto head = (*s3)->Head(bucket, d.key());
      if (head.ok() && head->etag == d.etag()) {
        Status st = (*s3)->Delete(bucket, d.key());
        if (!st.ok()) return st.Prefixed(fmt::format("{}: delete {}/{}", what, bucket, d.key()));
        deleted++;
      } else if (!head.ok() && head.status().code() != ENOENT) {
        return head.status().Prefixed(fmt::format("{}: {}/{}", what, bucket, d.key()));
      }
      done.push_back(d.key());
    }
  }
}

Result<uint64_t> Client::RepoRelease(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  if (r.attr().repo_state() != proto::RS_RESIDENT) return uint64_t(0);
  auto freed = RepoReleaseIno(r.attr().ino());
  if (!freed.ok()) return freed.status().Prefixed("repo release " + path);
  return freed;
}

Result<uint64_t> Client::RepoReleaseIno(uint64_t ino) {
  proto::RepoReleaseRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_ino(ino);
  STRIA_ASSIGN_OR_RETURN(auto done, impl_->MetaCall<proto::RepoReleaseReply>(proto::REPO_RELEASE, req));
  return done.attr().repo_state() == proto::RS_RELEASED ? done.attr().size() : 0;
}

Result<std::vector<RepoColdFile>> Client::RepoColdest(uint64_t bytes, uint32_t max_files) {
  proto::RepoColdestRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_bytes(bytes);
  req.set_max_files(max_files);
  STRIA_ASSIGN_OR_RETURN(auto rep, impl_->MetaCall<proto::RepoColdestReply>(proto::REPO_COLDEST, req));
  std::vector<RepoColdFile> out;
  for (const auto& f : rep.files()) out.push_back({f.ino(), f.size(), f.last_use_ns()});
  return out;
}

}  // namespace stria
