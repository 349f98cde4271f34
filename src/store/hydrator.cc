#include "store/hydrator.h"

#include <spdlog/spdlog.h>

#include <sys/mman.h>

#include <cstdlib>

#include "client/striping.h"
#include "common/metrics.h"
#include "repo/credentials.h"

namespace stria::store {

namespace {
constexpr uint64_t kMaxChunk = 16ull << 20;    // a chunk is fetched into memory whole
constexpr uint64_t kMaxStripe = 4ull << 30;    // as meta allows
constexpr uint64_t kMaxSize = 1ull << 60;
constexpr size_t kMaxObjects = 20000;          // objects remembered beyond those being fetched
constexpr uint64_t kSyncBytes = 16ull << 20;   // fetched bytes made durable (and marked) with one fsync

// Where the chunks of one stripe object are. A chunk is a stripe unit, or
// a piece of one when units are larger than kMaxChunk: it never crosses a
// unit, so it is one contiguous range of the bucket object.
struct Geometry {
  uint64_t ss, count, index, objlen, piece, per_unit;
  Geometry(const proto::RepoFetch& f, uint32_t i)
      : ss(f.stripe_size()), count(f.stripe_count()), index(i),
        objlen(client::ObjectLength(f.stripe_size(), f.stripe_count(), i, f.source().size())),
        piece(std::min(ss, kMaxChunk)), per_unit((ss + piece - 1) / piece) {}
  uint64_t ChunkOf(uint64_t o) const { return (o / ss) * per_unit + (o % ss) / piece; }
  uint64_t Chunks() const { return objlen == 0 ? 0 : ChunkOf(objlen - 1) + 1; }
  uint64_t Start(uint64_t c) const { return (c / per_unit) * ss + (c % per_unit) * piece; }
  uint64_t Length(uint64_t c) const {
    uint64_t unit_end = (c / per_unit + 1) * ss;
    return std::min({Start(c) + piece, unit_end, objlen}) - Start(c);
  }
  uint64_t FileOffset(uint64_t o) const { return (o / ss) * ss * count + index * ss + o % ss; }
};
}  // namespace

// Chunk buffers (4 KiB-aligned, for O_DIRECT), reused: a new one costs
// page faults and the kernel's zeroing of every byte on first touch, a
// fifth of a store's CPU in a first read. Buffers hold on to the pool,
// which may outlive the hydrator while replies that point into them wait
// to be sent.
class Hydrator::ChunkPool {
 public:
  explicit ChunkPool(uint64_t keep)
      : keep_(keep),
        allocated_(&metrics::Registry::Default().GetCounter(
            "stria_store_hydration_buffers_allocated_total",
            "Chunk buffers hydration allocated anew (not taken from its pool)")) {}
  ~ChunkPool() { Trim(); }

  static std::shared_ptr<const char> Get(const std::shared_ptr<ChunkPool>& pool, uint64_t len) {
    const uint64_t cap = (len + kAlign - 1) / kAlign * kAlign;
    char* p = nullptr;
    {
      std::lock_guard lk(pool->mu_);
      auto it = pool->free_.find(cap);
      if (it != pool->free_.end()) {
        p = it->second;
        pool->free_.erase(it);
        pool->kept_ -= cap;
      }
    }
    if (!p) {
      // posix_memalign: unlike aligned_alloc, any size (a short last
      // chunk) may have a huge page's alignment.
      void* q = nullptr;
      if (::posix_memalign(&q, kHuge, cap) != 0) return nullptr;
      p = static_cast<char*>(q);
      pool->allocated_->Inc();
      // Huge pages where the system offers them: a new 8 MiB chunk then
      // costs 4 faults instead of 2,048.
      ::madvise(p, cap, MADV_HUGEPAGE);
    }
    return std::shared_ptr<const char>(p, [pool, cap](const char* q) { pool->Put(const_cast<char*>(q), cap); });
  }
  // Frees the buffers nobody uses (the hydrator is idle).
  void Trim() {
    std::multimap<uint64_t, char*> free;
    {
      std::lock_guard lk(mu_);
      free.swap(free_);
      kept_ = 0;
    }
    for (auto& [cap, p] : free) std::free(p);
  }

