#include "store/meta_link.h"

#include <spdlog/spdlog.h>

namespace stria::store {

MetaLink::MetaLink(std::string meta, std::string address, std::string admin_address,
                   std::vector<std::unique_ptr<Target>>* targets, WorkerPool* pool)
    : meta_(std::move(meta)), address_(std::move(address)),
      admin_address_(std::move(admin_address)), targets_(targets), pool_(pool) {
  ch_ = rpc::Channel::Create(io_.io(), meta_);
}

MetaLink::~MetaLink() { Stop(); }

proto::TargetReport MetaLink::Report(const Target& t) const {
  proto::TargetReport r;
  r.set_id(t.id());
  r.set_path(t.dir());
  r.set_uuid(t.uuid());
  uint64_t cap = 0, used = 0;
  if (t.Capacity(&cap, &used).ok()) {
    r.set_capacity(cap);
    r.set_used(used);
  }
  return r;
}

Status MetaLink::Register() {
  bool warned = false;
  while (true) {
    proto::RegisterStoreRequest req;
    req.set_address(address_);
    req.set_admin_address(admin_address_);
    for (auto& t : *targets_) *req.add_targets() = Report(*t);
    rpc::CallOptions co;
    co.timeout = rpc::Millis(2000);
    auto r = rpc::Call<proto::RegisterStoreReply>(*ch_, proto::REGISTER_STORE, req, co);
    if (r.ok()) {
      if (r->target_ids_size() != static_cast<int>(targets_->size())) {
        return Err(EPROTO, "meta {} answered registration with {} target ids for {} targets", meta_,
                   r->target_ids_size(), targets_->size());
      }
      for (size_t i = 0; i < targets_->size(); i++) {
        uint32_t id = r->target_ids(static_cast<int>(i));
        if ((*targets_)[i]->id() != id) STRIA_RETURN_IF_ERROR((*targets_)[i]->SetId(id));
      }
      store_id_ = r->store_id();
      if (r->heartbeat_ms()) heartbeat_ms_ = r->heartbeat_ms();
      spdlog::info("registered with meta {} as store {} ({} targets)", meta_, store_id_,
                   targets_->size());
      return Status::Ok();
    }
    if (!warned) {
      spdlog::warn("cannot register with meta {}: {} (retrying)", meta_, r.status().ToString());
      warned = true;
    } else {
      spdlog::debug("cannot register with meta {}: {}", meta_, r.status().ToString());
    }
    std::unique_lock lk(mu_);
    if (cv_.wait_for(lk, std::chrono::milliseconds(500), [this] { return stop_; })) {
      return Err(ECANCELED, "stopped before registering");
    }
  }
}

void MetaLink::Start(std::function<void(const Status&)> registered) {
  thread_ = std::thread([this, registered = std::move(registered)] {
    Status st = Register();
    if (st.code() == ECANCELED) return;
    registered(st);
    if (st.ok()) Loop();
  });
}

void MetaLink::Stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MetaLink::AddHydrated(const proto::RepoHydrated& h) {
  {
    std::lock_guard lk(mu_);
    hydrated_.push_back(h);
    soon_ = true;
  }
  cv_.notify_all();
}

Status MetaLink::Beat() {
  proto::StoreHeartbeatRequest req;
  req.set_store_id(store_id_);
  for (auto& t : *targets_) *req.add_targets() = Report(*t);
  std::vector<proto::ObjectRef> sent;
  std::vector<proto::RepoHydrated> hydrated;
  {
    std::lock_guard lk(mu_);
    sent.swap(freed_);
    hydrated.swap(hydrated_);
  }
  for (auto& f : sent) *req.add_freed() = f;
  for (auto& h : hydrated) *req.add_hydrated() = h;
  rpc::CallOptions co;
  co.timeout = rpc::Millis(std::max<uint32_t>(heartbeat_ms_ * 2, 1000));
  auto r = rpc::Call<proto::StoreHeartbeatReply>(*ch_, proto::STORE_HEARTBEAT, req, co);
  if (!r.ok()) {
    std::lock_guard lk(mu_);
    freed_.insert(freed_.end(), sent.begin(), sent.end());   // report them again
    hydrated_.insert(hydrated_.end(), hydrated.begin(), hydrated.end());
    return r.status();
  }
  for (const auto& ref : r->remove()) {
    Target* t = nullptr;
    for (auto& x : *targets_) {
      if (x->id() == ref.target()) t = x.get();
    }
    if (!t) continue;
    pool_->Post([this, t, ref] {
      Status st = t->Remove(ref.ino(), ref.count());
      if (!st.ok()) {
        spdlog::warn("free object {:x} on target {}: {}", ref.ino(), ref.target(), st.ToString());
        return;
      }
      std::lock_guard lk(mu_);
      freed_.push_back(ref);
    });
  }
  return Status::Ok();
}

void MetaLink::Loop() {
  bool down = false;
  while (true) {
    {
      // Objects just hydrated go to meta now: until meta marks their file
      // resident, every read of it takes the longer path of a released
      // file. Not while meta does not answer: then at the usual pace.
      std::unique_lock lk(mu_);
      if (cv_.wait_for(lk, std::chrono::milliseconds(heartbeat_ms_), [&] { return stop_ || (soon_ && !down); })) {
        if (stop_ || cv_.wait_for(lk, kGather, [this] { return stop_; })) return;
      }
      soon_ = false;   // what this beat sends; a later AddHydrated sets it again
    }
    Status st = Beat();
    if (st.ok()) {
      if (down) spdlog::info("meta {} is reachable again", meta_);
      down = false;
      continue;
    }
    if (!down) spdlog::warn("heartbeat to meta {} failed: {}", meta_, st.ToString());
    down = true;
    if (st.code() == ENOENT) {
      // Meta does not know this store (its state was reset): register again.
      (void)Register();   // logs its own failures and retries until stopped
    }
  }
}

}  // namespace stria::store
