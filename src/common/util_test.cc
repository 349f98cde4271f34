#include "common/util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "common/metrics.h"
#include "common/rpc.h"

namespace stria {
namespace {

TEST(ParseSize, UnitsAndErrors) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64k"), 65536u);
  EXPECT_EQ(*ParseSize("1M"), 1u << 20);
  EXPECT_EQ(*ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(ParseSize("").status().code(), EINVAL);
  EXPECT_EQ(ParseSize("M").status().code(), EINVAL);
  EXPECT_EQ(ParseSize("3q").status().code(), EINVAL);
  EXPECT_EQ(ParseSize("99999999999999999999").status().code(), EINVAL);
}

TEST(Files, WrittenWholeAndReplacedWithOrWithoutSync) {
  char dir[] = "/tmp/stria-util-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/port";
  ASSERT_TRUE(WriteFileAtomic(path, "listen=a\n").ok());
  EXPECT_EQ(*ReadFile(path), "listen=a\n");
  ASSERT_TRUE(ReplaceFile(path, "listen=b\n").ok());
  EXPECT_EQ(*ReadFile(path), "listen=b\n");
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);   // renamed away, not left behind
  EXPECT_EQ(ReplaceFile(std::string(dir) + "/no/such/dir/port", "x").code(), ENOENT);
  unlink(path.c_str());
  rmdir(dir);
}

TEST(ParseAddress, Forms) {
  auto a = rpc::ParseAddress("127.0.0.1:7600");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 7600);
  EXPECT_EQ(rpc::ParseAddress("[::1]:80")->first, "::1");
  EXPECT_FALSE(rpc::ParseAddress("nohost").ok());
  EXPECT_FALSE(rpc::ParseAddress("h:99999").ok());
  EXPECT_FALSE(rpc::ParseAddress("h:12a").ok());
  EXPECT_FALSE(rpc::ParseAddress(":12").ok());
}

TEST(Metrics, RendersPrometheusText) {
  auto& reg = metrics::Registry::Default();
  reg.CounterFamily("t_ops_total", "ops").Counter({{"op", "a\"b"}}).Inc(3);
  reg.HistogramFamily("t_lat_seconds", "lat").Histogram({{"op", "x"}}).Observe(0.002);
  std::string text = reg.Render();
  EXPECT_NE(text.find("t_ops_total{op=\"a\\\"b\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("t_lat_seconds_bucket{op=\"x\",le=\"0.0025\"} 1"), std::string::npos);
  EXPECT_NE(text.find("t_lat_seconds_count{op=\"x\"} 1"), std::string::npos);
}

TEST(Status, Text) {
  Status st = Err(ENOENT, "lookup {}: no such entry", "/a");
  EXPECT_EQ(st.ToString(), "ENOENT: lookup /a: no such entry");
  EXPECT_TRUE(Status(ETIMEDOUT, "x").retryable());
  EXPECT_FALSE(st.retryable());
  // A lock conflict is an answer, not a transient failure.
  EXPECT_FALSE(Status(EAGAIN, "locked").retryable());
}

}  // namespace
}  // namespace stria