 private:
  static constexpr uint64_t kAlign = 1 << 20;   // sizes rounded up: chunks are whole MiB but for the last
  static constexpr uint64_t kHuge = 2 << 20;    // a huge page (x86-64); also a multiple of O_DIRECT's 4 KiB
  void Put(char* p, uint64_t cap) {
    {
      std::lock_guard lk(mu_);
      if (kept_ + cap <= keep_) {
        free_.emplace(cap, p);
        kept_ += cap;
        return;
      }
    }
    std::free(p);
  }
  std::mutex mu_;
  const uint64_t keep_;
  uint64_t kept_ = 0;                       // GUARDED_BY(mu_)
  std::multimap<uint64_t, char*> free_;     // GUARDED_BY(mu_): by capacity
  metrics::Counter* allocated_;
};

// One read waiting for its missing chunks.
struct Hydrator::Need {
  std::mutex mu;
  int left = 0;
  Status status;
  std::function<void(Status)> done;
  void Finish(const Status& st) {
    std::function<void(Status)> call;
    Status out;
    {
      std::lock_guard lk(mu);
      if (!st.ok() && status.ok()) status = st;
      if (--left > 0) return;
      call = std::move(done);
      out = status;
    }
    call(out);
  }
};

// What this store knows of one stripe object being hydrated.
struct Hydrator::Object {
  uint64_t chunks = 0;
  std::vector<uint8_t> have;   // 1 per chunk in
  uint64_t in = 0;
  bool notified = false;       // reported complete by this process
  std::map<uint64_t, std::vector<std::shared_ptr<Need>>> fetching;   // chunk -> readers waiting
  // Written and served, not yet durable nor marked: made so in batches of
  // kSyncBytes (or when the object is complete) by one fsync.
  std::vector<uint64_t> unsynced;
  int syncing = 0;             // batches being made durable now
  int writing = 0;             // chunks in (served from memory) being written now
  // Chunks held in memory since their fetch (Options::memory).
  struct Fresh {
    std::shared_ptr<const char> buf;
    uint64_t length = 0;
    std::shared_ptr<const std::vector<uint32_t>> crcs;   // of buf's whole blocks
    uint64_t served = 0;       // bytes read from it
    bool written = false;      // on the target: may be dropped
  };
  std::map<uint64_t, Fresh> fresh;
  Target* target = nullptr;
  uint64_t ino = 0;            // the file, for the report
  // Wholly in, durable and marked: to report (once).
  bool Done() const { return in == chunks && writing == 0 && unsynced.empty() && syncing == 0; }
  bool Idle() const { return fetching.empty() && writing == 0 && unsynced.empty() && syncing == 0 && fresh.empty(); }
};

struct Hydrator::Job {
  Key key;
  Target* target = nullptr;
  proto::RepoFetch fetch;
  uint64_t chunk = 0;
};

Hydrator::Hydrator(Options options, Notify notify)
    : options_(std::move(options)), notify_(std::move(notify)),
      // The pool keeps as much as can be in use at once (chunks held in
      // memory, plus one per fetch in flight): kept less, a busy hydration
      // frees buffers and faults new ones in, 4 KiB at a time.
      pool_(std::make_shared<ChunkPool>(options_.memory + uint64_t(std::max(1, options_.fetchers)) * kMaxChunk)) {
  for (int i = 0; i < std::max(1, options_.fetchers); i++) threads_.emplace_back([this] { Run(); });
}

Hydrator::~Hydrator() { Stop(); }

void Hydrator::Stop() {
  {
    std::lock_guard lk(mu_);
    if (stop_ && threads_.empty()) return;
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Readers still waiting get an answer: the store is going away. What
  // was fetched is made durable, so that a restart need not fetch it again.
  std::vector<std::shared_ptr<Need>> waiting;
  std::vector<std::pair<Key, std::vector<uint64_t>>> batches;
  {
    std::lock_guard lk(mu_);
    for (auto& [key, obj] : objects_) {
      for (auto& [chunk, needs] : obj->fetching) waiting.insert(waiting.end(), needs.begin(), needs.end());
      obj->fetching.clear();
      if (!obj->unsynced.empty()) {
        batches.emplace_back(key, std::move(obj->unsynced));
        obj->unsynced.clear();
        obj->syncing++;
      }
    }
    demand_.clear();
    ahead_.clear();
  }
  for (auto& n : waiting) n->Finish(Err(ESHUTDOWN, "the store is shutting down"));
  for (auto& [key, chunks] : batches) Sync(key, chunks);
}

Status Hydrator::Validate(const proto::RepoFetch& f, uint32_t index) {
  const auto& s = f.source();
  if (f.stripe_size() == 0 || f.stripe_size() > kMaxStripe) {
    return Err(EINVAL, "fetch: stripe size {} is out of range (1 byte to {} GiB)", f.stripe_size(), kMaxStripe >> 30);
  }
  if (f.stripe_count() == 0 || index >= f.stripe_count()) {
    return Err(EINVAL, "fetch: object {} of a stripe count of {}", index, f.stripe_count());
  }
  if (s.size() > kMaxSize) return Err(EINVAL, "fetch: object size {} is out of range", s.size());
  if (s.key().empty()) return Err(EINVAL, "fetch: no object key");
  std::string bucket, prefix;
  STRIA_RETURN_IF_ERROR(repo::ParseS3Url(s.link().url(), &bucket, &prefix));
  const auto& ep = s.link().endpoint();
  if (ep.rfind("http://", 0) != 0 && ep.rfind("https://", 0) != 0) {
    return Err(EINVAL, "fetch: endpoint '{}' is not an http:// or https:// URL", ep);
  }
  return Status::Ok();
}

std::shared_ptr<Hydrator::Object> Hydrator::FindOrLoad(const Key& key, Target* t, uint64_t chunks, Status* st) {
  auto it = objects_.find(key);
  if (it != objects_.end()) return it->second;
  auto have = t->LoadResidency(std::get<1>(key), std::get<2>(key));
  if (!have.ok()) {
    *st = have.status();
    return nullptr;
  }
  auto obj = std::make_shared<Object>();
  obj->target = t;
  obj->chunks = chunks;
  obj->have = std::move(*have);
  obj->have.resize(chunks, 0);
  for (uint8_t b : obj->have) obj->in += b ? 1 : 0;
  Trim();
  objects_[key] = obj;
  return obj;
}

void Hydrator::Ensure(Target* t, uint64_t object_id, uint32_t index, const proto::RepoFetch& fetch,
                      uint64_t offset, uint64_t length, std::function<void(Status)> done) {
  const Geometry g(fetch, index);
  if (length == 0 || offset >= g.objlen) return done(Status::Ok());   // past the end: nothing to fetch
  const uint64_t first = g.ChunkOf(offset), last = g.ChunkOf(std::min(offset + length, g.objlen) - 1);
  const Key key{t->id(), object_id, index};
  auto need = std::make_shared<Need>();
  need->done = std::move(done);
  bool queued = false, complete = false, waits = false;
  Status st;
  {
    // The whole plan is made under mu_: no fetch can finish (and count
    // down need) before every chunk it waits for is counted in.
    std::lock_guard lk(mu_);
    auto obj = stop_ ? nullptr : FindOrLoad(key, t, g.Chunks(), &st);
    if (stop_) st = Err(ESHUTDOWN, "the store is shutting down");
    auto want = [&](uint64_t c, bool demand) {
      if (c >= obj->chunks || obj->have[c]) return;
      auto it = obj->fetching.find(c);
      if (it == obj->fetching.end()) {
        it = obj->fetching.emplace(c, std::vector<std::shared_ptr<Need>>()).first;
        (demand ? demand_ : ahead_).push_back(Job{key, t, fetch, c});
        queued = true;
      }
      if (demand) {
        it->second.push_back(need);
        need->left++;
      }
    };
    if (obj) {
      for (uint64_t c = first; c <= last; c++) want(c, true);
      if (obj->in < obj->chunks) {
        uint64_t ahead = std::max<uint64_t>(1, options_.read_ahead / g.piece);
        for (uint64_t c = last + 1; c <= last + ahead; c++) want(c, false);
      }
      // All in, but not reported by this process (it restarted, or a
      // report was lost): report it again.
      if (obj->Done() && !obj->notified) complete = obj->notified = true;
    }
    waits = need->left > 0;   // read now: once mu_ is free, fetches count it down
  }
  if (!st.ok()) return need->done(st);
  if (queued) cv_.notify_all();
  if (complete) Report(fetch.source().ino(), object_id, index);
  if (!waits) need->done(Status::Ok());   // else the last fetch it waits for calls done
}

void Hydrator::Report(uint64_t ino, uint64_t object_id, uint32_t index) {
  proto::RepoHydrated h;
  h.set_ino(ino);
  h.set_object_id(object_id);
  h.add_indexes(index);
  notify_(h);
}

void Hydrator::Trim() {
  if (objects_.size() < kMaxObjects) return;
  for (auto it = objects_.begin(); it != objects_.end() && objects_.size() > kMaxObjects / 2;) {
    if (it->second->Idle()) it = objects_.erase(it);
    else ++it;
  }
}

void Hydrator::Run() {
  while (true) {
    Job job;
    {
      std::unique_lock lk(mu_);
      auto work = [this] { return stop_ || !demand_.empty() || !ahead_.empty(); };
      if (!cv_.wait_for(lk, kIdle, work)) {
        // Idle: give back the memory kept for chunks. Only when no thread
        // took a job for that long: a thread's own wait says nothing of
        // the others, and a trim in the middle of a hydration makes every
        // chunk after it new memory, zeroed by the kernel.
        bool idle = std::chrono::steady_clock::now() - last_job_ >= kIdle;
        lk.unlock();
        if (idle) pool_->Trim();
        continue;
      }
      if (stop_) return;
      last_job_ = std::chrono::steady_clock::now();
      auto& q = !demand_.empty() ? demand_ : ahead_;
      job = std::move(q.front());
      q.pop_front();
    }
    Fetch(job);
  }
}

Result<std::shared_ptr<repo::S3Client>> Hydrator::ClientFor(const proto::RepoLink& link) {
  std::string key = link.endpoint() + "|" + link.region() + "|" + link.profile() + "|" +
                    (link.virtual_host() ? "v" : "p");
  std::lock_guard lk(s3_mu_);
  auto& c = s3_[key];
  if (!c) {
    auto creds = repo::LoadCredentials(link.profile());
    if (!creds.ok()) {
      s3_.erase(key);
      return creds.status().Prefixed("credentials of this store");
    }
    repo::S3Endpoint ep{link.endpoint(), link.region().empty() ? "us-east-1" : link.region(), link.virtual_host()};
    c = std::make_shared<repo::S3Client>(ep, *creds, options_.s3);
  }
  return c;
}

void Hydrator::Fetch(const Job& job) {
  const auto& src = job.fetch.source();
  const uint32_t index = std::get<2>(job.key);
  const uint64_t object_id = std::get<1>(job.key);
  const Geometry g(job.fetch, index);
  const uint64_t obj_off = g.Start(job.chunk);
  const uint64_t len = g.Length(job.chunk);
  const uint64_t file_off = g.FileOffset(obj_off);
  std::string bucket, prefix;
  Status st = repo::ParseS3Url(src.link().url(), &bucket, &prefix);
  std::string what = fmt::format("fetch of {}/{}/{} bytes {}-{}", src.link().endpoint(), bucket, src.key(),
                                 file_off, file_off + len - 1);
  std::shared_ptr<const char> mem;   // the chunk, 4 KiB-aligned for O_DIRECT
  // Its blocks' CRCs, taken as the bytes come in: for the target's block
  // checksums and the replies' frames, which would each read them again.
  auto crcs = std::make_shared<std::vector<uint32_t>>(len / kBlockSize);
  if (st.ok()) {
    auto s3 = ClientFor(src.link());
    st = s3.status();
    if (st.ok()) {
      mem = ChunkPool::Get(pool_, len);
      if (!mem) st = Err(ENOMEM, "no memory for {} bytes", len);
    }
    if (st.ok()) {
      std::vector<repo::RangeRead> r(1);
      r[0].offset = file_off;
      r[0].length = len;
      r[0].out = const_cast<char*>(mem.get());
      static_assert(repo::RangeRead::kCrcBlock == kBlockSize);
      r[0].block_crcs = crcs->data();
      st = (*s3)->GetRanges(bucket, src.key(), src.etag(), r);
    }
  }
  if (!st.ok()) {
    spdlog::warn("{}: {}", what, st.ToString());
    // ESTALE tells the client to refresh the file; anything else is EIO.
    st = Status(st.code() == ESTALE ? ESTALE : EIO, fmt::format("{}: {}", what, st.ToString()));
  }
  // In: its readers are served from memory while it is written.
  std::vector<std::shared_ptr<Need>> waiting;
  bool in = false;
  {
    std::lock_guard lk(mu_);
    auto it = objects_.find(job.key);
    if (it != objects_.end()) {
      auto& obj = *it->second;
      obj.ino = src.ino();
      auto w = obj.fetching.find(job.chunk);
      if (w != obj.fetching.end()) {
        waiting = std::move(w->second);
        obj.fetching.erase(w);
      }
      if (st.ok() && !obj.have[job.chunk]) {
        obj.have[job.chunk] = 1;
        obj.in++;
        obj.writing++;
        DropFresh(obj, job.chunk);
        obj.fresh[job.chunk] = Object::Fresh{mem, len, crcs};
        fresh_bytes_ += len;
        fresh_count_++;
        fresh_order_.emplace_back(job.key, job.chunk);
        in = true;
      }
    }
  }
  for (auto& n : waiting) n->Finish(st);
  if (!in) return;
  Status wst = job.target->Write(object_id, index, obj_off, mem.get(), len, false, /*direct=*/true, crcs->data());
  std::vector<uint64_t> batch;
  {
    std::lock_guard lk(mu_);
    auto& obj = *objects_.at(job.key);   // kept while writing > 0
    obj.writing--;
    auto f = obj.fresh.find(job.chunk);
    if (!wst.ok()) {
      // Not on the target: fetched again by the next read that needs it.
      spdlog::warn("{}: {}", what, wst.ToString());
      obj.have[job.chunk] = 0;
      obj.in--;
      if (f != obj.fresh.end()) DropFresh(obj, job.chunk);
    } else {
      if (f != obj.fresh.end()) {
        f->second.written = true;
        if (f->second.served >= f->second.length) DropFresh(obj, job.chunk);
      }
      obj.unsynced.push_back(job.chunk);
      if (obj.unsynced.size() * g.piece >= kSyncBytes || (obj.in == obj.chunks && obj.writing == 0)) {
        batch.swap(obj.unsynced);
        obj.syncing++;
      }
    }
    Evict();
  }
  if (!batch.empty()) Sync(job.key, batch);
}

Result<rpc::Payload> Hydrator::Read(Target* t, uint64_t object_id, uint32_t index, const proto::RepoFetch& fetch,
                                    uint64_t offset, uint64_t length) {
  const Geometry g(fetch, index);
  if (length == 0 || offset >= g.objlen) return rpc::Payload();
  const uint64_t end = std::min(offset + length, g.objlen);
  const Key key{t->id(), object_id, index};
  std::string out;   // pieces joined, when one chunk does not hold them all
  for (uint64_t at = offset; at < end;) {
    const uint64_t c = g.ChunkOf(at), start = g.Start(c);
    const uint64_t n = std::min(end, start + g.Length(c)) - at;
    std::shared_ptr<const char> mem;
    std::shared_ptr<const std::vector<uint32_t>> crcs;
    {
      std::lock_guard lk(mu_);
      auto it = objects_.find(key);
      if (it != objects_.end()) {
        auto& obj = *it->second;
        auto f = obj.fresh.find(c);
        if (f != obj.fresh.end()) {
          mem = f->second.buf;
          crcs = f->second.crcs;
          f->second.served += n;
          if (f->second.written && f->second.served >= f->second.length) DropFresh(obj, c);
        } else if (c < obj.chunks && !obj.have[c]) {
          // Lost since Ensure: its write failed (logged), so it is not on the target.
          return Err(EIO, "chunk {} of object {:x}.{} could not be stored; read again", c, object_id, index);
        }
      }
    }
    if (at == offset && at + n == end) {
      // One chunk holds the whole read: its bytes go out as they are.
      if (mem) {
        rpc::Payload p(mem, mem.get() + (at - start), n);
        // The chunk's blocks are the object's when it starts on one.
        if (start % kBlockSize == 0) p.crc = Crc32cOfRange(BlockJoiner(), mem.get(), at - start, at - start + n, *crcs);
        return p;
      }
      return t->ReadPayload(object_id, index, at, n);
    }
    if (mem) {
      out.append(mem.get() + (at - start), n);
    } else {
      auto piece = t->ReadPayload(object_id, index, at, n);
      if (!piece.ok()) return piece.status();
      out.append(piece->data, piece->length);
      if (at + n < end) out.resize(out.size() + (n - piece->length), '\0');   // a hole reads as zeros
    }
    at += n;
  }
  return rpc::Payload(std::move(out));
}

void Hydrator::Forget(uint32_t target, uint64_t object_id, uint32_t index) {
  std::lock_guard lk(mu_);
  auto it = objects_.find(Key{target, object_id, index});
  if (it == objects_.end()) return;
  auto& obj = *it->second;
  for (auto f = obj.fresh.begin(); f != obj.fresh.end();) {
    auto next = std::next(f);
    if (f->second.written) DropFresh(obj, f->first);
    f = next;
  }
}

void Hydrator::DropFresh(Object& obj, uint64_t chunk) {
  auto f = obj.fresh.find(chunk);
  if (f == obj.fresh.end()) return;
  fresh_bytes_ -= f->second.length;
  fresh_count_--;
  obj.fresh.erase(f);
}

void Hydrator::Evict() {
  auto live = [this](const std::pair<Key, uint64_t>& e) -> Object* {
    auto it = objects_.find(e.first);
    return it != objects_.end() && it->second->fresh.count(e.second) ? it->second.get() : nullptr;
  };
  // Oldest first, while over the limit; chunks still being written stay.
  for (auto e = fresh_order_.begin(); fresh_bytes_ > options_.memory && e != fresh_order_.end();) {
    Object* obj = live(*e);
    if (obj && !obj->fresh.at(e->second).written) {
      ++e;
      continue;
    }
    if (obj) DropFresh(*obj, e->second);
    e = fresh_order_.erase(e);
  }
  // Entries of chunks dropped once read: swept from the front, or all at
  // once when they pile up behind a live one.
  while (!fresh_order_.empty() && !live(fresh_order_.front())) fresh_order_.pop_front();
  if (fresh_order_.size() > 2 * fresh_count_ + 64) {
    std::erase_if(fresh_order_, [&](const auto& e) { return !live(e); });
  }
}

void Hydrator::Sync(const Key& key, const std::vector<uint64_t>& chunks) {
  std::shared_ptr<Object> obj;
  {
    std::lock_guard lk(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return;
    obj = it->second;   // objects being synced are never trimmed (syncing > 0)
  }
  const uint64_t object_id = std::get<1>(key);
  const uint32_t index = std::get<2>(key);
  Status st = obj->target->Fsync(object_id, {index});
  if (st.ok()) st = obj->target->MarkResident(object_id, index, chunks);
  bool report = false;
  {
    std::lock_guard lk(mu_);
    obj->syncing--;
    if (!st.ok()) {
      // Not durable: fetched again, by the next read that needs them.
      spdlog::warn("hydration of object {:x}.{}: {}", object_id, index, st.ToString());
      for (uint64_t c : chunks) {
        if (obj->have[c]) obj->in--;
        obj->have[c] = 0;
        DropFresh(*obj, c);
      }
    }
    if (obj->Done() && !obj->notified) report = obj->notified = true;
  }
  if (report) Report(obj->ino, object_id, index);
}

}  // namespace stria::store
