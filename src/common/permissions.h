// POSIX permission checks with the caller's credentials (uid 0 bypasses read
// and write, and execute when any execute bit is set). Pure functions.
#pragma once

#include "common/status.h"
#include "proto/stria.pb.h"

namespace stria {

inline constexpr int kMayRead = 4, kMayWrite = 2, kMayExec = 1;

bool InGroup(const proto::Cred& cred, uint32_t gid);
// EACCES naming what when cred may not do mask on attr.
Status CheckAccess(const proto::Attr& attr, const proto::Cred& cred, int mask, const char* what);
// The sticky-directory rule for removing or renaming victim out of dir.
Status CheckSticky(const proto::Attr& dir, const proto::Attr& victim, const proto::Cred& cred);
// The mode a regular file keeps after a write or truncate by cred, as Linux's
// file_remove_privs: without root, set-uid goes, and set-gid too when the
// file is group-executable or cred is not in its group.
uint32_t ModeAfterWrite(const proto::Attr& attr, const proto::Cred& cred);
// Name rules: non-empty, no '/', no NUL, not "." or "..", at most 255 bytes.
Status CheckName(const std::string& name);

}  // namespace stria
