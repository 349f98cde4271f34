// libstria: open files — striped parallel I/O to the stores, write-back
// buffering, read-ahead, fsync/close durability and truncation.
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "client/client_impl.h"
#include "client/striping.h"
#include "common/util.h"

namespace stria {

using client::Chunk;
using client::OpenFile;
using rpc::Clock;
using rpc::Millis;

using client::StoreOp;

namespace {

int AccMode(int flags) { return flags & O_ACCMODE; }
bool CanWrite(int flags) { return AccMode(flags) == O_WRONLY || AccMode(flags) == O_RDWR; }
bool CanRead(int flags) { return AccMode(flags) == O_RDONLY || AccMode(flags) == O_RDWR; }

// The store read of one chunk of a file with layout l.
proto::ObjReadRequest ChunkRead(const proto::Layout& l, const Chunk& c) {
  proto::ObjReadRequest req;
  req.set_target(l.targets(c.object));
  req.set_ino(l.object_id());
  req.set_index(c.object);
  req.set_offset(c.object_offset);
  req.set_length(static_cast<uint32_t>(c.length));
  return req;
}

// Puts a chunk's reply in dst (len bytes). Short reads are holes or the
// object's end inside the file: zeros.
void LandChunk(const rpc::CallResult& r, char* dst, size_t len) {
  size_t got = std::min<size_t>(r.payload_len, len);
  if (!r.payload.empty()) std::memcpy(dst, r.payload.data(), got);
  std::memset(dst + got, 0, len - got);
}

}  // namespace

Status Client::Impl::StoreError(const Status& st, uint32_t target, const std::string& what) {
  std::string addr;
  {
    std::lock_guard lk(mu);
    auto it = targets.find(target);
    if (it != targets.end()) addr = it->second.address();
  }
  return Status(st.code(), fmt::format("{}: target {}{}: {}", what, target, addr.empty() ? "" : " at " + addr,
                                       st.message()));
}

Status Client::Impl::RunStoreOps(std::vector<StoreOp>& ops, const std::string& what) {
  Client::Impl& impl = *this;
  auto deadline = Clock::now() + impl.opt.timeout;
  Millis backoff(20);
  while (true) {
    std::vector<size_t> todo;
    for (size_t i = 0; i < ops.size(); i++) {
      if (!ops[i].done) todo.push_back(i);
    }
    if (todo.empty()) return Status::Ok();
    std::mutex mu;
    std::condition_variable cv;
    size_t left = todo.size();
    auto remaining = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (remaining.count() < 1) remaining = Millis(1);
    for (size_t i : todo) {
      StoreOp& op = ops[i];
      auto ch = impl.StoreFor(op.target);
      if (!ch.ok()) {
        op.result = rpc::CallResult();
        op.result.status = ch.status();
        std::lock_guard lk(mu);
        left--;
        continue;
      }
      rpc::CallOptions co;
      co.timeout = remaining;
      co.into = op.into;
      (*ch)->Call(op.type, op.message, op.payload, co, [&, i](rpc::CallResult&& r) {
        ops[i].result = std::move(r);
        std::lock_guard lk(mu);
        if (--left == 0) cv.notify_all();
      });
    }
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return left == 0; });
    }
    bool all_done = true;
    for (size_t i : todo) {
      StoreOp& op = ops[i];
      if (op.result.status.ok()) {
        op.done = true;
        continue;
      }
      all_done = false;
      const Status& st = op.result.status;
      bool retry = st.retryable() || st.code() == ENXIO;
      if (!retry || Clock::now() + backoff >= deadline) return impl.StoreError(st, op.target, what);
    }
    // Only failed ops wait and retry; a round where all succeeded is done.
    if (all_done) return Status::Ok();
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, Millis(500));
    (void)impl.RefreshMap(true);   // the store may have moved; errors show on the retry
  }
}


