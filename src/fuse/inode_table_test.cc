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

TEST(InodeTable, ResizeMarkChangesWithEverySizeChange) {
  InodeTable t;
  EXPECT_FALSE(t.ResizeMark(3).has_value());   // unknown to the kernel
  t.Ref(3, 1);
  auto before = t.ResizeMark(3);
  ASSERT_TRUE(before.has_value());
  t.ResizeStart(3);
  EXPECT_FALSE(t.ResizeMark(3).has_value());   // in flight
  t.ResizeEnd(3);
  ASSERT_TRUE(t.ResizeMark(3).has_value());
  EXPECT_NE(*t.ResizeMark(3), *before);        // one happened since
  t.ResizeEnd(3);                              // unbalanced: ignored
  EXPECT_TRUE(t.ResizeMark(3).has_value());
}

// Writeback cache: the kernel keeps the size a new inode got; a shorter
// file (shrunk by another mount) gets a new generation, so that the kernel
// takes a new inode, but only while nothing here has it open.
TEST(InodeTable, AShrunkFileGetsANewGenerationWhenNothingHasItOpen) {
  InodeTable t;
  EXPECT_EQ(t.Ref(4, 1, 1, 1000), 0u);
  EXPECT_EQ(t.KernelSize(4), 1000u);
  EXPECT_EQ(t.Ref(4, 2, 1, 10), 0u);         // the kernel keeps 1000
  EXPECT_EQ(t.KernelSize(4), 1000u);
  t.NoteWrite(4, 1500);
  EXPECT_EQ(t.KernelSize(4), 1500u);
  EXPECT_FALSE(t.ShrunkElsewhere(4, 1500));
  t.HandleOpened(4, false);
  EXPECT_FALSE(t.ShrunkElsewhere(4, 10));    // a reader holds the inode
  EXPECT_FALSE(t.ReplaceIfShrunk(4, 10));
  t.HandleClosed(4, false);
  t.ResizeStart(4);
  EXPECT_FALSE(t.ShrunkElsewhere(4, 10));    // our own truncate in flight
  t.ResizeEnd(4);
  EXPECT_TRUE(t.ShrunkElsewhere(4, 10));
  EXPECT_TRUE(t.ReplaceIfShrunk(4, 10));
  EXPECT_EQ(t.Generation(4), 1u);
  EXPECT_EQ(t.KernelSize(4), 10u);
  EXPECT_FALSE(t.ShrunkElsewhere(4, 10));
  EXPECT_EQ(t.Ref(4, 3, 1, 10), 1u);
}

TEST(InodeTable, WritersAreCountedPerHandle) {
  InodeTable t;
  t.Ref(6, 1);
  t.HandleOpened(6, true);
  t.HandleOpened(6, false);
  EXPECT_EQ(t.Writers(6), 1u);
  t.HandleClosed(6, true);
  EXPECT_EQ(t.Writers(6), 0u);
  t.HandleClosed(6, true);                   // unbalanced: ignored
  EXPECT_EQ(t.Writers(6), 0u);
}

}  // namespace
}  // namespace stria::fuse
