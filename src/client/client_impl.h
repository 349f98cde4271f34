// Internals of libstria's Client (include/stria/client.h).
//
// Locking: Impl::mu guards the handle and open-file tables and the cluster
// map; each OpenFile has its own mutex for its buffers and for the
// positions of its handles. Lock order: OpenFile::mu, then Impl::mu. No lock
// is held while waiting on the network except an OpenFile's (one file's
// writes are serialized, other files go on; reads wait only for the stores)
// and import_mu (one import of a bucket level at a time, see ImportDir).
// Refresh takes OpenFile::mu only around its reads and writes of the file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/rpc.h"
#include "proto/stria.pb.h"
#include "stria/client.h"

namespace stria {

namespace repo {
class S3Client;
}

namespace client {

// A read of a small file's bytes started at open, while OPEN is on its way
// to meta (Client::Open). The first read waits for it and takes it into the
// read cache, if the file has not changed since.
struct Prefetch {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
  std::string data;   // the file's bytes [0, data.size()); holes as zeros
};

struct WriteBatch;   // below

// One file (inode) this client has open: what all of the client's handles
// on it share, as a kernel's page cache is shared by descriptors, so that
// every handle sees what any other wrote, in order: the size as this client
// sees it, the write buffer, what was written but not yet committed, and the
// read-ahead extent. Fields are guarded by mu.
struct OpenFile {
  std::mutex mu;
  std::string path;                // for error messages (the first opener's name)
  uint64_t ino = 0;
  proto::FileType type = proto::FT_NONE;
  proto::Layout layout;
  uint64_t size = 0;               // meta's size, grown by our writes
  uint64_t version = 0;            // content version in meta's last answer
  // Set while the file is released (meta's last answer said so): reads
  // carry it, and the stores fetch from the bucket what is not in yet.
  std::optional<proto::RepoSource> source;
  proto::Cred writer;              // who wrote what is not yet committed (set-uid rules)
  // Write-back buffer: one contiguous dirty extent not yet sent.
  uint64_t wb_offset = 0;
  std::string wb;
  // The previous buffer, sent and not yet landed (at most one, so that
  // overlapping writes reach the stores in order).
  std::shared_ptr<WriteBatch> flying;
  bool Dirty() const { return uncommitted || !wb.empty() || flying != nullptr; }
  // Written (sent) but not yet made durable and committed to meta.
  bool uncommitted = false;
  uint64_t written_end = 0;        // largest end offset written
  std::set<uint32_t> touched;      // stripe objects written since the last fsync
  // Read cache: one extent read ahead of the reader. gen moves whenever
  // the file changes, so that a read that ran without the lock does not
  // install stale bytes.
  uint64_t rc_offset = 0;
  std::string rc;
  uint64_t last_read_end = UINT64_MAX;
  uint64_t gen = 0;
  std::shared_ptr<Prefetch> prefetch;   // taken by the first read
  void DropReadCache() {
    rc.clear();
    prefetch.reset();
    gen++;
  }
  int handles = 0;                 // GUARDED_BY(Impl::mu)
};

// One handle (fd): an open file, how it was opened, and its position.
struct Handle {
  std::shared_ptr<OpenFile> file;
  int flags = 0;
  proto::Cred cred;                // whom the handle acts for (its opener)
  std::string path;                // as opened, for error messages
  uint64_t pos = 0;                // GUARDED_BY(file->mu)
  bool cache_reads = false;        // write-only, yet read by the kernel's page cache; GUARDED_BY(file->mu)
};

// "/a//b/" -> "/a/b"; EINVAL for relative or empty paths.
Result<std::string> Normalize(const std::string& path);

// One request to a store, retried as a unit (Impl::RunStoreOps).
struct StoreOp {
  uint32_t target = 0;
  proto::MsgType type = proto::MSG_NONE;
  std::string message;
  rpc::Payload payload;
  std::span<char> into;
  rpc::CallResult result;
  bool done = false;
};

// One store-write batch sent behind the writer (write-behind): the
// writer goes on filling the next buffer while this one is on the wire.
// Its ops are retried, and its outcome reported, when it lands (the next
// flush, read, fsync or close of the file).
struct WriteBatch {
  std::mutex mu;
  std::condition_variable cv;
  size_t left = 0;                 // replies still to come; GUARDED_BY(mu)
  std::vector<StoreOp> ops;        // results written by the replies
  uint64_t offset = 0;
  size_t len = 0;
};

}  // namespace client

struct Client::Impl {
  ClientOptions opt;
  proto::Cred cred;
  rpc::IoThread io;
  std::shared_ptr<rpc::Channel> meta;
  std::atomic<uint64_t> session{0};   // replaced when a lost session is resumed
  std::atomic<uint64_t> root{1};
  std::atomic<uint32_t> heartbeat_ms{2000};
  std::atomic<uint64_t> next_seq{1};

