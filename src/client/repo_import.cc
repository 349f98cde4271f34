// libstria: imports a level of a linked bucket when meta asks for it
// (EREMOTE), so that linking a bucket of millions of objects costs nothing
// until its directories are looked at (docs/data_repositories.md).
#include <set>

#include <spdlog/spdlog.h>

#include "client/client_impl.h"
#include "repo/credentials.h"
#include "repo/s3_client.h"

namespace stria {

Result<std::shared_ptr<repo::S3Client>> Client::Impl::S3For(const proto::RepoLink& link) {
  std::lock_guard lk(s3_mu);
  std::string cache_key = link.endpoint() + "|" + link.region() + "|" + link.profile() + "|" +
                          (link.virtual_host() ? "v" : "p");
  auto& s3c = s3[cache_key];
  if (!s3c) {
    auto creds = repo::LoadCredentials(link.profile());
    if (!creds.ok()) {
      s3.erase(cache_key);
      return creds.status().Prefixed("credentials");
    }
    repo::S3Options o;
    o.deadline_ms = static_cast<int>(std::min<int64_t>(opt.timeout.count(), 600000));
    s3c = std::make_shared<repo::S3Client>(repo::S3Endpoint{link.endpoint(), link.region(), link.virtual_host()},
                                           *creds, o);
  }
  return s3c;
}

Status Client::Impl::Refresh(client::OpenFile& f, const std::string& what) {
  std::optional<proto::RepoSource> src;
  {
    std::lock_guard lk(f.mu);
    src = f.source;
  }
  if (!src) return Status::Ok();
  std::string bucket, prefix;
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(src->link().url(), &bucket, &prefix));
  auto s3c = S3For(src->link());
  if (!s3c.ok()) return s3c.status().Prefixed(what);
  auto head = (*s3c)->Head(bucket, src->key());
  if (!head.ok()) return head.status().Prefixed(what + ": the bucket object changed, and its HEAD failed");
  proto::RepoRefreshRequest req;
  *req.mutable_cred() = cred;
  req.set_ino(f.ino);
  req.set_old_etag(src->etag());
  req.set_size(head->size);
  req.set_etag(head->etag);
  req.set_mtime_ns(head->mtime_ns);
  auto r = MetaCall<proto::RepoRefreshReply>(proto::REPO_REFRESH, req);
  if (!r.ok()) return r.status().Prefixed(what);
  spdlog::info("{}: the bucket object {}/{} changed (ETag {} -> {}); reading it anew", what, bucket, src->key(),
               src->etag(), head->etag);
  std::lock_guard lk(f.mu);
  f.layout = r->layout();
  f.size = r->attr().size();
  f.version = r->attr().version();
  f.DropReadCache();
  if (r->has_source()) f.source = r->source();
  else f.source.reset();
  return Status::Ok();
}

Status Client::Impl::ImportDir(uint64_t ino) {
  std::lock_guard lk(import_mu);
  proto::RepoDirInfoRequest ireq;
  *ireq.mutable_cred() = cred;
  ireq.set_ino(ino);
  auto info = MetaCall<proto::RepoDirInfoReply>(proto::REPO_DIR_INFO, ireq);
  if (!info.ok()) return info.status().Prefixed(fmt::format("import of directory {}", ino));
  if (!info->unlisted()) return Status::Ok();   // imported meanwhile (by us or another client)
  const auto& link = info->link();
  std::string bucket, link_prefix;
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(link.url(), &bucket, &link_prefix));
  std::string what = fmt::format("import of directory {} from {}/{}", ino, link.endpoint(), bucket);

  auto s3c = S3For(link);
  if (!s3c.ok()) return s3c.status().Prefixed(what);
  const std::string& prefix = info->prefix();
  std::string token;
  size_t objects = 0;
  do {
    auto page = (*s3c)->List(bucket, prefix, "/", token);
    if (!page.ok()) return page.status().Prefixed(what);
    proto::RepoImportRequest req;
    *req.mutable_cred() = cred;
    *req.mutable_mid() = NextMid();
    req.set_ino(ino);
    for (const auto& o : page->objects) {
      if (o.key.size() <= prefix.size()) continue;   // the "folder" object of the prefix itself
      auto* r = req.add_objects();
      r->set_name(o.key.substr(prefix.size()));
      r->set_size(o.size);
      r->set_etag(o.etag);
      r->set_mtime_ns(o.mtime_ns);
    }
    for (const auto& p : page->common_prefixes) {
      if (p.size() <= prefix.size() + 1) continue;   // "prefix//": an empty name
      auto* r = req.add_objects();
      r->set_name(p.substr(prefix.size(), p.size() - prefix.size() - 1));
      r->set_is_dir(true);
    }
    objects += static_cast<size_t>(req.objects_size());
    req.set_complete(!page->truncated);
    auto rep = MetaCall<proto::RepoImportReply>(proto::REPO_IMPORT, req);
    if (!rep.ok()) return rep.status().Prefixed(what);
    if (rep->skipped()) {
      spdlog::warn("{}: {} keys are not valid file names and were left out", what, rep->skipped());
    }
    token = page->truncated ? page->next_token : "";
  } while (!token.empty());
  spdlog::debug("{}: {} names under '{}'", what, objects, prefix);
  return Status::Ok();
}

