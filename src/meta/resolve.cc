// Resolve: a whole path walked server-side from the root, following
// symlinks (at most 40) and handling "." and "..".
#include <vector>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

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

}  // namespace stria::meta
