// libstria: connecting, the session and its heartbeat, retries, the cluster map.
#include <grp.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "client/client_impl.h"
#include "common/util.h"

namespace stria {

using rpc::Clock;
using rpc::Millis;

const char* RepoStateName(RepoState s) {
  switch (s) {
    case RepoState::kReleased: return "released";
    case RepoState::kResident: return "resident";
    case RepoState::kDirty: return "dirty";
    default: return "none";
  }
}

const char* FileTypeName(FileType t) {
  switch (t) {
    case FileType::kRegular: return "file";
    case FileType::kDirectory: return "directory";
    case FileType::kSymlink: return "symlink";
    case FileType::kFifo: return "fifo";
    case FileType::kSocket: return "socket";
    case FileType::kChar: return "char";
    case FileType::kBlock: return "block";
    default: return "none";
  }
}

FileAttr ToFileAttr(const proto::Attr& a) {
  FileAttr f;
  f.ino = a.ino();
  f.type = static_cast<FileType>(a.type());
  f.mode = a.mode();
  f.uid = a.uid();
  f.gid = a.gid();
  f.size = a.size();
  f.atime_ns = a.atime_ns();
  f.mtime_ns = a.mtime_ns();
  f.ctime_ns = a.ctime_ns();
  f.nlink = a.nlink();
  f.version = a.version();
  f.rdev = a.rdev();
  f.repo_state = static_cast<RepoState>(a.repo_state());
  f.repo_key = a.repo_key();
  f.repo_etag = a.repo_etag();
  return f;
}

Layout ToLayout(const proto::Layout& l) {
  Layout out;
  out.stripe_size = l.stripe_size();
  out.stripe_count = l.stripe_count();
  out.targets.assign(l.targets().begin(), l.targets().end());
  out.object_id = l.object_id();
  return out;
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
  {
    std::unique_lock lk(impl_->async_mu);
    impl_->async_stop = true;
    impl_->async_cv.wait(lk, [&] { return impl_->async_reads == 0; });
  }
  std::vector<int> fds;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [fd, h] : impl_->handles) fds.push_back(fd);
  }
  for (int fd : fds) (void)Close(fd);   // best effort: errors are not reportable here
  {
    std::lock_guard lk(impl_->hb_mu);
    impl_->stopping = true;
  }
  impl_->hb_cv.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
}

Result<std::unique_ptr<Client>> Client::Connect(ClientOptions opt) {
  if (opt.meta.empty()) {
    const char* env = std::getenv("STRIA_META");
    if (!env || !*env) {
      return Err(EINVAL, "no meta server given: pass --meta HOST:PORT or set STRIA_META");
    }
    opt.meta = env;
  }
  STRIA_RETURN_IF_ERROR(rpc::ParseAddress(opt.meta).status());
  if (opt.timeout.count() <= 0) return Err(EINVAL, "client timeout must be positive");
  if (opt.name.empty()) {
    char host[256] = "?";
    gethostname(host, sizeof(host) - 1);
    opt.name = std::string(host) + ":" + std::to_string(getpid());
  }
  auto impl = std::make_unique<Impl>();
  impl->cred.set_uid(opt.uid >= 0 ? static_cast<uint32_t>(opt.uid) : geteuid());
  impl->cred.set_gid(opt.gid >= 0 ? static_cast<uint32_t>(opt.gid) : getegid());
  if (opt.groups.empty() && opt.uid < 0) {
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++) impl->cred.add_groups(groups[i]);
  } else {
    for (auto g : opt.groups) impl->cred.add_groups(g);
  }
  impl->opt = opt;
  impl->meta = rpc::Channel::Create(impl->io.io(), opt.meta);
  STRIA_RETURN_IF_ERROR(impl->OpenSession().Prefixed("connect to meta " + opt.meta));
  Impl* raw = impl.get();
  impl->heartbeat = std::thread([raw] { raw->HeartbeatLoop(); });
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

std::vector<uint64_t> Client::Impl::OpenInodes() {
  std::lock_guard lk(mu);
  std::vector<uint64_t> out;
  for (auto& [fd, h] : handles) out.push_back(h->file->ino);
  return out;
}

Status Client::Impl::OpenSession() {
  proto::SessionOpenRequest req;
  req.set_client_name(opt.name);
  req.set_resume_session(session);
  for (uint64_t ino : OpenInodes()) req.add_open_inodes(ino);
  auto r = MetaCall<proto::SessionOpenReply>(proto::SESSION_OPEN, req);
  if (!r.ok()) return r.status();
  session = r->session();
  root = r->root_ino() ? r->root_ino() : 1;
  heartbeat_ms = r->heartbeat_ms() ? r->heartbeat_ms() : 2000;
  return Status::Ok();
}

void Client::Impl::HeartbeatLoop() {
  std::unique_lock lk(hb_mu);
  while (!stopping) {
    hb_cv.wait_for(lk, Millis(heartbeat_ms.load()));
    if (stopping) break;
    lk.unlock();
    proto::SessionHeartbeatRequest req;
    req.set_session(session);
    for (uint64_t ino : OpenInodes()) req.add_open_inodes(ino);
    rpc::CallOptions co;
    co.timeout = Millis(heartbeat_ms.load());
    rpc::CallResult r = meta->CallSync(proto::SESSION_HEARTBEAT, req.SerializeAsString(), {}, co);
    if (r.status.code() == ENOENT) {
      // Meta lost the session (restart, or it expired): resume it.
      (void)OpenSession();   // failure is retried on the next beat
    }
    lk.lock();
  }
}

