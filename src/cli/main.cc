// stria: the command line for users and admins.
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cli/local_cluster.h"
#include "cli/repo_commands.h"
#include "common/util.h"
#include "stria/client.h"

namespace stria::cli {
namespace {

using json = nlohmann::json;

struct Globals {
  std::string meta;
  int timeout_s = 15;
  bool json_out = false;
};

Result<std::unique_ptr<Client>> Connect(const Globals& g) {
  ClientOptions opt;
  opt.meta = g.meta;
  opt.timeout = std::chrono::seconds(g.timeout_s);
  return Client::Connect(opt);
}

std::string ModeString(const FileAttr& a) {
  static const char* kType = "?-dlpscb";
  std::string s(1, kType[static_cast<int>(a.type)]);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; i++) s += (a.mode & (0400 >> i)) ? rwx[i] : '-';
  return s;
}

std::string TimeString(int64_t ns) {
  time_t t = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

json AttrJson(const FileAttr& a) {
  return json{{"ino", a.ino},       {"type", FileTypeName(a.type)}, {"mode", a.mode},
              {"uid", a.uid},       {"gid", a.gid},                 {"size", a.size},
              {"nlink", a.nlink},   {"atime_ns", a.atime_ns},       {"mtime_ns", a.mtime_ns},
              {"ctime_ns", a.ctime_ns}, {"version", a.version},
              {"repo_state", RepoStateName(a.repo_state)}};
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

Status Put(Client& c, const std::string& local, const std::string& path) {
  int in = local == "-" ? 0 : ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Err(errno, "put: cannot open local file {}: {}", local, std::strerror(errno));
  // A source that cannot be read must not truncate the file it would replace.
  struct stat st_in;
  if (in && ::fstat(in, &st_in) == 0 && S_ISDIR(st_in.st_mode)) {
    ::close(in);
    return Err(EISDIR, "put: local {} is a directory", local);
  }
  auto fd = c.Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd.ok()) {
    if (in) ::close(in);
    return fd.status();
  }
  std::string buf(8u << 20, '\0');
  Status st;
  while (true) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      st = Err(errno, "put: read {}: {}", local, std::strerror(errno));
      break;
    }
    if (n == 0) break;
    auto w = c.Write(*fd, buf.data(), static_cast<size_t>(n));
    if (!w.ok()) {
      st = w.status();
      break;
    }
  }
  if (in) ::close(in);
  Status cl = c.Close(*fd);
  return st.ok() ? cl : st;
}

Status Get(Client& c, const std::string& path, const std::string& local) {
  auto fd = c.Open(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  // Nothing local is created or truncated for a source that is no file.
  auto attr = c.Stat(path);
  if (attr.ok() && attr->type == FileType::kDirectory) {
    (void)c.Close(*fd);
    return Err(EISDIR, "get: {} is a directory", path);
  }
  int out = local == "-" ? 1 : ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    (void)c.Close(*fd);
    return Err(errno, "get: cannot create local file {}: {}", local, std::strerror(errno));
  }
  std::string buf(8u << 20, '\0');
  Status st;
  while (true) {
    auto n = c.Read(*fd, buf.data(), buf.size());
    if (!n.ok()) {
      st = n.status();
      break;
    }
    if (*n == 0) break;
    size_t done = 0;
    while (done < *n) {
      ssize_t w = ::write(out, buf.data() + done, *n - done);
      if (w < 0) {
        st = Err(errno, "get: write {}: {}", local, std::strerror(errno));
        break;
      }
      done += static_cast<size_t>(w);
    }
    if (!st.ok()) break;
  }
  if (out != 1) ::close(out);
  Status cl = c.Close(*fd);
  return st.ok() ? cl : st;
}

Status RemoveTree(Client& c, const std::string& path) {
  auto a = c.Lstat(path);
  if (!a.ok()) return a.status();
  if (a->type != FileType::kDirectory) return c.Unlink(path);
  auto entries = c.ReadDir(path);
  if (!entries.ok()) return entries.status();
  for (auto& e : *entries) STRIA_RETURN_IF_ERROR(RemoveTree(c, Join(path, e.name)));
  return c.Rmdir(path);
}

