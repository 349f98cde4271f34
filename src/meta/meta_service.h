// stria-meta's state machine: the namespace, sessions, the cluster map and
// the garbage list, over RocksDB.
//
// Threading: an operation runs in the thread that submits it (the RPC io
// thread), under one state mutex, so the operations themselves need no
// locks and a request costs no thread hand-off. Each mutation is one
// WriteBatch written without sync; a separate syncer thread syncs the WAL
// and then releases every reply whose batch was written before that sync
// began, so concurrent clients share fsyncs (group commit). Reads reply at
// once. A housekeeping thread takes the same mutex every 200 ms.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include <rocksdb/db.h>

#include "common/metrics.h"
#include "common/status.h"
#include "meta/locks.h"
#include "meta/sessions.h"
#include "meta_records.pb.h"
#include "proto/stria.pb.h"

namespace stria::meta {

struct MetaOptions {
  std::string data_dir;               // RocksDB lives in data_dir/db
  int64_t store_timeout_ms = 5000;    // no heartbeat for this long: store DOWN
  int64_t session_timeout_ms = 30000; // no heartbeat for this long: session gone
  uint32_t store_heartbeat_ms = 1000;
  uint32_t session_heartbeat_ms = 2000;
  std::string admin_address;          // reported in the cluster map
  // Mutations that add names or bytes of metadata (create, mkdir, setxattr,
  // bucket imports, ...) fail with ENOSPC while the metadata disk has less
  // than this free: what is left serves everything else (unlinks, opens,
  // sessions, heartbeats) and RocksDB's own flushes and compactions, so
  // that its writes do not fail for want of space.
  uint64_t reserve_bytes = 256ull << 20;
};

// The writes of one operation, applied atomically; reads see them.
class Txn {
 public:
  explicit Txn(rocksdb::DB* db) : db_(db) {}
  // NotFound -> nullopt; other RocksDB errors -> EIO.
  Result<std::optional<std::string>> Get(const std::string& key);
  void Put(const std::string& key, std::string value);
  void Delete(const std::string& key);
  bool empty() const { return writes_.empty(); }
  // Gauge changes, applied only when the batch is written.
  int64_t inode_delta = 0;
  int64_t garbage_delta = 0;
  rocksdb::WriteBatch Batch() const;

 private:
  rocksdb::DB* db_;
  std::map<std::string, std::optional<std::string>> writes_;
};

// The outcome of one operation.
struct OpResult {
  Status status;
  std::string reply;   // serialized reply message when ok
};

class MetaService {
 public:
  static Result<std::unique_ptr<MetaService>> Open(const MetaOptions& opt);
  ~MetaService();

  // Runs one request now, in this thread; done is called here for reads, or
  // from the syncer thread after the WAL sync for mutations. Thread-safe.
  void Submit(uint16_t type, std::string message, std::function<void(OpResult)> done);
  // Synchronous form, for tests.
  OpResult Execute(uint16_t type, const std::string& message);

  // ---- state used by the operations (under state_mu_ only) ----
  rocksdb::DB* db() { return db_.get(); }
  const MetaOptions& options() const { return opt_; }

  Result<meta::InodeRecord> GetInode(Txn& t, uint64_t ino);
  // Writes rec; for a file under a link, also its state (dirty once its
  // content changed) and the link's counts.
  void PutInode(Txn& t, const meta::InodeRecord& rec);
  // Moves one file between states in its link's counts (nullptr: none).
  Status CountRepo(Txn& t, const meta::InodeRecord* before, const meta::InodeRecord* after);
  Result<std::optional<meta::EntryRecord>> GetEntry(Txn& t, uint64_t parent, const std::string& name);
  Result<uint64_t> NextCounter(Txn& t, const std::string& name, uint64_t first);
  // Adds name -> ino in parent (the parent's record is updated in t).
  Status AddEntry(Txn& t, meta::InodeRecord& parent, const std::string& name, uint64_t ino,
                  proto::FileType type);
  Status RemoveEntry(Txn& t, uint64_t parent, const std::string& name, const meta::EntryRecord& e);
  // Drops one link of rec (already unlinked from its directory): at zero the
  // inode goes (or waits in the orphan list while open).
  Status DropLink(Txn& t, meta::InodeRecord& rec);
  // Deletes an inode with no links and no opens; queues its objects.
  Status DeleteInode(Txn& t, const meta::InodeRecord& rec);
  // Keeps the bucket-key owners (keys::RepoKeyOwner) in step with a file's
  // repo_key; a key taken cancels its pending deletion.
  void IndexRepoKey(Txn& t, const meta::InodeRecord* before, const meta::InodeRecord* after);
  // File `ino`'s content is about to take (or took) bucket key `key` of
  // link `root`. Another file whose content is still there (renamed away,
  // not exported yet) loses its copy in the bucket: a resident one turns
  // dirty (exported again, never released unsent). Returns a released one,
  // which has no other copy (0: none), and changes nothing for it.
  uint64_t TakeRepoKey(Txn& t, uint64_t root, const std::string& key, uint64_t ino);
  // Builds them once for metadata written before they existed.
  Status BuildRepoKeyIndex();
  Status QueueGarbage(Txn& t, const proto::Layout& layout);
  // Chooses targets for a new layout (count 0: all up).
  Result<proto::Layout> ChooseLayout(uint64_t ino, uint64_t stripe_size, uint32_t count);

  // A write failed: every change fails until stria-meta is restarted.
  bool writes_stopped() const { return write_failed_; }

