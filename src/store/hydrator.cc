#include "store/hydrator.h"

#include <spdlog/spdlog.h>

#include "client/striping.h"
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
  Target* target = nullptr;
  uint64_t ino = 0;            // the file, for the report
  // Wholly in, durable and marked: to report (once).
  bool Done() const { return in == chunks && unsynced.empty() && syncing == 0; }
};

struct Hydrator::Job {
  Key key;
  Target* target = nullptr;
  proto::RepoFetch fetch;
  uint64_t chunk = 0;
};

Hydrator::Hydrator(Options options, Notify notify) : options_(std::move(options)), notify_(std::move(notify)) {
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
    auto& o = *it->second;
    if (o.fetching.empty() && o.unsynced.empty() && o.syncing == 0) it = objects_.erase(it);
    else ++it;
  }
}

void Hydrator::Run() {
  while (true) {
    Job job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !demand_.empty() || !ahead_.empty(); });
      if (stop_) return;
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
  if (st.ok()) {
    auto s3 = ClientFor(src.link());
    st = s3.status();
    if (st.ok()) {
      std::string buf(len, '\0');
      std::vector<repo::RangeRead> r(1);
      r[0].offset = file_off;
      r[0].length = len;
      r[0].out = buf.data();
      st = (*s3)->GetRanges(bucket, src.key(), src.etag(), r);
      // Served from the page cache at once; made durable in batches.
      if (st.ok()) st = job.target->Write(object_id, index, obj_off, buf.data(), len, false);
    }
  }
  if (!st.ok()) {
    spdlog::warn("{}: {}", what, st.ToString());
    // ESTALE tells the client to refresh the file; anything else is EIO.
    st = Status(st.code() == ESTALE ? ESTALE : EIO, fmt::format("{}: {}", what, st.ToString()));
  }
  std::vector<std::shared_ptr<Need>> waiting;
  std::vector<uint64_t> batch;
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
        obj.unsynced.push_back(job.chunk);
        if (obj.unsynced.size() * g.piece >= kSyncBytes || obj.in == obj.chunks) {
          batch.swap(obj.unsynced);
          obj.syncing++;
        }
      }
    }
  }
  for (auto& n : waiting) n->Finish(st);
  if (!batch.empty()) Sync(job.key, batch);
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
      }
    }
    if (obj->Done() && !obj->notified) report = obj->notified = true;
  }
  if (report) Report(obj->ino, object_id, index);
}

}  // namespace stria::store