Result<std::vector<StoreOp>> Client::Impl::WriteOps(OpenFile& f, uint64_t offset,
                                                   std::shared_ptr<const std::string> data,
                                                   size_t data_off, size_t len, bool sync) {
  const auto& l = f.layout;
  if (l.stripe_count() == 0 || l.targets_size() < static_cast<int>(l.stripe_count())) {
    return Err(EIO, "write {}: file has no valid layout", f.path);
  }
  std::vector<StoreOp> ops;
  for (const Chunk& c : client::SplitRange(l.stripe_size(), l.stripe_count(), offset, len)) {
    StoreOp op;
    op.target = l.targets(c.object);
    op.type = proto::OBJ_WRITE;
    proto::ObjWriteRequest req;
    req.set_target(op.target);
    req.set_ino(l.object_id());
    req.set_index(c.object);
    req.set_offset(c.object_offset);
    req.set_sync(sync);
    op.message = req.SerializeAsString();
    op.payload = rpc::Payload(data, data_off + (c.file_offset - offset), c.length);
    ops.push_back(std::move(op));
  }
  return ops;
}

void Client::Impl::Wrote(OpenFile& f, uint64_t offset, size_t len) {
  for (const Chunk& c : client::SplitRange(f.layout.stripe_size(), f.layout.stripe_count(), offset, len)) {
    f.touched.insert(c.object);
  }
  f.uncommitted = true;
  f.written_end = std::max(f.written_end, offset + len);
}

Status Client::Impl::WriteStripes(OpenFile& f, uint64_t offset,
                                  std::shared_ptr<const std::string> data, size_t data_off,
                                  size_t len) {
  STRIA_ASSIGN_OR_RETURN(auto ops, WriteOps(f, offset, std::move(data), data_off, len, false));
  STRIA_RETURN_IF_ERROR(RunStoreOps(ops, "write " + f.path));
  Wrote(f, offset, len);
  return Status::Ok();
}

Status Client::Impl::ReadStripes(const proto::Layout& l, const std::string& path, uint64_t offset, char* out,
                                 size_t len, const proto::RepoSource* source) {
  if (len == 0) return Status::Ok();
  if (l.stripe_count() == 0 || l.targets_size() < static_cast<int>(l.stripe_count())) {
    return Err(EIO, "read {}: file has no valid layout", path);
  }
  std::vector<StoreOp> ops;
  auto chunks = client::SplitRange(l.stripe_size(), l.stripe_count(), offset, len);
  for (const Chunk& c : chunks) {
    StoreOp op;
    op.target = l.targets(c.object);
    op.type = proto::OBJ_READ;
    proto::ObjReadRequest req = ChunkRead(l, c);
    if (source) {
      auto* f = req.mutable_fetch();
      *f->mutable_source() = *source;
      f->set_stripe_size(l.stripe_size());
      f->set_stripe_count(l.stripe_count());
    }
    op.message = req.SerializeAsString();
    op.into = std::span<char>(out + (c.file_offset - offset), c.length);
    ops.push_back(std::move(op));
  }
  STRIA_RETURN_IF_ERROR(RunStoreOps(ops, "read " + path));
  for (size_t i = 0; i < ops.size(); i++) {
    LandChunk(ops[i].result, out + (chunks[i].file_offset - offset), chunks[i].length);
  }
  return Status::Ok();
}

std::shared_ptr<client::Prefetch> Client::Impl::StartPrefetch(uint64_t ino, proto::Layout* l,
                                                             uint64_t* version) {
  constexpr uint64_t kMaxPrefetch = 1u << 20;
  uint64_t size = 0;
  {
    std::lock_guard lk(mu);
    auto it = looked.find(ino);
    if (it == looked.end()) return nullptr;
    Looked seen = std::move(it->second);
    looked.erase(it);
    // Open here already: its state knows better. Old: likely changed.
    if (open_files.count(ino) || MonoMs() - seen.at_ms > 2000) return nullptr;
    size = seen.size;
    const auto& sl = seen.layout;
    if (size == 0 || size > kMaxPrefetch || size > sl.stripe_size() || sl.targets_size() < 1) return nullptr;
    *l = std::move(seen.layout);
    *version = seen.version;
  }
  auto ch = StoreFor(l->targets(0));
  if (!ch.ok()) return nullptr;
  auto pf = std::make_shared<client::Prefetch>();
  pf->data.assign(size, '\0');
  proto::ObjReadRequest req;
  req.set_target(l->targets(0));
  req.set_ino(l->object_id());
  req.set_index(0);
  req.set_offset(0);
  req.set_length(static_cast<uint32_t>(size));
  rpc::CallOptions co;
  // A failed prefetch only falls back to the plain read, which retries.
  co.timeout = std::min<Millis>(opt.timeout, Millis(5000));
  co.into = std::span<char>(pf->data.data(), size);
  // The callback holds pf: the reply is read into pf->data until it runs.
  (*ch)->Call(proto::OBJ_READ, req.SerializeAsString(), {}, co, [pf](rpc::CallResult&& r) {
    if (r.status.ok() && !r.payload.empty()) {
      std::memcpy(pf->data.data(), r.payload.data(), std::min(r.payload.size(), pf->data.size()));
    }
    std::lock_guard lk(pf->mu);
    pf->status = r.status;
    pf->done = true;
    pf->cv.notify_all();
  });
  return pf;
}