  Sessions sessions;
  LockTable locks;
  std::map<uint32_t, proto::StoreInfo> stores;      // by id
  std::map<uint32_t, meta::TargetRecord> targets;   // by id
  std::map<uint32_t, int64_t> store_seen_ms;        // last heartbeat (monotonic)
  std::map<std::pair<uint64_t, uint32_t>, int64_t> garbage_handed;   // (seq, target) -> when handed out
  uint64_t map_version = 1;
  int64_t started_ms = 0;
  uint64_t inode_count = 0;
  uint64_t garbage_count = 0;

 private:
  MetaService() = default;
  Status Init();
  void Loop();
  void SyncLoop();
  void Housekeeping();
  void UpdateGauges();
  // Runs one operation; *wrote says whether its reply must wait for a sync.
  OpResult Run(uint16_t type, const std::string& message, bool* wrote);
  // ENOSPC for an operation that adds metadata while the disk holds less
  // than MetaOptions::reserve_bytes free.
  Status CheckReserve(uint16_t type, const char* name);
  // The error for a failed write or WAL sync: ENOSPC naming meta's disk
  // when it is full, else EIO. Writes stop there (WritesStopped).
  Status WriteFailed(const rocksdb::Status& s, const char* what);
  // After a failed write, RocksDB takes no more writes until the database
  // is opened again (its Resume() aborts on a WAL that failed, in Debian's
  // build): every later write fails with this, clearly, and nothing
  // written before is touched.
  Status WritesStopped();

  MetaOptions opt_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<bool> write_failed_{false};   // a write or WAL sync failed: writes stopped
  Status write_error_;                       // GUARDED_BY(sync_mu_): why

  std::mutex state_mu_;     // every operation and housekeeping hold it
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;      // GUARDED_BY(mu_)
  std::thread thread_;     // housekeeping

  // Replies waiting for the WAL sync that covers their batch.
  struct Waiting {
    uint64_t seq;   // batches written up to and including this one
    std::function<void(OpResult)> done;
    OpResult result;
  };
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::deque<Waiting> waiting_;   // GUARDED_BY(sync_mu_)
  uint64_t written_seq_ = 0;      // GUARDED_BY(sync_mu_)
  bool sync_stop_ = false;        // GUARDED_BY(sync_mu_)
  std::thread syncer_;

  metrics::Counter* syncs_ = nullptr;
  metrics::Counter* mutations_ = nullptr;
  metrics::Gauge* inodes_gauge_ = nullptr;
  metrics::Gauge* targets_up_ = nullptr;
  metrics::Gauge* targets_down_ = nullptr;
  metrics::Gauge* garbage_gauge_ = nullptr;
  metrics::Gauge* sessions_gauge_ = nullptr;
};

// One function per operation (files named after them). Each validates its
// request, reads through t, writes into t, and returns the reply.
using Ctx = MetaService;
Result<std::string> OpSessionOpen(Ctx&, Txn&, const std::string&);
Result<std::string> OpSessionHeartbeat(Ctx&, Txn&, const std::string&);
Result<std::string> OpLookup(Ctx&, Txn&, const std::string&);
Result<std::string> OpResolve(Ctx&, Txn&, const std::string&);
Result<std::string> OpGetAttr(Ctx&, Txn&, const std::string&);
Result<std::string> OpSetAttr(Ctx&, Txn&, const std::string&);
Result<std::string> OpCreate(Ctx&, Txn&, const std::string&);
Result<std::string> OpMkdir(Ctx&, Txn&, const std::string&);
Result<std::string> OpSymlink(Ctx&, Txn&, const std::string&);
Result<std::string> OpLink(Ctx&, Txn&, const std::string&);
Result<std::string> OpUnlink(Ctx&, Txn&, const std::string&);
Result<std::string> OpRmdir(Ctx&, Txn&, const std::string&);
Result<std::string> OpRename(Ctx&, Txn&, const std::string&);
Result<std::string> OpReadDir(Ctx&, Txn&, const std::string&);
Result<std::string> OpReadlink(Ctx&, Txn&, const std::string&);
Result<std::string> OpOpen(Ctx&, Txn&, const std::string&);
Result<std::string> OpClose(Ctx&, Txn&, const std::string&);
Result<std::string> OpCommitWrite(Ctx&, Txn&, const std::string&);
Result<std::string> OpSetXattr(Ctx&, Txn&, const std::string&);
Result<std::string> OpGetXattr(Ctx&, Txn&, const std::string&);
Result<std::string> OpListXattr(Ctx&, Txn&, const std::string&);
Result<std::string> OpRemoveXattr(Ctx&, Txn&, const std::string&);
Result<std::string> OpGetLayout(Ctx&, Txn&, const std::string&);
Result<std::string> OpSetLayout(Ctx&, Txn&, const std::string&);
Result<std::string> OpGetClusterMap(Ctx&, Txn&, const std::string&);
Result<std::string> OpStatFs(Ctx&, Txn&, const std::string&);
Result<std::string> OpAccess(Ctx&, Txn&, const std::string&);
Result<std::string> OpGetLock(Ctx&, Txn&, const std::string&);
Result<std::string> OpSetLock(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoLink(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoUnlink(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoList(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoDirInfo(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoImport(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoHydrated(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoRefresh(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoExported(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoRelease(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoSync(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoColdest(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoDeletions(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoMoved(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoClaimKey(Ctx&, Txn&, const std::string&);
Result<std::string> OpRepoRenamesExported(Ctx&, Txn&, const std::string&);
Result<std::string> OpRegisterStore(Ctx&, Txn&, const std::string&);
Result<std::string> OpStoreHeartbeat(Ctx&, Txn&, const std::string&);

// Parses a request or fails with EBADMSG.
template <typename T>
Result<T> Parse(const std::string& message, const char* what) {
  T m;
  if (!m.ParseFromString(message)) return Err(EBADMSG, "{} request does not parse", what);
  return m;
}

}  // namespace stria::meta
