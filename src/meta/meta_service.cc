#include "meta/meta_service.h"

#include <fcntl.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <future>
#include <random>

#include <tuple>

#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include "common/util.h"
#include "meta/ops_internal.h"
#include "meta/kv_schema.h"

namespace stria::meta {

// ---------------------------------------------------------------- Txn --

Result<std::optional<std::string>> Txn::Get(const std::string& key) {
  auto it = writes_.find(key);
  if (it != writes_.end()) return it->second;
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return Err(EIO, "metadata store read failed: {}", s.ToString());
  return std::optional<std::string>(std::move(value));
}

void Txn::Put(const std::string& key, std::string value) { writes_[key] = std::move(value); }
void Txn::Delete(const std::string& key) { writes_[key] = std::nullopt; }

rocksdb::WriteBatch Txn::Batch() const {
  rocksdb::WriteBatch b;
  for (const auto& [k, v] : writes_) {
    if (v) b.Put(k, *v);
    else b.Delete(k);
  }
  return b;
}

// ------------------------------------------------------------ service --

namespace {

// RocksDB's own log, into this daemon's (spdlog): its informational lines
// at debug level, its warnings and errors as such. Its default, a LOG file
// beside the database, aborts the process (an assertion in Debian's
// build) at the first line after a write to that file failed, so a full
// disk would end meta; spdlog goes on after a failed write.
class RocksLog : public rocksdb::Logger {
 public:
  RocksLog() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    auto to = spdlog::level::debug;
    if (level == rocksdb::InfoLogLevel::WARN_LEVEL) to = spdlog::level::warn;
    if (level == rocksdb::InfoLogLevel::ERROR_LEVEL || level == rocksdb::InfoLogLevel::FATAL_LEVEL) {
      to = spdlog::level::err;
    }
    if (!spdlog::default_logger_raw()->should_log(to)) return;
    char line[2048];
    int n = std::vsnprintf(line, sizeof(line), format, ap);
    std::string_view text(line, n < 0 ? 0 : std::min<size_t>(size_t(n), sizeof(line) - 1));
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    spdlog::log(to, "rocksdb: {}", text);
  }
};

}  // namespace