void Client::Impl::TakePrefetch(OpenFile& f, const std::shared_ptr<client::Prefetch>& pf, uint64_t gen) {
  {
    std::unique_lock lk(pf->mu);
    pf->cv.wait(lk, [&] { return pf->done; });
    if (!pf->status.ok()) return;
  }
  std::lock_guard lk(f.mu);
  if (f.gen != gen || !f.rc.empty()) return;
  f.rc = std::move(pf->data);
  f.rc_offset = 0;
}

Status Client::Impl::LandLocked(OpenFile& f) {
  if (!f.flying) return Status::Ok();
  std::shared_ptr<client::WriteBatch> b = std::move(f.flying);
  {
    std::unique_lock lk(b->mu);
    b->cv.wait(lk, [&] { return b->left == 0; });
  }
  for (StoreOp& op : b->ops) op.done = op.result.status.ok();
  // What failed is sent again, with RunStoreOps's retries and deadline.
  STRIA_RETURN_IF_ERROR(RunStoreOps(b->ops, "write " + f.path));
  Wrote(f, b->offset, b->len);
  return Status::Ok();
}

Status Client::Impl::FlushBehindLocked(OpenFile& f) {
  STRIA_RETURN_IF_ERROR(LandLocked(f));
  if (f.wb.empty()) return Status::Ok();
  auto data = std::make_shared<const std::string>(std::move(f.wb));
  f.wb = std::string();
  auto b = std::make_shared<client::WriteBatch>();
  b->offset = f.wb_offset;
  b->len = data->size();
  STRIA_ASSIGN_OR_RETURN(b->ops, WriteOps(f, f.wb_offset, data, 0, data->size(), false));
  b->left = b->ops.size();
  f.flying = b;
  for (size_t i = 0; i < b->ops.size(); i++) {
    StoreOp& op = b->ops[i];
    auto done = [b, i](rpc::CallResult&& r) {
      std::lock_guard lk(b->mu);
      b->ops[i].result = std::move(r);
      if (--b->left == 0) b->cv.notify_all();
    };
    auto ch = StoreFor(op.target);
    if (!ch.ok()) {
      rpc::CallResult r;
      r.status = ch.status();
      done(std::move(r));   // LandLocked retries it
      continue;
    }
    rpc::CallOptions co;
    co.timeout = opt.timeout;
    (*ch)->Call(op.type, op.message, op.payload, co, std::move(done));
  }
  return Status::Ok();
}

Status Client::Impl::FlushLocked(OpenFile& f) {
  STRIA_RETURN_IF_ERROR(FlushBehindLocked(f));
  return LandLocked(f);
}

