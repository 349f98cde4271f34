// A whole Stria cluster on this machine (`stria local up|status|down`):
// one stria-meta and N stria-store processes, each in the background with
// its data, log, pid and port files under one directory:
//
//   DIR/meta/      db/  meta.log  meta.out  meta.pid  meta.port
//   DIR/store-K/   target/  store.log  store.out  store.pid  store.port
//   DIR/fuse/      fuse.log  fuse.out  fuse.pid  mountpoint   (with --mount)
//
// Ports are picked by the kernel on first start (so clusters can run side by
// side) and reused on later starts when still free (tried a few times, a
// moment apart); if meta must move to another port, the stores, the mover
// and the mount's daemon are restarted to point at it. Only processes this
// module started (by pid file, checked against /proc) are ever signalled.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace stria::cli {

struct LocalOptions {
  std::string dir;
  int stores = 3;
  std::string bin_dir;        // where stria-meta and stria-store are
  int timeout_s = 30;         // for each daemon to come up
  std::string log_level = "info";
  std::string mount;          // if set, also mount the cluster here (stria-fuse)
  std::string mount_options;  // -o options for stria-fuse
  std::string store_args;     // more stria-store flags, space-separated
  std::string meta_args;      // more stria-meta flags, space-separated
  // stria-mover's watermark release (percent of the targets used; 0: off).
  double high_watermark = 0, low_watermark = 0;
};

struct LocalProcess {
  std::string name;           // "meta", "store-0", ...
  int pid = 0;                // 0: no pid file
  bool running = false;
  std::string listen;         // from the port file
  std::string admin;
};

// Starts whatever is not running and waits until meta is serving and every
// store's target is up. Returns meta's HOST:PORT.
Result<std::string> LocalUp(const LocalOptions& opt);
// Unmounts the cluster's mount, if any (the daemon's clean unmount on
// SIGTERM; a lazy unmount when the daemon is gone), then stops every
// process started under dir (TERM, then KILL after 10 s).
Status LocalDown(const std::string& dir);
Result<std::vector<LocalProcess>> LocalStatus(const std::string& dir);

// Kills one daemon of the cluster with a signal (for tests): "meta",
// "store-K" or "fuse".
Status LocalKill(const std::string& dir, const std::string& name, int sig);

// Whether path is a mount point of a Stria mount (fuse.stria).
bool IsStriaMount(const std::string& path);

// Starts argv in the background, detached (its own session, reparented to
// init), stdin from /dev/null, stdout and stderr appended to out_file; its
// pid goes to pid_file. Safe to call from a process with other threads.
Status SpawnDetached(const std::vector<std::string>& argv, const std::string& out_file,
                     const std::string& pid_file);

// The directory holding this executable (to find the daemons beside it).
std::string SelfDir();

}  // namespace stria::cli
