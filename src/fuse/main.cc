// stria-fuse: mounts a Stria cluster (the POSIX interface of many nodes).
//
//   stria-fuse [--meta HOST:PORT] MOUNTPOINT [-o OPTIONS] [-f]
//   mount.stria HOST:PORT MOUNTPOINT [-o OPTIONS]       (mount(8)'s helper)
//
// Without -f it returns once the mount is up (or with the reason it is
// not), leaving the daemon in the background. SIGTERM, SIGINT and SIGHUP
// unmount cleanly. Options: fuse/mount_options.h.
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "fuse/mount_options.h"
#include "fuse/stria_fs.h"

namespace stria::fuse {
namespace {

const char kUsage[] =
    "usage: stria-fuse [--meta HOST:PORT] MOUNTPOINT [-o OPTIONS] [-f] [-d]\n"
    "       mount.stria HOST:PORT MOUNTPOINT [-o OPTIONS]\n"
    "  --meta HOST:PORT   stria-meta (default: $STRIA_META)\n"
    "  -f                 stay in the foreground\n"
    "  -d                 foreground with debug logging\n"
    "  -o OPTIONS         comma-separated: attr_timeout=S, entry_timeout=S, negative_timeout=S,\n"
    "                     cache=on|off, writeback_cache (small writes buffered by the kernel;\n"
    "                     see the README), no_statahead, default_permissions, no_allow_other,\n"
    "                     timeout=S, max_threads=N, readahead_kb=N, log=FILE, log_level=LEVEL,\n"
    "                     and libfuse's own (ro, max_read=N, ...)\n";

struct Args {
  MountOptions opt;
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;
};

Status ParseArgs(int argc, char** argv, Args* a) {
  std::string prog = argv[0];
  bool helper = prog.size() >= 11 && prog.find("mount.") != std::string::npos;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; i++) {
    std::string s = argv[i];
    if (s == "-h" || s == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (s == "-o" || s == "--options") {
      if (i + 1 >= argc) return Err(EINVAL, "{} needs a value", s);
      STRIA_RETURN_IF_ERROR(ParseMountOptions(argv[++i], &a->opt));
    } else if (s.rfind("-o", 0) == 0 && s.size() > 2) {
      STRIA_RETURN_IF_ERROR(ParseMountOptions(s.substr(2), &a->opt));
    } else if (s == "--meta") {
      if (i + 1 >= argc) return Err(EINVAL, "--meta needs HOST:PORT");
      a->opt.meta = argv[++i];
    } else if (s == "-f") {
      a->foreground = true;
    } else if (s == "-d") {
      a->foreground = a->debug = true;
    } else if (helper && (s == "-n" || s == "-s" || s == "-v" || s == "-r" || s == "-w")) {
      // mount(8)'s own flags (no mtab, sloppy, verbose, ro/rw as -o says).
      if (s == "-r") a->opt.fuse_args.push_back("ro");
    } else if (s.size() > 1 && s[0] == '-') {
      return Err(EINVAL, "unknown flag {}", s);
    } else {
      pos.push_back(s);
    }
  }
  if (helper) {
    if (pos.size() != 2) return Err(EINVAL, "expected SOURCE (HOST:PORT) and MOUNTPOINT, got {} arguments", pos.size());
    a->opt.meta = pos[0];
    a->mountpoint = pos[1];
  } else {
    if (pos.size() != 1) return Err(EINVAL, "expected one MOUNTPOINT, got {} arguments", pos.size());
    a->mountpoint = pos[0];
  }
  if (a->opt.meta.empty()) {
    const char* env = std::getenv("STRIA_META");
    if (!env || !*env) return Err(EINVAL, "no meta server: pass --meta HOST:PORT or set STRIA_META");
    a->opt.meta = env;
  }
  struct stat st;
  if (::stat(a->mountpoint.c_str(), &st) != 0) {
    return Err(errno, "mount point {}: {}", a->mountpoint, std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return Err(ENOTDIR, "mount point {}: not a directory", a->mountpoint);
  // The daemon leaves the working directory: keep the absolute path.
  char real[PATH_MAX];
  if (::realpath(a->mountpoint.c_str(), real)) a->mountpoint = real;
  return Status::Ok();
}

// Reports the outcome of the start to the waiting parent (one line).
void Report(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string s = line + "\n";
  (void)!::write(fd, s.data(), s.size());
  ::close(fd);
}

void SetUpLogging(const Args& a, bool detached) {
  std::shared_ptr<spdlog::logger> logger;
  if (!a.opt.log.empty()) {
    logger = spdlog::basic_logger_mt("stria-fuse", a.opt.log);
  } else if (!detached) {
    logger = spdlog::stderr_color_mt("stria-fuse");
  } else {
    logger = spdlog::null_logger_mt("stria-fuse");
  }
  logger->set_pattern(fmt::format("%Y-%m-%dT%H:%M:%S.%e %l [fuse {}] %v", getpid()));
  auto level = spdlog::level::from_str(a.debug ? "debug" : a.opt.log_level);
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

// The "maj:min" device of the mount at path, from /proc/self/mountinfo
// (the kernel's record: FUSE's st_dev is an anonymous device). Called once
// the session loop runs: realpath looks the mount point up through it.
std::string MountDevice(const std::string& path) {
  char real[PATH_MAX];
  std::string want = ::realpath(path.c_str(), real) ? real : path;
  auto unescape = [](const std::string& s) {   // mountinfo writes ' ' as \040
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
      if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
        i += 3;
      } else {
        out.push_back(s[i]);
      }
    }
    return out;
  };
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    if (f >> id >> parent >> dev >> root >> point && unescape(point) == want) found = dev;   // the last one wins
  }
  return found;
}

// Sets the kernel's read-ahead window of the mount. The kernel caps it at
// INIT (to 128 KiB), so this waits until INIT has been answered.
void SetReadahead(StriaFs& fs, const std::string& mountpoint, unsigned kb) {
  for (int i = 0; i < 2000 && !fs.initialized(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!fs.initialized()) return;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));   // the INIT reply is on its way
  std::string dev = MountDevice(mountpoint);
  if (dev.empty()) {
    spdlog::warn("read-ahead left at the kernel's default: {} is not in /proc/self/mountinfo", mountpoint);
    return;
  }
  std::string file = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  std::ofstream out(file);
  out << kb << "\n";
  out.flush();
  if (!out) {
    spdlog::warn("read-ahead left at the kernel's default: cannot write {} (not root?)", file);
    return;
  }
  spdlog::info("kernel read-ahead of {}: {} KiB", mountpoint, kb);
}

int Run(Args& a, int report_fd) {
  SetUpLogging(a, report_fd >= 0);
  auto fail = [&](const Status& st) {
    spdlog::error("{}", st.ToString());
    if (report_fd >= 0) Report(report_fd, st.ToString());
    else std::fprintf(stderr, "stria-fuse: %s\n", st.ToString().c_str());
    return 1;
  };
  ClientOptions co;
  co.meta = a.opt.meta;
  co.timeout = std::chrono::milliseconds(static_cast<int64_t>(a.opt.timeout * 1000));
  co.name = "fuse:" + a.mountpoint;
  // The kernel reads ahead (several requests in flight, served in parallel).
  co.readahead = 0;
  if (a.opt.statahead && a.opt.cache) {
    double keep = std::min(a.opt.entry_timeout, a.opt.attr_timeout);
    co.lookup_ahead = std::chrono::milliseconds(static_cast<int64_t>(keep * 1000));
  }
  auto client = Client::Connect(co);
  if (!client.ok()) return fail(client.status());
  StriaFs fs(std::move(client).value(), a.opt);

  std::string fuse_opts = FuseOptionString(a.opt);
  std::vector<std::string> argv_s = {"stria-fuse", "-o", fuse_opts};
  if (a.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, StriaFs::Ops(), sizeof(fuse_lowlevel_ops), &fs);
  fuse_opt_free_args(&args);   // libfuse copied what it keeps
  if (!se) return fail(Err(EINVAL, "libfuse refused the options '{}' (see the log)", fuse_opts));
  fs.set_session(se);
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return fail(Err(EIO, "cannot install signal handlers"));
  }
  if (fuse_session_mount(se, a.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return fail(Err(EIO, "cannot mount at {} (is it already a mount point? /dev/fuse usable?)", a.mountpoint));
  }
  spdlog::info("mounted stria@{} at {} ({})", a.opt.meta, a.mountpoint, fuse_opts);
  if (report_fd >= 0) {
    Report(report_fd, "OK");
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      if (null > 2) ::close(null);
    }
  }
  std::thread readahead;
  if (a.opt.readahead_kb > 0) {
    readahead = std::thread([&] { SetReadahead(fs, a.mountpoint, a.opt.readahead_kb); });
  }
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, a.opt.max_threads);
  // Workers are kept once started: with 16 kept of 32, a sequential read
  // started and ended a thread every 22 MiB, each paying for a new stack
  // and a new read buffer (tls_read_buf) the kernel had to zero.
  fuse_loop_cfg_set_idle_threads(cfg, a.opt.max_threads);
  fuse_loop_cfg_set_clone_fd(cfg, 1);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  if (readahead.joinable()) readahead.join();
  spdlog::info("session loop ended ({}): unmounting {}", rc, a.mountpoint);
  fs.CloseClient();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  spdlog::default_logger()->flush();
  return rc < 0 ? 1 : 0;
}

int Main(int argc, char** argv) {
  Args a;
  Status st = ParseArgs(argc, argv, &a);
  if (!st.ok()) {
    std::fprintf(stderr, "stria-fuse: %s\n%s", st.ToString().c_str(), kUsage);
    return 2;
  }
  if (a.foreground) return Run(a, -1);
  // Fork before any thread exists; the parent waits for the child's word.
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    std::perror("stria-fuse: pipe");
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("stria-fuse: fork");
    return 1;
  }
  if (pid == 0) {
    ::close(pipefd[0]);
    ::setsid();
    if (::chdir("/") != 0) {
      // Not fatal: the mount point is absolute or relative to where we were.
    }
    return Run(a, pipefd[1]);
  }
  ::close(pipefd[1]);
  std::string line;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) line.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (line == "OK") return 0;
  std::fprintf(stderr, "stria-fuse: %s\n", line.empty() ? "the mount daemon died while starting" : line.c_str());
  return 1;
}

}  // namespace
}  // namespace stria::fuse

int main(int argc, char** argv) { return stria::fuse::Main(argc, argv); }