Status Client::Impl::SyncLocked(OpenFile& f) {
  STRIA_RETURN_IF_ERROR(LandLocked(f));
  std::vector<StoreOp> ops;
  std::set<uint32_t> synced;   // objects that the final writes sync themselves
  uint64_t final_off = f.wb_offset, final_len = f.wb.size();
  std::shared_ptr<const std::string> final_data;
  if (!f.wb.empty()) {
    auto chunks = client::SplitRange(f.layout.stripe_size(), f.layout.stripe_count(), f.wb_offset, f.wb.size());
    for (const Chunk& c : chunks) synced.insert(c.object);
    if (synced.size() == chunks.size()) {
      // One chunk per object (a small file, or a last partial row): each
      // write syncs its object, sparing a round trip per object.
      final_data = std::make_shared<const std::string>(std::move(f.wb));
      f.wb = std::string();
      STRIA_ASSIGN_OR_RETURN(ops, WriteOps(f, final_off, final_data, 0, final_len, true));
    } else {
      synced.clear();
      STRIA_RETURN_IF_ERROR(FlushLocked(f));
    }
  }
  if (!f.touched.empty() || !ops.empty()) {
    std::map<uint32_t, proto::ObjFsyncRequest> per_target;
    for (uint32_t obj : f.touched) {
      if (synced.count(obj)) continue;
      uint32_t target = f.layout.targets(obj);
      auto& req = per_target[target];
      req.set_target(target);
      req.set_ino(f.layout.object_id());
      req.add_indexes(obj);
    }
    for (auto& [target, req] : per_target) {
      StoreOp op;
      op.target = target;
      op.type = proto::OBJ_FSYNC;
      op.message = req.SerializeAsString();
      ops.push_back(std::move(op));
    }
    Status st = RunStoreOps(ops, "fsync " + f.path);
    if (!st.ok()) {
      // Keep the unsent bytes: a later fsync or close tries again.
      if (final_data && f.wb.empty()) {
        f.wb = *final_data;
        f.wb_offset = final_off;
      }
      return st;
    }
    if (final_data) Wrote(f, final_off, final_len);
    f.touched.clear();
  }
  if (f.uncommitted) {
    proto::CommitWriteRequest req;
    *req.mutable_cred() = f.writer;
    req.set_ino(f.ino);
    req.set_min_size(f.written_end);
    req.set_mtime_ns(NowNs());
    req.set_object_id(f.layout.object_id());
    auto r = MetaCall<proto::CommitWriteReply>(proto::COMMIT_WRITE, req);
    if (!r.ok()) return r.status().Prefixed("commit " + f.path);
    f.size = std::max(f.size, r->attr().size());
    f.version = r->attr().version();
    f.uncommitted = false;
  }
  return Status::Ok();
}

Status Client::Impl::TruncateObjects(const std::string& path, const proto::Layout& l,
                                     uint64_t size) {
  std::vector<StoreOp> ops;
  for (uint32_t i = 0; i < l.stripe_count() && i < static_cast<uint32_t>(l.targets_size()); i++) {
    proto::ObjTruncateRequest req;
    req.set_target(l.targets(i));
    req.set_ino(l.object_id());
    req.set_index(i);
    req.set_length(client::ObjectLength(l.stripe_size(), l.stripe_count(), i, size));
    StoreOp op;
    op.target = l.targets(i);
    op.type = proto::OBJ_TRUNCATE;
    op.message = req.SerializeAsString();
    ops.push_back(std::move(op));
  }
  return RunStoreOps(ops, "truncate " + path);
}

Result<std::shared_ptr<client::Handle>> Client::Impl::GetHandle(int fd) {
  std::lock_guard lk(mu);
  auto it = handles.find(fd);
  if (it == handles.end()) return Err(EBADF, "fd {} is not open", fd);
  return it->second;
}

// ------------------------------------------------------------------ API --

