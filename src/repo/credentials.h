// Where S3 credentials come from: the standard AWS places, never a command
// line. Thread-safe (reads the environment and files only).
#pragma once

#include <string>

#include "common/status.h"
#include "repo/sigv4.h"

namespace stria::repo {

// profile empty: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN) when set, else the shared credentials file's profile
// AWS_PROFILE (or "default"). A named profile is read from the file only.
// The file is AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.
// ENOENT names where it looked; the message never holds a secret.
Result<Credentials> LoadCredentials(const std::string& profile = "");

// The region to sign for when a link names none: AWS_REGION, then
// AWS_DEFAULT_REGION, then "us-east-1".
std::string DefaultRegion();

}  // namespace stria::repo