  std::mutex mu;
  std::map<int, std::shared_ptr<client::Handle>> handles;   // GUARDED_BY(mu)
  std::unordered_map<uint64_t, std::shared_ptr<client::OpenFile>> open_files;   // GUARDED_BY(mu), by ino
  int next_fd = 3;                                          // GUARDED_BY(mu)
  std::unordered_map<uint32_t, proto::TargetInfo> targets;  // GUARDED_BY(mu)
  std::unordered_map<std::string, std::shared_ptr<rpc::Channel>> stores;  // GUARDED_BY(mu)
  uint64_t map_version = 0;                                 // GUARDED_BY(mu)
  int64_t map_fetched_ms = 0;                               // GUARDED_BY(mu)
  proto::GetClusterMapReply last_map;                       // GUARDED_BY(mu)
  // Regular files from recent lookups, for the prefetch at open.
  struct Looked {
    proto::Layout layout;
    uint64_t version = 0;
    uint64_t size = 0;
    int64_t at_ms = 0;
  };
  std::unordered_map<uint64_t, Looked> looked;              // GUARDED_BY(mu)

  // Statahead (statahead.cc). `changes` counts this client's calls that
  // may change an attribute or a name; a directory's copy is good only
  // while it has not moved since the copy was taken.
  std::atomic<uint64_t> changes{0};
  struct DirAhead {
    uint64_t changes = 0;     // `changes` when the lookups were counted, or the copy taken
    int lookups = 0;          // from meta, in this directory, since (and within a window)
    int hits = 0;             // lookups the copy answered
    int64_t window_ms = 0;    // when the counted lookups began
    bool fetching = false;
    int64_t fetched_ms = 0;   // 0: no copy
    int64_t used_ms = 0;
    int64_t retry_ms = 0;     // not read again before (a read that failed)
    proto::Attr dir;          // for the search permission
    std::unordered_map<std::string, proto::DirEntry> entries;
  };
  std::mutex ahead_mu;
  std::unordered_map<uint64_t, DirAhead> ahead;             // GUARDED_BY(ahead_mu), by directory
  size_t ahead_entries = 0;                                 // GUARDED_BY(ahead_mu)

  // Data repositories (repo_import.cc): one import at a time from this
  // client, and one S3 client per endpoint, region and profile.
  std::mutex import_mu;
  std::mutex s3_mu;
  std::map<std::string, std::shared_ptr<repo::S3Client>> s3;   // GUARDED_BY(s3_mu)

  // Reads started by Client::PreadAsync whose done has not yet run (one
  // that failed retries as Pread on a thread of its own): the client waits
  // for them before it goes.
  std::mutex async_mu;
  std::condition_variable async_cv;
  int async_reads = 0;       // GUARDED_BY(async_mu)
  bool async_stop = false;   // GUARDED_BY(async_mu)
  void AsyncReadDone() {
    std::lock_guard lk(async_mu);
    if (--async_reads == 0) async_cv.notify_all();
  }

  std::thread heartbeat;
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool stopping = false;