proto::MutationId Client::Impl::NextMid() {
  proto::MutationId mid;
  mid.set_session(session);
  mid.set_seq(next_seq.fetch_add(1));
  return mid;
}

namespace {

// The directory an EREMOTE message names: "... directory N is linked to ..."
// (meta/repo_import.cc CheckListed; meta may put a path in front). 0: none.
uint64_t RemoteDirOf(const std::string& message) {
  static const std::string kWord = "directory ", kTail = " is linked to ";
  for (size_t pos = message.find(kWord); pos != std::string::npos; pos = message.find(kWord, pos + 1)) {
    size_t i = pos + kWord.size(), j = i;
    uint64_t ino = 0;
    while (j < message.size() && message[j] >= '0' && message[j] <= '9' && j - i < 20) {
      ino = ino * 10 + static_cast<uint64_t>(message[j++] - '0');
    }
    if (j > i && message.compare(j, kTail.size(), kTail) == 0) return ino;
  }
  return 0;
}

}  // namespace

rpc::CallResult Client::Impl::MetaCallRaw(proto::MsgType type, const std::string& msg) {
  // EREMOTE: a directory under a data repository link whose bucket level
  // is not in meta yet. Meta's message names it ("directory N ...",
  // meta/repo_import.cc CheckListed); import it and ask again. A path walk
  // may meet one such level per component.
  for (int level = 0;; level++) {
    rpc::CallResult r = MetaCallOnce(type, msg);
    // Whatever the outcome (a lost reply may have been applied): copies of
    // directories read ahead may no longer say what meta would.
    if (MayChangeNames(type, msg)) changes.fetch_add(1);
    uint64_t dir = r.status.code() == EREMOTE && level < 256 ? RemoteDirOf(r.status.message()) : 0;
    if (dir == 0) return r;
    Status st = ImportDir(dir);
    if (!st.ok()) {
      r.status = Status(st.code() == EREMOTE ? EIO : st.code(), st.message());
      return r;
    }
  }
}

rpc::CallResult Client::Impl::MetaCallOnce(proto::MsgType type, const std::string& msg) {
  auto deadline = Clock::now() + opt.timeout;
  Millis backoff(20);
  while (true) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) left = Millis(1);
    rpc::CallOptions co;
    co.timeout = left;
    rpc::CallResult r = meta->CallSync(type, msg, {}, co);
    if (r.status.ok() || !r.status.retryable() || Clock::now() + backoff >= deadline) {
      if (!r.status.ok() && r.status.retryable()) {
        r.status = r.status.Prefixed(fmt::format("meta {} ({} given up after {} ms)", opt.meta,
                                                 proto::MsgType_Name(type), opt.timeout.count()));
      }
      return r;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, Millis(500));
  }
}

Status Client::Impl::RefreshMap(bool force) {
  {
    std::lock_guard lk(mu);
    if (!force && map_fetched_ms && MonoMs() - map_fetched_ms < 100) return Status::Ok();
  }
  auto r = MetaCall<proto::GetClusterMapReply>(proto::GET_CLUSTER_MAP, proto::GetClusterMapRequest());
  if (!r.ok()) return r.status();
  std::lock_guard lk(mu);
  targets.clear();
  for (const auto& t : r->targets()) targets[t.id()] = t;
  map_version = r->version();
  map_fetched_ms = MonoMs();
  last_map = *r;
  return Status::Ok();
}

Result<std::shared_ptr<rpc::Channel>> Client::Impl::StoreFor(uint32_t target) {
  for (int attempt = 0; attempt < 2; attempt++) {
    {
      std::lock_guard lk(mu);
      auto it = targets.find(target);
      if (it != targets.end()) {
        auto& ch = stores[it->second.address()];
        if (!ch) ch = rpc::Channel::Create(io.io(), it->second.address());
        return ch;
      }
    }
    STRIA_RETURN_IF_ERROR(RefreshMap(attempt > 0));
  }
  return Err(ENXIO, "target {} is not in the cluster map", target);
}

Result<ClusterStatus> Client::GetClusterStatus() {
  STRIA_RETURN_IF_ERROR(impl_->RefreshMap(true));
  std::lock_guard lk(impl_->mu);
  const auto& m = impl_->last_map;
  ClusterStatus cs;
  cs.meta = impl_->opt.meta;
  cs.meta_admin = m.meta_admin_address();
  cs.version = m.version();
  for (const auto& t : m.targets()) {
    cs.targets.push_back({t.id(), t.store_id(), t.address(), t.path(), t.state() == proto::TS_UP,
                          t.capacity(), t.used()});
  }
  for (const auto& s : m.stores()) {
    cs.stores.push_back({s.id(), s.address(), s.admin_address(), s.state() == proto::TS_UP,
                         s.last_heartbeat_ms()});
  }
  return cs;
}

Result<FsStat> Client::StatFs() {
  auto r = impl_->MetaCall<proto::StatFsReply>(proto::STAT_FS, proto::StatFsRequest());
  if (!r.ok()) return r.status();
  return FsStat{r->capacity(), r->used(), r->inodes()};
}

}  // namespace stria
