#include "common/crc32c.h"

#include <algorithm>
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

namespace {

// Polynomials over GF(2) in CRC32C's bit-reflected form: bit 31 is the
// coefficient of x^0, bit 0 that of x^31.
constexpr uint32_t kPoly = 0x82F63B78;   // x^32 + ... reflected, x^32 left out
constexpr uint32_t kOne = 1u << 31;      // the polynomial 1
constexpr uint32_t kX = 1u << 30;        // the polynomial x

// a * b modulo the polynomial.
uint32_t MulMod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = kOne; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;   // b *= x
  }
  return product;
}

// x^(8 n) modulo the polynomial: appending n zero bytes multiplies a CRC's
// register by it.
uint32_t XPow8n(size_t n) {
  uint32_t result = kOne, base = kX;
  for (uint64_t e = static_cast<uint64_t>(n) * 8; e != 0; e >>= 1) {
    if (e & 1) result = MulMod(result, base);
    base = MulMod(base, base);
  }
  return result;
}

}  // namespace

// With the standard value's inversions at both ends the terms they add
// cancel, so the identity is the plain one: crc(a + b) = crc(a) x^(8|b|) + crc(b).
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, size_t len_b) {
  if (len_b == 0) return crc_a;
  return MulMod(crc_a, XPow8n(len_b)) ^ crc_b;
}

Crc32cJoiner::Crc32cJoiner(size_t len_b) : length_(len_b) {
  const uint32_t factor = XPow8n(len_b);
  // Multiplying by factor is linear in the CRC, so it splits by byte.
  for (int k = 0; k < 4; k++) {
    for (uint32_t v = 0; v < 256; v++) shift_[k][v] = MulMod(v << (8 * k), factor);
  }
}

uint32_t Crc32cOfRange(const Crc32cJoiner& join, const char* buf, size_t from, size_t to,
                       std::span<const uint32_t> known) {
  const size_t block = join.length();
  uint32_t crc = 0;
  for (size_t at = from; at < to;) {
    const size_t b = at / block, end = std::min(to, (b + 1) * block);
    const bool whole = at == b * block && end == (b + 1) * block && b < known.size();
    crc = whole ? join.Join(crc, known[b]) : Crc32c(crc, buf + at, end - at);
    at = end;
  }
  return crc;
}

}  // namespace stria
