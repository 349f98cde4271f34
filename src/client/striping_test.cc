#include "client/striping.h"

#include <gtest/gtest.h>

#include <random>

namespace stria::client {
namespace {

TEST(Striping, ChunksCoverRangeInOrder) {
  auto c = SplitRange(1 << 20, 3, (1 << 20) - 10, (3 << 20) + 20);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0].object, 0u);
  EXPECT_EQ(c[0].length, 10u);
  EXPECT_EQ(c[1].object, 1u);
  EXPECT_EQ(c[1].object_offset, 0u);
  EXPECT_EQ(c[3].object, 0u);
  EXPECT_EQ(c[3].object_offset, 1u << 20);   // second row of object 0
  EXPECT_EQ(c[4].object, 1u);
  EXPECT_EQ(c[4].length, 10u);
}

// Every byte maps to exactly one (object, offset), and object lengths add up.
TEST(Striping, ByteMapIsABijection) {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; round++) {
    uint64_t ss = 4096u << (rng() % 4);
    uint32_t count = 1 + rng() % 5;
    uint64_t size = rng() % (ss * count * 4);
    std::vector<uint64_t> per_object(count, 0);
    for (const auto& c : SplitRange(ss, count, 0, size)) {
      EXPECT_EQ(c.object_offset, per_object[c.object]);   // objects fill densely
      per_object[c.object] += c.length;
    }
    for (uint32_t o = 0; o < count; o++) {
      EXPECT_EQ(per_object[o], ObjectLength(ss, count, o, size)) << "ss " << ss << " count "
                                                                  << count << " size " << size;
    }
  }
}

}  // namespace
}  // namespace stria::client
