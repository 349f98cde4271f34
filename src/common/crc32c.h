// CRC32C (Castagnoli), the checksum of frames and of stored blocks.
// Uses ISA-L's hardware-accelerated implementation. Thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace stria {

// Extends a running CRC32C with data. Start with crc = 0.
// Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32c(uint32_t crc, const void* data, size_t len);

// The CRC of a + b from the CRC of a, the CRC of b and b's length, without
// the bytes: Crc32cCombine(Crc32c(0, a), Crc32c(0, b), |b|) ==
// Crc32c(0, a + b). A store that has checked its blocks' CRCs gives a
// frame's CRC this way instead of reading the bytes once more. About 1 us.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, size_t len_b);

// Crc32cCombine for one fixed len_b (a block size), by table: a few
// nanoseconds a call. Building one costs about 100 us.
class Crc32cJoiner {
 public:
  explicit Crc32cJoiner(size_t len_b);
  size_t length() const { return length_; }
  uint32_t Join(uint32_t crc_a, uint32_t crc_b) const {
    return crc_b ^ shift_[0][crc_a & 0xff] ^ shift_[1][(crc_a >> 8) & 0xff] ^
           shift_[2][(crc_a >> 16) & 0xff] ^ shift_[3][crc_a >> 24];
  }

 private:
  // shift_[k][v]: v << 8k multiplied by x^(8 len_b) modulo the polynomial.
  std::array<std::array<uint32_t, 256>, 4> shift_;
  size_t length_;
};

// The CRC32C of bytes [from, to) of buf, where known[i] is the CRC of its
// block i (bytes [i L, (i + 1) L), L = join.length()): blocks wholly in the
// range and known are joined, not read; the rest are read.
uint32_t Crc32cOfRange(const Crc32cJoiner& join, const char* buf, size_t from, size_t to,
                       std::span<const uint32_t> known);

}  // namespace stria