Result<int> Client::Open(const std::string& path, int flags, uint32_t mode) {
  if (flags & O_CREAT) {
    STRIA_ASSIGN_OR_RETURN(auto pn, impl_->ResolveParent(path));
    proto::CreateRequest req;
    *req.mutable_cred() = impl_->cred;
    *req.mutable_mid() = impl_->NextMid();
    req.set_parent(pn.first);
    req.set_name(pn.second);
    req.set_mode(mode & 07777);
    req.set_type(proto::FT_REG);
    req.set_exclusive(flags & O_EXCL);
    req.set_open(true);
    req.set_truncate(flags & O_TRUNC);
    req.set_session(impl_->session);
    auto r = impl_->MetaCall<proto::CreateReply>(proto::CREATE, req);
    if (!r.ok()) return r.status().Prefixed("open " + path);
    STRIA_ASSIGN_OR_RETURN(auto o, impl_->OpenedExisting(impl_->cred, *r, flags, "open " + path));
    return impl_->AddHandle(o.attr(), o.layout(), flags, impl_->cred, path, o.has_source() ? &o.source() : nullptr);
  }
  STRIA_ASSIGN_OR_RETURN(auto res, impl_->Resolve(path, true));
  if (res.attr().type() == proto::FT_DIR && CanWrite(flags)) {
    return Err(EISDIR, "open {}: is a directory", path);
  }
  proto::OpenRequest req;
  *req.mutable_cred() = impl_->cred;
  req.set_session(impl_->session);
  req.set_ino(res.attr().ino());
  req.set_flags(static_cast<uint32_t>(flags));
  // Only a truncating open changes anything, and needs a retry applied once.
  if (flags & O_TRUNC) *req.mutable_mid() = impl_->NextMid();
  auto r = impl_->MetaCall<proto::OpenReply>(proto::OPEN, req);
  if (!r.ok()) return r.status().Prefixed("open " + path);
  STRIA_RETURN_IF_ERROR(impl_->HydrateForWrite(impl_->cred, *r, flags, "open " + path));
  return impl_->AddHandle(r->attr(), r->layout(), flags, impl_->cred, path,
                          r->has_source() ? &r->source() : nullptr);
}

Result<size_t> Client::Pwrite(int fd, const void* buf, size_t n, uint64_t offset) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  OpenFile* f = h->file.get();
  std::lock_guard lk(f->mu);
  if (!CanWrite(h->flags)) return Err(EBADF, "write {}: not open for writing", h->path);
  if (f->type != proto::FT_REG) return Err(EISDIR, "write {}: not a regular file", h->path);
  if (n == 0) return size_t(0);
  // As on Linux, a handle opened O_APPEND writes at the end, whatever the
  // offset says (the FUSE mount relies on it: the kernel's idea of the end
  // may be older than this client's).
  if (h->flags & O_APPEND) offset = f->size;
  if (offset + n < offset || offset + n > (1ull << 60)) {
    return Err(EFBIG, "write {}: offset {} + {} bytes is too large", h->path, offset, n);
  }
  f->DropReadCache();   // the read cache may hold what we overwrite
  f->writer = h->cred;
  const char* p = static_cast<const char*>(buf);
  uint64_t limit = impl_->opt.write_buffer;
  bool appends = !f->wb.empty() && offset == f->wb_offset + f->wb.size() &&
                 f->wb.size() + n <= limit;
  if (!appends) STRIA_RETURN_IF_ERROR(impl_->FlushBehindLocked(*f));
  if (n >= limit) {
    STRIA_RETURN_IF_ERROR(impl_->LandLocked(*f));
    // Large writes go straight out, in buffer-sized parallel batches.
    for (size_t done = 0; done < n;) {
      size_t part = std::min<size_t>(n - done, limit);
      auto data = std::make_shared<const std::string>(p + done, part);
      STRIA_RETURN_IF_ERROR(impl_->WriteStripes(*f, offset + done, data, 0, part));
      done += part;
    }
  } else {
    if (f->wb.empty()) {
      f->wb_offset = offset;
      f->wb.reserve(limit);
    }
    f->wb.append(p, n);
  }
  f->size = std::max(f->size, offset + n);
  return n;
}

Result<size_t> Client::Write(int fd, const void* buf, size_t n) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  bool append = h->flags & O_APPEND;
  uint64_t off;
  {
    std::lock_guard lk(h->file->mu);
    off = h->pos;
  }
  STRIA_ASSIGN_OR_RETURN(size_t done, Pwrite(fd, buf, n, off));
  std::lock_guard lk(h->file->mu);
  h->pos = append ? h->file->size : off + done;
  return done;
}

uint64_t Client::Impl::ReadAheadLocked(const OpenFile& f, uint64_t offset, size_t n) const {
  uint64_t window = 0;
  bool sequential = offset == f.last_read_end || offset == 0;
  uint64_t row = f.layout.stripe_size() * std::max<uint32_t>(1, f.layout.stripe_count());
  if (opt.readahead > 0 && sequential) {
    window = std::max<uint64_t>(opt.readahead, row);
    window = n < window ? std::min<uint64_t>(window, f.size - offset) : 0;
  }
  return window;
}

