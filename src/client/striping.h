// Layout arithmetic: where each byte of a file lives (ARCHITECTURE.md,
// "Data layout"). Pure functions, thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace stria::client {

// One contiguous piece of a file range that lives in one stripe object.
struct Chunk {
  uint32_t object = 0;       // stripe object index
  uint64_t object_offset = 0;
  uint64_t file_offset = 0;
  uint64_t length = 0;
};

// Splits [offset, offset + length) into per-object chunks of at most one
// stripe unit each, in file order.
inline std::vector<Chunk> SplitRange(uint64_t stripe_size, uint32_t count, uint64_t offset,
                                     uint64_t length) {
  std::vector<Chunk> out;
  while (length > 0) {
    uint64_t unit = offset / stripe_size;
    uint64_t in_unit = offset % stripe_size;
    Chunk c;
    c.object = static_cast<uint32_t>(unit % count);
    c.object_offset = (unit / count) * stripe_size + in_unit;
    c.file_offset = offset;
    c.length = std::min(length, stripe_size - in_unit);
    out.push_back(c);
    offset += c.length;
    length -= c.length;
  }
  return out;
}

// Length of stripe object `object` in a file of `size` bytes.
inline uint64_t ObjectLength(uint64_t stripe_size, uint32_t count, uint32_t object, uint64_t size) {
  uint64_t row = stripe_size * count;
  uint64_t full_rows = size / row;
  uint64_t rem = size % row;
  uint64_t start = uint64_t(object) * stripe_size;
  uint64_t tail = rem > start ? std::min(stripe_size, rem - start) : 0;
  return full_rows * stripe_size + tail;
}

}  // namespace stria::client
