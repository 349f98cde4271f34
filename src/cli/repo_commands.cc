#include "cli/repo_commands.h"

#include <cstdio>
#include <iostream>

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
Status CheckBucket(const RepoArgs& a, int timeout_s, std::string* bucket) {
  std::string prefix;
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(a.url, bucket, &prefix));
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

std::string Counts(const RepoCounts& c) {
  return fmt::format("released {} ({} B), resident {} ({} B), dirty {} ({} B)", c.released_files, c.released_bytes,
                     c.resident_files, c.resident_bytes, c.dirty_files, c.dirty_bytes);
}

}  // namespace

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
      std::string bucket;
      STRIA_RETURN_IF_ERROR(CheckBucket(a, timeout_s, &bucket).Prefixed("repo link " + a.path));
      std::string bucket_url, prefix;
      STRIA_RETURN_IF_ERROR(repo::ParseS3Url(a.url, &bucket_url, &prefix));
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
          const auto& n = l.counts;
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
                         {"counts",
                          {{"released_files", n.released_files}, {"released_bytes", n.released_bytes},
                           {"resident_files", n.resident_files}, {"resident_bytes", n.resident_bytes},
                           {"dirty_files", n.dirty_files}, {"dirty_bytes", n.dirty_bytes}}}});
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

}  // namespace stria::cli