  // ---- connection.cc ----
  Status OpenSession();
  void HeartbeatLoop();
  std::vector<uint64_t> OpenInodes();
  proto::MutationId NextMid();
  // Calls meta, retrying lost connections and timeouts until the deadline
  // (mutations carry a MutationId, so a retry is applied once).
  template <typename Reply>
  Result<Reply> MetaCall(proto::MsgType type, const google::protobuf::MessageLite& req);
  rpc::CallResult MetaCallRaw(proto::MsgType type, const std::string& msg);
  rpc::CallResult MetaCallOnce(proto::MsgType type, const std::string& msg);
  Status RefreshMap(bool force);
  // ---- repo_import.cc ----
  // Lists directory ino's level of its linked bucket and imports it into
  // meta (meta answered EREMOTE for it).
  Status ImportDir(uint64_t ino);
  // The S3 client for a link's endpoint (credentials from this process).
  Result<std::shared_ptr<repo::S3Client>> S3For(const proto::RepoLink& link);
  // A read of released file f got ESTALE (its bucket object changed): reads
  // the object's HEAD and has meta give the file fresh objects of the new
  // content; f then reads that.
  Status Refresh(client::OpenFile& f, const std::string& what);
  // The channel of the store serving target, or ENXIO/EHOSTDOWN.
  Result<std::shared_ptr<rpc::Channel>> StoreFor(uint32_t target);

  // ---- file_io.cc: stripe I/O, all objects in parallel ----
  // Runs all ops in parallel; retries the ones that failed with a
  // retryable error (a store restarting, a lost connection) until the
  // deadline. Errors name what, the target and its store.
  Status RunStoreOps(std::vector<client::StoreOp>& ops, const std::string& what);
  // A store's error for target, as "what: target T at ADDR: message".
  Status StoreError(const Status& st, uint32_t target, const std::string& what);
  // The store writes of [offset, offset+len) of data (sync: each one makes
  // its object durable too). Wrote records them as sent.
  Result<std::vector<client::StoreOp>> WriteOps(client::OpenFile& f, uint64_t offset,
                                                std::shared_ptr<const std::string> data, size_t data_off,
                                                size_t len, bool sync);
  void Wrote(client::OpenFile& f, uint64_t offset, size_t len);
  Status WriteStripes(client::OpenFile& f, uint64_t offset, std::shared_ptr<const std::string> data,
                      size_t data_off, size_t len);
  // Reads [offset, offset+len) of a file with this layout (holes and
  // bytes past an object's end as zeros). Needs no lock of the file.
  // source: the file is released; the stores fetch what is missing.
  Status ReadStripes(const proto::Layout& l, const std::string& path, uint64_t offset, char* out, size_t len,
                     const proto::RepoSource* source = nullptr);
  // ---- repo_hydrate.cc ----
  // Fetches every missing chunk of a released file into the stores (each
  // store its own objects, all at once), then tells meta, which marks the
  // file resident. Returns meta's attributes after it.
  Result<proto::Attr> Hydrate(const proto::Cred& c, uint64_t ino, const proto::Layout& l,
                              const proto::RepoSource& source, const std::string& what);
  // The same for ino, when meta says it is released (else nothing to do).
  Status HydrateIno(const proto::Cred& c, uint64_t ino, const std::string& what);
  // Sends a rename. Meta refuses (ENODATA) to rename a released file under
  // a link, since its bucket key is where its data is: such a file is
  // hydrated first (both of an exchange), and the rename sent again.
  Status RenameHydrating(proto::RenameRequest req, const std::string& what);
  // An open's answer: a released file opened for writing is hydrated
  // first, since its writes must land on its bucket data (O_TRUNC needs
  // none: meta gave it fresh objects). On failure the open is undone in meta.
  Status HydrateForWrite(const proto::Cred& c, proto::OpenReply& r, int flags, const std::string& what);
  // A create's answer as an open's (an existing released file is hydrated
  // first when opened for writing, as HydrateForWrite).
  Result<proto::OpenReply> OpenedExisting(const proto::Cred& c, const proto::CreateReply& r, int flags,
                                          const std::string& what);
  // Starts reading the whole of ino if it is small and was looked up just
  // now; null if not. *l and *version: what the read is of.
  std::shared_ptr<client::Prefetch> StartPrefetch(uint64_t ino, proto::Layout* l, uint64_t* version);
  // Waits for a prefetch taken from f at gen and puts it in f's read cache
  // if f has not changed since.
  void TakePrefetch(client::OpenFile& f, const std::shared_ptr<client::Prefetch>& pf, uint64_t gen);
  // How far past [offset, offset+n) a read of f fetches into its read
  // cache (0: not at all). The read that goes ahead sets f.last_read_end.
  uint64_t ReadAheadLocked(const client::OpenFile& f, uint64_t offset, size_t n) const;
  // One try of Client::Pread (which retries it after a Refresh).
  Result<size_t> PreadOnce(int fd, void* buf, size_t n, uint64_t offset);
  // Sends the write buffer and waits until it (and any batch in flight)
  // is on the stores.
  Status FlushLocked(client::OpenFile& f);
  // Sends the write buffer without waiting for it, once the batch before it
  // has landed (write-behind: the next writes fill a new buffer meanwhile).
  Status FlushBehindLocked(client::OpenFile& f);
  // Waits for the batch in flight, retries what failed; its error if any.
  Status LandLocked(client::OpenFile& f);
  Status SyncLocked(client::OpenFile& f);
  // lseek's SEEK_DATA (hole = false) and SEEK_HOLE on f: asks every stripe
  // object where its next data or hole starts. ENXIO at or past the end.
  Result<uint64_t> SeekDataLocked(client::OpenFile& f, uint64_t offset, bool hole, const std::string& what);
  Status TruncateObjects(const std::string& path, const proto::Layout& layout, uint64_t size);
  Result<std::shared_ptr<client::Handle>> GetHandle(int fd);

