// Hydration of released files' stripe objects from their bucket
// (docs/data_repositories.md, "Hydration, precisely").
//
// A read that carries a RepoFetch waits until the chunks (stripe units) it
// covers are in this store. Each missing chunk is fetched once, however
// many readers wait for it: a ranged GET with If-Match on the ETag into
// memory, from where its readers are served at once (Read) while it is
// written to the target with O_DIRECT (the page cache would cost a copy of
// every byte, and a disk read to serve it). The chunk stays in memory
// until it is written and read once, or until newer chunks push it out
// (Options::memory); later reads come from the target. One
// fsync per batch of chunks then makes them durable, and only then are
// they marked in the object's residency map, so a crash leaves each chunk
// absent (fetched again) or right. Chunks after the ones a read needs are
// fetched ahead, so that a first sequential read keeps many GETs in
// flight. When all chunks of an object are in and durable, notify reports
// it (MetaLink sends it to stria-meta in a heartbeat at once).
//
// Credentials come from this process's environment or shared credentials
// file (the link's profile). Errors: ESTALE when the bucket object changed
// (412), EIO naming the endpoint, bucket, key and cause for everything else
// (an unreachable endpoint after S3Options::deadline_ms). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/rpc.h"
#include "proto/stria.pb.h"
#include "repo/s3_client.h"
#include "store/object_store.h"

namespace stria::store {

class Hydrator {
 public:
  struct Options {
    int fetchers = 16;     // GETs in flight at once from this store
    uint64_t read_ahead = 32ull << 20;   // bytes fetched beyond the end of a read (whole chunks, at least one)
    uint64_t memory = 256ull << 20;      // fetched chunks kept in memory to serve reads (soft: chunks not
                                         // yet written stay)
    repo::S3Options s3;
  };
  using Notify = std::function<void(const proto::RepoHydrated&)>;

  Hydrator(Options options, Notify notify);
  ~Hydrator();
  // Fails what waits and joins the fetch threads. Idempotent.
  void Stop();

  // Checks a client's fetch block for object index before any work.
  static Status Validate(const proto::RepoFetch& f, uint32_t index);

  // Calls done once the chunks of [offset, offset + length) of object
  // (object_id, index) on t are in (now, or later from a fetch thread), or
  // with the error that stopped one of them.
  void Ensure(Target* t, uint64_t object_id, uint32_t index, const proto::RepoFetch& fetch, uint64_t offset,
              uint64_t length, std::function<void(Status)> done);
  // After Ensure said they are in: bytes [offset, offset + length) of the
  // object, clipped to its length. From memory where the chunk was just
  // fetched (without a copy when one chunk holds them all), else from t.
  Result<rpc::Payload> Read(Target* t, uint64_t object_id, uint32_t index, const proto::RepoFetch& fetch,
                            uint64_t offset, uint64_t length);
  // The object was written by a client: chunks kept in memory are stale.
  void Forget(uint32_t target, uint64_t object_id, uint32_t index);

 private:
  struct Need;
  struct Object;
  struct Job;
  class ChunkPool;
  using Key = std::tuple<uint32_t, uint64_t, uint32_t>;   // target, object id, index

  void Run();
  void Fetch(const Job& job);
  // The object's state, read from its residency map on first use. Needs mu_.
  std::shared_ptr<Object> FindOrLoad(const Key& key, Target* t, uint64_t chunks, Status* st);
  void Report(uint64_t ino, uint64_t object_id, uint32_t index);
  // Makes fetched chunks durable and marks them; reports the object when
  // that completes it.
  void Sync(const Key& key, const std::vector<uint64_t>& chunks);
  Result<std::shared_ptr<repo::S3Client>> ClientFor(const proto::RepoLink& link);
  // Drops objects nobody waits on when the map grows large. Needs mu_.
  void Trim();
  // Drops fetched chunks from memory, oldest first, while over
  // Options::memory (only those already written). Needs mu_.
  void Evict();
  void DropFresh(Object& obj, uint64_t chunk);   // needs mu_

  Options options_;
  Notify notify_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                        // GUARDED_BY(mu_)
  // The pool is trimmed once no fetch thread has taken a job for kIdle.
  static constexpr std::chrono::seconds kIdle{5};
  std::chrono::steady_clock::time_point last_job_;   // GUARDED_BY(mu_)
  std::map<Key, std::shared_ptr<Object>> objects_;   // GUARDED_BY(mu_)
  std::deque<Job> demand_, ahead_;           // GUARDED_BY(mu_): reads wait on demand_
  uint64_t fresh_bytes_ = 0;                 // GUARDED_BY(mu_): chunks held in memory
  size_t fresh_count_ = 0;                   // GUARDED_BY(mu_)
  std::deque<std::pair<Key, uint64_t>> fresh_order_;   // GUARDED_BY(mu_): oldest first; may name dropped ones
  std::shared_ptr<ChunkPool> pool_;
  std::vector<std::thread> threads_;
  std::mutex s3_mu_;
  std::map<std::string, std::shared_ptr<repo::S3Client>> s3_;   // GUARDED_BY(s3_mu_)
};

}  // namespace stria::store