Result<size_t> Client::Impl::PreadOnce(int fd, void* buf, size_t n, uint64_t offset) {
  STRIA_ASSIGN_OR_RETURN(auto h, GetHandle(fd));
  OpenFile* f = h->file.get();
  std::shared_ptr<client::Prefetch> pf;
  uint64_t pf_gen = 0;
  {
    std::lock_guard lk(f->mu);
    pf = std::move(f->prefetch);
    f->prefetch.reset();
    pf_gen = f->gen;
  }
  if (pf) TakePrefetch(*f, pf, pf_gen);
  char* out = static_cast<char*>(buf);
  proto::Layout layout;
  std::string path;
  uint64_t window = 0, gen = 0;   // window > 0: read that much ahead, into the cache
  std::string extent;
  std::optional<proto::RepoSource> source;
  {
    std::lock_guard lk(f->mu);
    if (!CanRead(h->flags) && !h->cache_reads) return Err(EBADF, "read {}: not open for reading", h->path);
    if (f->type == proto::FT_DIR) return Err(EISDIR, "read {}: is a directory", h->path);
    STRIA_RETURN_IF_ERROR(FlushLocked(*f));   // read our own writes, through any handle
    if (offset >= f->size || n == 0) return size_t(0);
    n = static_cast<size_t>(std::min<uint64_t>(n, f->size - offset));
    // Served from the read-ahead extent when it holds the whole range.
    if (offset >= f->rc_offset && offset + n <= f->rc_offset + f->rc.size()) {
      std::memcpy(out, f->rc.data() + (offset - f->rc_offset), n);
      f->last_read_end = offset + n;
      return n;
    }
    window = ReadAheadLocked(*f, offset, n);
    // The reader has left the old extent: its buffer takes the next one
    // (new memory of a window's size, zeroed, costs more than the read).
    if (window > 0) {
      extent = std::move(f->rc);
      f->rc.clear();
    }
    f->last_read_end = offset + n;
    layout = f->layout;
    path = h->path;
    gen = f->gen;
    if (f->source) source = *f->source;
  }
  // The stores are read without the file's lock: reads of one file (the
  // kernel's parallel read-ahead) go on side by side.
  if (window == 0) {
    STRIA_RETURN_IF_ERROR(ReadStripes(layout, path, offset, out, n, source ? &*source : nullptr));
    return n;
  }
  extent.resize(window);   // no zeroing when the old one was as large
  STRIA_RETURN_IF_ERROR(
      ReadStripes(layout, path, offset, extent.data(), window, source ? &*source : nullptr));
  std::memcpy(out, extent.data(), n);
  std::lock_guard lk(f->mu);
  if (f->gen == gen) {
    f->rc = std::move(extent);
    f->rc_offset = offset;
  }
  return n;
}

Result<size_t> Client::Pread(int fd, void* buf, size_t n, uint64_t offset) {
  for (int attempt = 0;; attempt++) {
    auto r = impl_->PreadOnce(fd, buf, n, offset);
    if (r.ok() || r.status().code() != ESTALE || attempt == 2) return r;
    // ESTALE from a store: the bucket object of this released file changed.
    STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
    {
      std::lock_guard lk(h->file->mu);
      if (!h->file->source) return r;
    }
    STRIA_RETURN_IF_ERROR(impl_->Refresh(*h->file, "read " + h->path));
  }
}