Status Ls(Client& c, const std::string& path, bool long_form, bool as_json) {
  auto a = c.Stat(path);
  if (!a.ok()) return a.status();
  std::vector<std::pair<std::string, FileAttr>> rows;
  if (a->type != FileType::kDirectory) {
    rows.push_back({path, *a});
  } else {
    uint64_t cookie = 0;
    while (true) {
      auto page = c.ReadDirPage(path, cookie, 1024, true);
      if (!page.ok()) return page.status();
      for (size_t i = 0; i < page->entries.size(); i++) {
        rows.push_back({page->entries[i].name, page->attrs[i]});
        cookie = page->entries[i].cookie;
      }
      if (page->eof || page->entries.empty()) break;
    }
    std::sort(rows.begin(), rows.end(), [](auto& x, auto& y) { return x.first < y.first; });
  }
  if (as_json) {
    json arr = json::array();
    for (auto& [name, attr] : rows) {
      json j = AttrJson(attr);
      j["name"] = name;
      arr.push_back(j);
    }
    std::cout << arr.dump(2) << "\n";
    return Status::Ok();
  }
  for (auto& [name, attr] : rows) {
    if (long_form) {
      std::printf("%s %3u %5u %5u %12llu %s %s\n", ModeString(attr).c_str(), attr.nlink, attr.uid,
                  attr.gid, static_cast<unsigned long long>(attr.size),
                  TimeString(attr.mtime_ns).c_str(), name.c_str());
    } else {
      std::printf("%s\n", name.c_str());
    }
  }
  return Status::Ok();
}

Status Stat(Client& c, const std::string& path, bool as_json) {
  auto a = c.Lstat(path);
  if (!a.ok()) return a.status();
  if (as_json) {
    json j = AttrJson(*a);
    j["path"] = path;
    std::cout << j.dump(2) << "\n";
    return Status::Ok();
  }
  std::printf("  File: %s\n  Type: %s\n  Size: %llu\n  Mode: %s (%04o)\n  Uid: %u  Gid: %u\n"
              " Links: %u\n Inode: %llu\nModify: %s\nChange: %s\nAccess: %s\n",
              path.c_str(), FileTypeName(a->type), static_cast<unsigned long long>(a->size),
              ModeString(*a).c_str(), a->mode, a->uid, a->gid, a->nlink,
              static_cast<unsigned long long>(a->ino), TimeString(a->mtime_ns).c_str(),
              TimeString(a->ctime_ns).c_str(), TimeString(a->atime_ns).c_str());
  if (a->repo_state != RepoState::kNone) std::printf("  Repo: %s\n", RepoStateName(a->repo_state));
  return Status::Ok();
}

Status GetStripe(Client& c, const std::string& path, bool as_json) {
  auto l = c.GetLayout(path);
  if (!l.ok()) return l.status();
  if (as_json) {
    std::cout << json{{"path", path},
                      {"stripe_size", l->stripe_size},
                      {"stripe_count", l->stripe_count},
                      {"targets", l->targets},
                      {"object_id", l->object_id},
                      {"is_default", l->is_default}}
                     .dump(2)
              << "\n";
    return Status::Ok();
  }
  std::printf("%s\n", path.c_str());
  if (l->is_default && l->stripe_size == 0 && l->stripe_count == 0) {
    std::printf("  (no default layout: new files get 1 MiB stripes over all targets)\n");
    return Status::Ok();
  }
  std::printf("  %sstripe_count: %u\n  %sstripe_size:  %llu\n", l->is_default ? "default " : "",
              l->stripe_count, l->is_default ? "default " : "",
              static_cast<unsigned long long>(l->stripe_size));
  if (!l->is_default) {
    std::printf("  object_id:    %llu\n  targets:     ", static_cast<unsigned long long>(l->object_id));
    for (auto t : l->targets) std::printf(" %u", t);
    std::printf("\n");
  }
  return Status::Ok();
}

