// CRC32C (Castagnoli), the checksum of frames and of stored blocks.
// Uses ISA-L's hardware-accelerated implementation. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace stria {

// Extends a running CRC32C with data. Start with crc = 0.
// Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32c(uint32_t crc, const void* data, size_t len);

}  // namespace stria
