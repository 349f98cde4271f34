// stria-store's request handlers: object I/O on its targets, run on a pool
// of disk workers (never on the RPC io thread), replies sent from there.
// Thread-safe after construction.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/rpc.h"
#include "store/hydrator.h"
#include "store/object_store.h"

namespace stria::store {

// A fixed pool of threads running queued jobs in order of arrival.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  void Post(std::function<void()> job);
  // Runs the queued jobs, then joins the threads. Idempotent. Call it before
  // destroying what the jobs use (the server, the meta link).
  void Shutdown();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

class StoreService {
 public:
  // targets: by id (ids as meta assigned them; may change after Register).
  // name: how errors name this store (its address).
  // hydrator: fetches released files' chunks for reads that carry a
  // RepoFetch (null: such reads fail with ENOTSUP).
  StoreService(std::vector<std::unique_ptr<Target>>* targets, WorkerPool* pool,
               std::string name = "store", Hydrator* hydrator = nullptr);
  void RegisterHandlers(rpc::Server& server);

  // The target with this id, or nullptr.
  Target* Find(uint32_t id) const;

 private:
  Status Unknown(uint32_t target) const;
  // A client changed the object: the hydrator's copies of its chunks are stale.
  void Forget(Target* t, uint64_t object_id, uint32_t index);

  std::vector<std::unique_ptr<Target>>* targets_;
  WorkerPool* pool_;
  std::string name_;
  Hydrator* hydrator_;
  metrics::Counter* bytes_written_;
  metrics::Counter* bytes_read_;
};

}  // namespace stria::store
