// A target: one directory on a local disk holding stripe objects, each with
// a CRC32C per 4 KiB block (docs/store_format.md).
//
//   <dir>/target.json                    {"uuid": ..., "id": N}
//   <dir>/objects/<xx>/<object_id:016x>.<index>        data (sparse)
//   <dir>/objects/<xx>/<object_id:016x>.<index>.crc    uint32 LE per block
//                                 (or, for small objects, the data file's kCrcXattr)
//   <dir>/objects/<xx>/<object_id:016x>.<index>.res    hydration: 1 byte per chunk
//
// xx is object_id % 256 in hex. Between calls, only the read descriptors of
// the objects read last stay open, a bounded number (a process may hold
// only 20,000). Thread-safe: calls on different objects run in parallel;
// calls on one object are serialized by a striped lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/crc32c.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "common/status.h"

namespace stria::store {

inline constexpr uint64_t kBlockSize = 4096;
// A small object's checksums live in an extended attribute of its data
// file, not in a .crc file: one file to create, sync and open. Under this
// short name, kXattrCrcBlocks CRCs (a 64 KiB object) fit inside an ext4
// inode of 256 bytes (the default), so reading them costs no disk read.
// Objects with CRCs of later blocks use the .crc file: an attribute in a
// block of its own made a 110 KiB object's synced write slower than the
// two files (docs/BENCHMARKS.md).
inline constexpr char kCrcXattr[] = "user.crc";
inline constexpr uint64_t kXattrCrcBlocks = 16;
// Joins the CRCs of kBlockSize blocks into the CRC of their bytes.
const Crc32cJoiner& BlockJoiner();

class ObjectChecksums;   // object_store.cc

class Target {
 public:
  // Opens (creating objects/ and target.json on first use) the target at
  // dir. ENOENT/EACCES when the directory is missing or not writable.
  static Result<std::unique_ptr<Target>> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::string& uuid() const { return uuid_; }
  uint32_t id() const { return id_; }
  // Persists the id meta assigned.
  Status SetId(uint32_t id);

  // sync: also makes the object durable (as Fsync), before returning.
  // direct: the 4 KiB-aligned body goes to the disk with O_DIRECT, past the
  // page cache (no copy into newly allocated pages, and no page cache
  // filled with data its caller keeps in memory anyway). Data that is not
  // 4 KiB-aligned in memory is staged through an aligned buffer first. An
  // unaligned offset, or a file system that refuses O_DIRECT (at open, or
  // with EINVAL at the write), gets a buffered write.
  // block_crcs: the CRC32C of each whole kBlockSize block of data, when the
  // caller took them already (hydration, as the bytes came in); used only
  // when offset is a multiple of kBlockSize.
  Status Write(uint64_t object_id, uint32_t index, uint64_t offset, const char* data, size_t len,
               bool sync = false, bool direct = false, const uint32_t* block_crcs = nullptr);
  // Bytes [offset, min(offset+len, size)); an absent object reads as empty.
  // EIO when a block's checksum does not match. nowait: EAGAIN instead of
  // waiting for the disk or for a writer of the object (a read that can
  // be served from the page cache at once, on the caller's thread).
  Result<std::string> Read(uint64_t object_id, uint32_t index, uint64_t offset, size_t len, bool nowait = false);
  // The same bytes as a payload for a reply, with their CRC32C combined from
  // the checked blocks' CRCs: the frame's CRC needs no second pass over them.
  Result<rpc::Payload> ReadPayload(uint64_t object_id, uint32_t index, uint64_t offset, size_t len,
                                   bool nowait = false);
  Status Truncate(uint64_t object_id, uint32_t index, uint64_t length);
  // Reserves disk space for [offset, offset+len) without changing the
  // object's size (ENOSPC when it does not fit; nothing changes then).
  Status Allocate(uint64_t object_id, uint32_t index, uint64_t offset, uint64_t len);
  // Makes [offset, offset+len) read as zeros, freeing whole blocks; bytes
  // past the object's end are already zeros and stay untouched.
  Status PunchHole(uint64_t object_id, uint32_t index, uint64_t offset, uint64_t len);
  // The first offset at or after `offset` where data (hole = false) or a
  // hole (hole = true) starts, as lseek's SEEK_DATA and SEEK_HOLE on the
  // object; nullopt: no data there. Past the end is hole; so is an absent
  // object. The file system's granularity (blocks) shows through.
  Result<std::optional<uint64_t>> Seek(uint64_t object_id, uint32_t index, uint64_t offset, bool hole);
  // Makes the objects durable: data and checksums, and, for objects created
  // since their last Fsync, the directory entries that name them.
  Status Fsync(uint64_t object_id, const std::vector<uint32_t>& indexes);
  // Hydration (docs/data_repositories.md): which chunks of an object that is
  // filled from a bucket are in. Byte c of the .res file is 1 once chunk c
  // is; an object never hydrated has none.
  Result<std::vector<uint8_t>> LoadResidency(uint64_t object_id, uint32_t index);
  // Records chunks as in. Call it only after their data is durable (Write
  // with sync, or Fsync): the marks may then reach the disk before or
  // after, but never before the data, so a crash leaves a chunk absent or
  // right.
  Status MarkResident(uint64_t object_id, uint32_t index, const std::vector<uint64_t>& chunks);
  // Deletes indexes 0..count-1 (absent ones are fine).
  Status Remove(uint64_t object_id, uint32_t count);
  // Bytes of the file system holding the target.
  Status Capacity(uint64_t* capacity, uint64_t* used) const;

