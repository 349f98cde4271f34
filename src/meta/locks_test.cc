#include "meta/locks.h"

#include <gtest/gtest.h>

namespace stria::meta {
namespace {

LockTable::Lock L(uint64_t session, uint64_t owner, proto::LockType type, uint64_t start, uint64_t end,
                  uint32_t pid = 0) {
  LockTable::Lock l;
  l.holder = {session, owner};
  l.type = type;
  l.start = start;
  l.end = end;
  l.pid = pid;
  return l;
}

TEST(LockTable, ReadersShareWritersExclude) {
  LockTable t;
  ASSERT_TRUE(t.Set(7, false, L(1, 1, proto::LK_READ, 0, 99)).ok());
  ASSERT_TRUE(t.Set(7, false, L(2, 1, proto::LK_READ, 50, 150)).ok());
  Status st = t.Set(7, false, L(3, 1, proto::LK_WRITE, 90, 95, 33));
  EXPECT_EQ(st.code(), EAGAIN) << st.ToString();
  // Outside every read lock a writer gets in.
  EXPECT_TRUE(t.Set(7, false, L(3, 1, proto::LK_WRITE, 151, 200)).ok());
  auto c = t.Conflict(7, false, {1, 1}, proto::LK_READ, 160, 160);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->start, 151u);
  EXPECT_EQ(c->end, 200u);
  // Another inode and the flock set are independent.
  EXPECT_TRUE(t.Set(8, false, L(3, 1, proto::LK_WRITE, 0, UINT64_MAX)).ok());
  EXPECT_TRUE(t.Set(7, true, L(3, 1, proto::LK_WRITE, 0, UINT64_MAX)).ok());
}

TEST(LockTable, SameHolderSplitsAndMerges) {
  LockTable t;
  ASSERT_TRUE(t.Set(1, false, L(1, 9, proto::LK_WRITE, 0, 99)).ok());
  // Unlocking the middle splits the range in two.
  ASSERT_TRUE(t.Set(1, false, L(1, 9, proto::LK_UNLOCK, 40, 59)).ok());
  auto held = t.Held(1, false);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].end, 39u);
  EXPECT_EQ(held[1].start, 60u);
  // A read lock in the gap does not merge with write locks around it.
  ASSERT_TRUE(t.Set(1, false, L(1, 9, proto::LK_READ, 40, 59)).ok());
  EXPECT_EQ(t.Held(1, false).size(), 3u);
  // Upgrading it to write merges all three into one range.
  ASSERT_TRUE(t.Set(1, false, L(1, 9, proto::LK_WRITE, 40, 59)).ok());
  held = t.Held(1, false);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].start, 0u);
  EXPECT_EQ(held[0].end, 99u);
  // A holder never conflicts with itself.
  EXPECT_FALSE(t.Conflict(1, false, {1, 9}, proto::LK_WRITE, 0, 10).has_value());
  EXPECT_TRUE(t.Conflict(1, false, {1, 8}, proto::LK_READ, 0, 10).has_value());
  ASSERT_TRUE(t.Set(1, false, L(1, 9, proto::LK_UNLOCK, 0, UINT64_MAX)).ok());
  EXPECT_EQ(t.size(), 0u);
}

TEST(LockTable, ToEndOfFileAndSessionEnd) {
  LockTable t;
  ASSERT_TRUE(t.Set(5, false, L(1, 1, proto::LK_WRITE, 1000, UINT64_MAX)).ok());
  EXPECT_EQ(t.Set(5, false, L(2, 1, proto::LK_READ, UINT64_MAX - 1, UINT64_MAX)).code(), EAGAIN);
  EXPECT_TRUE(t.Set(5, false, L(2, 1, proto::LK_READ, 0, 999)).ok());
  ASSERT_TRUE(t.Set(5, true, L(1, 4, proto::LK_READ, 0, UINT64_MAX)).ok());
  t.DropSession(1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.Set(5, false, L(2, 1, proto::LK_WRITE, 1000, UINT64_MAX)).ok());
  EXPECT_EQ(t.Set(5, false, L(2, 1, proto::LK_WRITE, 10, 5)).code(), EINVAL);
}

}  // namespace
}  // namespace stria::meta