bool Client::PreadAsync(int fd, size_t n, uint64_t offset, ReadDone done) {
  if (n == 0 || n > kAsyncReadMax) return false;
  auto h = impl_->GetHandle(fd);
  if (!h.ok()) return false;   // Pread reports it
  OpenFile* f = (*h)->file.get();
  proto::ObjReadRequest req;
  std::string what;
  {
    std::lock_guard lk(f->mu);
    // What Pread does in more than one round trip, or does first, is left
    // to it: unsent writes, the prefetch of a small file, released files,
    // the read cache and read-ahead.
    if (!CanRead((*h)->flags) && !(*h)->cache_reads) return false;
    if (f->type != proto::FT_REG || f->source || f->prefetch || !f->wb.empty() || f->flying) return false;
    if (offset >= f->size) return false;
    n = static_cast<size_t>(std::min<uint64_t>(n, f->size - offset));
    if (offset >= f->rc_offset && offset + n <= f->rc_offset + f->rc.size()) return false;
    const proto::Layout& l = f->layout;
    if (l.stripe_count() == 0 || l.targets_size() < static_cast<int>(l.stripe_count())) return false;
    auto chunks = client::SplitRange(l.stripe_size(), l.stripe_count(), offset, n);
    if (chunks.size() != 1) return false;
    if (impl_->ReadAheadLocked(*f, offset, n) > 0) return false;
    f->last_read_end = offset + n;
    req = ChunkRead(l, chunks[0]);
    what = "read " + (*h)->path;
  }
  auto ch = impl_->StoreFor(req.target());
  if (!ch.ok()) return false;   // Pread waits for the store, or reports it
  {
    std::lock_guard lk(impl_->async_mu);
    if (impl_->async_stop) return false;
    impl_->async_reads++;
  }
  struct Pending {
    std::unique_ptr<char[]> buf;
    size_t n;
    ReadDone done;
  };
  auto p = std::make_shared<Pending>(Pending{std::unique_ptr<char[]>(new char[n]), n, std::move(done)});
  rpc::CallOptions co;
  co.timeout = impl_->opt.timeout;
  co.into = std::span<char>(p->buf.get(), n);
  uint32_t target = req.target();
  (*ch)->Call(proto::OBJ_READ, req.SerializeAsString(), {}, co,
              [this, p, fd, offset, target, what = std::move(what)](rpc::CallResult&& r) {
    if (r.status.ok()) {
      LandChunk(r, p->buf.get(), p->n);
      p->done(std::span<const char>(p->buf.get(), p->n));
    } else if (!r.status.retryable() && r.status.code() != ENXIO) {
      p->done(impl_->StoreError(r.status, target, what));
    } else {
      // A store restarting or a lost connection: Pread's retries, on a
      // thread of their own (this one delivers every reply of the client).
      std::thread([this, p, fd, offset] {
        auto got = Pread(fd, p->buf.get(), p->n, offset);
        if (got.ok()) p->done(std::span<const char>(p->buf.get(), *got));
        else p->done(got.status());
        impl_->AsyncReadDone();
      }).detach();
      return;
    }
    impl_->AsyncReadDone();
  });
  return true;
}

Result<size_t> Client::Read(int fd, void* buf, size_t n) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  uint64_t off;
  {
    std::lock_guard lk(h->file->mu);
    off = h->pos;
  }
  STRIA_ASSIGN_OR_RETURN(size_t got, Pread(fd, buf, n, off));
  std::lock_guard lk(h->file->mu);
  h->pos = off + got;
  return got;
}

Result<uint64_t> Client::Impl::SeekDataLocked(OpenFile& f, uint64_t offset, bool hole, const std::string& what) {
  STRIA_RETURN_IF_ERROR(FlushLocked(f));   // bytes not yet sent are data too
  if (offset >= f.size) return Err(ENXIO, "{}: offset {} is at or past the end ({} bytes)", what, offset, f.size);
  const proto::Layout& l = f.layout;
  const uint64_t unit = l.stripe_size(), count = l.stripe_count();
  // A released file's holes are the bucket's business: all of it is data.
  if (f.source || unit == 0 || count == 0 || l.targets_size() < static_cast<int>(count)) {
    return hole ? f.size : offset;
  }
  // Object i's bytes are in file order: the first of them at or after
  // offset is where its search starts, and the answer is the least of what
  // the objects find, mapped back to file offsets.
  const uint64_t u = offset / unit, row = u / count, col = u % count, in_unit = offset % unit;
  std::vector<StoreOp> ops;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t from = i == col ? row * unit + in_unit : i > col ? row * unit : (row + 1) * unit;
    proto::ObjSeekRequest req;
    req.set_target(l.targets(i));
    req.set_ino(l.object_id());
    req.set_index(i);
    req.set_offset(from);
    req.set_hole(hole);
    StoreOp op;
    op.target = l.targets(i);
    op.type = proto::OBJ_SEEK;
    op.message = req.SerializeAsString();
    ops.push_back(std::move(op));
  }
  STRIA_RETURN_IF_ERROR(RunStoreOps(ops, what));
  uint64_t best = hole ? f.size : UINT64_MAX;
  for (uint32_t i = 0; i < count; i++) {
    proto::ObjSeekReply r;
    if (!r.ParseFromString(ops[i].result.message)) return Err(EBADMSG, "{}: malformed reply from target {}", what, ops[i].target);
    if (!r.found()) continue;
    uint64_t o = r.offset();
    uint64_t at = ((o / unit) * count + i) * unit + o % unit;
    best = std::min(best, at);
  }
  if (hole) return std::max(offset, std::min(best, f.size));
  if (best >= f.size) return Err(ENXIO, "{}: no data at or after offset {}", what, offset);
  return std::max(offset, best);
}

