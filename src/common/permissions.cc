#include "common/permissions.h"

namespace stria {

bool InGroup(const proto::Cred& cred, uint32_t gid) {
  if (cred.gid() == gid) return true;
  for (auto g : cred.groups()) {
    if (g == gid) return true;
  }
  return false;
}

Status CheckAccess(const proto::Attr& a, const proto::Cred& cred, int mask, const char* what) {
  if (cred.uid() == 0) {
    bool needs_x = (mask & kMayExec) && a.type() != proto::FT_DIR;
    if (!needs_x || (a.mode() & 0111)) return Status::Ok();
    return Err(EACCES, "{}: inode {} is not executable", what, a.ino());
  }
  uint32_t bits;
  if (cred.uid() == a.uid()) bits = (a.mode() >> 6) & 7;
  else if (InGroup(cred, a.gid())) bits = (a.mode() >> 3) & 7;
  else bits = a.mode() & 7;
  if ((bits & static_cast<uint32_t>(mask)) == static_cast<uint32_t>(mask)) return Status::Ok();
  return Err(EACCES, "{}: permission denied on inode {} (uid {})", what, a.ino(), cred.uid());
}

Status CheckSticky(const proto::Attr& dir, const proto::Attr& victim, const proto::Cred& cred) {
  if (!(dir.mode() & 01000) || cred.uid() == 0) return Status::Ok();
  if (cred.uid() == victim.uid() || cred.uid() == dir.uid()) return Status::Ok();
  return Err(EPERM, "sticky directory {}: only the owner may remove or rename inode {}", dir.ino(),
             victim.ino());
}

uint32_t ModeAfterWrite(const proto::Attr& a, const proto::Cred& cred) {
  uint32_t mode = a.mode();
  if (cred.uid() == 0 || a.type() != proto::FT_REG) return mode;
  mode &= ~04000u;
  if ((mode & 02000) && ((mode & 010) || !InGroup(cred, a.gid()))) mode &= ~02000u;
  return mode;
}

Status CheckName(const std::string& name) {
  if (name.empty()) return Err(ENOENT, "empty name");
  if (name.size() > 255) return Err(ENAMETOOLONG, "name of {} bytes is longer than 255", name.size());
  if (name == "." || name == "..") return Err(EINVAL, "'{}' cannot be used here", name);
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
    return Err(EINVAL, "name '{}' contains '/' or NUL", name);
  }
  return Status::Ok();
}

}  // namespace stria
