// libstria: imports a level of a linked bucket when meta asks for it
// (EREMOTE), so that linking a bucket of millions of objects costs nothing
// until its directories are looked at (docs/data_repositories.md).
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

}  // namespace stria
