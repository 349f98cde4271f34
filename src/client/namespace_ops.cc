// libstria: path-based namespace operations over stria-meta's inode API.
#include <fcntl.h>

#include "client/client_impl.h"
#include "common/util.h"

namespace stria {

Result<std::string> client::Normalize(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return Err(EINVAL, "path '{}' is not absolute (Stria paths start with /)", path);
  }
  std::string out;
  for (size_t i = 0; i < path.size(); i++) {
    if (path[i] == '/' && (out.empty() ? false : out.back() == '/')) continue;
    out += path[i];
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Result<proto::ResolveReply> Client::Impl::Resolve(const std::string& path, bool follow_last) {
  STRIA_ASSIGN_OR_RETURN(std::string p, client::Normalize(path));
  proto::ResolveRequest req;
  *req.mutable_cred() = cred;
  req.set_path(p);
  req.set_follow_last(follow_last);
  auto r = MetaCall<proto::ResolveReply>(proto::RESOLVE, req);
  // Meta's own answers name the path already; transport errors do not.
  if (!r.ok() && !r.status().message().starts_with(p + ":")) return r.status().Prefixed(path);
  return r;
}

Result<std::pair<uint64_t, std::string>> Client::Impl::ResolveParent(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(std::string p, client::Normalize(path));
  if (p == "/") return Err(EINVAL, "{}: the root has no parent entry", path);
  auto slash = p.rfind('/');
  std::string dir = slash == 0 ? "/" : p.substr(0, slash);
  std::string name = p.substr(slash + 1);
  if (name == "." || name == "..") return Err(EINVAL, "{}: last component may not be {}", path, name);
  uint64_t parent = root;
  if (dir != "/") {
    STRIA_ASSIGN_OR_RETURN(auto r, Resolve(dir, true));
    if (r.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "{}: {} is not a directory", path, dir);
    parent = r.attr().ino();
  }
  return std::make_pair(parent, name);
}

Result<FileAttr> Client::Stat(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  // Our own buffered writes count (as the kernel's page cache does for stat).
  return impl_->WithLocalSize(r.attr());
}

Result<FileAttr> Client::Lstat(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, false));
  return ToFileAttr(r.attr());
}

Status Client::Mkdir(const std::string& path, uint32_t mode) {
  STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(path));
  proto::MkdirRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(pn.first);
  req.set_name(pn.second);
  req.set_mode(mode & 07777);
  return impl_->MetaCall<proto::MkdirReply>(proto::MKDIR, req).status().Prefixed("mkdir " + path);
}

Status Client::Rmdir(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(path));
  proto::RmdirRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(pn.first);
  req.set_name(pn.second);
  return impl_->MetaCall<proto::RmdirReply>(proto::RMDIR, req).status().Prefixed("rmdir " + path);
}

Status Client::Unlink(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(path));
  proto::UnlinkRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(pn.first);
  req.set_name(pn.second);
  return impl_->MetaCall<proto::UnlinkReply>(proto::UNLINK, req).status().Prefixed("unlink " + path);
}

Status Client::Rename(const std::string& from, const std::string& to, unsigned flags) {
  STRIA_ASSIGN_OR_RETURN(auto src, impl_->ResolveParent(from));
  STRIA_ASSIGN_OR_RETURN(auto dst, impl_->ResolveParent(to));
  proto::RenameRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_src_parent(src.first);
  req.set_src_name(src.second);
  req.set_dst_parent(dst.first);
  req.set_dst_name(dst.second);
  req.set_flags(flags);
  return impl_->RenameHydrating(std::move(req), "rename " + from + " to " + to);
}

Status Client::Symlink(const std::string& target, const std::string& link_path) {
  STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(link_path));
  proto::SymlinkRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(pn.first);
  req.set_name(pn.second);
  req.set_target(target);
  return impl_->MetaCall<proto::SymlinkReply>(proto::SYMLINK, req)
      .status()
      .Prefixed("symlink " + link_path);
}

Status Client::Link(const std::string& existing, const std::string& new_path) {
  STRIA_ASSIGN_OR_RETURN(auto src, impl_->Resolve(existing, false));
  STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(new_path));
  proto::LinkRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(src.attr().ino());
  req.set_new_parent(pn.first);
  req.set_new_name(pn.second);
  return impl_->MetaCall<proto::LinkReply>(proto::LINK, req)
      .status()
      .Prefixed("link " + existing + " to " + new_path);
}

Result<std::string> Client::Readlink(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, false));
  proto::ReadlinkRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_ino(r.attr().ino());
  auto rep = impl_->MetaCall<proto::ReadlinkReply>(proto::READLINK, req);
  if (!rep.ok()) return rep.status().Prefixed("readlink " + path);
  return rep->target();
}

Status Client::Impl::SetAttr(const std::string& path, proto::SetAttrRequest req, bool follow) {
  STRIA_ASSIGN_OR_RETURN(auto r, Resolve(path, follow));
  *req.mutable_cred() = cred;
  *req.mutable_mid() = NextMid();
  req.set_ino(r.attr().ino());
  return MetaCall<proto::SetAttrReply>(proto::SET_ATTR, req).status().Prefixed(path);
}

Status Client::Chmod(const std::string& path, uint32_t mode) {
  proto::SetAttrRequest req;
  req.set_mask(proto::SA_MODE);
  req.set_mode(mode & 07777);
  return impl_->SetAttr(path, req);
}

