#include "common/crc32c.h"

#include <climits>

#include <isa-l/crc.h>

namespace stria {

uint32_t Crc32c(uint32_t crc, const void* data, size_t len) {
  // ISA-L's crc32_iscsi takes and returns the raw register: invert at both
  // ends to get the standard (RFC 3720) value, chainable across calls.
  uint32_t reg = ~crc;
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  while (len > 0) {
    int chunk = len > (1u << 30) ? (1 << 30) : static_cast<int>(len);
    reg = crc32_iscsi(p, chunk, reg);
    p += chunk;
    len -= static_cast<size_t>(chunk);
  }
  return ~reg;
}

}  // namespace stria