Result<std::unique_ptr<MetaService>> MetaService::Open(const MetaOptions& opt) {
  std::unique_ptr<MetaService> s(new MetaService());
  s->opt_ = opt;
  rocksdb::Options o;
  o.create_if_missing = true;
  o.info_log = std::make_shared<RocksLog>();
  o.IncreaseParallelism(2);
  // Made here: RocksDB's default LOG file made it before, and without the
  // directory RocksDB logs an error (harmless) while it first looks in.
  std::error_code ec;
  std::filesystem::create_directories(opt.data_dir + "/db", ec);
  if (ec) return Err(ec.value(), "create metadata store {}/db: {}", opt.data_dir, ec.message());
  rocksdb::DB* db = nullptr;
  auto st = rocksdb::DB::Open(o, opt.data_dir + "/db", &db);
  if (!st.ok()) return Err(EIO, "open metadata store {}/db: {}", opt.data_dir, st.ToString());
  s->db_.reset(db);
  auto& reg = metrics::Registry::Default();
  s->syncs_ = &reg.GetCounter("stria_meta_wal_syncs_total", "WAL syncs (one per group commit)");
  s->mutations_ = &reg.GetCounter("stria_meta_mutations_total", "Mutations made durable");
  s->inodes_gauge_ = &reg.GetGauge("stria_meta_inodes", "Inodes in the namespace");
  s->targets_up_ = &reg.GetGauge("stria_meta_targets_up", "Storage targets up");
  s->targets_down_ = &reg.GetGauge("stria_meta_targets_down", "Storage targets down");
  s->garbage_gauge_ = &reg.GetGauge("stria_meta_garbage_queue", "Objects waiting to be freed on the stores");
  s->sessions_gauge_ = &reg.GetGauge("stria_meta_sessions", "Live client sessions");
  STRIA_RETURN_IF_ERROR(s->Init());
  s->UpdateGauges();
  s->syncer_ = std::thread([p = s.get()] { p->SyncLoop(); });
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

MetaService::~MetaService() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The syncer drains what is still waiting (one last sync) before it ends.
  {
    std::lock_guard lk(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
}

Status MetaService::Init() {
  started_ms = MonoMs();
  Txn t(db_.get());
  STRIA_ASSIGN_OR_RETURN(auto root, t.Get(keys::Inode(1)));
  if (!root) {
    InodeRecord r;
    auto* a = r.mutable_attr();
    a->set_ino(1);
    a->set_type(proto::FT_DIR);
    a->set_mode(0755);
    a->set_nlink(2);
    int64_t now = NowNs();
    a->set_atime_ns(now);
    a->set_mtime_ns(now);
    a->set_ctime_ns(now);
    r.set_parent(1);
    r.set_next_cookie(1);
    PutInode(t, r);
    auto b = t.Batch();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto s = db_->Write(wo, &b);
    if (!s.ok()) return Err(EIO, "create root: {}", s.ToString());
  }
  // The cluster map is small: keep it in memory. Known stores count as up
  // until they miss the heartbeat timeout, so a restarted meta places new
  // files at once instead of failing them until the first heartbeats.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("S"); it->Valid() && it->key().starts_with("S"); it->Next()) {
    proto::StoreInfo s;
    if (s.ParseFromString(it->value().ToString())) {
      s.set_state(proto::TS_UP);
      stores[s.id()] = s;
      store_seen_ms[s.id()] = started_ms;
    }
  }
  for (it->Seek("T"); it->Valid() && it->key().starts_with("T"); it->Next()) {
    TargetRecord r;
    if (r.ParseFromString(it->value().ToString())) {
      r.mutable_info()->set_state(proto::TS_UP);
      targets[r.info().id()] = r;
    }
  }
  for (it->Seek("I"); it->Valid() && it->key().starts_with("I"); it->Next()) inode_count++;
  STRIA_RETURN_IF_ERROR(BuildRepoKeyIndex());
  for (it->Seek("G"); it->Valid() && it->key().starts_with("G"); it->Next()) garbage_count++;
  if (!it->status().ok()) return Err(EIO, "scan metadata store: {}", it->status().ToString());
  return Status::Ok();
}

Status MetaService::BuildRepoKeyIndex() {
  // Metadata written before the index existed: one scan, once.
  const std::string done = keys::Counter("repo_key_index");
  std::string v;
  if (db_->Get(rocksdb::ReadOptions(), done, &v).ok()) return Status::Ok();
  Txn t(db_.get());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("I"); it->Valid() && it->key().starts_with("I"); it->Next()) {
    InodeRecord r;
    if (r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) IndexRepoKey(t, nullptr, &r);
  }
  if (!it->status().ok()) return Err(EIO, "index bucket keys: {}", it->status().ToString());
  t.Put(done, "1");
  auto b = t.Batch();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto s = db_->Write(wo, &b);
  return s.ok() ? Status::Ok() : Err(EIO, "index bucket keys: {}", s.ToString());
}

void MetaService::Submit(uint16_t type, std::string message, std::function<void(OpResult)> done) {
  bool wrote = false;
  OpResult r;
  {
    std::lock_guard lk(state_mu_);
    r = Run(type, message, &wrote);
    if (wrote) {
      // Its batch is in the WAL (unsynced): the reply waits for the syncer.
      std::lock_guard sl(sync_mu_);
      waiting_.push_back({written_seq_, std::move(done), std::move(r)});
    }
  }
  if (wrote) sync_cv_.notify_one();
  else done(std::move(r));
}

OpResult MetaService::Execute(uint16_t type, const std::string& message) {
  std::promise<OpResult> p;
  auto f = p.get_future();
  Submit(type, message, [&p](OpResult r) { p.set_value(std::move(r)); });
  return f.get();
}

void MetaService::Loop() {
  while (true) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(200), [this] { return stop_; });
      if (stop_) return;
    }
    std::lock_guard lk(state_mu_);
    Housekeeping();
    UpdateGauges();
  }
}

