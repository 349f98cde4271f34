// The store's link to stria-meta: registration (meta assigns target ids),
// then a heartbeat that reports capacity and carries the objects of removed
// files to free. Runs on its own thread; never gives up while meta is down.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/rpc.h"
#include "proto/stria.pb.h"
#include "store/object_store.h"
#include "store/store_server.h"

namespace stria::store {

class MetaLink {
 public:
  MetaLink(std::string meta, std::string address, std::string admin_address,
           std::vector<std::unique_ptr<Target>>* targets, WorkerPool* pool);
  ~MetaLink();

  // Registers, retrying every 500 ms until meta answers or stop is requested.
  Status Register();
  // Starts the link's thread: registers, calls registered(status) once
  // (ok, or why registration failed for good: then the thread ends), then
  // beats. Registration runs here, not in main, so that a signal can still
  // stop a store whose meta never answers.
  void Start(std::function<void(const Status&)> registered);
  void Stop();
  // Reports a hydrated stripe object to meta: a heartbeat goes at once
  // (after kGather, which lets objects completed together go in one).
  void AddHydrated(const proto::RepoHydrated& h);

 private:
  void Loop();
  Status Beat();
  proto::TargetReport Report(const Target& t) const;

  std::string meta_, address_, admin_address_;
  std::vector<std::unique_ptr<Target>>* targets_;
  WorkerPool* pool_;
  rpc::IoThread io_;
  std::shared_ptr<rpc::Channel> ch_;
  uint32_t store_id_ = 0;
  uint32_t heartbeat_ms_ = 1000;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<proto::ObjectRef> freed_;   // GUARDED_BY(mu_)
  std::vector<proto::RepoHydrated> hydrated_;   // GUARDED_BY(mu_)
  bool soon_ = false;                           // GUARDED_BY(mu_): hydrated_ waits for a heartbeat
  static constexpr std::chrono::milliseconds kGather{20};
  std::thread thread_;
};

}  // namespace stria::store