  // ---- namespace helpers ----
  Result<proto::ResolveReply> Resolve(const std::string& path, bool follow_last);
  // Splits "/a/b/c" into the parent's ino and "c". EINVAL for "/".
  Result<std::pair<uint64_t, std::string>> ResolveParent(const std::string& path);
  Status SetAttr(const std::string& path, proto::SetAttrRequest req, bool follow = true);

  // ---- statahead.cc ----
  // The answer from directory parent's copy: nullopt when there is none
  // to give (no fresh copy, or name not in it); then ask meta.
  std::optional<Result<FileAttr>> LookupAhead(const proto::Cred& c, uint64_t parent, const std::string& name);
  // A lookup meta answered (taken when changes was `before`).
  void CountLookup(uint64_t parent, uint64_t before);
  // Whether call msg of this type may change what a lookup returns.
  static bool MayChangeNames(proto::MsgType type, const std::string& msg);

  // ---- inode_ops.cc ----
  // Registers a new handle from meta's answer to an open or create and
  // returns its fd. The file's shared state is made or brought up to date
  // (close-to-open: meta's size, layout and version win over what nothing
  // of ours is still changing).
  int AddHandle(const proto::Attr& attr, const proto::Layout& layout, int flags, const proto::Cred& cred,
                const std::string& path, const proto::RepoSource* source = nullptr);
  int AddHandleFd(std::shared_ptr<client::Handle> h);
  // Removes a handle; the last one of a file drops the file's state.
  void DropHandle(int fd, const std::shared_ptr<client::Handle>& h);
  // This client's open file of ino, or null.
  std::shared_ptr<client::OpenFile> FileOf(uint64_t ino);
  // Attributes with this client's unflushed writes to ino counted.
  FileAttr WithLocalSize(const proto::Attr& a);
  // Sends this client's buffered writes to ino to the stores.
  Status FlushIno(uint64_t ino);
  // Truncates ino to size: objects first, then meta (which may give the
  // file fresh objects at size 0; open files here then switch to them).
  Result<proto::Attr> TruncateIno(const proto::Cred& c, uint64_t ino, proto::SetAttrRequest req,
                                  const std::string& what);
};

proto::Cred ToCred(const Caller& c);

FileAttr ToFileAttr(const proto::Attr& a);
Layout ToLayout(const proto::Layout& l);

template <typename Reply>
Result<Reply> Client::Impl::MetaCall(proto::MsgType type, const google::protobuf::MessageLite& req) {
  rpc::CallResult r = MetaCallRaw(type, req.SerializeAsString());
  if (!r.status.ok()) return r.status;
  Reply reply;
  if (!reply.ParseFromString(r.message)) {
    return Err(EBADMSG, "reply to {} from meta {} does not parse",
               proto::MsgType_Name(type), opt.meta);
  }
  return reply;
}

}  // namespace stria
