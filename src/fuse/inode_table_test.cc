#include "fuse/inode_table.h"

#include <gtest/gtest.h>

namespace stria::fuse {
namespace {

TEST(InodeTable, CountsReferencesAndRefusesUnderflow) {
  InodeTable t;
  t.Ref(5, 1);
  t.Ref(5, 1, 2);
  EXPECT_EQ(t.Refs(5), 3u);
  EXPECT_TRUE(t.Forget(5, 2));
  EXPECT_EQ(t.Refs(5), 1u);
  EXPECT_FALSE(t.Forget(5, 2));   // more than the kernel was given
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.Forget(9, 1));
}

TEST(InodeTable, PagesKeptOnlyWhileTheVersionHolds) {
  InodeTable t;
  t.Ref(7, 3);
  auto d = t.Open(7, 3);
  EXPECT_FALSE(d.keep_cache);   // no pages known yet
  EXPECT_FALSE(d.stale_attr);   // the kernel has version 3's attributes
  d = t.Open(7, 3);
  EXPECT_TRUE(d.keep_cache);
  // Another mount changed the file: the kernel saw version 4's attributes
  // (a getattr), but its pages are still version 3's.
  t.SawAttr(7, 4);
  d = t.Open(7, 4);
  EXPECT_FALSE(d.keep_cache);
  EXPECT_FALSE(d.stale_attr);
  // Changed without the kernel seeing it: attributes must go too.
  d = t.Open(7, 5);
  EXPECT_FALSE(d.keep_cache);
  EXPECT_TRUE(d.stale_attr);
  // Unknown inodes are treated as stale.
  EXPECT_TRUE(t.Open(99, 1).stale_attr);
}

}  // namespace
}  // namespace stria::fuse