void MetaService::SyncLoop() {
  while (true) {
    uint64_t upto;
    {
      std::unique_lock lk(sync_mu_);
      sync_cv_.wait(lk, [this] { return sync_stop_ || !waiting_.empty(); });
      if (waiting_.empty()) return;   // stopping, nothing left
      upto = written_seq_;            // every batch written before this sync starts
    }
    // A WAL that failed a write must not be touched again (RocksDB
    // asserts): what waits is answered with the failure instead.
    const bool stopped = write_failed_;
    auto s = stopped ? rocksdb::Status::IOError("an earlier write failed") : db_->SyncWAL();
    if (!stopped) syncs_->Inc();
    Status failed;
    if (!s.ok()) failed = stopped ? WritesStopped() : WriteFailed(s, "metadata WAL sync failed");
    std::deque<Waiting> ready;
    {
      std::lock_guard lk(sync_mu_);
      while (!waiting_.empty() && waiting_.front().seq <= upto) {
        ready.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
    }
    mutations_->Inc(ready.size());
    for (auto& w : ready) {
      if (!s.ok()) w.result = OpResult{failed, ""};
      w.done(std::move(w.result));
    }
  }
}

void MetaService::UpdateGauges() {
  int up = 0, down = 0;
  for (const auto& [id, t] : targets) (t.info().state() == proto::TS_UP ? up : down)++;
  inodes_gauge_->Set(static_cast<double>(inode_count));
  garbage_gauge_->Set(static_cast<double>(garbage_count));
  targets_up_->Set(up);
  targets_down_->Set(down);
  sessions_gauge_->Set(static_cast<double>(sessions.size()));
}

namespace {

using OpFn = Result<std::string> (*)(Ctx&, Txn&, const std::string&);

struct OpInfo {
  OpFn fn;
  const char* name;
  bool mutation;   // carries a MutationId and is deduplicated
};

const std::map<uint16_t, OpInfo>& Ops() {
  static const std::map<uint16_t, OpInfo> kOps = {
      {proto::SESSION_OPEN, {OpSessionOpen, "session open", false}},
      {proto::SESSION_HEARTBEAT, {OpSessionHeartbeat, "session heartbeat", false}},
      {proto::LOOKUP, {OpLookup, "lookup", false}},
      {proto::RESOLVE, {OpResolve, "resolve", false}},
      {proto::GET_ATTR, {OpGetAttr, "getattr", false}},
      {proto::SET_ATTR, {OpSetAttr, "setattr", true}},
      {proto::CREATE, {OpCreate, "create", true}},
      {proto::MKDIR, {OpMkdir, "mkdir", true}},
      {proto::SYMLINK, {OpSymlink, "symlink", true}},
      {proto::LINK, {OpLink, "link", true}},
      {proto::UNLINK, {OpUnlink, "unlink", true}},
      {proto::RMDIR, {OpRmdir, "rmdir", true}},
      {proto::RENAME, {OpRename, "rename", true}},
      {proto::READ_DIR, {OpReadDir, "readdir", false}},
      {proto::READLINK, {OpReadlink, "readlink", false}},
      {proto::OPEN, {OpOpen, "open", true}},
      {proto::CLOSE, {OpClose, "close", false}},
      {proto::COMMIT_WRITE, {OpCommitWrite, "commit write", false}},
      {proto::SET_XATTR, {OpSetXattr, "setxattr", true}},
      {proto::GET_XATTR, {OpGetXattr, "getxattr", false}},
      {proto::LIST_XATTR, {OpListXattr, "listxattr", false}},
      {proto::REMOVE_XATTR, {OpRemoveXattr, "removexattr", true}},
      {proto::GET_LAYOUT, {OpGetLayout, "getlayout", false}},
      {proto::SET_LAYOUT, {OpSetLayout, "setlayout", true}},
      {proto::GET_CLUSTER_MAP, {OpGetClusterMap, "cluster map", false}},
      {proto::STAT_FS, {OpStatFs, "statfs", false}},
      {proto::ACCESS, {OpAccess, "access", false}},
      {proto::GET_LOCK, {OpGetLock, "getlock", false}},
      {proto::SET_LOCK, {OpSetLock, "setlock", false}},
      {proto::REPO_LINK, {OpRepoLink, "repo link", true}},
      {proto::REPO_UNLINK, {OpRepoUnlink, "repo unlink", true}},
      {proto::REPO_LIST, {OpRepoList, "repo list", false}},
      {proto::REPO_DIR_INFO, {OpRepoDirInfo, "repo dir info", false}},
      {proto::REPO_IMPORT, {OpRepoImport, "repo import", true}},
      {proto::REPO_HYDRATED, {OpRepoHydrated, "repo hydrated", false}},
      {proto::REPO_REFRESH, {OpRepoRefresh, "repo refresh", false}},
      {proto::REPO_EXPORTED, {OpRepoExported, "repo exported", false}},
      {proto::REPO_RELEASE, {OpRepoRelease, "repo release", false}},
      {proto::REPO_SYNC, {OpRepoSync, "repo sync", true}},
      {proto::REPO_COLDEST, {OpRepoColdest, "repo coldest", false}},
      {proto::REPO_DELETIONS, {OpRepoDeletions, "repo deletions", false}},
      {proto::REPO_MOVED, {OpRepoMoved, "repo moved", false}},
      {proto::REPO_CLAIM_KEY, {OpRepoClaimKey, "repo claim key", false}},
      {proto::REPO_RENAMES_EXPORTED, {OpRepoRenamesExported, "repo renames exported", false}},
      {proto::REGISTER_STORE, {OpRegisterStore, "register store", false}},
      {proto::STORE_HEARTBEAT, {OpStoreHeartbeat, "store heartbeat", false}},
  };
  return kOps;
}

}  // namespace

OpResult MetaService::Run(uint16_t type, const std::string& message, bool* wrote) {
  *wrote = false;
  auto it = Ops().find(type);
  if (it == Ops().end()) return {Err(ENOSYS, "meta does not serve request type {}", type), ""};
  const OpInfo& op = it->second;
  Txn t(db_.get());
  // A retried mutation gets the outcome recorded the first time.
  proto::MutationId mid;
  if (op.mutation) {
    if (type == proto::OPEN) {
      OpenMidProbe p;
      if (p.ParseFromString(message)) mid = p.mid();
    } else {
      MidProbe p;
      if (p.ParseFromString(message)) mid = p.mid();
    }
    if (mid.session() && mid.seq()) {
      auto prev = t.Get(keys::Dedup(mid.session(), mid.seq()));
      if (!prev.ok()) return {prev.status(), ""};
      if (prev->has_value()) {
        DedupRecord d;
        d.ParseFromString(**prev);
        // The first attempt may still wait for its sync: so does the replay.
        *wrote = true;
        if (d.errno_code()) return {Status(d.errno_code(), d.message()), ""};
        return {Status::Ok(), d.reply()};
      }
    }
  }
  if (Status st = CheckReserve(type, op.name); !st.ok()) return {st, ""};
  auto r = op.fn(*this, t, message);
  OpResult out;
  if (r.ok()) out.reply = std::move(r).value();
  else out.status = r.status();
  // EREMOTE changed nothing and asks the client to import and retry with
  // the same MutationId: that retry must run, not replay this.
  if (op.mutation && mid.session() && mid.seq() && out.status.code() != EREMOTE) {
    DedupRecord d;
    d.set_errno_code(out.status.code());
    d.set_message(out.status.message());
    d.set_reply(out.reply);
    d.set_time_ms(NowNs() / 1000000);
    t.Put(keys::Dedup(mid.session(), mid.seq()), d.SerializeAsString());
  }
  if (!t.empty()) {
    if (write_failed_) return {WritesStopped(), ""};
    auto b = t.Batch();
    auto s = db_->Write(rocksdb::WriteOptions(), &b);
    if (!s.ok()) return {WriteFailed(s, "metadata write failed"), ""};
    inode_count += t.inode_delta;
    garbage_count += t.garbage_delta;
    {
      std::lock_guard lk(sync_mu_);
      written_seq_++;
    }
    *wrote = true;
  }
  return out;
}

Status MetaService::CheckReserve(uint16_t type, const char* name) {
  switch (type) {
    case proto::CREATE:
    case proto::MKDIR:
    case proto::SYMLINK:
    case proto::LINK:
    case proto::SET_XATTR:
    case proto::REPO_LINK:
    case proto::REPO_IMPORT:
    case proto::REPO_SYNC:
      break;
    default:
      return Status::Ok();
  }
  struct statvfs v;
  std::string db = opt_.data_dir + "/db";
  if (::statvfs(db.c_str(), &v) != 0) return Status::Ok();   // the write itself will tell
  uint64_t free = uint64_t(v.f_bavail) * v.f_frsize;
  if (free >= opt_.reserve_bytes) return Status::Ok();
  return Err(ENOSPC, "{}: stria-meta's disk is nearly full ({}: {} MiB free, under the {} MiB kept for "
             "deletions and the database's own work)", name, db, free >> 20, opt_.reserve_bytes >> 20);
}

Status MetaService::WriteFailed(const rocksdb::Status& s, const char* what) {
  Status st = s.IsNoSpace()
                  ? Err(ENOSPC, "{}: stria-meta's disk is full ({}/db): {}", what, opt_.data_dir, s.ToString())
                  : Err(EIO, "{}: {}", what, s.ToString());
  {
    std::lock_guard lk(sync_mu_);
    if (!write_failed_) write_error_ = st;
  }
  // Once, when writes stop.
  if (!write_failed_.exchange(true)) {
    spdlog::error("{}; every metadata change fails from now on: restart stria-meta once its disk is fixed",
                  st.ToString());
  }
  return st;
}

Status MetaService::WritesStopped() {
  Status why;
  {
    std::lock_guard lk(sync_mu_);
    why = write_error_;
  }
  return Err(why.code() == ENOSPC ? ENOSPC : EIO,
             "metadata changes are stopped since a write failed ({}): restart stria-meta once its disk is fixed; "
             "everything acknowledged before is kept", why.ToString());
}

// ------------------------------------------------------------ helpers --

Result<InodeRecord> MetaService::GetInode(Txn& t, uint64_t ino) {
  STRIA_ASSIGN_OR_RETURN(auto v, t.Get(keys::Inode(ino)));
  if (!v) return Err(ENOENT, "inode {} does not exist", ino);
  InodeRecord r;
  if (!r.ParseFromString(*v)) return Err(EIO, "inode {} record is damaged", ino);
  if (r.repo_root() != 0 && r.attr().type() == proto::FT_REG) {
    r.mutable_attr()->set_repo_key(r.repo_key());   // replies carry them
    r.mutable_attr()->set_repo_etag(r.repo_etag());
  }
  return r;
}

proto::RepoState RepoStateOf(const InodeRecord& r) {
  if (r.repo_root() == 0 || r.attr().type() != proto::FT_REG) return proto::RS_NONE;
  auto s = r.repo_state();
  if ((s == proto::RS_RESIDENT || s == proto::RS_RELEASED) && r.attr().version() != r.repo_clean_version()) {
    return proto::RS_DIRTY;   // changed since it last matched the bucket
  }
  return s;
}

namespace {

void Count(proto::RepoCounts& n, proto::RepoState s, uint64_t size, int sign) {
  auto add = [sign](uint64_t v, uint64_t d) { return sign > 0 ? v + d : (v >= d ? v - d : 0); };
  switch (s) {
    case proto::RS_RELEASED:
      n.set_released_files(add(n.released_files(), 1));
      n.set_released_bytes(add(n.released_bytes(), size));
      break;
    case proto::RS_RESIDENT:
      n.set_resident_files(add(n.resident_files(), 1));
      n.set_resident_bytes(add(n.resident_bytes(), size));
      break;
    case proto::RS_DIRTY:
      n.set_dirty_files(add(n.dirty_files(), 1));
      n.set_dirty_bytes(add(n.dirty_bytes(), size));
      break;
    default:
      break;
  }
}

}  // namespace

Status MetaService::CountRepo(Txn& t, const InodeRecord* before, const InodeRecord* after) {
  proto::RepoState s0 = before ? RepoStateOf(*before) : proto::RS_NONE;
  proto::RepoState s1 = after ? RepoStateOf(*after) : proto::RS_NONE;
  uint64_t z0 = before ? before->attr().size() : 0, z1 = after ? after->attr().size() : 0;
  uint64_t r0 = before ? before->repo_root() : 0, r1 = after ? after->repo_root() : 0;
  if (s0 == s1 && z0 == z1 && r0 == r1) return Status::Ok();
  for (auto [root, state, size, sign] : {std::tuple{r0, s0, z0, -1}, std::tuple{r1, s1, z1, +1}}) {
    if (root == 0 || state == proto::RS_NONE) continue;
    proto::RepoCounts n;
    STRIA_ASSIGN_OR_RETURN(auto v, t.Get(keys::RepoCounts(root)));
    if (v && !n.ParseFromString(*v)) return Err(EIO, "repository counts of {} are damaged", root);
    Count(n, state, size, sign);
    t.Put(keys::RepoCounts(root), n.SerializeAsString());
  }
  return Status::Ok();
}

void MetaService::PutInode(Txn& t, const InodeRecord& rec) {
  if (rec.repo_root() != 0 && rec.attr().type() == proto::FT_REG) {
    // Keep the link's counts in step: the state is derived from the record.
    InodeRecord r = rec;
    r.set_repo_state(RepoStateOf(rec));
    r.mutable_attr()->set_repo_state(r.repo_state());   // replies carry it
    r.mutable_attr()->clear_repo_key();                  // GetInode copies them in
    r.mutable_attr()->clear_repo_etag();
    if (r.repo_state() != proto::RS_RELEASED) r.clear_repo_hydrated();
    auto old = GetInode(t, rec.attr().ino());
    Status st = CountRepo(t, old.ok() ? &*old : nullptr, &r);
    if (!st.ok()) spdlog::error("inode {}: {}", rec.attr().ino(), st.ToString());
    IndexRepoKey(t, old.ok() ? &*old : nullptr, &r);
    t.Put(keys::Inode(r.attr().ino()), r.SerializeAsString());
    return;
  }
  t.Put(keys::Inode(rec.attr().ino()), rec.SerializeAsString());
}

Result<std::optional<EntryRecord>> MetaService::GetEntry(Txn& t, uint64_t parent,
                                                         const std::string& name) {
  STRIA_ASSIGN_OR_RETURN(auto v, t.Get(keys::Entry(parent, name)));
  if (!v) return std::optional<EntryRecord>();
  EntryRecord e;
  if (!e.ParseFromString(*v)) return Err(EIO, "entry {}/{} is damaged", parent, name);
  return std::optional<EntryRecord>(e);
}

Result<uint64_t> MetaService::NextCounter(Txn& t, const std::string& name, uint64_t first) {
  STRIA_ASSIGN_OR_RETURN(auto v, t.Get(keys::Counter(name)));
  uint64_t next = v && v->size() == 8 ? keys::GetBE(*v, 0) : first;
  std::string enc;
  keys::PutBE(enc, next + 1);
  t.Put(keys::Counter(name), enc);
  return next;
}

Status MetaService::AddEntry(Txn& t, InodeRecord& parent, const std::string& name, uint64_t ino,
                             proto::FileType type) {
  uint64_t dir = parent.attr().ino();
  uint64_t cookie = std::max<uint64_t>(parent.next_cookie(), 1);
  parent.set_next_cookie(cookie + 1);
  EntryRecord e;
  e.set_ino(ino);
  e.set_type(type);
  e.set_cookie(cookie);
  t.Put(keys::Entry(dir, name), e.SerializeAsString());
  t.Put(keys::Cookie(dir, cookie), name);
  int64_t now = NowNs();
  parent.mutable_attr()->set_mtime_ns(now);
  parent.mutable_attr()->set_ctime_ns(now);
  if (type == proto::FT_DIR) parent.mutable_attr()->set_nlink(parent.attr().nlink() + 1);
  PutInode(t, parent);
  return Status::Ok();
}

Status MetaService::RemoveEntry(Txn& t, uint64_t parent, const std::string& name,
                                const EntryRecord& e) {
  t.Delete(keys::Entry(parent, name));
  t.Delete(keys::Cookie(parent, e.cookie()));
  STRIA_ASSIGN_OR_RETURN(auto p, GetInode(t, parent));
  int64_t now = NowNs();
  p.mutable_attr()->set_mtime_ns(now);
  p.mutable_attr()->set_ctime_ns(now);
  if (e.type() == proto::FT_DIR) p.mutable_attr()->set_nlink(p.attr().nlink() - 1);
  PutInode(t, p);
  return Status::Ok();
}

Status MetaService::DropLink(Txn& t, InodeRecord& rec) {
  auto* a = rec.mutable_attr();
  bool dir = a->type() == proto::FT_DIR;
  a->set_nlink(dir ? 0 : (a->nlink() > 0 ? a->nlink() - 1 : 0));
  a->set_ctime_ns(NowNs());
  if (a->nlink() > 0) {
    PutInode(t, rec);
    return Status::Ok();
  }
  if (sessions.IsOpen(a->ino())) {
    PutInode(t, rec);
    t.Put(keys::Orphan(a->ino()), "");
    return Status::Ok();
  }
  return DeleteInode(t, rec);
}

void MetaService::IndexRepoKey(Txn& t, const InodeRecord* before, const InodeRecord* after) {
  auto key_of = [](const InodeRecord* r) {
    // A key holds a file's content once imported from or sent there (it
    // has an ETag); a new file's key is only where it will go.
    bool has = r && r->repo_root() != 0 && r->attr().type() == proto::FT_REG && !r->repo_key().empty() &&
               !r->repo_etag().empty();
    return has ? keys::RepoKeyOwner(r->repo_root(), r->repo_key()) : std::string();
  };
  const std::string k0 = key_of(before), k1 = key_of(after);
  if (k0 == k1) return;
  const uint64_t ino = (after ? after : before)->attr().ino();
  std::string owner;
  keys::PutBE(owner, ino, 8);
  if (!k0.empty()) {
    auto v = t.Get(k0);
    if (v.ok() && *v && **v == owner) t.Delete(k0);   // another file may hold it now
  }
  if (!k1.empty()) {
    // The export claimed it first (REPO_CLAIM_KEY): this catches what
    // changed since.
    if (uint64_t lost = TakeRepoKey(t, after->repo_root(), after->repo_key(), ino)) {
      spdlog::error("repo key {} now holds inode {}'s content: inode {} (released) has lost its only copy",
                    after->repo_key(), ino, lost);
    }
    t.Put(k1, owner);
    // The key holds this file's content now: not to be deleted.
    t.Delete(keys::RepoDeletion(after->repo_root(), after->repo_key()));
  }
}

uint64_t MetaService::TakeRepoKey(Txn& t, uint64_t root, const std::string& key, uint64_t ino) {
  auto owner = t.Get(keys::RepoKeyOwner(root, key));
  if (!owner.ok() || !*owner || (*owner)->size() != 8) return 0;
  uint64_t other = keys::GetBE(**owner, 0);
  if (other == ino) return 0;
  auto rec = GetInode(t, other);
  if (!rec.ok() || rec->repo_root() != root || rec->repo_key() != key) return 0;
  auto state = RepoStateOf(*rec);
  if (state == proto::RS_RELEASED) return other;
  if (state == proto::RS_RESIDENT) {
    rec->set_repo_state(proto::RS_DIRTY);
    PutInode(t, *rec);   // its key is unchanged: IndexRepoKey does nothing for it
  }
  return 0;
}

Status MetaService::DeleteInode(Txn& t, const InodeRecord& rec) {
  uint64_t ino = rec.attr().ino();
  IndexRepoKey(t, &rec, nullptr);
  t.Delete(keys::Inode(ino));
  t.Delete(keys::Orphan(ino));
  t.Delete(keys::LastUse(ino));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::string prefix = keys::XattrPrefix(ino);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    t.Delete(it->key().ToString());
  }
  t.inode_delta--;
  STRIA_RETURN_IF_ERROR(CountRepo(t, &rec, nullptr));
  if (rec.attr().type() == proto::FT_REG) return QueueGarbage(t, rec.layout());
  return Status::Ok();
}

