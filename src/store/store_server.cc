#include "store/store_server.h"

#include "proto/stria.pb.h"

namespace stria::store {

namespace {
constexpr uint64_t kMaxIo = 64ull << 20;
constexpr uint64_t kInlineRead = 128 << 10;   // bytes a read may be served on the io thread
constexpr uint64_t kDirectWrite = 128 << 10;  // bytes from which a write skips the page cache
constexpr uint64_t kMaxOffset = 1ull << 60;

// Offsets and lengths are checked before any disk work: a bad request must
// never reach the file system (or overflow offset + length).
Status CheckRange(const char* op, uint64_t offset, uint64_t length) {
  if (length > kMaxIo) return Err(EINVAL, "{} of {} bytes: more than {} per request", op, length, kMaxIo);
  if (offset > kMaxOffset || offset + length > kMaxOffset) {
    return Err(EINVAL, "{} of {} bytes at offset {}: out of range", op, length, offset);
  }
  return Status::Ok();
}
}  // namespace

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; i++) {
    threads_.emplace_back([this] {
      while (true) {
        std::function<void()> job;
        {
          std::unique_lock lk(mu_);
          cv_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
          if (jobs_.empty()) return;
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    });
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

void WorkerPool::Shutdown() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Post(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

StoreService::StoreService(std::vector<std::unique_ptr<Target>>* targets, WorkerPool* pool,
                           std::string name, Hydrator* hydrator)
    : targets_(targets), pool_(pool), name_(std::move(name)), hydrator_(hydrator) {
  auto& reg = metrics::Registry::Default();
  bytes_written_ = &reg.GetCounter("stria_store_bytes_written_total", "Object bytes written");
  bytes_read_ = &reg.GetCounter("stria_store_bytes_read_total", "Object bytes read");
}

Target* StoreService::Find(uint32_t id) const {
  for (auto& t : *targets_) {
    if (t->id() == id && id != 0) return t.get();
  }
  return nullptr;
}

void StoreService::Forget(Target* t, uint64_t object_id, uint32_t index) {
  if (hydrator_) hydrator_->Forget(t->id(), object_id, index);
}

Status StoreService::Unknown(uint32_t target) const {
  return Err(ENOENT, "store {} does not serve target {}", name_, target);
}

void StoreService::RegisterHandlers(rpc::Server& server) {
  auto unknown = [this](uint32_t id) { return Unknown(id); };
  server.HandleTyped<proto::ObjWriteRequest>(
      proto::OBJ_WRITE, [this, unknown](proto::ObjWriteRequest&& req, rpc::Request&& raw,
                                        rpc::Responder resp) {
        Target* t = Find(req.target());
        if (!t) return resp.Fail(unknown(req.target()));
        if (Status st = CheckRange("write", req.offset(), raw.payload.size()); !st.ok()) return resp.Fail(st);
        auto payload = std::make_shared<std::string>(std::move(raw.payload));
        pool_->Post([this, t, req = std::move(req), payload, resp] {
          // Large writes bypass the store's page cache (object_store.h).
          Status st = t->Write(req.ino(), req.index(), req.offset(), payload->data(), payload->size(),
                               req.sync(), /*direct=*/payload->size() >= kDirectWrite);
          Forget(t, req.ino(), req.index());
          if (!st.ok()) return resp.Fail(st);
          bytes_written_->Inc(payload->size());
          resp.Reply(proto::ObjWriteReply());
        });
      });
  server.HandleTyped<proto::ObjReadRequest>(
      proto::OBJ_READ, [this, unknown](proto::ObjReadRequest&& req, rpc::Request&&, rpc::Responder resp) {
        Target* t = Find(req.target());
        if (!t) return resp.Fail(unknown(req.target()));
        bool only = req.has_fetch() && req.fetch().hydrate_only();
        if (Status st = CheckRange("read", req.offset(), only ? 0 : req.length()); !st.ok()) return resp.Fail(st);
        if (!req.has_fetch()) {
          // A small read the page cache holds is answered here, on the io
          // thread: a hand-off to a worker costs a thread wake-up, which
          // is most of a 4 KiB read's time. Else a worker waits for the disk.
          if (req.length() <= kInlineRead) {
            auto data = t->ReadPayload(req.ino(), req.index(), req.offset(), req.length(), /*nowait=*/true);
            if (data.ok() || data.status().code() != EAGAIN) {
              if (!data.ok()) return resp.Fail(data.status());
              bytes_read_->Inc(data->length);
              return resp.Reply(proto::ObjReadReply(), std::move(data).value());
            }
          }
          return pool_->Post([this, t, req = std::move(req), resp] {
            auto data = t->ReadPayload(req.ino(), req.index(), req.offset(), req.length());
            if (!data.ok()) return resp.Fail(data.status());
            bytes_read_->Inc(data->length);
            resp.Reply(proto::ObjReadReply(), std::move(data).value());
          });
        }
        // A released file: its missing chunks come from the bucket first.
        if (!hydrator_) return resp.Fail(Err(ENOTSUP, "store {} does not hydrate from buckets", name_));
        if (Status st = Hydrator::Validate(req.fetch(), req.index()); !st.ok()) return resp.Fail(st);
        auto read = [this, t, req, resp] {
          if (req.fetch().hydrate_only()) {
            // The caller reports the file resident next: durable first.
            if (Status st = t->Fsync(req.ino(), {req.index()}); !st.ok()) return resp.Fail(st);
            return resp.Reply(proto::ObjReadReply());
          }
          auto data = hydrator_->Read(t, req.ino(), req.index(), req.fetch(), req.offset(), req.length());
          if (!data.ok()) return resp.Fail(data.status());
          bytes_read_->Inc(data->length);
          resp.Reply(proto::ObjReadReply(), std::move(data).value());
        };
        // Off the io thread: planning reads the object's residency map.
        pool_->Post([this, t, req = std::move(req), resp, read = std::move(read)]() mutable {
          hydrator_->Ensure(t, req.ino(), req.index(), req.fetch(), req.offset(), req.length(),
                            [resp, read = std::move(read)](Status st) mutable {
                              if (!st.ok()) return resp.Fail(st);
                              read();
                            });
        });
      });
  server.HandleTyped<proto::ObjTruncateRequest>(
      proto::OBJ_TRUNCATE,
      [this, unknown](proto::ObjTruncateRequest&& req, rpc::Request&&, rpc::Responder resp) {
        Target* t = Find(req.target());
        if (!t) return resp.Fail(unknown(req.target()));
        if (req.length() > kMaxOffset) {
          return resp.Fail(Err(EINVAL, "truncate to {} bytes: out of range", req.length()));
        }
        pool_->Post([this, t, req = std::move(req), resp] {
          Status st = t->Truncate(req.ino(), req.index(), req.length());
          Forget(t, req.ino(), req.index());
          if (!st.ok()) return resp.Fail(st);
          resp.Reply(proto::ObjTruncateReply());
        });
      });
  server.HandleTyped<proto::ObjFsyncRequest>(
      proto::OBJ_FSYNC, [this, unknown](proto::ObjFsyncRequest&& req, rpc::Request&&, rpc::Responder resp) {
        Target* t = Find(req.target());
        if (!t) return resp.Fail(unknown(req.target()));
        pool_->Post([t, req = std::move(req), resp] {
          std::vector<uint32_t> idx(req.indexes().begin(), req.indexes().end());
          Status st = t->Fsync(req.ino(), idx);
          if (!st.ok()) return resp.Fail(st);
          resp.Reply(proto::ObjFsyncReply());
        });
      });
  server.HandleTyped<proto::ObjSeekRequest>(
      proto::OBJ_SEEK, [this, unknown](proto::ObjSeekRequest&& req, rpc::Request&&, rpc::Responder resp) {
        Target* t = Find(req.target());
        if (!t) return resp.Fail(unknown(req.target()));
        pool_->Post([t, req = std::move(req), resp] {   // may read the file system's extent map
          auto at = t->Seek(req.ino(), req.index(), req.offset(), req.hole());
          if (!at.ok()) return resp.Fail(at.status());
          proto::ObjSeekReply r;
          r.set_found(at->has_value());
          if (*at) r.set_offset(**at);
          resp.Reply(r);
        });
      });
  server.HandleTyped<proto::ObjFallocateRequest>(
      proto::OBJ_FALLOCATE,
      [this, unknown](proto::ObjFallocateRequest&& req, rpc::Request&&, rpc::Responder resp) {
        Target* t = Find(req.target());
        if (!t) return resp.Fail(unknown(req.target()));
        if (req.offset() > kMaxOffset || req.length() > kMaxOffset - req.offset()) {
          return resp.Fail(Err(EINVAL, "fallocate of {} bytes at offset {}: out of range", req.length(),
                               req.offset()));
        }
        if (!proto::FallocateMode_IsValid(req.mode())) {
          return resp.Fail(Err(EINVAL, "fallocate: mode {} is unknown", static_cast<int>(req.mode())));
        }
        pool_->Post([this, t, req = std::move(req), resp] {
          Status st = req.mode() == proto::FA_PUNCH_HOLE
                          ? t->PunchHole(req.ino(), req.index(), req.offset(), req.length())
                          : t->Allocate(req.ino(), req.index(), req.offset(), req.length());
          Forget(t, req.ino(), req.index());
          if (!st.ok()) return resp.Fail(st);
          resp.Reply(proto::ObjFallocateReply());
        });
      });
  server.Handle(proto::PING, [](rpc::Request&&, rpc::Responder resp) { resp.Reply(proto::PingReply()); });
}

}  // namespace stria::store