Status Client::Chown(const std::string& path, int64_t uid, int64_t gid) {
  proto::SetAttrRequest req;
  uint32_t mask = 0;
  if (uid >= 0) mask |= proto::SA_UID, req.set_uid(static_cast<uint32_t>(uid));
  if (gid >= 0) mask |= proto::SA_GID, req.set_gid(static_cast<uint32_t>(gid));
  req.set_mask(mask);
  return impl_->SetAttr(path, req);
}

Status Client::Utimens(const std::string& path, int64_t atime_ns, int64_t mtime_ns) {
  proto::SetAttrRequest req;
  req.set_mask(proto::SA_ATIME | proto::SA_MTIME);
  req.set_atime_ns(atime_ns);
  req.set_mtime_ns(mtime_ns);
  return impl_->SetAttr(path, req);
}

Status Client::Truncate(const std::string& path, uint64_t size) {
  STRIA_ASSIGN_OR_RETURN(int fd, Open(path, O_WRONLY));
  Status st = Ftruncate(fd, size);
  Status cl = Close(fd);
  return st.ok() ? cl : st;
}

Result<DirPage> Client::ReadDirPage(const std::string& path, uint64_t cookie, uint32_t max,
                                    bool plus) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  if (r.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "readdir {}: not a directory", path);
  proto::ReadDirRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_ino(r.attr().ino());
  req.set_cookie(cookie);
  req.set_max_entries(max);
  req.set_plus(plus);
  auto rep = impl_->MetaCall<proto::ReadDirReply>(proto::READ_DIR, req);
  if (!rep.ok()) return rep.status().Prefixed("readdir " + path);
  DirPage page;
  page.eof = rep->eof();
  for (const auto& e : rep->entries()) {
    page.entries.push_back({e.name(), e.ino(), static_cast<FileType>(e.type()), e.cookie()});
    page.attrs.push_back(ToFileAttr(e.attr()));
  }
  return page;
}

Result<std::vector<DirEntry>> Client::ReadDir(const std::string& path) {
  std::vector<DirEntry> out;
  uint64_t cookie = 0;
  while (true) {
    STRIA_ASSIGN_OR_RETURN(auto page, ReadDirPage(path, cookie, 1024, false));
    for (auto& e : page.entries) {
      cookie = e.cookie;
      out.push_back(std::move(e));
    }
    if (page.eof || page.entries.empty()) break;
  }
  return out;
}

Status Client::SetXattr(const std::string& path, const std::string& name, const std::string& value,
                        int flags) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  proto::SetXattrRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(r.attr().ino());
  req.set_name(name);
  req.set_value(value);
  req.set_flags(static_cast<uint32_t>(flags));
  return impl_->MetaCall<proto::SetXattrReply>(proto::SET_XATTR, req)
      .status()
      .Prefixed("setxattr " + path + " " + name);
}

Result<std::string> Client::GetXattr(const std::string& path, const std::string& name) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  proto::GetXattrRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_ino(r.attr().ino());
  req.set_name(name);
  auto rep = impl_->MetaCall<proto::GetXattrReply>(proto::GET_XATTR, req);
  if (!rep.ok()) return rep.status().Prefixed("getxattr " + path + " " + name);
  return rep->value();
}

Result<std::vector<std::string>> Client::ListXattr(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  proto::ListXattrRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_ino(r.attr().ino());
  auto rep = impl_->MetaCall<proto::ListXattrReply>(proto::LIST_XATTR, req);
  if (!rep.ok()) return rep.status().Prefixed("listxattr " + path);
  return std::vector<std::string>(rep->names().begin(), rep->names().end());
}

Status Client::RemoveXattr(const std::string& path, const std::string& name) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  proto::RemoveXattrRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(r.attr().ino());
  req.set_name(name);
  return impl_->MetaCall<proto::RemoveXattrReply>(proto::REMOVE_XATTR, req)
      .status()
      .Prefixed("removexattr " + path + " " + name);
}

Result<Layout> Client::GetLayout(const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto r, impl_->Resolve(path, true));
  proto::GetLayoutRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_ino(r.attr().ino());
  auto rep = impl_->MetaCall<proto::GetLayoutReply>(proto::GET_LAYOUT, req);
  if (!rep.ok()) return rep.status().Prefixed("getstripe " + path);
  Layout l = ToLayout(rep->layout());
  l.is_default = rep->is_default();
  return l;
}

Status Client::SetLayout(const std::string& path, uint32_t stripe_count, uint64_t stripe_size) {
  auto r = impl_->Resolve(path, true);
  uint64_t ino = 0;
  if (!r.ok() && r.status().code() == ENOENT) {
    // As lfs setstripe: a new, empty file with this layout.
    STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(path));
    proto::CreateRequest req;
    *req.mutable_cred() = impl_->cred;
    *req.mutable_mid() = impl_->NextMid();
    req.set_parent(pn.first);
    req.set_name(pn.second);
    req.set_mode(0644);
    req.set_type(proto::FT_REG);
    req.set_exclusive(true);
    req.mutable_layout()->set_stripe_count(stripe_count);
    req.mutable_layout()->set_stripe_size(stripe_size);
    return impl_->MetaCall<proto::CreateReply>(proto::CREATE, req)
        .status()
        .Prefixed("setstripe " + path);
  }
  if (!r.ok()) return r.status();
  ino = r->attr().ino();
  proto::SetLayoutRequest req;
  *req.mutable_cred() = impl_->cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(ino);
  req.mutable_layout()->set_stripe_count(stripe_count);
  req.mutable_layout()->set_stripe_size(stripe_size);
  return impl_->MetaCall<proto::SetLayoutReply>(proto::SET_LAYOUT, req)
      .status()
      .Prefixed("setstripe " + path);
}

}  // namespace stria
