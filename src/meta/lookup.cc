// Read-only namespace operations: Lookup, Resolve, GetAttr, ReadDir, Readlink.
#include <rocksdb/db.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/permissions.h"

namespace stria::meta {

namespace {

// Looks name up in dir (an InodeRecord), checking search permission.
Result<InodeRecord> Child(Ctx& c, Txn& t, const InodeRecord& dir, const std::string& name,
                          const proto::Cred& cred) {
  if (dir.attr().type() != proto::FT_DIR) {
    return Err(ENOTDIR, "inode {} is not a directory", dir.attr().ino());
  }
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), cred, kMayExec, "lookup"));
  if (name.size() > 255) return Err(ENAMETOOLONG, "name of {} bytes is longer than 255", name.size());
  STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, dir.attr().ino(), name));
  if (!e) return Err(ENOENT, "no entry '{}' in directory {}", name, dir.attr().ino());
  return c.GetInode(t, e->ino());
}

}  // namespace

Result<std::string> OpLookup(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::LookupRequest>(msg, "lookup"));
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, req.parent()));
  if (req.name() == "." || req.name() == "..") {
    uint64_t ino = req.name() == "." ? dir.attr().ino() : dir.parent();
    STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, ino ? ino : 1));
    proto::LookupReply rep;
    *rep.mutable_attr() = r.attr();
    return rep.SerializeAsString();
  }
  STRIA_ASSIGN_OR_RETURN(auto r, Child(c, t, dir, req.name(), req.cred()));
  proto::LookupReply rep;
  *rep.mutable_attr() = r.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpResolve(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::ResolveRequest>(msg, "resolve"));
  if (req.path().empty() || req.path()[0] != '/') {
    return Err(EINVAL, "path '{}' is not absolute", req.path());
  }
  // A work list of components; symlinks splice their target in front.
  std::vector<std::string> todo;
  auto push_path = [&todo](const std::string& p) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string::npos) j = p.size();
      if (j > i) parts.push_back(p.substr(i, j - i));
      i = j + 1;
    }
    todo.insert(todo.end(), parts.rbegin(), parts.rend());   // todo is a stack
  };
  push_path(req.path());
  STRIA_ASSIGN_OR_RETURN(auto cur, c.GetInode(t, 1));
  uint64_t parent = 1;
  int links = 0;
  while (!todo.empty()) {
    std::string name = todo.back();
    todo.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      STRIA_RETURN_IF_ERROR(CheckAccess(cur.attr(), req.cred(), kMayExec, "resolve"));
      STRIA_ASSIGN_OR_RETURN(cur, c.GetInode(t, cur.parent() ? cur.parent() : 1));
      parent = cur.parent() ? cur.parent() : 1;
      continue;
    }
    auto child = Child(c, t, cur, name, req.cred());
    if (!child.ok()) return child.status().Prefixed(req.path());
    bool last = todo.empty();
    if (child->attr().type() == proto::FT_SYMLINK && (!last || req.follow_last())) {
      if (++links > 40) return Err(ELOOP, "{}: too many levels of symbolic links", req.path());
      const std::string& target = child->symlink();
      if (!target.empty() && target[0] == '/') {
        STRIA_ASSIGN_OR_RETURN(cur, c.GetInode(t, 1));
      }
      push_path(target);
      continue;
    }
    parent = cur.attr().ino();
    cur = std::move(child).value();
  }
  proto::ResolveReply rep;
  *rep.mutable_attr() = cur.attr();
  rep.set_parent(cur.attr().ino() == 1 ? 1 : parent);
  return rep.SerializeAsString();
}

Result<std::string> OpGetAttr(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::GetAttrRequest>(msg, "getattr"));
  STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, req.ino()));
  proto::GetAttrReply rep;
  *rep.mutable_attr() = r.attr();
  return rep.SerializeAsString();
}

Result<std::string> OpReadDir(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::ReadDirRequest>(msg, "readdir"));
  STRIA_ASSIGN_OR_RETURN(auto dir, c.GetInode(t, req.ino()));
  if (dir.attr().type() != proto::FT_DIR) return Err(ENOTDIR, "inode {} is not a directory", req.ino());
  STRIA_RETURN_IF_ERROR(CheckAccess(dir.attr(), req.cred(), kMayRead, "readdir"));
  uint32_t max = req.max_entries() ? std::min<uint32_t>(req.max_entries(), 4096) : 1024;
  proto::ReadDirReply rep;
  std::string prefix = keys::CookiePrefix(req.ino());
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  it->Seek(keys::Cookie(req.ino(), req.cookie() + 1));
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (rep.entries_size() >= static_cast<int>(max)) break;
    std::string name = it->value().ToString();
    STRIA_ASSIGN_OR_RETURN(auto e, c.GetEntry(t, req.ino(), name));
    if (!e) continue;
    auto* out = rep.add_entries();
    out->set_name(name);
    out->set_ino(e->ino());
    out->set_type(e->type());
    out->set_cookie(keys::GetBE(it->key().ToStringView(), 9));
    if (req.plus()) {
      auto r = c.GetInode(t, e->ino());
      if (r.ok()) *out->mutable_attr() = r->attr();
    }
  }
  if (!it->status().ok()) return Err(EIO, "readdir {}: {}", req.ino(), it->status().ToString());
  rep.set_eof(!(it->Valid() && it->key().starts_with(prefix)));
  return rep.SerializeAsString();
}

Result<std::string> OpReadlink(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::ReadlinkRequest>(msg, "readlink"));
  STRIA_ASSIGN_OR_RETURN(auto r, c.GetInode(t, req.ino()));
  if (r.attr().type() != proto::FT_SYMLINK) return Err(EINVAL, "inode {} is not a symlink", req.ino());
  proto::ReadlinkReply rep;
  rep.set_target(r.symlink());
  return rep.SerializeAsString();
}

}  // namespace stria::meta
