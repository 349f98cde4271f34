#include "fuse/mount_options.h"

#include <gtest/gtest.h>

namespace stria::fuse {
namespace {

TEST(MountOptions, StriaOptionsAreTakenOut) {
  MountOptions o;
  ASSERT_TRUE(ParseMountOptions("attr_timeout=2.5,ro,entry_timeout=0,max_read=131072", &o).ok());
  EXPECT_DOUBLE_EQ(o.attr_timeout, 2.5);
  EXPECT_DOUBLE_EQ(o.entry_timeout, 0);
  EXPECT_EQ(o.fuse_args, (std::vector<std::string>{"ro", "max_read=131072"}));
  o.meta = "127.0.0.1:7000";
  EXPECT_EQ(FuseOptionString(o), "fsname=stria@127.0.0.1:7000,subtype=stria,allow_other,ro,max_read=131072");
  ASSERT_TRUE(ParseMountOptions("default_permissions", &o).ok());
  EXPECT_TRUE(o.default_permissions);
  EXPECT_EQ(o.readahead_kb, 8192u);
  ASSERT_TRUE(ParseMountOptions("readahead_kb=0", &o).ok());
  EXPECT_EQ(o.readahead_kb, 0u);
}

TEST(MountOptions, FstabWordsAreDropped) {
  MountOptions o;
  ASSERT_TRUE(ParseMountOptions("defaults,_netdev,noauto,nofail,x-systemd.automount,user", &o).ok());
  EXPECT_TRUE(o.fuse_args.empty());
}

TEST(MountOptions, CacheOffZeroesTimeouts) {
  MountOptions o;
  ASSERT_TRUE(ParseMountOptions("cache=off,no_default_permissions,no_allow_other", &o).ok());
  EXPECT_FALSE(o.cache);
  EXPECT_EQ(o.attr_timeout, 0);
  EXPECT_EQ(o.entry_timeout, 0);
  EXPECT_EQ(o.negative_timeout, 0);
  EXPECT_FALSE(o.default_permissions);
  o.meta = "h:1";
  EXPECT_EQ(FuseOptionString(o), "fsname=stria@h:1,subtype=stria");
}

TEST(MountOptions, WritebackCacheIsOptIn) {
  MountOptions o;
  ASSERT_TRUE(ParseMountOptions("attr_timeout=2", &o).ok());
  EXPECT_FALSE(o.writeback);
  ASSERT_TRUE(ParseMountOptions("writeback_cache", &o).ok());
  EXPECT_TRUE(o.writeback);
  EXPECT_TRUE(o.default_permissions);   // the kernel alone tells "now" from a chosen mtime
  MountOptions p;
  EXPECT_EQ(ParseMountOptions("writeback_cache,no_default_permissions", &p).code(), EINVAL);
  o.meta = "h:1";
  // Stria's own option: libfuse never sees it (the daemon asks the kernel).
  EXPECT_EQ(FuseOptionString(o).find("writeback"), std::string::npos);
  ASSERT_TRUE(ParseMountOptions("no_writeback_cache", &o).ok());
  EXPECT_FALSE(o.writeback);
}

TEST(MountOptions, StatAheadIsOnUnlessTurnedOff) {
  MountOptions o;
  EXPECT_TRUE(o.statahead);
  ASSERT_TRUE(ParseMountOptions("no_statahead", &o).ok());
  EXPECT_FALSE(o.statahead);
  o.meta = "h:1";
  EXPECT_EQ(FuseOptionString(o).find("statahead"), std::string::npos);   // Stria's own
  ASSERT_TRUE(ParseMountOptions("statahead", &o).ok());
  EXPECT_TRUE(o.statahead);
}

TEST(MountOptions, BadValuesNameTheOption) {
  MountOptions o;
  Status st = ParseMountOptions("attr_timeout=soon", &o);
  EXPECT_EQ(st.code(), EINVAL);
  EXPECT_NE(st.message().find("attr_timeout=soon"), std::string::npos) << st.message();
  EXPECT_EQ(ParseMountOptions("cache=maybe", &o).code(), EINVAL);
  EXPECT_EQ(ParseMountOptions("max_threads=0", &o).code(), EINVAL);
  EXPECT_EQ(ParseMountOptions("timeout=0", &o).code(), EINVAL);
  EXPECT_EQ(ParseMountOptions("fsname=x", &o).code(), EINVAL);
  EXPECT_EQ(ParseMountOptions("writeback_cache,cache=off", &o).code(), EINVAL);
  EXPECT_EQ(ParseMountOptions("attr_timeout=-1", &o).code(), EINVAL);
  EXPECT_EQ(ParseMountOptions("readahead_kb=lots", &o).code(), EINVAL);
  EXPECT_EQ(ParseMountOptions("readahead_kb=2000000", &o).code(), EINVAL);
}

}  // namespace
}  // namespace stria::fuse