Status Df(Client& c, bool as_json) {
  auto cs = c.GetClusterStatus();
  if (!cs.ok()) return cs.status();
  if (as_json) {
    json arr = json::array();
    for (auto& t : cs->targets) {
      arr.push_back({{"target", t.id}, {"store", t.store_id}, {"address", t.address},
                     {"path", t.path}, {"up", t.up}, {"capacity", t.capacity}, {"used", t.used}});
    }
    std::cout << arr.dump(2) << "\n";
    return Status::Ok();
  }
  std::printf("%-7s %-6s %-22s %12s %12s %12s %5s %-5s %s\n", "TARGET", "STORE", "ADDRESS", "SIZE",
              "USED", "AVAIL", "USE%", "STATE", "PATH");
  uint64_t cap = 0, used = 0;
  for (auto& t : cs->targets) {
    cap += t.capacity;
    used += t.used;
    std::printf("%-7u %-6u %-22s %12s %12s %12s %4.0f%% %-5s %s\n", t.id, t.store_id,
                t.address.c_str(), HumanBytes(t.capacity).c_str(), HumanBytes(t.used).c_str(),
                HumanBytes(t.capacity - std::min(t.used, t.capacity)).c_str(),
                t.capacity ? 100.0 * double(t.used) / double(t.capacity) : 0.0,
                t.up ? "up" : "DOWN", t.path.c_str());
  }
  std::printf("%-7s %-6s %-22s %12s %12s %12s\n", "total", "", "", HumanBytes(cap).c_str(),
              HumanBytes(used).c_str(), HumanBytes(cap - std::min(used, cap)).c_str());
  return Status::Ok();
}

Status ClusterStatusCmd(Client& c, bool as_json) {
  auto cs = c.GetClusterStatus();
  if (!cs.ok()) return cs.status();
  int up = 0;
  for (auto& t : cs->targets) up += t.up;
  if (as_json) {
    json stores = json::array(), targets = json::array();
    for (auto& s : cs->stores) {
      stores.push_back({{"id", s.id}, {"address", s.address}, {"admin", s.admin_address},
                        {"up", s.up}, {"last_heartbeat_ms", s.last_heartbeat_ms}});
    }
    for (auto& t : cs->targets) {
      targets.push_back({{"id", t.id}, {"store", t.store_id}, {"up", t.up}, {"path", t.path},
                         {"capacity", t.capacity}, {"used", t.used}});
    }
    std::cout << json{{"meta", cs->meta}, {"meta_admin", cs->meta_admin}, {"map_version", cs->version},
                      {"stores", stores}, {"targets", targets},
                      {"healthy", up == static_cast<int>(cs->targets.size())}}
                     .dump(2)
              << "\n";
    return Status::Ok();
  }
  std::printf("meta %s (admin %s), map version %llu\n", cs->meta.c_str(), cs->meta_admin.c_str(),
              static_cast<unsigned long long>(cs->version));
  for (auto& s : cs->stores) {
    std::printf("store %u %s %s (admin %s)\n", s.id, s.address.c_str(), s.up ? "up" : "DOWN",
                s.admin_address.c_str());
  }
  std::printf("%d of %zu targets up\n", up, cs->targets.size());
  return Status::Ok();
}

