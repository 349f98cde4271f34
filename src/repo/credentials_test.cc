#include "repo/credentials.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace stria::repo {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                          "AWS_SHARED_CREDENTIALS_FILE"}) {
      unsetenv(v);
    }
    dir_ = std::filesystem::temp_directory_path() / ("stria-creds-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    file_ = (dir_ / "credentials").string();
    std::ofstream(file_) << "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = sdefault\n\n"
                         << "# a comment\n[work]\naws_access_key_id=AKWORK\naws_secret_access_key=swork\n"
                         << "aws_session_token = tok\n[half]\naws_access_key_id=AKHALF\n";
    setenv("AWS_SHARED_CREDENTIALS_FILE", file_.c_str(), 1);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string file_;
};

TEST_F(CredentialsTest, EnvironmentFirst) {
  setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
  auto c = LoadCredentials();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key, "AKENV");
  // A named profile comes from the file even when the environment has keys.
  c = LoadCredentials("work");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key, "AKWORK");
  EXPECT_EQ(c->session_token, "tok");
}

TEST_F(CredentialsTest, FileProfiles) {
  auto c = LoadCredentials();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key, "AKDEFAULT");
  EXPECT_EQ(c->secret_key, "sdefault");
  setenv("AWS_PROFILE", "work", 1);
  c = LoadCredentials();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->secret_key, "swork");
}

TEST_F(CredentialsTest, ClearErrorsWithoutSecrets) {
  auto c = LoadCredentials("nosuch");
  EXPECT_EQ(c.status().code(), ENOENT);
  EXPECT_NE(c.status().message().find("[nosuch]"), std::string::npos);
  c = LoadCredentials("half");
  EXPECT_EQ(c.status().code(), EINVAL);
  setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
  c = LoadCredentials();
  EXPECT_EQ(c.status().code(), EINVAL);   // a key id without its secret
  unsetenv("AWS_ACCESS_KEY_ID");
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
  c = LoadCredentials();
  EXPECT_EQ(c.status().code(), ENOENT);
  EXPECT_NE(c.status().message().find("/nonexistent/credentials"), std::string::npos);
}

}  // namespace
}  // namespace stria::repo