Status MetaService::QueueGarbage(Txn& t, const proto::Layout& layout) {
  if (layout.targets_size() == 0) return Status::Ok();
  STRIA_ASSIGN_OR_RETURN(uint64_t seq, NextCounter(t, "garbage", 1));
  GarbageRecord g;
  g.set_object_id(layout.object_id());
  for (auto id : layout.targets()) g.add_targets(id);
  g.set_count(layout.stripe_count());
  t.Put(keys::Garbage(seq), g.SerializeAsString());
  t.garbage_delta++;
  return Status::Ok();
}

Result<proto::Layout> MetaService::ChooseLayout(uint64_t ino, uint64_t stripe_size, uint32_t count) {
  std::vector<const TargetRecord*> up;
  for (const auto& [id, t] : targets) {
    if (t.info().state() == proto::TS_UP) up.push_back(&t);
  }
  if (up.empty()) return Err(ENOSPC, "no storage target is up");
  if (count == 0 || count > up.size()) count = static_cast<uint32_t>(up.size());
  // Weighted by free space, without replacement, seeded by the inode so a
  // retried create picks the same targets.
  std::mt19937_64 rng(ino * 0x9E3779B97F4A7C15ull);
  std::vector<uint32_t> chosen;
  std::vector<const TargetRecord*> pool = up;
  while (chosen.size() < count) {
    double total = 0;
    std::vector<double> w;
    for (auto* t : pool) {
      uint64_t free = t->info().capacity() > t->info().used() ? t->info().capacity() - t->info().used() : 0;
      w.push_back(static_cast<double>(free) + 1.0);
      total += w.back();
    }
    double x = std::uniform_real_distribution<double>(0, total)(rng);
    size_t pick = 0;
    while (pick + 1 < pool.size() && x >= w[pick]) x -= w[pick++];
    chosen.push_back(pool[pick]->info().id());
    pool.erase(pool.begin() + static_cast<long>(pick));
  }
  // Small files touch only object 0: rotate so it lands on every target in turn.
  if (count == up.size()) {
    std::sort(chosen.begin(), chosen.end());
    std::rotate(chosen.begin(), chosen.begin() + static_cast<long>(ino % count), chosen.end());
  }
  proto::Layout l;
  l.set_stripe_size(stripe_size);
  l.set_stripe_count(count);
  for (auto id : chosen) l.add_targets(id);
  l.set_object_id(ino);
  return l;
}