Result<RepoSyncResult> Client::RepoSync(const std::string& path) {
  RepoSyncResult out;
  std::string what = "repo sync " + path;
  STRIA_ASSIGN_OR_RETURN(auto top, impl_->Resolve(path, true));
  if (top.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "{}: not a directory", what);
  std::vector<std::pair<uint64_t, std::string>> todo = {{top.attr().ino(), path}};
  std::vector<RepoLinkInfo> links;
  while (!todo.empty()) {
    auto [ino, dir] = todo.back();
    todo.pop_back();
    proto::RepoDirInfoRequest ir;
    *ir.mutable_cred() = impl_->cred;
    ir.set_ino(ino);
    auto info = impl_->MetaCall<proto::RepoDirInfoReply>(proto::REPO_DIR_INFO, ir);
    if (!info.ok()) return info.status().Prefixed(what);
    if (info->unlisted()) continue;   // imported whole when first looked at
    std::string bucket, link_prefix;
    STRIA_RETURN_IF_ERROR(repo::ParseS3Url(info->link().url(), &bucket, &link_prefix));
    auto s3c = impl_->S3For(info->link());
    if (!s3c.ok()) return s3c.status().Prefixed(what);
    if (links.empty()) {
      STRIA_ASSIGN_OR_RETURN(links, RepoList());
    }
    // The level of the bucket the directory's path names now: a directory
    // renamed here since it was listed is compared with its new name.
    std::optional<std::string> path_prefix;
    for (const auto& l : links) {
      if (l.ino != info->root()) continue;
      if (auto p = client::Normalize(dir); p.ok() && *p == l.path) {
        path_prefix = link_prefix;
      } else if (auto key = RepoKeyOf(l, dir); key.ok()) {
        path_prefix = *key + "/";
      } else {
        spdlog::warn("{}: {}; compared with the level it was listed from", what, key.status().ToString());
      }
    }
    const std::string prefix = path_prefix.value_or(info->prefix());
    auto level = (*s3c)->ListAll(bucket, prefix, "/");
    if (!level.ok()) return level.status().Prefixed(fmt::format("{}: list {}/{}", what, bucket, prefix));
    std::vector<proto::RepoObject> objects;
    std::set<std::string> names;
    for (const auto& o : level->objects) {
      if (o.key.size() <= prefix.size()) continue;
      proto::RepoObject r;
      r.set_name(o.key.substr(prefix.size()));
      r.set_size(o.size);
      r.set_etag(o.etag);
      r.set_mtime_ns(o.mtime_ns);
      names.insert(r.name());
      objects.push_back(std::move(r));
    }
    for (const auto& p : level->common_prefixes) {
      if (p.size() <= prefix.size() + 1) continue;
      proto::RepoObject r;
      r.set_name(p.substr(prefix.size(), p.size() - prefix.size() - 1));
      r.set_is_dir(true);
      objects.push_back(std::move(r));
    }
    // What is here now: clean files whose object is gone go; the
    // directories that were here already are compared in turn.
    std::vector<std::string> deleted;
    uint64_t cookie = 0;
    while (true) {
      STRIA_ASSIGN_OR_RETURN(auto page, ReadDirPage(dir, cookie, 1024, true));
      for (size_t k = 0; k < page.entries.size(); k++) {
        const auto& e = page.entries[k];
        cookie = e.cookie;
        std::string child = dir == "/" ? "/" + e.name : dir + "/" + e.name;
        if (e.type == FileType::kDirectory) todo.push_back({e.ino, child});
        RepoState st = page.attrs[k].repo_state;
        if (e.type == FileType::kRegular && !names.count(e.name) &&
            (st == RepoState::kReleased || st == RepoState::kResident)) {
          deleted.push_back(e.name);
        }
      }
      if (page.eof || page.entries.empty()) break;
    }
    // Pages: the objects, then the deletions (10,000 names a request at most).
    constexpr size_t kPage = 5000;
    std::vector<proto::RepoSyncRequest> reqs;
    for (size_t off = 0; off < objects.size(); off += kPage) {
      reqs.emplace_back();
      for (size_t k = off; k < std::min(objects.size(), off + kPage); k++) *reqs.back().add_objects() = objects[k];
    }
    for (size_t off = 0; off < deleted.size(); off += kPage) {
      reqs.emplace_back();
      for (size_t k = off; k < std::min(deleted.size(), off + kPage); k++) reqs.back().add_deleted(deleted[k]);
    }
    for (auto& req : reqs) {
      *req.mutable_cred() = impl_->cred;
      *req.mutable_mid() = impl_->NextMid();
      req.set_ino(ino);
      if (path_prefix) req.set_prefix(*path_prefix);
      auto rep = impl_->MetaCall<proto::RepoSyncReply>(proto::REPO_SYNC, req);
      if (!rep.ok()) return rep.status().Prefixed(fmt::format("{}: {}", what, dir));
      out.created += rep->created();
      out.changed += rep->changed();
      out.removed += rep->removed();
      out.skipped += rep->skipped();
    }
    out.directories++;
  }
  return out;
}

}  // namespace stria