int Fail(const std::string& cmd, const Status& st) {
  std::fprintf(stderr, "stria %s: %s\n", cmd.c_str(), st.ToString().c_str());
  return 1;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"stria: the command line of the Stria parallel file system"};
  app.require_subcommand(1);
  Globals g;
  const char* env = std::getenv("STRIA_META");
  g.meta = env ? env : "";
  auto add_client_flags = [&](CLI::App* sub) {
    sub->add_option("--meta", g.meta, "stria-meta HOST:PORT (default: $STRIA_META)");
    sub->add_option("--timeout", g.timeout_s, "seconds before an operation gives up")
        ->check(CLI::Range(1, 3600));
  };
  std::function<Status(Client&)> action;
  std::string cmd_name;
  auto client_cmd = [&](const std::string& name, const std::string& help) {
    auto* sub = app.add_subcommand(name, help);
    add_client_flags(sub);
    return sub;
  };

  std::string a1, a2;
  bool flag_r = false, flag_l = false, flag_p = false, flag_s = false;
  uint32_t count = 0;
  std::string size_text;

  auto* put = client_cmd("put", "copy a local file (or - for stdin) into Stria");
  put->add_option("local", a1)->required();
  put->add_option("path", a2)->required();
  put->callback([&] { action = [&](Client& c) { return Put(c, a1, a2); }; });

  auto* get = client_cmd("get", "copy a file out of Stria (to - for stdout)");
  get->add_option("path", a1)->required();
  get->add_option("local", a2)->required();
  get->callback([&] { action = [&](Client& c) { return Get(c, a1, a2); }; });

  auto* cat = client_cmd("cat", "print a file");
  cat->add_option("path", a1)->required();
  cat->callback([&] { action = [&](Client& c) { return Get(c, a1, "-"); }; });

  auto* ls = client_cmd("ls", "list a directory");
  ls->add_option("path", a1)->default_val("/");
  ls->add_flag("-l", flag_l, "long listing");
  ls->add_flag("--json", g.json_out, "JSON output");
  ls->callback([&] { action = [&](Client& c) { return Ls(c, a1, flag_l, g.json_out); }; });

  auto* stat = client_cmd("stat", "show a file's attributes");
  stat->add_option("path", a1)->required();
  stat->add_flag("--json", g.json_out, "JSON output");
  stat->callback([&] { action = [&](Client& c) { return Stat(c, a1, g.json_out); }; });

  auto* mkdir = client_cmd("mkdir", "make a directory");
  mkdir->add_option("path", a1)->required();
  mkdir->add_flag("-p", flag_p, "make parents as needed, no error if it exists");
  mkdir->callback([&] {
    action = [&](Client& c) -> Status {
      if (!flag_p) return c.Mkdir(a1);
      std::string cur;
      size_t pos = 1;
      while (pos <= a1.size()) {
        size_t next = a1.find('/', pos);
        if (next == std::string::npos) next = a1.size();
        cur = a1.substr(0, next);
        if (cur.size() > 1) {
          Status st = c.Mkdir(cur);
          if (st.code() == EEXIST) {
            // As mkdir -p: an existing directory is fine, anything else is not.
            auto a = c.Stat(cur);
            if (!a.ok()) return a.status();
            if (a->type != FileType::kDirectory) return Err(EEXIST, "mkdir: {} exists and is not a directory", cur);
          } else if (!st.ok()) {
            return st;
          }
        }
        pos = next + 1;
      }
      return Status::Ok();
    };
  });

  auto* rm = client_cmd("rm", "remove a file (or a tree with -r)");
  rm->add_option("path", a1)->required();
  rm->add_flag("-r", flag_r, "remove directories and their contents");
  rm->callback([&] {
    action = [&](Client& c) -> Status {
      if (flag_r) return RemoveTree(c, a1);
      return c.Unlink(a1);
    };
  });

  auto* mv = client_cmd("mv", "rename");
  mv->add_option("from", a1)->required();
  mv->add_option("to", a2)->required();
  mv->callback([&] { action = [&](Client& c) { return c.Rename(a1, a2); }; });

  auto* ln = client_cmd("ln", "make a hard link (or a symlink with -s)");
  ln->add_option("target", a1)->required();
  ln->add_option("link", a2)->required();
  ln->add_flag("-s", flag_s, "symbolic link");
  ln->callback([&] {
    action = [&](Client& c) { return flag_s ? c.Symlink(a1, a2) : c.Link(a1, a2); };
  });

  auto* setstripe = client_cmd("setstripe", "set a file's layout or a directory's default");
  setstripe->add_option("-c,--count", count, "stripe count (0: all targets)");
  setstripe->add_option("-S,--size", size_text, "stripe size (e.g. 1M, 64k)");
  setstripe->add_option("path", a1)->required();
  setstripe->callback([&] {
    action = [&](Client& c) -> Status {
      uint64_t size = 0;
      if (!size_text.empty()) {
        auto s = ParseSize(size_text);
        if (!s.ok()) return s.status();
        size = *s;
      }
      return c.SetLayout(a1, count, size);
    };
  });

  auto* getstripe = client_cmd("getstripe", "show a file's layout or a directory's default");
  getstripe->add_option("path", a1)->required();
  getstripe->add_flag("--json", g.json_out, "JSON output");
  getstripe->callback([&] { action = [&](Client& c) { return GetStripe(c, a1, g.json_out); }; });

  auto* df = client_cmd("df", "capacity per target");
  df->add_flag("--json", g.json_out, "JSON output");
  df->callback([&] { action = [&](Client& c) { return Df(c, g.json_out); }; });

  auto* cluster = app.add_subcommand("cluster", "cluster administration");
  cluster->require_subcommand(1);
  auto* cstatus = cluster->add_subcommand("status", "stores and targets with their state");
  add_client_flags(cstatus);
  cstatus->add_flag("--json", g.json_out, "JSON output");
  cstatus->callback([&] {
    cmd_name = "cluster status";
    action = [&](Client& c) { return ClusterStatusCmd(c, g.json_out); };
  });

  AddRepoCommands(app, add_client_flags, g.timeout_s, g.json_out, action, cmd_name);

  // local: a whole cluster on this machine.
  LocalOptions lopt;
  lopt.bin_dir = SelfDir();
  std::function<int()> local_action;
  auto* local = app.add_subcommand("local", "run a whole cluster on this machine");
  local->require_subcommand(1);
  auto* up = local->add_subcommand("up", "start meta and N stores under DIR");
  up->add_option("--dir", lopt.dir, "state directory")->required();
  up->add_option("--stores", lopt.stores, "number of stores (one target each)")
      ->check(CLI::Range(1, 64));
  up->add_option("--timeout", lopt.timeout_s, "seconds to wait for each daemon");
  up->add_option("--log-level", lopt.log_level, "daemons' log level");
  up->add_option("--mount", lopt.mount, "also mount the cluster here (stria-fuse)");
  up->add_option("--mount-options", lopt.mount_options, "-o options for stria-fuse (see stria-fuse --help)");
  up->add_option("--store-args", lopt.store_args,
                 "more flags for every stria-store, space-separated (see stria-store --help)");
  up->add_option("--meta-args", lopt.meta_args, "more flags for stria-meta, space-separated (see stria-meta --help)");
  up->add_option("--high-watermark", lopt.high_watermark,
                 "release the least recently used files under bucket links above this percent of the targets used")
      ->check(CLI::Range(0.0, 100.0));
  up->add_option("--low-watermark", lopt.low_watermark, "... until under this percent")->check(CLI::Range(0.0, 100.0));
  up->callback([&] {
    local_action = [&] {
      auto r = LocalUp(lopt);
      if (!r.ok()) return Fail("local up", r.status());
      std::printf("STRIA_META=%s\n", r->c_str());
      return 0;
    };
  });
  auto* lstatus = local->add_subcommand("status", "show the processes of a local cluster");
  lstatus->add_option("--dir", lopt.dir, "state directory")->required();
  lstatus->add_flag("--json", g.json_out, "JSON output");
  lstatus->callback([&] {
    local_action = [&] {
      auto r = LocalStatus(lopt.dir);
      if (!r.ok()) return Fail("local status", r.status());
      bool all = true;
      json arr = json::array();
      for (auto& p : *r) {
        all = all && p.running;
        if (g.json_out) {
          arr.push_back({{"name", p.name}, {"pid", p.pid}, {"running", p.running},
                         {"listen", p.listen}, {"admin", p.admin}});
        } else {
          std::printf("%-10s %-8s pid %-7d listen %-22s admin %s\n", p.name.c_str(),
                      p.running ? "running" : "stopped", p.pid, p.listen.c_str(), p.admin.c_str());
        }
      }
      if (g.json_out) std::cout << arr.dump(2) << "\n";
      return all ? 0 : 3;
    };
  });
  auto* down = local->add_subcommand("down", "unmount and stop the processes of a local cluster (data stays)");
  down->add_option("--dir", lopt.dir, "state directory")->required();
  down->callback([&] {
    local_action = [&] {
      Status st = LocalDown(lopt.dir);
      return st.ok() ? 0 : Fail("local down", st);
    };
  });
  std::string kill_name;
  int kill_sig = SIGKILL;
  auto* lkill = local->add_subcommand("kill", "signal one daemon (for failure tests)");
  lkill->add_option("--dir", lopt.dir, "state directory")->required();
  lkill->add_option("name", kill_name, "meta, store-K or fuse")->required();
  lkill->add_option("--signal", kill_sig, "signal number (default 9)");
  lkill->callback([&] {
    local_action = [&] {
      Status st = LocalKill(lopt.dir, kill_name, kill_sig);
      return st.ok() ? 0 : Fail("local kill", st);
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (local_action) return local_action();
  if (!action) return 2;
  if (cmd_name.empty()) cmd_name = app.get_subcommands().front()->get_name();
  auto client = Connect(g);
  if (!client.ok()) return Fail(cmd_name, client.status());
  Status st = action(**client);
  if (!st.ok()) return Fail(cmd_name, st);
  return 0;
}

}  // namespace stria::cli

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  // libstria's log lines go to stderr (stdout carries `stria cat` data and
  // --json answers), warnings and up only.
  auto log = spdlog::stderr_color_mt("stria");
  log->set_level(spdlog::level::warn);
  spdlog::set_default_logger(log);
  return stria::cli::Main(argc, argv);
}