void MetaService::Housekeeping() {
  int64_t now = MonoMs();
  // Stores that stopped beating are DOWN, with their targets.
  for (auto& [id, s] : stores) {
    auto seen = store_seen_ms.find(id);
    bool alive = seen != store_seen_ms.end() && now - seen->second < opt_.store_timeout_ms;
    if (s.state() == proto::TS_UP && !alive) {
      s.set_state(proto::TS_DOWN);
      for (auto& [tid, t] : targets) {
        if (t.info().store_id() == id) t.mutable_info()->set_state(proto::TS_DOWN);
      }
      map_version++;
      spdlog::warn("store {} ({}) is down: no heartbeat for {} ms", id, s.address(), opt_.store_timeout_ms);
    }
  }
  // Expired sessions lose their opens.
  for (auto id : sessions.Expire(now, opt_.session_timeout_ms)) {
    spdlog::info("session {} expired", id);
    locks.DropSession(id);
  }
  // Orphans nobody holds open any more (after a grace period at start, so
  // that clients can resume their sessions) are freed.
  if (now - started_ms < opt_.session_timeout_ms) return;
  Txn t(db_.get());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("O"); it->Valid() && it->key().starts_with("O"); it->Next()) {
    uint64_t ino = keys::GetBE(it->key().ToStringView(), 1);
    if (sessions.IsOpen(ino)) continue;
    auto rec = GetInode(t, ino);
    if (rec.ok()) (void)DeleteInode(t, *rec);
    else t.Delete(it->key().ToString());
  }
  // Dedup records older than 10 minutes go.
  int64_t cutoff = NowNs() / 1000000 - 600000;
  int scanned = 0;
  for (it->Seek("R"); it->Valid() && it->key().starts_with("R") && scanned < 10000; it->Next(), scanned++) {
    DedupRecord d;
    if (d.ParseFromString(it->value().ToString()) && d.time_ms() < cutoff) t.Delete(it->key().ToString());
  }
  if (!t.empty()) {
    if (write_failed_) return;
    auto b = t.Batch();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto s = db_->Write(wo, &b);
    if (!s.ok()) {
      (void)WriteFailed(s, "housekeeping's metadata write failed");   // logs it
      return;
    }
    inode_count += t.inode_delta;
    garbage_count += t.garbage_delta;
  }
}

}  // namespace stria::meta
