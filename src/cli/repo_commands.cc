#include "cli/repo_commands.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "repo/credentials.h"
#include "repo/s3_client.h"

namespace stria::cli {

namespace {

using json = nlohmann::json;

struct RepoArgs {
  std::string path, url, endpoint, region, profile;
  bool virtual_host = false, export_deletes = false, force = false;
  uint32_t auto_export_delay_s = 0;
};

// Checks, before anything is stored, that the bucket exists and that these
// credentials may list it: a bad link is an error now, not at first read.
Status CheckBucket(const RepoArgs& a, int timeout_s, std::string* bucket, std::string* prefix) {
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(a.url, bucket, prefix));
  if (a.endpoint.rfind("http://", 0) != 0 && a.endpoint.rfind("https://", 0) != 0) {
    return Err(EINVAL, "endpoint '{}' is not an http:// or https:// URL", a.endpoint);
  }
  auto creds = repo::LoadCredentials(a.profile);
  if (!creds.ok()) return creds.status().Prefixed("credentials");
  repo::S3Endpoint ep{a.endpoint, a.region, a.virtual_host};
  repo::S3Options opt;
  opt.deadline_ms = timeout_s * 1000;
  opt.attempt_timeout_ms = std::min(opt.attempt_timeout_ms, timeout_s * 1000);
  repo::S3Client s3(ep, *creds, opt);
  Status st = s3.CheckBucket(*bucket);
  if (st.code() == ENOENT) return Err(ENOENT, "bucket '{}' does not exist at {} ({})", *bucket, a.endpoint, st.message());
  if (st.code() == EACCES) {
    return Err(EACCES, "the credentials{} were refused for bucket '{}' at {} ({})",
               a.profile.empty() ? "" : " of profile " + a.profile, *bucket, a.endpoint, st.message());
  }
  return st;
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

// Imports every level under path: listing a directory imports its level.
// Calls on_file for every entry that is not a directory at or under path
// (a directory is walked whole, its bucket levels imported on the way) and
// counts the directories.
Status Walk(Client& c, const std::string& path, const std::function<void(const std::string&, const FileAttr&)>& on_file,
            uint64_t* dirs) {
  STRIA_ASSIGN_OR_RETURN(auto st, c.Stat(path));
  if (st.type != FileType::kDirectory) {
    on_file(path, st);
    return Status::Ok();
  }
  uint64_t cookie = 0;
  std::vector<std::string> subdirs;
  while (true) {
    auto page = c.ReadDirPage(path, cookie, 1024, true);
    if (!page.ok()) return page.status();
    for (size_t i = 0; i < page->entries.size(); i++) {
      const auto& e = page->entries[i];
      cookie = e.cookie;
      if (e.type == FileType::kDirectory) subdirs.push_back(Join(path, e.name));
      else on_file(Join(path, e.name), page->attrs[i]);
    }
    if (page->eof || page->entries.empty()) break;
  }
  (*dirs)++;
  for (const auto& d : subdirs) STRIA_RETURN_IF_ERROR(Walk(c, d, on_file, dirs));
  return Status::Ok();
}

// The link path is in, or ENOENT.
Result<RepoLinkInfo> LinkOf(Client& c, const std::string& path) {
  STRIA_ASSIGN_OR_RETURN(auto links, c.RepoList());
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const RepoLinkInfo* best = nullptr;
  for (const auto& l : links) {
    bool inside = p == l.path || l.path == "/" || p.rfind(l.path + "/", 0) == 0;
    if (inside && (!best || l.path.size() > best->path.size())) best = &l;
  }
  if (!best) return Err(ENOENT, "{} is not under a data repository link", path);
  return *best;
}

// Runs op on every file of `state` at or under paths, `jobs` files at a
// time: a progress line on a terminal, one summary (or --json figures) at
// the end, each failure on stderr; fails when any file failed.
//
// Export also sends clean files whose path names another key than the one
// their content is at (a directory above them was renamed): copied on the
// server first, while their old keys still hold what they need; then the
// deletions (--export-deletes); then the dirty files; then the deletions
// their new names left.
Status OnFiles(Client& c, const std::vector<std::string>& paths, RepoState state, int jobs, bool json_out,
               const char* verb, const std::function<Result<uint64_t>(const std::string&)>& op) {
  auto t0 = std::chrono::steady_clock::now();
  const bool exporting = state == RepoState::kDirty;
  std::vector<std::pair<std::string, uint64_t>> moved, files;
  std::vector<std::pair<std::string, uint64_t>> whole;   // links walked whole, and their renames before
  for (const auto& p : paths) {
    STRIA_ASSIGN_OR_RETURN(auto link, LinkOf(c, p));
    std::string norm = p;
    while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
    if (norm == link.path) whole.emplace_back(link.path, link.counts.renames);
    uint64_t dirs = 0;
    Status inner;
    STRIA_RETURN_IF_ERROR(Walk(
        c, p,
        [&](const std::string& f, const FileAttr& a) {
          if (a.type != FileType::kRegular) return;
          if (a.repo_state == state) {
            files.emplace_back(f, a.size);
          } else if (exporting && !a.repo_key.empty() &&
                     (a.repo_state == RepoState::kResident || a.repo_state == RepoState::kReleased)) {
            auto key = Client::RepoKeyOf(link, f);
            if (!key.ok()) inner = key.status();
            else if (*key != a.repo_key) moved.emplace_back(f, a.size);
          }
        },
        &dirs));
    STRIA_RETURN_IF_ERROR(inner);
  }
  uint64_t deleted = 0;
  auto deletions = [&]() -> Status {
    for (const auto& p : paths) {
      STRIA_ASSIGN_OR_RETURN(uint64_t n, c.RepoExportDeletions(p));
      deleted += n;
    }
    return Status::Ok();
  };
  const size_t nmoved = moved.size();
  files.insert(files.begin(), moved.begin(), moved.end());
  uint64_t total = 0;
  for (auto& f : files) total += f.second;
  std::atomic<size_t> next{0}, done{0}, failed{0}, parked{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex err_mu;
  bool bar = !json_out && ::isatty(2);
  auto finished = [&](const Result<uint64_t>& r) {
    if (r.ok()) {
      bytes += *r;
    } else {
      failed++;
      std::lock_guard lk(err_mu);
      std::fprintf(stderr, "\r%s\n", r.status().ToString().c_str());
    }
    done++;
  };
  // Exports whose key still holds another released file's content: once
  // the others went (RepoExportWaiting).
  std::vector<std::string> waiting;
  // Files [next, end) at `jobs` at a time.
  auto run = [&](size_t end) {
    std::vector<std::thread> workers;
    for (int i = 0; i < std::max(1, jobs); i++) {
      workers.emplace_back([&] {
        for (size_t k; (k = next++) < end;) {
          auto r = op(files[k].first);
          if (exporting && !r.ok() && r.status().code() == EBUSY) {
            std::lock_guard lk(err_mu);
            waiting.push_back(files[k].first);
            parked++;
            continue;
          }
          finished(r);
        }
      });
    }
    while (bar && done + parked < end) {
      {
        std::lock_guard lk(err_mu);
        std::fprintf(stderr, "\r%s: %zu/%zu files, %.1f/%.1f MiB", verb, done.load(), files.size(),
                     bytes.load() / 1048576.0, total / 1048576.0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (auto& w : workers) w.join();
    next = end;
    if (!waiting.empty()) {
      c.RepoExportWaiting(std::move(waiting), [&](const std::string&, const Result<uint64_t>& r) { finished(r); });
      waiting.clear();
      parked = 0;
    }
  };
  run(nmoved);
  if (exporting) STRIA_RETURN_IF_ERROR(deletions());
  run(files.size());
  if (exporting) STRIA_RETURN_IF_ERROR(deletions());
  // Every file renamed directories concern is in place: stria-mover need
  // not walk these links for them.
  if (exporting && failed == 0) {
    for (const auto& [link, renames] : whole) STRIA_RETURN_IF_ERROR(c.RepoRenamesExported(link, renames));
  }
  if (bar) std::fprintf(stderr, "\r\033[K");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (json_out) {
    json out = {{"files", files.size() - failed}, {"failed", failed.load()}, {"bytes", bytes.load()},
                {"seconds", s}, {"mib_per_s", s > 0 ? bytes.load() / 1048576.0 / s : 0.0}};
    if (state == RepoState::kDirty) out["deleted"] = deleted;
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%s: %zu files, %.1f MiB in %.1f s (%.1f MiB/s)%s\n", verb, files.size() - failed,
                bytes.load() / 1048576.0, s, s > 0 ? bytes.load() / 1048576.0 / s : 0.0,
                failed ? fmt::format(", {} failed", failed.load()).c_str() : "");
    if (deleted) std::printf("%s: %llu objects deleted from the bucket\n", verb, static_cast<unsigned long long>(deleted));
  }
  if (failed) return Err(EIO, "{}: {} of {} files failed", verb, failed.load(), files.size());
  return Status::Ok();
}

json CountsJson(const RepoCounts& n) {
  return {{"released_files", n.released_files}, {"released_bytes", n.released_bytes},
          {"resident_files", n.resident_files}, {"resident_bytes", n.resident_bytes},
          {"dirty_files", n.dirty_files},       {"dirty_bytes", n.dirty_bytes},
          {"renames", n.renames},               {"renames_exported", n.renames_exported}};
}

std::string Counts(const RepoCounts& c) {
  return fmt::format("released {} ({} B), resident {} ({} B), dirty {} ({} B)", c.released_files, c.released_bytes,
                     c.resident_files, c.resident_bytes, c.dirty_files, c.dirty_bytes);
}

}  // namespace

void AddRepoTreeCommands(CLI::App* repo, const std::function<void(CLI::App*)>& add_client_flags, bool& json_out,
                         std::function<Status(Client&)>& action, std::string& cmd_name);

void AddRepoCommands(CLI::App& app, const std::function<void(CLI::App*)>& add_client_flags, const int& timeout_s,
                     bool& json_out, std::function<Status(Client&)>& action, std::string& cmd_name) {
  static RepoArgs a;
  auto* repo = app.add_subcommand("repo", "data repositories: directories linked to S3 buckets");
  repo->require_subcommand(1);

  auto* link = repo->add_subcommand("link", "link an empty directory to s3://BUCKET[/PREFIX] (root only)");
  add_client_flags(link);
  link->add_option("path", a.path, "Stria directory (empty)")->required();
  link->add_option("url", a.url, "s3://BUCKET[/PREFIX]")->required();
  link->add_option("--endpoint", a.endpoint, "S3 endpoint URL (default: AWS S3 of the region)");
  link->add_option("--region", a.region, "region to sign for (default: $AWS_REGION or us-east-1)");
  link->add_option("--profile", a.profile, "credentials profile (default: environment, then $AWS_PROFILE)");
  link->add_flag("--virtual-host", a.virtual_host, "BUCKET.host addressing instead of host/BUCKET");
  link->add_option("--auto-export-delay", a.auto_export_delay_s, "export files this many seconds after their last close (0: off)");
  link->add_flag("--export-deletes", a.export_deletes, "deleting a file deletes its object at export");
  link->callback([&] {
    cmd_name = "repo link";
    action = [&](Client& c) -> Status {
      if (a.region.empty()) a.region = repo::DefaultRegion();
      if (a.endpoint.empty()) {
        a.endpoint = "https://s3." + a.region + ".amazonaws.com";
        a.virtual_host = true;
      }
      std::string bucket, prefix;
      STRIA_RETURN_IF_ERROR(CheckBucket(a, timeout_s, &bucket, &prefix).Prefixed("repo link " + a.path));
      RepoLinkSpec spec{"s3://" + bucket + "/" + prefix, a.endpoint, a.region, a.virtual_host, a.profile,
                        a.auto_export_delay_s, a.export_deletes};
      STRIA_RETURN_IF_ERROR(c.RepoLink(a.path, spec));
      std::printf("%s -> %s at %s\n", a.path.c_str(), spec.url.c_str(), a.endpoint.c_str());
      return Status::Ok();
    };
  });

  auto* unlink = repo->add_subcommand("unlink", "remove a directory's link (root only)");
  add_client_flags(unlink);
  unlink->add_option("path", a.path, "linked directory")->required();
  unlink->add_flag("--force", a.force, "even while files are released or dirty");
  unlink->callback([&] {
    cmd_name = "repo unlink";
    action = [&](Client& c) { return c.RepoUnlink(a.path, a.force); };
  });

  AddRepoTreeCommands(repo, add_client_flags, json_out, action, cmd_name);

  auto* list = repo->add_subcommand("list", "the linked directories");
  add_client_flags(list);
  list->add_flag("--json", json_out, "JSON output");
  list->callback([&] {
    cmd_name = "repo list";
    action = [&](Client& c) -> Status {
      STRIA_ASSIGN_OR_RETURN(auto links, c.RepoList());
      if (json_out) {
        json arr = json::array();
        for (const auto& l : links) {
          arr.push_back({{"path", l.path},
                         {"ino", l.ino},
                         {"url", l.link.url},
                         {"endpoint", l.link.endpoint},
                         {"region", l.link.region},
                         {"virtual_host", l.link.virtual_host},
                         {"profile", l.link.profile},
                         {"auto_export_delay_s", l.link.auto_export_delay_s},
                         {"export_deletes", l.link.export_deletes},
                         {"created_ns", l.created_ns},
                         {"counts", CountsJson(l.counts)}});
        }
        std::cout << arr.dump(2) << "\n";
        return Status::Ok();
      }
      for (const auto& l : links) {
        std::printf("%s -> %s at %s (%s)\n", l.path.c_str(), l.link.url.c_str(), l.link.endpoint.c_str(),
                    Counts(l.counts).c_str());
      }
      if (links.empty()) std::printf("no linked directories\n");
      return Status::Ok();
    };
  });
}


void AddRepoTreeCommands(CLI::App* repo, const std::function<void(CLI::App*)>& add_client_flags, bool& json_out,
                         std::function<Status(Client&)>& action, std::string& cmd_name) {
  static std::string path;
  auto* import = repo->add_subcommand("import", "import the metadata of every object under PATH now");
  add_client_flags(import);
  import->add_option("path", path, "a linked directory or one under it")->required();
  import->add_flag("--json", json_out, "JSON output");
  import->callback([&] {
    cmd_name = "repo import";
    action = [&](Client& c) -> Status {
      STRIA_RETURN_IF_ERROR(LinkOf(c, path).status());
      uint64_t dirs = 0, files = 0, bytes = 0;
      auto t0 = std::chrono::steady_clock::now();
      STRIA_RETURN_IF_ERROR(Walk(
          c, path,
          [&](const std::string&, const FileAttr& a) {
            files++;
            bytes += a.size;
          },
          &dirs));
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (json_out) {
        std::cout << json{{"path", path}, {"directories", dirs}, {"files", files}, {"bytes", bytes}, {"seconds", s}}
                         .dump(2)
                  << "\n";
      } else {
        std::printf("%s: %llu directories, %llu files, %llu bytes in %.1f s\n", path.c_str(),
                    static_cast<unsigned long long>(dirs), static_cast<unsigned long long>(files),
                    static_cast<unsigned long long>(bytes), s);
      }
      return Status::Ok();
    };
  });

  static std::vector<std::string> paths;
  static int jobs = 8;
  struct Verb {
    const char* name;
    const char* help;
    RepoState state;
    Result<uint64_t> (Client::*op)(const std::string&);
  };
  static const Verb verbs[] = {
      {"warm", "fetch released files at or under PATH from the bucket now", RepoState::kReleased, &Client::RepoWarm},
      {"export", "upload dirty files at or under PATH to the bucket", RepoState::kDirty, &Client::RepoExport},
      {"release", "free the Stria copy of resident files at or under PATH (the bucket keeps them)",
       RepoState::kResident, &Client::RepoRelease},
  };
  for (const auto& v : verbs) {
    auto* sub = repo->add_subcommand(v.name, v.help);
    add_client_flags(sub);
    sub->add_option("path", paths, "files or directories under a link")->required();
    sub->add_option("-j,--jobs", jobs, "files at a time")->check(CLI::Range(1, 256));
    sub->add_flag("--json", json_out, "JSON output");
    sub->callback([&, v] {
      cmd_name = std::string("repo ") + v.name;
      action = [&, v](Client& c) -> Status {
        return OnFiles(c, paths, v.state, jobs, json_out, v.name,
                       [&c, v](const std::string& p) { return (c.*v.op)(p); });
      };
    });
  }

  auto* sync = repo->add_subcommand("sync", "bring PATH in step with its bucket: new, changed and deleted objects");
  add_client_flags(sync);
  sync->add_option("path", path, "a linked directory or one under it")->required();
  sync->add_flag("--json", json_out, "JSON output");
  sync->callback([&] {
    cmd_name = "repo sync";
    action = [&](Client& c) -> Status {
      STRIA_RETURN_IF_ERROR(LinkOf(c, path).status());
      auto t0 = std::chrono::steady_clock::now();
      STRIA_ASSIGN_OR_RETURN(auto r, c.RepoSync(path));
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (json_out) {
        std::cout << json{{"path", path},         {"directories", r.directories}, {"created", r.created},
                          {"changed", r.changed}, {"removed", r.removed},         {"skipped", r.skipped},
                          {"seconds", s}}
                         .dump(2)
                  << "\n";
      } else {
        std::printf("%s: %llu directories compared; %llu new, %llu changed, %llu removed, %llu left as they are "
                    "(dirty or open) in %.1f s\n",
                    path.c_str(), static_cast<unsigned long long>(r.directories),
                    static_cast<unsigned long long>(r.created), static_cast<unsigned long long>(r.changed),
                    static_cast<unsigned long long>(r.removed), static_cast<unsigned long long>(r.skipped), s);
      }
      return Status::Ok();
    };
  });

  auto* status = repo->add_subcommand("status", "files and bytes by state under the link of PATH");
  add_client_flags(status);
  status->add_option("path", path, "a linked directory or one under it")->required();
  status->add_flag("--json", json_out, "JSON output");
  status->callback([&] {
    cmd_name = "repo status";
    action = [&](Client& c) -> Status {
      STRIA_ASSIGN_OR_RETURN(auto l, LinkOf(c, path));
      if (json_out) {
        std::cout << json{{"link", l.path}, {"url", l.link.url}, {"counts", CountsJson(l.counts)}}.dump(2) << "\n";
        return Status::Ok();
      }
      const auto& n = l.counts;
      std::printf("%s -> %s\n", l.path.c_str(), l.link.url.c_str());
      std::printf("  released %10llu files %16llu bytes  (data only in the bucket)\n",
                  static_cast<unsigned long long>(n.released_files), static_cast<unsigned long long>(n.released_bytes));
      std::printf("  resident %10llu files %16llu bytes  (same in Stria and the bucket)\n",
                  static_cast<unsigned long long>(n.resident_files), static_cast<unsigned long long>(n.resident_bytes));
      std::printf("  dirty    %10llu files %16llu bytes  (changed since the last export)\n",
                  static_cast<unsigned long long>(n.dirty_files), static_cast<unsigned long long>(n.dirty_bytes));
      if (n.renames > n.renames_exported) {
        std::printf("  %llu directory renames not exported yet (their files' objects are at the old names)\n",
                    static_cast<unsigned long long>(n.renames - n.renames_exported));
      }
      return Status::Ok();
    };
  });
}

}  // namespace stria::cli