  std::string ObjectPath(uint64_t object_id, uint32_t index) const;

 private:
  Target() = default;
  std::mutex& LockFor(uint64_t object_id, uint32_t index);
  // Opens the object's data file for writing, creating it (and its bucket
  // directory) if needed; remembers a creation until the next Fsync.
  int OpenForWrite(uint64_t object_id, uint32_t index, const std::string& path);
  // Fsync of one object through descriptors its write holds open, with the
  // syncs of data, checksums and new directories overlapping.
  // Block b of an object as it is on disk, checked against its stored CRC
  // (EIO when they differ): a write that merges new bytes into a damaged
  // block, or a cut through one, must not give it a CRC that hides the
  // damage.
  Status ReadOldBlock(int fd, const ObjectChecksums& sums, uint64_t b, char* block, const std::string& what);
  // What remembers, until the object's next sync, that a writer created
  // its .crc file or changed its checksum attribute.
  std::function<void(bool created_file, bool changed_meta)> Noter(uint64_t object_id, uint32_t index);
  // meta: the data file's inode changed beyond its size (its checksum
  // attribute), so it needs fsync, not fdatasync.
  Status SyncOpen(uint64_t object_id, uint32_t index, int data_fd, int crc_fd, bool meta);

  // The read descriptors (data and checksums) of the objects read last, so
  // that a hot object's reads skip two opens and two closes. At most
  // kReadHandles objects, the least recently read dropped first. Callers
  // hold the object's lock; Remove drops the object's entry under it.
  struct ReadHandles;
  using ObjectKey = std::pair<uint64_t, uint32_t>;
  static constexpr size_t kReadHandles = 128;
  // The object's handles, cached or opened now; nullptr when the object
  // was never written.
  Result<std::shared_ptr<ReadHandles>> HandlesForRead(uint64_t object_id, uint32_t index);
  // What a failed read names: "target DIR: read object ID.INDEX". Made
  // only when a read fails: formatting it for every read was a share of a
  // store's CPU in small random reads.
  std::string ReadWhat(uint64_t object_id, uint32_t index) const;
  void DropHandles(uint64_t object_id, uint32_t index);

  std::string dir_;
  std::string uuid_;
  uint32_t id_ = 0;
  std::array<std::mutex, 64> locks_;
  std::mutex new_mu_;
  std::set<std::pair<uint64_t, uint32_t>> created_;   // GUARDED_BY(new_mu_): not yet in a synced dir
  std::set<uint64_t> new_buckets_;                    // GUARDED_BY(new_mu_): not yet in a synced objects/
  // Objects whose checksum attribute changed since their last sync.
  std::set<std::pair<uint64_t, uint32_t>> meta_changed_;   // GUARDED_BY(new_mu_)
  std::atomic<bool> direct_ok_{true};                 // false once O_DIRECT got EINVAL (open or write)
  std::atomic<bool> xattr_ok_{true};                  // false once user xattrs were refused
  metrics::Counter* crc_errors_ = nullptr;
  std::mutex handles_mu_;
  std::list<ObjectKey> handles_lru_;   // GUARDED_BY(handles_mu_): most recently read first
  std::map<ObjectKey, std::pair<std::shared_ptr<ReadHandles>, std::list<ObjectKey>::iterator>>
      handles_;                        // GUARDED_BY(handles_mu_)
};

}  // namespace stria::store
