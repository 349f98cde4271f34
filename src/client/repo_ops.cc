// libstria: data repository links (docs/data_repositories.md).
#include "client/client_impl.h"

namespace stria {

namespace {

RepoLinkSpec FromProto(const proto::RepoLink& l) {
  RepoLinkSpec s;
  s.url = l.url();
  s.endpoint = l.endpoint();
  s.region = l.region();
  s.virtual_host = l.virtual_host();
  s.profile = l.profile();
  s.auto_export_delay_s = l.auto_export_delay_s();
  s.export_deletes = l.export_deletes();
  return s;
}

}  // namespace

Status Client::RepoLink(const std::string& path, const RepoLinkSpec& link) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  proto::RepoLinkRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(r.attr().ino());
  auto* l = req.mutable_link();
  l->set_url(link.url);
  l->set_endpoint(link.endpoint);
  l->set_region(link.region);
  l->set_virtual_host(link.virtual_host);
  l->set_profile(link.profile);
  l->set_auto_export_delay_s(link.auto_export_delay_s);
  l->set_export_deletes(link.export_deletes);
  return impl_->MetaCall<proto::RepoLinkReply>(proto::REPO_LINK, req).status().Prefixed("repo link " + path);
}

Status Client::RepoUnlink(const std::string& path, bool force) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  proto::RepoUnlinkRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(r.attr().ino());
  req.set_force(force);
  return impl_->MetaCall<proto::RepoUnlinkReply>(proto::REPO_UNLINK, req).status().Prefixed("repo unlink " + path);
}

Status Client::RepoRenamesExported(const std::string& link_path, uint64_t renames) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(link_path, true));
  proto::RepoRenamesExportedRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_root(r.attr().ino());
  req.set_renames(renames);
  return impl_->MetaCall<proto::RepoRenamesExportedReply>(proto::REPO_RENAMES_EXPORTED, req)
      .status()
      .Prefixed("repo export " + link_path);
}

Result<std::vector<RepoLinkInfo>> Client::RepoList() {
  proto::RepoListRequest req;
  *req.mutable_cred() = impl_->cred;
  auto rep = impl_->MetaCall<proto::RepoListReply>(proto::REPO_LIST, req);
  if (!rep.ok()) return rep.status().Prefixed("repo list");
  std::vector<RepoLinkInfo> out;
  for (const auto& i : rep->links()) {
    RepoLinkInfo info;
    info.ino = i.ino();
    info.path = i.path();
    info.link = FromProto(i.link());
    info.created_ns = i.link().created_ns();
    const auto& c = i.counts();
    info.counts = {c.released_files(), c.released_bytes(), c.resident_files(), c.resident_bytes(),
                   c.dirty_files(),    c.dirty_bytes(),    c.renames(),        c.renames_exported()};
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace stria
