// Operations that add names: Create (also mknod), Mkdir, Symlink, Link.
#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/permissions.h"

namespace stria::meta {

namespace {

constexpr uint64_t kDefaultStripe = 1 << 20;

// Checks that parent is a directory the caller may add name to, and that
// name is free. Returns the parent's record.
Result<InodeRecord> PrepareAdd(Ctx& c, Txn& t, uint64_t parent, const std::string& name,
                               const proto::Cred& cred, const char* what) {
  STRIA_RETURN_IF_ERROR(CheckName(name));
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, parent));
  if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "{}: inode {} is not a directory", what, parent);
  if (dir.attr().nlink() == 0) return Err(ENOENT, "{}: directory {} was removed", what, parent);
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), cred, kMayWrite | kMayExec, what));
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
  c.inode_count++;
  return r;
}

}  // namespace

Status OpenForSession(Ctx& c, uint64_t session, uint64_t ino);   // open_close.cc
Status TruncateToZero(Ctx& c, Txn& t, InodeRecord& rec);           // setattr.cc

Result<std::string> OpCreate(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::CreateRequest>(msg, "create"));
  proto::FileType type = req.type() == proto::FT_NONE ? proto::FT_REG : req.type();
  if (type == proto::FT_DIR || type == proto::FT_SYMLINK) {
    return Err(EINVAL, "create: use mkdir or symlink for that type");
  }
  STRIA_RETURN_IF_ERROR(CheckName(req.name()));
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
      STRIA_RETURN_IF_ERROR(TruncateToZero(c, t, rec));
      c.PutInode(t, rec);
    }
    if (req.open()) STRIA_RETURN_IF_ERROR(OpenForSession(c, req.session(), rec.attr().ino()));
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
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.name(), rec.attr().ino(), type));
  c.PutInode(t, rec);
  if (req.open()) STRIA_RETURN_IF_ERROR(OpenForSession(c, req.session(), rec.attr().ino()));
  *rep.mutable_attr() = rec.attr();
  *rep.mutable_layout() = rec.layout();
  rep.set_created(true);
  return rep.SerializeAsString();
}

Result<std::string> OpMkdir(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::MkdirRequest>(msg, "mkdir"));
  STRIA_ASSIGN_OR_RETURN(auto dir, PrepareAdd(c, t, req.parent(), req.name(), req.cred(), "mkdir"));
  STRIA_ASSIGN_OR_RETURN(auto rec, NewInode(c, t, dir, proto::FT_DIR, req.mode(), req.cred()));
  rec.set_parent(req.parent());
  rec.set_next_cookie(1);
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.name(), rec.attr().ino(), proto::FT_DIR));
  c.PutInode(t, rec);
  proto::MkdirReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpSymlink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::SymlinkRequest>(msg, "symlink"));
  if (req.target().empty()) return Err(ENOENT, "symlink: empty target");
  if (req.target().size() > 4095) return Err(ENAMETOOLONG, "symlink: target longer than 4095 bytes");
  STRIA_ASSIGN_OR_RETURN(auto dir, PrepareAdd(c, t, req.parent(), req.name(), req.cred(), "symlink"));
  STRIA_ASSIGN_OR_RETURN(auto rec, NewInode(c, t, dir, proto::FT_SYMLINK, 0777, req.cred()));
  rec.set_symlink(req.target());
  rec.mutable_attr()->set_size(req.target().size());
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.name(), rec.attr().ino(), proto::FT_SYMLINK));
  c.PutInode(t, rec);
  proto::SymlinkReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpLink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::LinkRequest>(msg, "link"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  if (rec.attr().type() == proto::FT_DIR) return Err(EPERM, "link: inode {} is a directory", req.ino());
  if (rec.attr().nlink() == 0) return Err(ENOENT, "link: inode {} was removed", req.ino());
  if (rec.attr().nlink() >= 65000) return Err(EMLINK, "link: inode {} has too many links", req.ino());
  STRIA_ASSIGN_OR_RETURN(auto dir, PrepareAdd(c, t, req.new_parent(), req.new_name(), req.cred(), "link"));
  STRIA_RETURN_IF_ERROR(c.AddEntry(t, dir, req.new_name(), rec.attr().ino(), rec.attr().type()));
  rec.mutable_attr()->set_nlink(rec.attr().nlink() + 1);
  rec.mutable_attr()->set_ctime_ns(NowNs());
  c.PutInode(t, rec);
  proto::LinkReply rep;
  *rep.mutable_attr() = rec.attr();
  return rep.SerializeAsString();
}

}  // namespace stria::meta
