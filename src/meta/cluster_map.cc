// The cluster map: store registration and heartbeats (capacity, liveness,
// objects to free), the map clients read, and statfs.
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"

namespace stria::meta {

namespace {
constexpr int kMaxRemovePerBeat = 1000;
constexpr int64_t kRehandMs = 10000;   // hand a garbage entry out again after this
}  // namespace

Result<std::string> OpRegisterStore(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::RegisterStoreRequest>(msg, "register store"));
  if (req.address().empty() || req.targets_size() == 0) {
    return Err(EINVAL, "register store: an address and at least one target are required");
  }
  proto::RegisterStoreReply rep;
  uint32_t store_id = 0;
  std::vector<uint32_t> ids;
  for (const auto& tr : req.targets()) {
    if (tr.uuid().empty()) return Err(EINVAL, "register store: target {} has no uuid", tr.path());
    uint32_t id = 0;
    for (auto& [tid, rec] : c.targets) {
      if (rec.uuid() == tr.uuid()) id = tid;
    }
    if (id && !store_id) store_id = c.targets[id].info().store_id();
    ids.push_back(id);
  }
  if (!store_id) {
    STRIA_ASSIGN_OR_RETURN(uint64_t sid, c.NextCounter(t, "store", 1));
    store_id = static_cast<uint32_t>(sid);
  }
  for (int i = 0; i < req.targets_size(); i++) {
    const auto& tr = req.targets(i);
    if (!ids[i]) {
      STRIA_ASSIGN_OR_RETURN(uint64_t tid, c.NextCounter(t, "target", 1));
      ids[i] = static_cast<uint32_t>(tid);
    }
    TargetRecord rec;
    rec.set_uuid(tr.uuid());
    auto* info = rec.mutable_info();
    info->set_id(ids[i]);
    info->set_store_id(store_id);
    info->set_address(req.address());
    info->set_path(tr.path());
    info->set_capacity(tr.capacity());
    info->set_used(tr.used());
    TargetRecord stored = rec;
    stored.mutable_info()->set_state(proto::TS_UNKNOWN);
    t.Put(keys::Target(ids[i]), stored.SerializeAsString());
    info->set_state(proto::TS_UP);
    c.targets[ids[i]] = rec;
    rep.add_target_ids(ids[i]);
  }
  proto::StoreInfo s;
  s.set_id(store_id);
  s.set_address(req.address());
  s.set_admin_address(req.admin_address());
  t.Put(keys::Store(store_id), s.SerializeAsString());
  s.set_state(proto::TS_UP);
  s.set_last_heartbeat_ms(NowNs() / 1000000);
  c.stores[store_id] = s;
  c.store_seen_ms[store_id] = MonoMs();
  c.map_version++;
  spdlog::info("store {} registered at {} with {} target(s)", store_id, req.address(), req.targets_size());
  rep.set_store_id(store_id);
  rep.set_heartbeat_ms(c.options().store_heartbeat_ms);
  return rep.SerializeAsString();
}

Result<std::string> OpStoreHeartbeat(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::StoreHeartbeatRequest>(msg, "store heartbeat"));
  auto sit = c.stores.find(req.store_id());
  if (sit == c.stores.end()) return Err(ENOENT, "store {} is not registered", req.store_id());
  auto& store = sit->second;
  if (store.state() != proto::TS_UP) {
    store.set_state(proto::TS_UP);
    c.map_version++;
    spdlog::info("store {} ({}) is up again", store.id(), store.address());
  }
  store.set_last_heartbeat_ms(NowNs() / 1000000);
  c.store_seen_ms[store.id()] = MonoMs();
  for (const auto& tr : req.targets()) {
    auto it = c.targets.find(tr.id());
    if (it == c.targets.end() || it->second.info().store_id() != store.id()) continue;
    auto* info = it->second.mutable_info();
    if (info->state() != proto::TS_UP) c.map_version++;
    info->set_state(proto::TS_UP);
    info->set_capacity(tr.capacity());
    info->set_used(tr.used());
  }
  // Freed objects: drop their target from the garbage entry; drop the entry
  // once every target has freed its objects.
  for (const auto& ref : req.freed()) {
    STRIA_ASSIGN_OR_RETURN(auto v, t.Get(keys::Garbage(ref.seq())));
    c.garbage_handed.erase({ref.seq(), ref.target()});
    if (!v) continue;
    GarbageRecord g;
    if (!g.ParseFromString(*v)) continue;
    GarbageRecord left = g;
    left.clear_targets();
    for (auto id : g.targets()) {
      if (id != ref.target()) left.add_targets(id);
    }
    if (left.targets_size() == 0) {
      t.Delete(keys::Garbage(ref.seq()));
      t.garbage_delta--;
    }
    else t.Put(keys::Garbage(ref.seq()), left.SerializeAsString());
  }
  for (const auto& h : req.hydrated()) STRIA_RETURN_IF_ERROR(ApplyHydrated(c, t, h));
  proto::StoreHeartbeatReply rep;
  int64_t now = MonoMs();
  std::unique_ptr<rocksdb::Iterator> it(c.db()->NewIterator(rocksdb::ReadOptions()));
  int scanned = 0;
  for (it->Seek("G"); it->Valid() && it->key().starts_with("G") && rep.remove_size() < kMaxRemovePerBeat &&
                      scanned < 100000;
       it->Next(), scanned++) {
    uint64_t seq = keys::GetBE(it->key().ToStringView(), 1);
    STRIA_ASSIGN_OR_RETURN(auto v, t.Get(it->key().ToString()));
    if (!v) continue;
    GarbageRecord g;
    if (!g.ParseFromString(*v)) continue;
    for (auto id : g.targets()) {
      auto tt = c.targets.find(id);
      if (tt == c.targets.end() || tt->second.info().store_id() != store.id()) continue;
      auto handed = c.garbage_handed.find({seq, id});
      if (handed != c.garbage_handed.end() && now - handed->second < kRehandMs) continue;
      c.garbage_handed[{seq, id}] = now;
      auto* ref = rep.add_remove();
      ref->set_target(id);
      ref->set_ino(g.object_id());
      ref->set_count(g.count());
      ref->set_seq(seq);
    }
  }
  return rep.SerializeAsString();
}

Result<std::string> OpGetClusterMap(Ctx& c, Txn&, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::GetClusterMapRequest>(msg, "cluster map"));
  proto::GetClusterMapReply rep;
  rep.set_version(c.map_version);
  rep.set_meta_admin_address(c.options().admin_address);
  for (auto& [id, t] : c.targets) {
    auto* out = rep.add_targets();
    *out = t.info();
    auto s = c.stores.find(t.info().store_id());
    if (s != c.stores.end()) out->set_address(s->second.address());
  }
  for (auto& [id, s] : c.stores) *rep.add_stores() = s;
  return rep.SerializeAsString();
}

Result<std::string> OpStatFs(Ctx& c, Txn&, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::StatFsRequest>(msg, "statfs"));
  proto::StatFsReply rep;
  for (auto& [id, t] : c.targets) {
    rep.set_capacity(rep.capacity() + t.info().capacity());
    rep.set_used(rep.used() + t.info().used());
  }
  rep.set_inodes(c.inode_count);
  return rep.SerializeAsString();
}

}  // namespace stria::meta
