// RocksDB key layout of stria-meta. One column family, so that any mutation
// is one WriteBatch; the first byte says what a key is; integers are
// big-endian so that keys sort numerically (a directory's cookies, in order).
//
//   I ino              -> InodeRecord
//   E parent name      -> EntryRecord {ino, type, cookie}
//   K parent cookie    -> name           (readdir order)
//   X ino name         -> xattr value
//   O ino              -> ""             (unlinked while open: the orphan list)
//   G seq              -> GarbageRecord  (objects the stores must free)
//   R session seq      -> DedupRecord    (outcome of a mutation, for retries)
//   S store            -> StoreInfo
//   T target           -> TargetRecord
//   C name             -> uint64 counter (ino, session, store, target, garbage)
//   L ino              -> ""             (a directory linked to a bucket)
//   N ino              -> RepoCounts     (files and bytes by state under link ino)
//   D ino key          -> ETag           (bucket object of link ino to delete at export)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stria::meta::keys {

void PutBE(std::string& s, uint64_t v, int bytes = 8);
uint64_t GetBE(std::string_view s, size_t off, int bytes = 8);

std::string Inode(uint64_t ino);
std::string Entry(uint64_t parent, std::string_view name);
std::string EntryPrefix(uint64_t parent);
std::string Cookie(uint64_t parent, uint64_t cookie);
std::string CookiePrefix(uint64_t parent);
std::string Xattr(uint64_t ino, std::string_view name);
std::string XattrPrefix(uint64_t ino);
std::string Orphan(uint64_t ino);
std::string Garbage(uint64_t seq);
std::string Dedup(uint64_t session, uint64_t seq);
std::string Store(uint32_t id);
std::string Target(uint32_t id);
std::string Counter(std::string_view name);
std::string RepoLink(uint64_t ino);
std::string RepoLinkPrefix();
std::string RepoCounts(uint64_t ino);
std::string RepoDeletion(uint64_t root, std::string_view key);
std::string RepoDeletionPrefix(uint64_t root);
std::string RepoKeyOwner(uint64_t root, std::string_view key);
// When a file under a link was last opened, to the hour (the watermark's LRU).
std::string LastUse(uint64_t ino);

}  // namespace stria::meta::keys
