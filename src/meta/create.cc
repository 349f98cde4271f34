// Create (regular files and mknod types) and the helpers every operation
// that adds a name shares.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

// Checks that parent is a directory the caller may add name to, and that
// name is free. Returns the parent's record.
Result<InodeRecord> PrepareAdd(Ctx& c, Txn& t, uint64_t parent, const std::string& name,
                               const proto::Cred& cred, const char* what) {
  STRIA_RETURN_IF_ERROR(CheckName(name));
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, parent));
  if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "{}: inode {} is not a directory", what, parent);
  if (dir.attr().nlink() == 0) return Err(ENOENT, "{}: directory {} was removed", what, parent);
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), cred, kMayWrite | kMayExec, what));
  STRIA_RETURN_IF_ERROR(CheckListed(c, t, dir));
  STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, parent, name));
  if (e) return Err(EEXIST, "{}: '{}' exists in directory {}", what, name, parent);
  return dir;
}

Result<InodeRecord> NewInode(Ctx& c, Txn& t, const InodeRecord& dir, proto::FileType type,
                             uint32_t mode, const proto::Cred& cred) {
  STRIA_ASSIGN_OR_RETURN(uint64_t ino, c.NextCounter(t, "ino", 2));
  InodeRecord r;
  auto* a = r.mutable_attr();
  a->set_ino(ino);
  a->set_type(type);
  a->set_mode(mode & 07777);
  a->set_uid(cred.uid());
  // A set-gid directory passes its group on (and, to directories, the bit).
  bool sgid = dir.attr().mode() & 02000;
  a->set_gid(sgid ? dir.attr().gid() : cred.gid());
  if (sgid && type == proto::FT_DIR) a->set_mode(a->mode() | 02000);
  a->set_nlink(type == proto::FT_DIR ? 2 : 1);
  int64_t now = NowNs();
  a->set_atime_ns(now);
  a->set_mtime_ns(now);
  a->set_ctime_ns(now);
  a->set_version(1);
  t.inode_delta++;
  return r;
}

Result<std::string> OpCreate(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::CreateRequest>(msg, "create"));
  proto::FileType type = req.type() == proto::FT_NONE ? proto::FT_REG : req.type();
  if (type == proto::FT_DIR || type == proto::FT_SYMLINK) {
    return Err(EINVAL, "create: use mkdir or symlink for that type");
  }
  STRIA_RETURN_IF_ERROR(CheckName(req.name()));
  {
    // Opening an existing name still needs a searchable directory.
    STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, req.parent()));
    if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "create: inode {} is not a directory", req.parent());
    STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), req.cred(), kMayExec, "create"));
    STRIA_RETURN_IF_ERROR(CheckListed(c, t, dir));
  }
  STRIA_ASSIGN_OR_RETURN(auto existing, c.GetEntry(t, req.parent(), req.name()));
  proto::CreateReply rep;
  if (existing) {
    if (req.exclusive()) return Err(EEXIST, "create: '{}' exists", req.name());
    STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, existing->ino()));
    if (rec.attr().type() == proto::FT_DIR) return Err(EISDIR, "create: '{}' is a directory", req.name());
    if (req.open() || req.truncate()) {
      STRIA_RETURN_IF_ERROR(CheckAccess(rec.attr(), req.cred(), kMayWrite, "open"));
    }
    if (req.truncate() && rec.attr().type() == proto::FT_REG) {
      STRIA_RETURN_IF_ERROR(TruncateToZero(c, t, rec, req.cred()));
      c.PutInode(t, rec);
    }
    if (req.open()) STRIA_RETURN_IF_ERROR(OpenForSession(c, req.session(), rec.attr().ino()));
    if (req.truncate()) {
      STRIA_ASSIGN_OR_RETURN(rec, c.GetInode(t, rec.attr().ino()));   // its state as stored
    }
    STRIA_ASSIGN_OR_RETURN(auto source, SourceOf(c, t, rec));
    if (source) *rep.mutable_source() = std::move(*source);
    *rep.mutable_attr() = rec.attr();
    *rep.mutable_layout() = rec.layout();
    rep.set_created(false);
    return rep.SerializeAsString();
  }
  STRIA_ASSIGN_OR_RETURN(auto dir, PrepareAdd(c, t, req.parent(), req.name(), req.cred(), "create"));
  STRIA_ASSIGN_OR_RETURN(auto rec, NewInode(c, t, dir, type, req.mode(), req.cred()));
  rec.mutable_attr()->set_rdev(req.rdev());
  if (type == proto::FT_REG) {
    uint64_t ss = req.layout().stripe_size() ? req.layout().stripe_size()
                  : dir.default_layout().stripe_size() ? dir.default_layout().stripe_size()
                                                       : kDefaultStripe;
    uint32_t count = req.layout().stripe_count() ? req.layout().stripe_count()
                                                 : dir.default_layout().stripe_count();
    if (ss % 4096 != 0 || ss > (4ull << 30)) {
      return Err(EINVAL, "create: stripe size {} is not a multiple of 4096 up to 4 GiB", ss);
    }
    STRIA_ASSIGN_OR_RETURN(auto layout, c.ChooseLayout(rec.attr().ino(), ss, count));
    *rec.mutable_layout() = layout;
  }
  InheritRepo(dir, req.name(), rec);
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.name(), rec.attr().ino(), type));
  c.PutInode(t, rec);
  if (req.open()) STRIA_RETURN_IF_ERROR(OpenForSession(c, req.session(), rec.attr().ino()));
  *rep.mutable_attr() = rec.attr();
  *rep.mutable_layout() = rec.layout();
  rep.set_created(true);
  return rep.SerializeAsString();
}

}  // namespace stria::meta
