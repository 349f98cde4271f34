#include "cli/local_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "common/util.h"
#include "stria/client.h"

namespace stria::cli {

namespace fs = std::filesystem;

namespace {

std::map<std::string, std::string> ReadPortFile(const std::string& path) {
  std::map<std::string, std::string> out;
  auto text = ReadFile(path);
  if (!text.ok()) return out;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

int ReadPid(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return 0;
  try {
    return std::stoi(*text);
  } catch (...) {
    return 0;
  }
}

// True when pid exists and has not exited (a zombie has).
bool Alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  auto st = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (st.ok()) {
    auto rp = st->rfind(')');
    if (rp != std::string::npos && rp + 2 < st->size() && (*st)[rp + 2] == 'Z') return false;
  }
  return true;
}

// True when pid is alive and is the daemon we started (not a reused pid).
bool IsOurs(int pid, const std::string& exe_name) {
  if (!Alive(pid)) return false;
  auto cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  return cmd.ok() && cmd->find(exe_name) != std::string::npos;
}

// What a process that did not come up is doing, for the error: its name
// (the caller's until its exec), state and the kernel function it waits in.
std::string ProcessSummary(int pid) {
  std::string out = "pid " + std::to_string(pid);
  auto st = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (st.ok()) {
    auto lp = st->find('('), rp = st->rfind(')');
    if (lp != std::string::npos && rp != std::string::npos && rp + 2 < st->size()) {
      out += " (" + st->substr(lp + 1, rp - lp - 1) + "), state " + st->substr(rp + 2, 1);
    }
  }
  auto wchan = ReadFile("/proc/" + std::to_string(pid) + "/wchan");
  if (wchan.ok() && !wchan->empty() && *wchan != "0") out += ", waiting in " + *wchan;
  return out;
}

std::string Tail(const std::string& path, size_t bytes = 1500) {
  auto text = ReadFile(path);
  if (!text.ok()) return "(no log)";
  return text->size() > bytes ? text->substr(text->size() - bytes) : *text;
}

}  // namespace

Status SpawnDetached(const std::vector<std::string>& argv, const std::string& out_file,
                     const std::string& pid_file) {
  if (argv.empty()) return Err(EINVAL, "spawn: no program given");
  // The caller has threads (a test's client retrying its calls, say): after
  // fork only async-signal-safe calls are allowed, since another thread may
  // have held the allocator's lock at the fork and the child would wait on
  // it forever. So everything that allocates is done here, first.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* out_path = out_file.c_str();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Err(errno, "pipe: {}", std::strerror(errno));
  pid_t child = fork();
  if (child < 0) return Err(errno, "fork: {}", std::strerror(errno));
  if (child == 0) {
    setsid();
    pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) dup2(in, 0);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    char digits[16];
    size_t n = sizeof(digits);
    for (unsigned long v = static_cast<unsigned long>(getpid()); n > 0;) {
      digits[--n] = static_cast<char>('0' + v % 10);
      v /= 10;
      if (v == 0) break;
    }
    (void)!write(fds[1], digits + n, sizeof(digits) - n);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  char buf[32] = {0};
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (n <= 0) return Err(EIO, "could not start {}", argv[0]);
  return ReplaceFile(pid_file, std::string(buf, static_cast<size_t>(n)) + "\n");
}

namespace {

std::string Exe(const std::string& name) {
  if (name == "meta") return "stria-meta";
  if (name == "fuse") return "stria-fuse";
  if (name == "mover") return "stria-mover";
  return "stria-store";
}

std::string Base(const std::string& name) {
  if (name == "meta" || name == "fuse" || name == "mover") return name;
  return "store";
}

// Starts one daemon unless it runs, waiting for its port file.
Result<std::map<std::string, std::string>> StartDaemon(const std::string& name,
                                                       const std::string& exe,
                                                       const std::string& dir,
                                                       std::vector<std::string> args,
                                                       const LocalOptions& opt) {
  std::string base = Base(name);
  std::string pid_file = dir + "/" + base + ".pid";
  std::string port_file = dir + "/" + base + ".port";
  std::string exe_path = opt.bin_dir + "/" + exe;
  if (IsOurs(ReadPid(pid_file), exe)) return ReadPortFile(port_file);
  if (access(exe_path.c_str(), X_OK) != 0) {
    return Err(ENOENT, "{} not found (build first, or put it beside stria)", exe_path);
  }
  // Reuse the last listen port when it is free, so clients keep working.
  auto old = ReadPortFile(port_file);
  std::string listen = "127.0.0.1:0";
  if (old.count("listen")) listen = old["listen"];
  // A daemon that dies at once on its old port is started again on it a few
  // times, a moment apart: a retrying client's socket may hold that port for
  // a moment (the kernel can give it as the socket's own). Then any port.
  constexpr int kSamePortTries = 3;
  for (int attempt = 0; attempt <= kSamePortTries; attempt++) {
    ::unlink(port_file.c_str());
    std::vector<std::string> argv = {exe_path, "--admin", "127.0.0.1:0",
                                     "--port-file", port_file, "--log", dir + "/" + base + ".log",
                                     "--log-level", opt.log_level};
    // The mover serves nothing but its admin port.
    if (name != "mover") argv.insert(argv.begin() + 1, {"--listen", listen});
    argv.insert(argv.end(), args.begin(), args.end());
    STRIA_RETURN_IF_ERROR(SpawnDetached(argv, dir + "/" + base + ".out", pid_file));
    int pid = ReadPid(pid_file);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt.timeout_s);
    bool died = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (access(port_file.c_str(), F_OK) == 0) return ReadPortFile(port_file);
      if (!Alive(pid)) {   // (before its exec, the child is not yet named exe)
        died = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (died && listen != "127.0.0.1:0") {
      if (attempt + 1 < kSamePortTries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      } else {
        listen = "127.0.0.1:0";   // the old port stays taken: let the kernel pick
      }
      continue;
    }
    std::string what = "exited";
    if (!died) {
      what = "did not come up within " + std::to_string(opt.timeout_s) + " s (" + ProcessSummary(pid) + ")";
      ::kill(pid, SIGKILL);
    }
    return Err(died ? EIO : ETIMEDOUT, "{} {} in {}; last output:\n{}\n{}", name, what, dir,
               Tail(dir + "/" + base + ".out"), Tail(dir + "/" + base + ".log"));
  }
  return Err(EIO, "{} could not start", name);
}

// The value of a running daemon's --meta flag ("" when it has none).
std::string MetaArgOf(int pid) {
  auto cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmd.ok()) return "";
  std::vector<std::string> args;
  for (size_t at = 0; at < cmd->size();) {
    size_t end = cmd->find('\0', at);
    if (end == std::string::npos) end = cmd->size();
    args.push_back(cmd->substr(at, end - at));
    at = end + 1;
  }
  auto it = std::find(args.begin(), args.end(), "--meta");
  return it == args.end() || it + 1 == args.end() ? "" : *(it + 1);
}

// SIGTERM, then SIGKILL if the daemon (still ours) has not exited within
// 10 s.
void StopDaemon(int pid, const std::string& exe) {
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (IsOurs(pid, exe) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (IsOurs(pid, exe)) ::kill(pid, SIGKILL);
}

// A running daemon started with another --meta than meta_addr (meta came
// back on another port) is stopped, so that it is started again pointing
// at the meta that serves.
void StopIfMetaMoved(const std::string& pid_file, const std::string& exe, const std::string& meta_addr) {
  int pid = ReadPid(pid_file);
  if (!IsOurs(pid, exe)) return;
  std::string was = MetaArgOf(pid);
  if (was.empty() || was == meta_addr) return;
  StopDaemon(pid, exe);
}

Status Unmount(const std::string& dir);

// Mounts the cluster at opt.mount with stria-fuse in the foreground of its
// own detached process, so that its pid is known and signals reach it.
Status Mount(const LocalOptions& opt, const std::string& dir, const std::string& meta_addr) {
  std::string fdir = dir + "/fuse";
  std::error_code ec;
  fs::create_directories(fdir, ec);
  if (ec) return Err(ec.value(), "local up: cannot create {}: {}", fdir, ec.message());
  std::string mp = fs::absolute(opt.mount).string();
  std::string pid_file = fdir + "/fuse.pid";
  int running = ReadPid(pid_file);
  if (IsOurs(running, "stria-fuse") && IsStriaMount(mp)) {
    std::string was = MetaArgOf(running);
    if (was.empty() || was == meta_addr) return Status::Ok();
    // Meta moved to another port: this daemon calls one that is gone (and
    // any look at the mount point would wait for it until its timeout).
    STRIA_RETURN_IF_ERROR(Unmount(dir));
  }
  fs::create_directories(mp, ec);
  if (IsStriaMount(mp)) {
    return Err(EBUSY, "local up: {} is already a Stria mount of another daemon (unmount it first)", mp);
  }
  std::string exe_path = opt.bin_dir + "/stria-fuse";
  if (access(exe_path.c_str(), X_OK) != 0) return Err(ENOENT, "{} not found (build first)", exe_path);
  std::string o = "log=" + fdir + "/fuse.log,log_level=" + opt.log_level;
  if (!opt.mount_options.empty()) o += "," + opt.mount_options;
  STRIA_RETURN_IF_ERROR(ReplaceFile(fdir + "/mountpoint", mp + "\n"));
  STRIA_RETURN_IF_ERROR(SpawnDetached({exe_path, "--meta", meta_addr, mp, "-f", "-o", o}, fdir + "/fuse.out", pid_file));
  int pid = ReadPid(pid_file);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt.timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (IsStriaMount(mp)) return Status::Ok();
    if (!Alive(pid)) {
      return Err(EIO, "local up: stria-fuse exited before mounting {}; last output:\n{}\n{}", mp,
                 Tail(fdir + "/fuse.out"), Tail(fdir + "/fuse.log"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  return Err(ETIMEDOUT, "local up: {} was not mounted within {} s", mp, opt.timeout_s);
}

// Unmounts the cluster's mount point: SIGTERM to the daemon (it unmounts
// cleanly), then a lazy unmount if the mount is still there.
Status Unmount(const std::string& dir) {
  std::string fdir = dir + "/fuse";
  auto mp_text = ReadFile(fdir + "/mountpoint");
  if (!mp_text.ok()) return Status::Ok();   // never mounted
  std::string mp = *mp_text;
  while (!mp.empty() && mp.back() == '\n') mp.pop_back();
  int pid = ReadPid(fdir + "/fuse.pid");
  if (IsOurs(pid, "stria-fuse")) StopDaemon(pid, "stria-fuse");
  if (IsStriaMount(mp)) {
    // The daemon is gone (crashed, or killed): detach the dead mount.
    if (::umount2(mp.c_str(), MNT_DETACH) != 0) {
      int rc = std::system(("fusermount3 -u -z '" + mp + "' >/dev/null 2>&1").c_str());
      if (rc != 0 && IsStriaMount(mp)) {
        return Err(EBUSY, "local down: cannot unmount {}: {}", mp, std::strerror(errno));
      }
    }
  }
  ::unlink((fdir + "/fuse.pid").c_str());
  return Status::Ok();
}

int CountStores(const std::string& dir) {
  int n = 0;
  while (fs::exists(dir + "/store-" + std::to_string(n))) n++;
  return n;
}

}  // namespace

bool IsStriaMount(const std::string& path) {
  auto info = ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return false;
  std::error_code ec;
  std::string want = fs::absolute(path, ec).lexically_normal().string();
  while (want.size() > 1 && want.back() == '/') want.pop_back();
  size_t start = 0;
  while (start < info->size()) {
    size_t end = info->find('\n', start);
    if (end == std::string::npos) end = info->size();
    std::string line = info->substr(start, end - start);
    start = end + 1;
    // Fields: id parent major:minor root mountpoint ... - fstype source ...
    std::vector<std::string> f;
    size_t p = 0;
    while (p <= line.size()) {
      size_t sp = line.find(' ', p);
      if (sp == std::string::npos) sp = line.size();
      f.push_back(line.substr(p, sp - p));
      p = sp + 1;
    }
    if (f.size() < 5 || f[4] != want) continue;
    for (size_t i = 5; i + 1 < f.size(); i++) {
      if (f[i] == "-") {
        if (f[i + 1] == "fuse.stria") return true;
        break;
      }
    }
  }
  return false;
}

std::string SelfDir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

Result<std::string> LocalUp(const LocalOptions& opt) {
  if (opt.dir.empty()) return Err(EINVAL, "local up: --dir is required");
  if (opt.stores < 1 || opt.stores > 64) return Err(EINVAL, "local up: --stores must be 1..64");
  std::error_code ec;
  fs::create_directories(opt.dir + "/meta", ec);
  if (ec) return Err(ec.value(), "local up: cannot create {}: {}", opt.dir, ec.message());
  std::string dir = fs::absolute(opt.dir).string();
  std::vector<std::string> meta_args = {"--data", dir + "/meta"};
  std::istringstream more_meta(opt.meta_args);
  for (std::string a; more_meta >> a;) meta_args.push_back(a);
  STRIA_ASSIGN_OR_RETURN(auto meta, StartDaemon("meta", "stria-meta", dir + "/meta", meta_args, opt));
  std::string meta_addr = meta["listen"];
  int stores = std::max(opt.stores, CountStores(dir));
  for (int i = 0; i < stores; i++) {
    std::string sdir = dir + "/store-" + std::to_string(i);
    fs::create_directories(sdir + "/target", ec);
    if (ec) return Err(ec.value(), "local up: cannot create {}: {}", sdir, ec.message());
    StopIfMetaMoved(sdir + "/store.pid", "stria-store", meta_addr);
    std::vector<std::string> args = {"--meta", meta_addr, "--target", sdir + "/target"};
    std::istringstream more(opt.store_args);
    for (std::string a; more >> a;) args.push_back(a);
    auto st = StartDaemon("store-" + std::to_string(i), "stria-store", sdir, args, opt);
    if (!st.ok()) return st.status();
  }
  // The data-repository policies (auto-export); idle without links.
  fs::create_directories(dir + "/mover", ec);
  StopIfMetaMoved(dir + "/mover/mover.pid", "stria-mover", meta_addr);
  std::vector<std::string> mover_args = {"--meta", meta_addr};
  if (opt.high_watermark > 0) {
    mover_args.insert(mover_args.end(), {"--high-watermark", fmt::format("{}", opt.high_watermark),
                                         "--low-watermark", fmt::format("{}", opt.low_watermark)});
  }
  STRIA_RETURN_IF_ERROR(StartDaemon("mover", "stria-mover", dir + "/mover", mover_args, opt).status());
  // Healthy: every target is up in meta's cluster map.
  ClientOptions copt;
  copt.meta = meta_addr;
  copt.timeout = std::chrono::seconds(opt.timeout_s);
  STRIA_ASSIGN_OR_RETURN(auto client, Client::Connect(copt));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt.timeout_s);
  while (true) {
    auto cs = client->GetClusterStatus();
    if (cs.ok()) {
      int up = 0;
      for (auto& t : cs->targets) up += t.up;
      if (up >= stores) break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Err(ETIMEDOUT, "local up: targets did not all come up within {} s", opt.timeout_s);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!opt.mount.empty()) STRIA_RETURN_IF_ERROR(Mount(opt, dir, meta_addr));
  return meta_addr;
}

Result<std::vector<LocalProcess>> LocalStatus(const std::string& dir) {
  if (!fs::exists(dir)) return Err(ENOENT, "local status: {} does not exist", dir);
  std::vector<LocalProcess> out;
  auto add = [&](const std::string& name, const std::string& sub, const std::string& base,
                 const std::string& exe) {
    LocalProcess p;
    p.name = name;
    p.pid = ReadPid(dir + "/" + sub + "/" + base + ".pid");
    p.running = IsOurs(p.pid, exe);
    auto ports = ReadPortFile(dir + "/" + sub + "/" + base + ".port");
    p.listen = ports["listen"];
    p.admin = ports["admin"];
    out.push_back(p);
  };
  add("meta", "meta", "meta", "stria-meta");
  for (int i = 0, n = CountStores(dir); i < n; i++) {
    add("store-" + std::to_string(i), "store-" + std::to_string(i), "store", "stria-store");
  }
  if (fs::exists(dir + "/mover")) add("mover", "mover", "mover", "stria-mover");
  if (fs::exists(dir + "/fuse/mountpoint")) {
    add("fuse", "fuse", "fuse", "stria-fuse");
    auto mp = ReadFile(dir + "/fuse/mountpoint");
    if (mp.ok()) {
      out.back().listen = *mp;
      while (!out.back().listen.empty() && out.back().listen.back() == '\n') out.back().listen.pop_back();
    }
  }
  return out;
}

Status LocalKill(const std::string& dir, const std::string& name, int sig) {
  std::string pid_file = dir + "/" + name + "/" + Base(name) + ".pid";
  int pid = ReadPid(pid_file);
  if (!IsOurs(pid, Exe(name))) {
    return Err(ESRCH, "{} of {} is not running", name, dir);
  }
  ::kill(pid, sig);
  for (int i = 0; i < 1000 && IsOurs(pid, Exe(name)); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Ok();
}

Status LocalDown(const std::string& dir) {
  STRIA_ASSIGN_OR_RETURN(auto procs, LocalStatus(dir));
  // The mount goes first: its daemon flushes to the stores and meta.
  STRIA_RETURN_IF_ERROR(Unmount(dir));
  procs.erase(std::remove_if(procs.begin(), procs.end(), [](const LocalProcess& p) { return p.name == "fuse"; }),
              procs.end());
  // Stores first, so that they do not log meta's departure as an error.
  std::vector<std::pair<std::string, int>> running;
  for (auto it = procs.rbegin(); it != procs.rend(); ++it) {
    if (it->running) {
      ::kill(it->pid, SIGTERM);
      running.push_back({it->name, it->pid});
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto& [name, pid] : running) {
    std::string exe = Exe(name);
    while (IsOurs(pid, exe) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (IsOurs(pid, exe)) ::kill(pid, SIGKILL);
  }
  for (auto& p : procs) {
    std::string sub = p.name;
    ::unlink((dir + "/" + sub + "/" + Base(p.name) + ".pid").c_str());
  }
  return Status::Ok();
}

}  // namespace stria::cli
