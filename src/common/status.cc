#include "common/status.h"

#include <cstring>

namespace stria {

const char* ErrnoName(int code) {
  switch (code) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case EREMOTE: return "EREMOTE";
    case EBADMSG: return "EBADMSG";
    case EOVERFLOW: return "EOVERFLOW";
    case EPROTO: return "EPROTO";
    case ENOTSUP: return "ENOTSUP";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ESTALE: return "ESTALE";
    case ENOTCONN: return "ENOTCONN";
    case ECANCELED: return "ECANCELED";
    case EMSGSIZE: return "EMSGSIZE";
    default: return nullptr;
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  const char* name = ErrnoName(code_);
  std::string n = name ? name : fmt::format("E{}", code_);
  return message_.empty() ? n + ": " + std::strerror(code_) : n + ": " + message_;
}

bool Status::retryable() const {
  switch (code_) {
    case ETIMEDOUT:
    case ECONNREFUSED:
    case ECONNRESET:
    case ENOTCONN:
    case EHOSTUNREACH:
      return true;
    default:
      return false;
  }
}

}  // namespace stria
