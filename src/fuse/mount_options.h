// Options of a Stria mount: what `stria-fuse ... -o a,b=c` and an fstab line
// may say. Stria's own options are taken out; the rest goes to libfuse
// (allow_other, ro, max_read=, ...). fstab-only words (defaults, noauto,
// _netdev, nofail, x-*, ...) are dropped. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace stria::fuse {

struct MountOptions {
  std::string meta;                 // HOST:PORT of stria-meta (the mount source)
  double attr_timeout = 1.0;        // seconds the kernel keeps attributes (attr_timeout=)
  double entry_timeout = 1.0;       // seconds the kernel keeps names (entry_timeout=)
  double negative_timeout = 1.0;    // seconds the kernel remembers a missing name
  bool cache = true;                // cache=off: timeouts 0, page cache dropped at every open
  // The kernel's writeback cache (writeback_cache): write(2) copies into the
  // page cache and the kernel sends whole pages later, up to 1 MiB a
  // request, so small writes cost no round trip each. Off by default: the
  // kernel then keeps each cached file's size as its own, so a file another
  // mount shrinks keeps its old size here while a handle of this mount
  // holds it open (growth is passed on at open). It implies
  // default_permissions. For files one node writes at a time.
  bool writeback = false;
  // The kernel checks permissions too, before Stria does (default_permissions).
  // Off by default: stria-meta checks every request with the caller's
  // identity, and the kernel's check costs a GETATTR of the parent after
  // every change to a directory.
  bool default_permissions = false;
  // Statahead (no_statahead turns it off): after a quick run of lookups in
  // one directory, it is read whole and its next lookups are answered from that
  // copy for what is left of the shorter timeout (ClientOptions::lookup_ahead).
  bool statahead = true;
  bool allow_other = true;          // other users may use the mount (no_allow_other)
  double timeout = 30.0;            // seconds one operation may take, retries included (timeout=)
  unsigned max_threads = 32;        // FUSE worker threads (max_threads=)
  // The kernel's read-ahead per file on this mount, in KiB (readahead_kb=;
  // 0: the kernel's default, 128). Its requests go out in parallel, one per
  // MiB, so a deep window reads from every stripe at once.
  unsigned readahead_kb = 8192;
  std::string log;                  // log file (log=); empty: stderr until daemonized, then none
  std::string log_level = "info";   // log_level=
  std::vector<std::string> fuse_args;   // options for libfuse, each "-o" "x"
};

// Applies one comma-separated -o string to opt. EINVAL names a bad value.
Status ParseMountOptions(const std::string& o, MountOptions* opt);

// The -o string libfuse gets (fsname, subtype and the options it knows).
std::string FuseOptionString(const MountOptions& opt);

}  // namespace stria::fuse
