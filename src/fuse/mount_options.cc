#include "fuse/mount_options.h"

#include <cstdlib>

namespace stria::fuse {

namespace {

Status ParseSeconds(const std::string& key, const std::string& v, double* out) {
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || d < 0 || d > 86400) {
    return Err(EINVAL, "mount option {}={}: not a number of seconds (0..86400)", key, v);
  }
  *out = d;
  return Status::Ok();
}

bool FstabOnly(const std::string& k) {
  return k == "defaults" || k == "auto" || k == "noauto" || k == "_netdev" || k == "nofail" ||
         k == "user" || k == "users" || k == "nouser" || k == "owner" || k == "group" ||
         k.rfind("x-", 0) == 0 || k.rfind("comment=", 0) == 0;
}

}  // namespace

Status ParseMountOptions(const std::string& o, MountOptions* opt) {
  bool no_default_permissions = false;
  size_t pos = 0;
  while (pos <= o.size()) {
    size_t comma = o.find(',', pos);
    if (comma == std::string::npos) comma = o.size();
    std::string item = o.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    std::string val = eq == std::string::npos ? "" : item.substr(eq + 1);
    bool has_val = eq != std::string::npos;
    if (FstabOnly(item)) continue;
    if (key == "meta" && has_val) {
      opt->meta = val;
    } else if (key == "attr_timeout" && has_val) {
      STRIA_RETURN_IF_ERROR(ParseSeconds(key, val, &opt->attr_timeout));
    } else if (key == "entry_timeout" && has_val) {
      STRIA_RETURN_IF_ERROR(ParseSeconds(key, val, &opt->entry_timeout));
    } else if (key == "negative_timeout" && has_val) {
      STRIA_RETURN_IF_ERROR(ParseSeconds(key, val, &opt->negative_timeout));
    } else if (key == "timeout" && has_val) {
      STRIA_RETURN_IF_ERROR(ParseSeconds(key, val, &opt->timeout));
      if (opt->timeout == 0) return Err(EINVAL, "mount option timeout=0: must be positive");
    } else if (key == "cache" && has_val) {
      if (val != "on" && val != "off") return Err(EINVAL, "mount option cache={}: use on or off", val);
      opt->cache = val == "on";
    } else if (item == "writeback_cache") {
      opt->writeback = true;
    } else if (item == "no_writeback_cache") {
      opt->writeback = false;
    } else if (item == "default_permissions") {
      opt->default_permissions = true;
    } else if (item == "no_default_permissions") {
      opt->default_permissions = false;
      no_default_permissions = true;
    } else if (item == "statahead") {
      opt->statahead = true;
    } else if (item == "no_statahead") {
      opt->statahead = false;
    } else if (item == "allow_other") {
      opt->allow_other = true;
    } else if (item == "no_allow_other") {
      opt->allow_other = false;
    } else if (key == "max_threads" && has_val) {
      char* end = nullptr;
      long n = std::strtol(val.c_str(), &end, 10);
      if (val.empty() || *end || n < 1 || n > 1024) {
        return Err(EINVAL, "mount option max_threads={}: use 1..1024", val);
      }
      opt->max_threads = static_cast<unsigned>(n);
    } else if (key == "readahead_kb" && has_val) {
      char* end = nullptr;
      long n = std::strtol(val.c_str(), &end, 10);
      if (val.empty() || *end || n < 0 || n > (1 << 20)) {
        return Err(EINVAL, "mount option readahead_kb={}: use 0..1048576", val);
      }
      opt->readahead_kb = static_cast<unsigned>(n);
    } else if (key == "log" && has_val) {
      opt->log = val;
    } else if (key == "log_level" && has_val) {
      opt->log_level = val;
    } else if (key == "fsname" || key == "subtype") {
      return Err(EINVAL, "mount option {}: Stria sets it itself", key);
    } else {
      opt->fuse_args.push_back(item);   // libfuse's (ro, max_read=, ...) or its error
    }
  }
  if (opt->writeback && !opt->cache) {
    return Err(EINVAL, "mount option writeback_cache needs the page cache: it cannot go with cache=off");
  }
  if (opt->writeback) {
    // The kernel then sends an mtime of "now" as a time like any other:
    // it alone can tell who may choose one.
    if (no_default_permissions) {
      return Err(EINVAL, "mount option writeback_cache needs default_permissions: it cannot go with "
                         "no_default_permissions");
    }
    opt->default_permissions = true;
  }
  if (!opt->cache) {
    opt->attr_timeout = opt->entry_timeout = opt->negative_timeout = 0;
  }
  return Status::Ok();
}

std::string FuseOptionString(const MountOptions& opt) {
  std::string s = "fsname=stria@" + opt.meta + ",subtype=stria";
  if (opt.allow_other) s += ",allow_other";
  if (opt.default_permissions) s += ",default_permissions";
  for (const auto& a : opt.fuse_args) s += "," + a;
  return s;
}

}  // namespace stria::fuse
