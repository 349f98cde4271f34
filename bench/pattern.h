// The content every stria-bench file carries, so that reads are verified
// cheaply: the byte at file offset o is byte (o % 8) of the little-endian
// word key ^ ((o / 8) * kPatternStep). The key is per file (or per rank), so
// a block read from the wrong offset or the wrong file is caught, and making
// or checking it costs an add and a xor per 8 bytes.
//
// Also the whole-file and range helpers that write or read the pattern with
// a given I/O size; their errors name the path, the offset and the cause.
// All functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

#include "backend.h"

namespace stria::bench {

constexpr uint64_t kPatternStep = 0x9E3779B97F4A7C15ull;

// A well-mixed 64-bit value of x (SplitMix64), for deriving file keys.
uint64_t Mix64(uint64_t x);

void FillPattern(char* p, size_t n, uint64_t key, uint64_t off);
// Index of the first byte of p[0, n) that differs from the pattern, or n.
size_t CheckPattern(const char* p, size_t n, uint64_t key, uint64_t off);

// Writes [off, off + len) of the pattern to fd in io-byte writes, through
// buf (resized as needed; reuse it across calls).
Status WritePatternRange(Backend& b, int fd, const std::string& path, uint64_t key,
                         uint64_t off, uint64_t len, size_t io, std::string& buf);
// Reads [off, off + len) in io-byte reads and checks it. A short file is
// EIO "…: file ends at …", a mismatch EIO "…: content differs at byte …".
Status ReadVerifyRange(Backend& b, int fd, const std::string& path, uint64_t key, uint64_t off,
                       uint64_t len, size_t io, std::string& buf);

// open(O_CREAT|O_TRUNC) + the pattern + optional fsync + close.
Status CreatePatternFile(Backend& b, const std::string& path, uint64_t key, uint64_t size,
                         size_t io, bool fsync, std::string& buf);
// open + read the whole file (size bytes) with io-byte reads + verify + close.
Status ReadPatternFile(Backend& b, const std::string& path, uint64_t key, uint64_t size,
                       size_t io, std::string& buf);

}  // namespace stria::bench
