#include "pattern.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>

namespace stria::bench {
namespace {

uint8_t PatternByte(uint64_t key, uint64_t o) {
  uint64_t w = key ^ ((o / 8) * kPatternStep);
  return static_cast<uint8_t>(w >> (8 * (o % 8)));   // little-endian, as FillPattern's memcpy
}

}  // namespace

uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void FillPattern(char* p, size_t n, uint64_t key, uint64_t off) {
  size_t i = 0;
  for (; i < n && (off + i) % 8 != 0; i++) p[i] = static_cast<char>(PatternByte(key, off + i));
  uint64_t x = ((off + i) / 8) * kPatternStep;
  for (; i + 8 <= n; i += 8, x += kPatternStep) {
    uint64_t w = key ^ x;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; i++) p[i] = static_cast<char>(PatternByte(key, off + i));
}

size_t CheckPattern(const char* p, size_t n, uint64_t key, uint64_t off) {
  size_t i = 0;
  for (; i < n && (off + i) % 8 != 0; i++) {
    if (static_cast<uint8_t>(p[i]) != PatternByte(key, off + i)) return i;
  }
  uint64_t x = ((off + i) / 8) * kPatternStep;
  // Words are compared in blocks, so the loop stays branch-light; the exact
  // byte is found only after a block differs.
  constexpr size_t kBlock = 256;
  while (i + kBlock <= n) {
    uint64_t diff = 0;
    for (size_t j = 0; j < kBlock; j += 8, x += kPatternStep) {
      uint64_t w;
      std::memcpy(&w, p + i + j, 8);
      diff |= w ^ (key ^ x);
    }
    if (diff != 0) break;
    i += kBlock;
  }
  for (; i < n; i++) {
    if (static_cast<uint8_t>(p[i]) != PatternByte(key, off + i)) return i;
  }
  return n;
}

Status WritePatternRange(Backend& b, int fd, const std::string& path, uint64_t key,
                         uint64_t off, uint64_t len, size_t io, std::string& buf) {
  if (buf.size() < io) buf.resize(io);
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(io, len - done));
    FillPattern(buf.data(), n, key, off + done);
    Status st = PwriteFull(b, fd, buf.data(), n, off + done);
    if (!st.ok()) return NamedAt(st, "write", path, off + done);
    done += n;
  }
  return Status::Ok();
}

Status ReadVerifyRange(Backend& b, int fd, const std::string& path, uint64_t key, uint64_t off,
                       uint64_t len, size_t io, std::string& buf) {
  if (buf.size() < io) buf.resize(io);
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(io, len - done));
    auto got = PreadFull(b, fd, buf.data(), n, off + done);
    if (!got.ok()) return NamedAt(got.status(), "read", path, off + done);
    size_t bad = CheckPattern(buf.data(), *got, key, off + done);
    if (bad < *got) {
      return Err(EIO, "read {}: content differs from the written pattern at byte {}", path,
                 off + done + bad);
    }
    if (*got < n) {
      return Err(EIO, "read {}: file ends at {}, expected {} bytes", path, off + done + *got,
                 off + len);
    }
    done += n;
  }
  return Status::Ok();
}

Status CreatePatternFile(Backend& b, const std::string& path, uint64_t key, uint64_t size,
                         size_t io, bool fsync, std::string& buf) {
  auto fd = b.Open(path, O_CREAT | O_WRONLY | O_TRUNC);
  if (!fd.ok()) return fd.status();
  Status st = WritePatternRange(b, *fd, path, key, 0, size, io, buf);
  if (st.ok() && fsync) st = Named(b.Fsync(*fd), "fsync", path);
  Status cl = Named(b.Close(*fd), "close", path);
  return st.ok() ? cl : st;
}

Status ReadPatternFile(Backend& b, const std::string& path, uint64_t key, uint64_t size,
                       size_t io, std::string& buf) {
  auto fd = b.Open(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  size_t n = static_cast<size_t>(std::max<uint64_t>(1, std::min<uint64_t>(io, size)));
  Status st = ReadVerifyRange(b, *fd, path, key, 0, size, n, buf);
  Status cl = Named(b.Close(*fd), "close", path);
  return st.ok() ? cl : st;
}

}  // namespace stria::bench
