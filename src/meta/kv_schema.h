// RocksDB key layout of stria-meta (docs/meta_format.md). One column family;
// the first byte says what a key is; integers are big-endian so that keys
// sort numerically (a directory's cookies, in order).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stria::meta::keys {

inline void PutBE(std::string& s, uint64_t v, int bytes = 8) {
  for (int i = bytes - 1; i >= 0; i--) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline uint64_t GetBE(std::string_view s, size_t off, int bytes = 8) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | static_cast<uint8_t>(s[off + i]);
  return v;
}

// I ino -> InodeRecord
inline std::string Inode(uint64_t ino) { std::string k = "I"; PutBE(k, ino); return k; }
// E parent name -> EntryRecord
inline std::string Entry(uint64_t parent, std::string_view name) {
  std::string k = "E"; PutBE(k, parent); k.append(name); return k;
}
inline std::string EntryPrefix(uint64_t parent) { std::string k = "E"; PutBE(k, parent); return k; }
// K parent cookie -> name (readdir order)
inline std::string Cookie(uint64_t parent, uint64_t cookie) {
  std::string k = "K"; PutBE(k, parent); PutBE(k, cookie); return k;
}
inline std::string CookiePrefix(uint64_t parent) { std::string k = "K"; PutBE(k, parent); return k; }
// X ino name -> value
inline std::string Xattr(uint64_t ino, std::string_view name) {
  std::string k = "X"; PutBE(k, ino); k.append(name); return k;
}
inline std::string XattrPrefix(uint64_t ino) { std::string k = "X"; PutBE(k, ino); return k; }
// O ino -> "" : unlinked while open
inline std::string Orphan(uint64_t ino) { std::string k = "O"; PutBE(k, ino); return k; }
// G seq -> GarbageRecord
inline std::string Garbage(uint64_t seq) { std::string k = "G"; PutBE(k, seq); return k; }
// R session seq -> DedupRecord
inline std::string Dedup(uint64_t session, uint64_t seq) {
  std::string k = "R"; PutBE(k, session); PutBE(k, seq); return k;
}
// S store -> StoreInfo ; T target -> TargetRecord
inline std::string Store(uint32_t id) { std::string k = "S"; PutBE(k, id, 4); return k; }
inline std::string Target(uint32_t id) { std::string k = "T"; PutBE(k, id, 4); return k; }
// C name -> uint64 counter
inline std::string Counter(std::string_view name) { std::string k = "C"; k.append(name); return k; }

}  // namespace stria::meta::keys
