// libstria: the inode-level calls, each for a given caller (what the FUSE
// mount uses), plus the helpers that keep this client's open files coherent
// when a file is truncated under them.
#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>

#include "client/client_impl.h"
#include "client/striping.h"
#include "common/util.h"

namespace stria {

using client::OpenFile;

proto::Cred ToCred(const Caller& c) {
  proto::Cred cred;
  cred.set_uid(c.uid);
  cred.set_gid(c.gid);
  for (uint32_t g : c.groups) cred.add_groups(g);
  return cred;
}

// ------------------------------------------------------------ helpers --

int Client::Impl::AddHandle(const proto::Attr& attr, const proto::Layout& layout, int flags,
                            const proto::Cred& cred, const std::string& path, const proto::RepoSource* source) {
  auto h = std::make_shared<client::Handle>();
  h->flags = flags;
  h->cred = cred;
  h->path = path;
  bool fresh = false;
  {
    std::lock_guard lk(mu);
    auto& f = open_files[attr.ino()];
    if (!f) {
      f = std::make_shared<OpenFile>();
      fresh = true;
    }
    f->handles++;
    h->file = f;
  }
  OpenFile& f = *h->file;
  std::lock_guard lk(f.mu);
  // Meta's answer says whether the file is (still) released.
  if (source) f.source = *source;
  else f.source.reset();
  if (fresh) {
    f.path = path;
    f.ino = attr.ino();
    f.type = attr.type();
    f.layout = layout;
    f.size = attr.size();
    f.version = attr.version();
    return AddHandleFd(h);
  }
  // Close-to-open: what meta says now wins over what nothing of ours is
  // still changing. Fresh objects mean the file was truncated to 0 (by
  // this open's O_TRUNC, or elsewhere): what we had buffered was written
  // before that, and is cut away with the rest.
  if (layout.object_id() != f.layout.object_id()) {
    (void)LandLocked(f);   // bytes for the old objects: their outcome no longer matters
    f.layout = layout;
    f.wb.clear();
    f.touched.clear();
    f.written_end = 0;
    f.size = 0;
  }
  bool changing = f.Dirty();
  f.size = changing ? std::max(f.size, attr.size()) : attr.size();
  if (attr.version() != f.version) f.DropReadCache();
  f.version = attr.version();
  return AddHandleFd(h);
}

int Client::Impl::AddHandleFd(std::shared_ptr<client::Handle> h) {
  std::lock_guard lk(mu);
  int fd = next_fd++;
  handles[fd] = std::move(h);
  return fd;
}

void Client::Impl::DropHandle(int fd, const std::shared_ptr<client::Handle>& h) {
  std::lock_guard lk(mu);
  handles.erase(fd);
  if (--h->file->handles == 0) open_files.erase(h->file->ino);
}

std::shared_ptr<OpenFile> Client::Impl::FileOf(uint64_t ino) {
  std::lock_guard lk(mu);
  auto it = open_files.find(ino);
  return it == open_files.end() ? nullptr : it->second;
}

FileAttr Client::Impl::WithLocalSize(const proto::Attr& a) {
  FileAttr out = ToFileAttr(a);
  if (a.type() != proto::FT_REG) return out;
  if (auto f = FileOf(a.ino())) {
    std::lock_guard lk(f->mu);
    // Our writes not yet committed count, as the kernel's dirty pages do.
    if (f->Dirty()) out.size = std::max(out.size, f->size);
  }
  return out;
}

Status Client::Impl::FlushIno(uint64_t ino) {
  if (auto f = FileOf(ino)) {
    std::lock_guard lk(f->mu);
    STRIA_RETURN_IF_ERROR(FlushLocked(*f));
  }
  return Status::Ok();
}

Result<proto::Attr> Client::Impl::TruncateIno(const proto::Cred& c, uint64_t ino,
                                              proto::SetAttrRequest req, const std::string& what) {
  uint64_t size = req.size();
  auto f = FileOf(ino);
  // The file's lock is held throughout: writes of this client wait, so
  // none lands between the cut and meta's new size.
  std::unique_lock<std::mutex> lk;
  if (f) lk = std::unique_lock<std::mutex>(f->mu);
  // Our buffered writes go out first, so that the truncate cuts them too.
  if (f) STRIA_RETURN_IF_ERROR(FlushLocked(*f));
  // Permission first: the objects must not shrink for a caller meta refuses.
  proto::AccessRequest ar;
  *ar.mutable_cred() = c;
  ar.set_ino(ino);
  ar.set_mask(req.open_for_write() ? 0 : 2);
  auto cur = MetaCall<proto::AccessReply>(proto::ACCESS, ar);
  if (!cur.ok()) return cur.status().Prefixed(what);
  if (cur->attr().type() == proto::FT_DIR) return Err(EISDIR, "{}: is a directory", what);
  if (cur->attr().type() != proto::FT_REG) return Err(EINVAL, "{}: not a regular file", what);
  // A released file's data is fetched whole before it is cut (to 0: meta
  // simply gives it fresh objects).
  if (size > 0 && cur->attr().repo_state() == proto::RS_RELEASED) STRIA_RETURN_IF_ERROR(HydrateIno(c, ino, what));
  // Shrinking cuts the objects, also bytes we sent but did not commit yet
  // (size 0 needs no store call: meta gives the file fresh objects and
  // frees the old ones).
  uint64_t end = cur->attr().size();
  if (f) end = std::max(end, std::max(f->size, f->written_end));
  if (size > 0 && size < end) {
    proto::GetLayoutRequest gl;
    *gl.mutable_cred() = c;
    gl.set_ino(ino);
    auto l = MetaCall<proto::GetLayoutReply>(proto::GET_LAYOUT, gl);
    if (!l.ok()) return l.status().Prefixed(what);
    STRIA_RETURN_IF_ERROR(TruncateObjects(what, l->layout(), size));
    // The cut objects are synced with the file's next fsync.
    if (f && l->layout().object_id() == f->layout.object_id()) {
      for (uint32_t i = 0; i < l->layout().stripe_count(); i++) f->touched.insert(i);
    }
  }
  *req.mutable_cred() = c;
  *req.mutable_mid() = NextMid();
  req.set_ino(ino);
  req.set_mask(req.mask() | proto::SA_SIZE);
  auto r = MetaCall<proto::SetAttrReply>(proto::SET_ATTR, req);
  if (!r.ok()) return r.status().Prefixed(what);
  if (f) {
    f->size = size;
    f->written_end = std::min(f->written_end, size);
    f->version = r->attr().version();
    f->DropReadCache();
    if (r->has_layout() && r->layout().object_id() != f->layout.object_id()) {
      f->layout = r->layout();
      f->touched.clear();
    }
  }
  return r->attr();
}

// --------------------------------------------------------- inode API --

uint64_t Client::RootIno() const { return impl_->root; }

Caller Client::Self() const {
  Caller c;
  c.uid = impl_->cred.uid();
  c.gid = impl_->cred.gid();
  c.groups.assign(impl_->cred.groups().begin(), impl_->cred.groups().end());
  return c;
}

Result<FileAttr> Client::Lookup(const Caller& c, uint64_t parent, const std::string& name) {
  proto::LookupRequest req;
  *req.mutable_cred() = ToCred(c);
  const bool ahead = impl_->opt.lookup_ahead.count() > 0;
  if (ahead) {
    if (auto a = impl_->LookupAhead(req.cred(), parent, name)) return std::move(*a);
  }
  const uint64_t before = impl_->changes.load();
  req.set_parent(parent);
  req.set_name(name);
  auto r = impl_->MetaCall<proto::LookupReply>(proto::LOOKUP, req);
  if (!r.ok()) return r.status();
  if (ahead) impl_->CountLookup(parent, before);
  if (r->attr().type() == proto::FT_REG && r->has_layout()) {
    std::lock_guard lk(impl_->mu);
    if (impl_->looked.size() >= 4096) impl_->looked.clear();   // only the last moments matter
    impl_->looked[r->attr().ino()] = {r->layout(), r->attr().version(), r->attr().size(), MonoMs()};
  }
  return impl_->WithLocalSize(r->attr());
}

Result<FileAttr> Client::GetAttr(const Caller& c, uint64_t ino) {
  proto::GetAttrRequest req;
  *req.mutable_cred() = ToCred(c);
  req.set_ino(ino);
  auto r = impl_->MetaCall<proto::GetAttrReply>(proto::GET_ATTR, req);
  if (!r.ok()) return r.status();
  return impl_->WithLocalSize(r->attr());
}

Status Client::Access(const Caller& c, uint64_t ino, int mask) {
  proto::AccessRequest req;
  *req.mutable_cred() = ToCred(c);
  req.set_ino(ino);
  req.set_mask(static_cast<uint32_t>(mask));
  return impl_->MetaCall<proto::AccessReply>(proto::ACCESS, req).status();
}

Result<FileAttr> Client::SetAttr(const Caller& c, uint64_t ino, const SetAttrArgs& a) {
  proto::SetAttrRequest req;
  req.set_mask(a.mask);
  req.set_mode(a.mode & 07777);
  req.set_uid(a.uid);
  req.set_gid(a.gid);
  req.set_size(a.size);
  req.set_atime_ns(a.atime_ns);
  req.set_mtime_ns(a.mtime_ns);
  proto::Cred cred = ToCred(c);
  std::string what = fmt::format("setattr inode {}", ino);
  if (a.mask & SetAttrArgs::kSize) {
    // Linux lets a descriptor opened for writing truncate whatever the mode
    // says now: one of this caller's handles vouches for that.
    {
      std::lock_guard lk(impl_->mu);
      for (auto& [fd, h] : impl_->handles) {
        int acc = h->flags & O_ACCMODE;
        if (h->file->ino == ino && (acc == O_WRONLY || acc == O_RDWR) && h->cred.uid() == c.uid) {
          req.set_open_for_write(true);
        }
      }
    }
    STRIA_ASSIGN_OR_RETURN(auto attr, impl_->TruncateIno(cred, ino, req, what));
    return impl_->WithLocalSize(attr);
  }
  if ((a.mask & SetAttrArgs::kWriteTimes) && (a.mask & SetAttrArgs::kMtime)) {
    // The kernel reports when it wrote, through any of the file's write
    // handles: one of this client's vouches for it, whoever opened it.
    std::lock_guard lk(impl_->mu);
    for (auto& [fd, h] : impl_->handles) {
      int acc = h->flags & O_ACCMODE;
      if (h->file->ino == ino && (acc == O_WRONLY || acc == O_RDWR)) req.set_open_for_write(true);
    }
  }
  *req.mutable_cred() = cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(ino);
  auto r = impl_->MetaCall<proto::SetAttrReply>(proto::SET_ATTR, req);
  if (!r.ok()) return r.status();
  return impl_->WithLocalSize(r->attr());
}

Result<FileAttr> Client::Mknod(const Caller& c, uint64_t parent, const std::string& name,
                               FileType type, uint32_t mode, uint64_t rdev) {
  if (type == FileType::kDirectory || type == FileType::kSymlink || type == FileType::kNone) {
    return Err(EINVAL, "mknod '{}': use mkdir or symlink for that type", name);
  }
  proto::CreateRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(parent);
  req.set_name(name);
  req.set_mode(mode & 07777);
  req.set_type(static_cast<proto::FileType>(type));
  req.set_rdev(rdev);
  req.set_exclusive(true);
  auto r = impl_->MetaCall<proto::CreateReply>(proto::CREATE, req);
  if (!r.ok()) return r.status();
  return ToFileAttr(r->attr());
}

Result<FileAttr> Client::Mkdir(const Caller& c, uint64_t parent, const std::string& name, uint32_t mode) {
  proto::MkdirRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(parent);
  req.set_name(name);
  req.set_mode(mode & 07777);
  auto r = impl_->MetaCall<proto::MkdirReply>(proto::MKDIR, req);
  if (!r.ok()) return r.status();
  return ToFileAttr(r->attr());
}

Result<FileAttr> Client::Symlink(const Caller& c, const std::string& target, uint64_t parent,
                                 const std::string& name) {
  proto::SymlinkRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(parent);
  req.set_name(name);
  req.set_target(target);
  auto r = impl_->MetaCall<proto::SymlinkReply>(proto::SYMLINK, req);
  if (!r.ok()) return r.status();
  return ToFileAttr(r->attr());
}

Result<FileAttr> Client::Link(const Caller& c, uint64_t ino, uint64_t new_parent,
                              const std::string& new_name) {
  proto::LinkRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(ino);
  req.set_new_parent(new_parent);
  req.set_new_name(new_name);
  auto r = impl_->MetaCall<proto::LinkReply>(proto::LINK, req);
  if (!r.ok()) return r.status();
  return impl_->WithLocalSize(r->attr());
}

Status Client::Unlink(const Caller& c, uint64_t parent, const std::string& name) {
  proto::UnlinkRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(parent);
  req.set_name(name);
  return impl_->MetaCall<proto::UnlinkReply>(proto::UNLINK, req).status();
}

Status Client::Rmdir(const Caller& c, uint64_t parent, const std::string& name) {
  proto::RmdirRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(parent);
  req.set_name(name);
  return impl_->MetaCall<proto::RmdirReply>(proto::RMDIR, req).status();
}

Status Client::Rename(const Caller& c, uint64_t parent, const std::string& name, uint64_t new_parent,
                      const std::string& new_name, unsigned flags) {
  proto::RenameRequest req;
  *req.mutable_cred() = ToCred(c);
  req.set_src_parent(parent);
  req.set_src_name(name);
  req.set_dst_parent(new_parent);
  req.set_dst_name(new_name);
  req.set_flags(flags);
  return impl_->RenameHydrating(std::move(req), "rename " + name + " to " + new_name);
}

Result<std::string> Client::Readlink(const Caller& c, uint64_t ino) {
  proto::ReadlinkRequest req;
  *req.mutable_cred() = ToCred(c);
  req.set_ino(ino);
  auto r = impl_->MetaCall<proto::ReadlinkReply>(proto::READLINK, req);
  if (!r.ok()) return r.status();
  return r->target();
}

Result<DirPage> Client::ReadDir(const Caller& c, uint64_t ino, uint64_t cookie, uint32_t max, bool plus) {
  proto::ReadDirRequest req;
  *req.mutable_cred() = ToCred(c);
  req.set_ino(ino);
  req.set_cookie(cookie);
  req.set_max_entries(max);
  req.set_plus(plus);
  auto r = impl_->MetaCall<proto::ReadDirReply>(proto::READ_DIR, req);
  if (!r.ok()) return r.status();
  DirPage page;
  page.eof = r->eof();
  for (const auto& e : r->entries()) {
    page.entries.push_back({e.name(), e.ino(), static_cast<FileType>(e.type()), e.cookie()});
    page.attrs.push_back(plus ? impl_->WithLocalSize(e.attr()) : ToFileAttr(e.attr()));
  }
  return page;
}

Result<OpenedFile> Client::Open(const Caller& c, uint64_t ino, int flags, bool prefetch) {
  proto::Cred cred = ToCred(c);
  // A small file's bytes are read while meta checks the open: the first
  // read then costs no round trip.
  std::shared_ptr<client::Prefetch> pf;
  proto::Layout pf_layout;
  uint64_t pf_version = 0;
  if (prefetch && (flags & O_ACCMODE) == O_RDONLY && !(flags & O_TRUNC)) {
    pf = impl_->StartPrefetch(ino, &pf_layout, &pf_version);
  }
  proto::OpenRequest req;
  *req.mutable_cred() = cred;
  req.set_session(impl_->session);
  req.set_ino(ino);
  req.set_flags(static_cast<uint32_t>(flags));
  // Only a truncating open changes anything, and needs a retry applied once.
  if (flags & O_TRUNC) *req.mutable_mid() = impl_->NextMid();
  auto r = impl_->MetaCall<proto::OpenReply>(proto::OPEN, req);
  if (!r.ok()) return r.status();
  std::string what = fmt::format("inode {}", ino);
  STRIA_RETURN_IF_ERROR(impl_->HydrateForWrite(cred, *r, flags, "open " + what));
  OpenedFile out;
  out.fd = impl_->AddHandle(r->attr(), r->layout(), flags, cred, what,
                            r->has_source() ? &r->source() : nullptr);
  out.attr = impl_->WithLocalSize(r->attr());
  // Only bytes of the very version this open sees may be served.
  if (pf && !r->has_source() && r->attr().version() == pf_version && r->layout().object_id() == pf_layout.object_id() &&
      r->attr().size() == pf->data.size()) {
    if (auto h = impl_->GetHandle(out.fd); h.ok()) {
      auto& f = *(*h)->file;
      std::lock_guard lk(f.mu);
      if (f.rc.empty() && !f.prefetch && !f.Dirty() && f.size == pf->data.size()) {
        f.prefetch = std::move(pf);
      }
    }
  }
  return out;
}

Result<OpenedFile> Client::Create(const Caller& c, uint64_t parent, const std::string& name, int flags,
                                  uint32_t mode) {
  proto::Cred cred = ToCred(c);
  proto::CreateRequest req;
  *req.mutable_cred() = cred;
  *req.mutable_mid() = impl_->NextMid();
  req.set_parent(parent);
  req.set_name(name);
  req.set_mode(mode & 07777);
  req.set_type(proto::FT_REG);
  req.set_exclusive(flags & O_EXCL);
  req.set_open(true);
  req.set_truncate(flags & O_TRUNC);
  req.set_session(impl_->session);
  auto r = impl_->MetaCall<proto::CreateReply>(proto::CREATE, req);
  if (!r.ok()) return r.status();
  STRIA_ASSIGN_OR_RETURN(auto o, impl_->OpenedExisting(cred, *r, flags, "open " + name));
  OpenedFile out;
  out.fd = impl_->AddHandle(o.attr(), o.layout(), flags, cred, name, o.has_source() ? &o.source() : nullptr);
  out.attr = impl_->WithLocalSize(o.attr());
  return out;
}

Status Client::SetXattr(const Caller& c, uint64_t ino, const std::string& name, const std::string& value,
                        int flags) {
  proto::SetXattrRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(ino);
  req.set_name(name);
  req.set_value(value);
  req.set_flags(static_cast<uint32_t>(flags));
  return impl_->MetaCall<proto::SetXattrReply>(proto::SET_XATTR, req).status();
}

Result<std::string> Client::GetXattr(const Caller& c, uint64_t ino, const std::string& name) {
  proto::GetXattrRequest req;
  *req.mutable_cred() = ToCred(c);
  req.set_ino(ino);
  req.set_name(name);
  auto r = impl_->MetaCall<proto::GetXattrReply>(proto::GET_XATTR, req);
  if (!r.ok()) return r.status();
  return r->value();
}

Result<std::vector<std::string>> Client::ListXattr(const Caller& c, uint64_t ino) {
  proto::ListXattrRequest req;
  *req.mutable_cred() = ToCred(c);
  req.set_ino(ino);
  auto r = impl_->MetaCall<proto::ListXattrReply>(proto::LIST_XATTR, req);
  if (!r.ok()) return r.status();
  return std::vector<std::string>(r->names().begin(), r->names().end());
}

Status Client::RemoveXattr(const Caller& c, uint64_t ino, const std::string& name) {
  proto::RemoveXattrRequest req;
  *req.mutable_cred() = ToCred(c);
  *req.mutable_mid() = impl_->NextMid();
  req.set_ino(ino);
  req.set_name(name);
  return impl_->MetaCall<proto::RemoveXattrReply>(proto::REMOVE_XATTR, req).status();
}

// ------------------------------------------------------------- locks --

namespace {

proto::LockRange ToProtoLock(const LockRange& l) {
  proto::LockRange p;
  p.set_type(static_cast<proto::LockType>(l.type));
  p.set_start(l.start);
  p.set_end(l.end);
  p.set_pid(l.pid);
  return p;
}

}  // namespace

Result<LockRange> Client::GetLock(uint64_t ino, uint64_t owner, const LockRange& want, bool flock) {
  proto::GetLockRequest req;
  req.set_session(impl_->session);
  req.set_ino(ino);
  req.set_owner(owner);
  req.set_flock(flock);
  *req.mutable_lock() = ToProtoLock(want);
  auto r = impl_->MetaCall<proto::GetLockReply>(proto::GET_LOCK, req);
  if (!r.ok()) return r.status();
  LockRange out;
  out.type = static_cast<LockRange::Type>(r->lock().type());
  out.start = r->lock().start();
  out.end = r->lock().end();
  out.pid = r->lock().pid();
  return out;
}

Status Client::SetLock(uint64_t ino, uint64_t owner, const LockRange& lock, bool flock) {
  proto::SetLockRequest req;
  req.set_session(impl_->session);
  req.set_ino(ino);
  req.set_owner(owner);
  req.set_flock(flock);
  *req.mutable_lock() = ToProtoLock(lock);
  return impl_->MetaCall<proto::SetLockReply>(proto::SET_LOCK, req).status();
}

// --------------------------------------------------------- fallocate --

Status Client::Fallocate(int fd, int mode, uint64_t offset, uint64_t length) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  OpenFile* f = h->file.get();
  std::lock_guard lk(f->mu);
  std::string what = "fallocate " + h->path;
  int acc = h->flags & O_ACCMODE;
  if (acc != O_WRONLY && acc != O_RDWR) return Err(EBADF, "{}: not open for writing", what);
  if (f->type != proto::FT_REG) return Err(ENODEV, "{}: not a regular file", what);
  bool punch = mode & FALLOC_FL_PUNCH_HOLE;
  bool zero = mode & FALLOC_FL_ZERO_RANGE;
  bool keep = mode & FALLOC_FL_KEEP_SIZE;
  if ((mode & ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) || (punch && !keep) ||
      (punch && zero)) {
    return Err(EOPNOTSUPP, "{}: mode {:#x} is not supported (0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE)",
               what, mode);
  }
  if (length == 0) return Err(EINVAL, "{}: length 0", what);
  if (offset + length < offset || offset + length > (1ull << 60)) {
    return Err(EFBIG, "{}: offset {} + {} bytes is too large", what, offset, length);
  }
  STRIA_RETURN_IF_ERROR(impl_->FlushLocked(*f));   // buffered bytes in a punched range must go
  f->DropReadCache();
  // One store call per object for [lo, hi) of the file: the range's chunks
  // of one object are contiguous in that object.
  auto each_object = [&](uint64_t lo, uint64_t hi, proto::FallocateMode how) -> Status {
    if (hi <= lo) return Status::Ok();
    const auto& l = f->layout;
    std::map<uint32_t, std::pair<uint64_t, uint64_t>> per_object;   // index -> [lo, hi)
    for (const auto& c : client::SplitRange(l.stripe_size(), l.stripe_count(), lo, hi - lo)) {
      auto [it, fresh] = per_object.try_emplace(c.object, c.object_offset, c.object_offset + c.length);
      if (!fresh) {
        it->second.first = std::min(it->second.first, c.object_offset);
        it->second.second = std::max(it->second.second, c.object_offset + c.length);
      }
    }
    std::vector<client::StoreOp> ops;
    for (auto& [index, range] : per_object) {
      proto::ObjFallocateRequest req;
      req.set_target(l.targets(index));
      req.set_ino(l.object_id());
      req.set_index(index);
      req.set_offset(range.first);
      req.set_length(range.second - range.first);
      req.set_mode(how);
      client::StoreOp op;
      op.target = l.targets(index);
      op.type = proto::OBJ_FALLOCATE;
      op.message = req.SerializeAsString();
      ops.push_back(std::move(op));
      f->touched.insert(index);
    }
    return impl_->RunStoreOps(ops, what);
  };
  uint64_t end = offset + length;
  // Zeroing a range is punching what the file holds of it (the stores keep
  // holes as zeros), then allocating all of it, as mode 0 does.
  if (punch || zero) STRIA_RETURN_IF_ERROR(each_object(offset, std::min(end, f->size), proto::FA_PUNCH_HOLE));
  if (!punch) STRIA_RETURN_IF_ERROR(each_object(offset, end, proto::FA_ALLOCATE));
  // The size grows (mode 0), and mtime/ctime move, when meta commits.
  if (!keep) f->written_end = std::max(f->written_end, offset + length);
  f->size = std::max(f->size, keep ? f->size : offset + length);
  f->uncommitted = true;
  f->writer = h->cred;
  return impl_->SyncLocked(*f);
}

}  // namespace stria
