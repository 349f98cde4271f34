#include "repo/credentials.h"

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

namespace stria::repo {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<Credentials> LoadCredentials(const std::string& profile) {
  if (profile.empty() && !Env("AWS_ACCESS_KEY_ID").empty()) {
    Credentials c{Env("AWS_ACCESS_KEY_ID"), Env("AWS_SECRET_ACCESS_KEY"), Env("AWS_SESSION_TOKEN")};
    if (c.secret_key.empty()) return Err(EINVAL, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    return c;
  }
  std::string want = !profile.empty() ? profile : !Env("AWS_PROFILE").empty() ? Env("AWS_PROFILE") : "default";
  std::string path = Env("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty()) path = Env("HOME") + "/.aws/credentials";
  std::ifstream in(path);
  if (!in) {
    return Err(ENOENT, "no S3 credentials: AWS_ACCESS_KEY_ID is not set and {} cannot be read", path);
  }
  Credentials c;
  bool found = false, inside = false;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      inside = Trim(line.substr(1, line.size() - 2)) == want;
      found = found || inside;
      continue;
    }
    if (!inside) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = Trim(line.substr(0, eq)), v = Trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") c.access_key = v;
    else if (k == "aws_secret_access_key") c.secret_key = v;
    else if (k == "aws_session_token") c.session_token = v;
  }
  if (!found) return Err(ENOENT, "no profile [{}] in {}", want, path);
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Err(EINVAL, "profile [{}] in {} lacks aws_access_key_id or aws_secret_access_key", want, path);
  }
  return c;
}

std::string DefaultRegion() {
  if (!Env("AWS_REGION").empty()) return Env("AWS_REGION");
  if (!Env("AWS_DEFAULT_REGION").empty()) return Env("AWS_DEFAULT_REGION");
  return "us-east-1";
}

}  // namespace stria::repo
