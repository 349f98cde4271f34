// Rename: within and across directories, over files and empty directories,
// RENAME_NOREPLACE and RENAME_EXCHANGE; atomic (one batch).
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

namespace {

// EINVAL when dir would move under itself: ancestor is dir or above it.
Status CheckNotUnder(Ctx& c, Txn& t, uint64_t moving_dir, uint64_t new_parent) {
  uint64_t cur = new_parent;
  for (int depth = 0; depth < 4096; depth++) {
    if (cur == moving_dir) {
      return Err(EINVAL, "rename: cannot move directory {} into its own subtree", moving_dir);
    }
    if (cur == 1) return Status::Ok();
    STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, cur));
    cur = r.parent() ? r.parent() : 1;
  }
  return Err(EIO, "rename: directory chain above {} does not reach the root", new_parent);
}

Status Reparent(Ctx& c, Txn& t, uint64_t ino, uint64_t new_parent) {
  STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, ino));
  r.set_parent(new_parent);
  r.mutable_attr()->set_ctime_ns(NowNs());
  c.PutInode(t, r);
  return Status::Ok();
}

}  // namespace

Result<std::string> OpRename(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RenameRequest>(msg, "rename"));
  const auto& cred = req.cred();
  if (req.flags() & ~3u) return Err(EINVAL, "rename: unknown flags {:#x}", req.flags());
  if ((req.flags() & proto::RN_NOREPLACE) && (req.flags() & proto::RN_EXCHANGE)) {
    return Err(EINVAL, "rename: NOREPLACE and EXCHANGE together");
  }
  STRIA_RETURN_IF_ERROR(CheckName(req.src_name()));
  STRIA_RETURN_IF_ERROR(CheckName(req.dst_name()));
  STRIA_ASSIGN_OR_RETURN(auto sdir, c.GetInode(t, req.src_parent()));
  STRIA_ASSIGN_OR_RETURN(auto ddir, c.GetInode(t, req.dst_parent()));
  for (auto* d : {&sdir, &ddir}) {
    if (d->attr().type() != proto::FT_DIR) return Err(ENOTDIR, "rename: inode {} is not a directory", d->attr().ino());
    STRIA_RETURN_IF_ERROR(CheckAccess(d->attr(), cred, kMayWrite | kMayExec, "rename"));
    STRIA_RETURN_IF_ERROR(CheckListed(c, t, *d));
  }
  STRIA_RETURN_IF_ERROR(CheckSameRepo(sdir, ddir));
  STRIA_ASSIGN_OR_RETURN(auto se, c.GetEntry(t, req.src_parent(), req.src_name()));
  if (!se) return Err(ENOENT, "rename: no entry '{}' in directory {}", req.src_name(), req.src_parent());
  STRIA_ASSIGN_OR_RETURN(auto src, c.GetInode(t, se->ino()));
  STRIA_RETURN_IF_ERROR(CheckSticky(sdir.attr(), src.attr(), cred));
  STRIA_RETURN_IF_ERROR(CheckRenamable(src, req.src_name()));
  STRIA_ASSIGN_OR_RETURN(auto de, c.GetEntry(t, req.dst_parent(), req.dst_name()));
  if (de && de->type() == proto::FT_DIR && de->ino() != se->ino() && !(req.flags() & proto::RN_EXCHANGE)) {
    STRIA_ASSIGN_OR_RETURN(auto victim, c.GetInode(t, de->ino()));
    if (victim.has_repo_link()) {
      return Err(EBUSY, "rename: '{}' is linked to {}; repo unlink it first", req.dst_name(),
                 victim.repo_link().url());
    }
  }
  bool src_dir = src.attr().type() == proto::FT_DIR;
  bool across = req.src_parent() != req.dst_parent();
  // A directory that changes parent has its ".." rewritten: that needs
  // write permission on it, as Linux asks.
  if (src_dir && across) STRIA_RETURN_IF_ERROR(CheckAccess(src.attr(), cred, kMayWrite, "rename"));

  if (req.flags() & proto::RN_EXCHANGE) {
    if (!de) return Err(ENOENT, "rename: exchange target '{}' does not exist", req.dst_name());
    if (de->ino() == se->ino()) return proto::RenameReply().SerializeAsString();
    STRIA_ASSIGN_OR_RETURN(auto dst, c.GetInode(t, de->ino()));
    STRIA_RETURN_IF_ERROR(CheckSticky(ddir.attr(), dst.attr(), cred));
    STRIA_RETURN_IF_ERROR(CheckRenamable(dst, req.dst_name()));
    bool dst_dir = dst.attr().type() == proto::FT_DIR;
    if (dst_dir && across) STRIA_RETURN_IF_ERROR(CheckAccess(dst.attr(), cred, kMayWrite, "rename"));
    if (src_dir) STRIA_RETURN_IF_ERROR(CheckNotUnder(c, t, src.attr().ino(), req.dst_parent()));
    if (dst_dir) STRIA_RETURN_IF_ERROR(CheckNotUnder(c, t, dst.attr().ino(), req.src_parent()));
    // Swap what the two names point at; cookies stay with the names.
    EntryRecord a = *se, b = *de;
    a.set_ino(dst.attr().ino());
    a.set_type(dst.attr().type());
    b.set_ino(src.attr().ino());
    b.set_type(src.attr().type());
    t.Put(keys::Entry(req.src_parent(), req.src_name()), a.SerializeAsString());
    t.Put(keys::Entry(req.dst_parent(), req.dst_name()), b.SerializeAsString());
    if (src_dir) STRIA_RETURN_IF_ERROR(NoteRepoDirRename(c, t, src));
    if (dst_dir) STRIA_RETURN_IF_ERROR(NoteRepoDirRename(c, t, dst));
    if (req.src_parent() != req.dst_parent()) {
      if (src_dir) STRIA_RETURN_IF_ERROR(Reparent(c, t, src.attr().ino(), req.dst_parent()));
      if (dst_dir) STRIA_RETURN_IF_ERROR(Reparent(c, t, dst.attr().ino(), req.src_parent()));
      int delta = int(src_dir) - int(dst_dir);   // dirs moving from src to dst
      STRIA_ASSIGN_OR_RETURN(sdir, c.GetInode(t, req.src_parent()));
      sdir.mutable_attr()->set_nlink(sdir.attr().nlink() - delta);
      c.PutInode(t, sdir);
      STRIA_ASSIGN_OR_RETURN(ddir, c.GetInode(t, req.dst_parent()));
      ddir.mutable_attr()->set_nlink(ddir.attr().nlink() + delta);
      c.PutInode(t, ddir);
    }
    int64_t now = NowNs();
    for (uint64_t ino : {src.attr().ino(), dst.attr().ino(), req.src_parent(), req.dst_parent()}) {
      STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, ino));
      if (r.attr().type() == proto::FT_REG) {
        // Its old name now holds the other one: vacated only for a
        // non-file (which export does not send there).
        const auto& other = ino == src.attr().ino() ? dst : src;
        STRIA_RETURN_IF_ERROR(NoteRepoRename(c, t, r, other.attr().type() != proto::FT_REG));
      }
      r.mutable_attr()->set_ctime_ns(now);
      if (ino == req.src_parent() || ino == req.dst_parent()) r.mutable_attr()->set_mtime_ns(now);
      c.PutInode(t, r);
    }
    return proto::RenameReply().SerializeAsString();
  }

  if (de) {
    if (de->ino() == se->ino()) return proto::RenameReply().SerializeAsString();   // same file
    if (req.flags() & proto::RN_NOREPLACE) return Err(EEXIST, "rename: '{}' exists", req.dst_name());
  }
  if (src_dir) STRIA_RETURN_IF_ERROR(CheckNotUnder(c, t, src.attr().ino(), req.dst_parent()));
  if (de) {
    STRIA_ASSIGN_OR_RETURN(auto dst, c.GetInode(t, de->ino()));
    STRIA_RETURN_IF_ERROR(CheckSticky(ddir.attr(), dst.attr(), cred));
    bool dst_dir = dst.attr().type() == proto::FT_DIR;
    if (src_dir && !dst_dir) return Err(ENOTDIR, "rename: '{}' is not a directory", req.dst_name());
    if (!src_dir && dst_dir) return Err(EISDIR, "rename: '{}' is a directory", req.dst_name());
    if (dst_dir) {
      STRIA_ASSIGN_OR_RETURN(bool empty, DirIsEmpty(c, t, dst.attr().ino()));
      if (!empty) return Err(ENOTEMPTY, "rename: directory '{}' is not empty", req.dst_name());
    }
    STRIA_RETURN_IF_ERROR(c.RemoveEntry(t, req.dst_parent(), req.dst_name(), *de));
    STRIA_RETURN_IF_ERROR(c.DropLink(t, dst));
  }
  STRIA_RETURN_IF_ERROR(c.RemoveEntry(t, req.src_parent(), req.src_name(), *se));
  STRIA_ASSIGN_OR_RETURN(ddir, c.GetInode(t, req.dst_parent()));
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, ddir, req.dst_name(), src.attr().ino(), src.attr().type()));
  STRIA_ASSIGN_OR_RETURN(src, c.GetInode(t, src.attr().ino()));
  if (src_dir) {
    src.set_parent(req.dst_parent());
    STRIA_RETURN_IF_ERROR(NoteRepoDirRename(c, t, src));
  } else {
    STRIA_RETURN_IF_ERROR(NoteRepoRename(c, t, src, true));
  }
  src.mutable_attr()->set_ctime_ns(NowNs());
  c.PutInode(t, src);
  return proto::RenameReply().SerializeAsString();
}

}  // namespace stria::meta
