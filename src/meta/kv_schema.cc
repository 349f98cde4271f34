#include "meta/kv_schema.h"

namespace stria::meta::keys {

void PutBE(std::string& s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBE(std::string_view s, size_t off, int bytes) {
  uint64_t v = 0;
  if (s.size() < off + static_cast<size_t>(bytes)) return 0;   // damaged key: never read past it
  for (int i = 0; i < bytes; i++) v = (v << 8) | static_cast<uint8_t>(s[off + i]);
  return v;
}

namespace {
std::string Key(char tag, uint64_t a, int bytes = 8) {
  std::string k(1, tag);
  PutBE(k, a, bytes);
  return k;
}
}  // namespace

std::string Inode(uint64_t ino) { return Key('I', ino); }
std::string Entry(uint64_t parent, std::string_view name) { return Key('E', parent).append(name); }
std::string EntryPrefix(uint64_t parent) { return Key('E', parent); }
std::string Cookie(uint64_t parent, uint64_t cookie) {
  std::string k = Key('K', parent);
  PutBE(k, cookie);
  return k;
}
std::string CookiePrefix(uint64_t parent) { return Key('K', parent); }
std::string Xattr(uint64_t ino, std::string_view name) { return Key('X', ino).append(name); }
std::string XattrPrefix(uint64_t ino) { return Key('X', ino); }
std::string Orphan(uint64_t ino) { return Key('O', ino); }
std::string Garbage(uint64_t seq) { return Key('G', seq); }
std::string Dedup(uint64_t session, uint64_t seq) {
  std::string k = Key('R', session);
  PutBE(k, seq);
  return k;
}
std::string Store(uint32_t id) { return Key('S', id, 4); }
std::string Target(uint32_t id) { return Key('T', id, 4); }
std::string Counter(std::string_view name) { return std::string("C").append(name); }
std::string RepoLink(uint64_t ino) { return Key('L', ino); }
std::string RepoLinkPrefix() { return "L"; }
std::string RepoCounts(uint64_t ino) { return Key('N', ino); }
std::string RepoDeletion(uint64_t root, std::string_view key) {
  std::string k = Key('D', root);
  k.append(key);
  return k;
}
std::string RepoDeletionPrefix(uint64_t root) { return Key('D', root); }
std::string RepoKeyOwner(uint64_t root, std::string_view key) { return Key('B', root).append(key); }
std::string LastUse(uint64_t ino) { return Key('U', ino); }

}  // namespace stria::meta::keys