Result<uint64_t> Client::Seek(int fd, int64_t offset, int whence) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  std::lock_guard lk(h->file->mu);
  if (whence == SEEK_DATA || whence == SEEK_HOLE) {
    std::string what = fmt::format("seek {} ({})", h->path, whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE");
    if (offset < 0) return Err(ENXIO, "{}: negative offset", what);
    if (h->file->type != proto::FT_REG) return Err(EINVAL, "{}: not a regular file", what);
    STRIA_ASSIGN_OR_RETURN(uint64_t at, impl_->SeekDataLocked(*h->file, static_cast<uint64_t>(offset),
                                                             whence == SEEK_HOLE, what));
    h->pos = at;
    return at;
  }
  int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? int64_t(h->pos)
                 : whence == SEEK_END ? int64_t(h->file->size) : -1;
  if (base < 0 || base + offset < 0) return Err(EINVAL, "seek {}: bad offset or whence", h->path);
  h->pos = static_cast<uint64_t>(base + offset);
  return h->pos;
}

Status Client::Fsync(int fd) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  std::lock_guard lk(h->file->mu);
  return impl_->SyncLocked(*h->file);
}

Status Client::Ftruncate(int fd, uint64_t size) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  if (!CanWrite(h->flags)) return Err(EINVAL, "truncate {}: not open for writing", h->path);
  if (h->file->type != proto::FT_REG) return Err(EISDIR, "truncate {}: not a regular file", h->path);
  proto::SetAttrRequest req;
  req.set_size(size);
  req.set_open_for_write(true);
  return impl_->TruncateIno(h->cred, h->file->ino, req, "truncate " + h->path).status();
}

Result<FileAttr> Client::Fstat(int fd) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  proto::GetAttrRequest req;
  *req.mutable_cred() = h->cred;
  req.set_ino(h->file->ino);
  auto r = impl_->MetaCall<proto::GetAttrReply>(proto::GET_ATTR, req);
  if (!r.ok()) return r.status().Prefixed("fstat " + h->path);
  return impl_->WithLocalSize(r->attr());
}

Status Client::AllowCacheReads(int fd) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  std::lock_guard lk(h->file->mu);
  h->cache_reads = true;
  return Status::Ok();
}

Status Client::Close(int fd) {
  STRIA_ASSIGN_OR_RETURN(auto h, impl_->GetHandle(fd));
  Status st;
  if (CanWrite(h->flags)) {
    // Everything written to the file through this client is made durable,
    // as close-to-open asks (other handles' bytes too: they are one file).
    std::lock_guard lk(h->file->mu);
    st = impl_->SyncLocked(*h->file);
  }
  impl_->DropHandle(fd, h);
  // The data is durable and committed by now; meta only has to forget the
  // open. That needs no wait: a lost CLOSE is repaired by the next
  // heartbeat, which carries the session's whole open set.
  proto::CloseRequest req;
  req.set_session(impl_->session);
  req.set_ino(h->file->ino);
  rpc::CallOptions co;
  co.timeout = impl_->opt.timeout;
  impl_->meta->Call(proto::CLOSE, req.SerializeAsString(), {}, co, [](rpc::CallResult&&) {});
  return st;
}

}  // namespace stria
