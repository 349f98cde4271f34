// libstria: statahead. A job that stats or opens the files of a directory
// one name at a time (after the kernel dropped its caches, or on a node
// that never saw them) costs a meta round trip per name. Once names of one
// directory come from meta in quick succession, it is read whole in
// one READ_DIR (names, attributes, layouts) and the next lookups in it are
// answered from that copy.
//
// What keeps it honest:
// - A copy serves for ClientOptions::lookup_ahead at most (the FUSE mount
//   sets its cache timeout), and FileAttr::age_ms tells the caller how old
//   an answer is, so that the kernel's own timeouts are shortened by it:
//   another node's change shows within the same bound as without it.
// - Any call of this client that may change a name or an attribute ends
//   every copy (`changes`), so this client always sees its own changes.
// - Only names found are answered: a missing name asks meta.
// - The caller needs search permission on the directory, checked here with
//   the rules meta uses (common/permissions.h).
#include <fcntl.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "client/client_impl.h"
#include "common/permissions.h"
#include "common/util.h"

namespace stria {

namespace {

// A directory is read once this many lookups from meta fall in it within
// a twentieth of lookup_ahead: at that rate a copy answers a great many
// names before it is too old. A job touching a few files a second in each
// of many directories (a shuffled epoch) would pay a whole directory read
// for a handful of answers, and does not reach it.
constexpr int kLookupsBeforeReading = 8;
constexpr uint32_t kMaxPerDirectory = 4096;   // one READ_DIR page
constexpr size_t kMaxEntries = 64 * 1024;      // in all copies together

}  // namespace

bool Client::Impl::MayChangeNames(proto::MsgType type, const std::string& msg) {
  if (type == proto::OPEN) {
    proto::OpenRequest o;
    return !o.ParseFromString(msg) || (o.flags() & O_TRUNC);
  }
  switch (type) {
    case proto::SESSION_OPEN:
    case proto::SESSION_HEARTBEAT:
    case proto::LOOKUP:
    case proto::RESOLVE:
    case proto::GET_ATTR:
    case proto::READ_DIR:
    case proto::READLINK:
    case proto::CLOSE:
    case proto::GET_XATTR:
    case proto::LIST_XATTR:
    case proto::GET_LAYOUT:
    case proto::GET_CLUSTER_MAP:
    case proto::STAT_FS:
    case proto::GET_LOCK:
    case proto::SET_LOCK:
    case proto::ACCESS:
    case proto::REPO_LIST:
    case proto::REPO_DIR_INFO:
    case proto::PING:
      return false;
    default:
      return true;
  }
}

void Client::Impl::CountLookup(uint64_t parent, uint64_t before) {
  std::lock_guard lk(ahead_mu);
  auto [it, fresh] = ahead.try_emplace(parent);
  DirAhead& d = it->second;
  const int64_t now = MonoMs();
  const int64_t window = std::max<int64_t>(opt.lookup_ahead.count() / 20, 20);
  if (fresh || d.changes != before || now - d.window_ms > window) {
    d.changes = before;
    d.lookups = 0;
    d.window_ms = now;
  }
  d.lookups++;
  d.used_ms = now;
  if (ahead.size() > 1024) {
    // Directories looked into once and never again: forget the oldest half.
    std::vector<std::pair<int64_t, uint64_t>> by_use;
    for (const auto& [ino, a] : ahead) {
      if (!a.fetching) by_use.push_back({a.used_ms, ino});
    }
    std::sort(by_use.begin(), by_use.end());
    for (size_t k = 0; k < by_use.size() / 2; k++) {
      ahead_entries -= ahead[by_use[k].second].entries.size();
      ahead.erase(by_use[k].second);
    }
  }
}

std::optional<Result<FileAttr>> Client::Impl::LookupAhead(const proto::Cred& c, uint64_t parent,
                                                        const std::string& name) {
  const int64_t ttl = opt.lookup_ahead.count();
  const uint64_t now_changes = changes.load();
  int64_t now = MonoMs();
  proto::Layout layout;   // of the file answered, for the prefetch at open
  // What a fresh copy says, or that it says nothing.
  auto answer = [&](DirAhead& d) -> std::optional<Result<FileAttr>> {
    d.used_ms = now;
    auto e = d.entries.find(name);
    if (e == d.entries.end() || !e->second.has_attr()) return std::nullopt;
    Status may = CheckAccess(d.dir, c, kMayExec, "lookup");
    if (!may.ok()) return Result<FileAttr>(may);
    FileAttr a = ToFileAttr(e->second.attr());
    a.age_ms = now - d.fetched_ms;
    if (e->second.has_layout()) layout = e->second.layout();
    d.hits++;
    return Result<FileAttr>(std::move(a));
  };
  auto fresh = [&](const DirAhead& d) {
    return d.fetched_ms != 0 && d.changes == changes.load() && now - d.fetched_ms < ttl;
  };
  std::optional<Result<FileAttr>> out;
  {
    std::lock_guard lk(ahead_mu);
    auto it = ahead.find(parent);
    if (it == ahead.end()) return std::nullopt;
    DirAhead& d = it->second;
    if (fresh(d)) {
      out = answer(d);
    } else {
      if (d.fetched_ms != 0) {
        // A copy that answered a quarter of its names or more before it
        // grew too old is read again at once (a job going through a
        // directory spends seconds in it); otherwise, and after this
        // client's change ended it, the lookups from meta decide again.
        const int worth = std::max<int>(kLookupsBeforeReading, static_cast<int>(d.entries.size() / 4));
        if (d.changes == now_changes && d.hits >= worth) d.lookups = kLookupsBeforeReading;
        ahead_entries -= d.entries.size();
        d.entries.clear();
        d.fetched_ms = 0;
      }
      if (d.fetching || d.lookups < kLookupsBeforeReading || d.changes != now_changes || now < d.retry_ms) {
        return std::nullopt;
      }
      d.fetching = true;
    }
  }
  if (!out) {
    // Read the directory: its attributes (for the search permission), then
    // one page of its entries. Taken as of now_changes: a change of this
    // client made while it is read leaves it stale at once.
    const int64_t started = MonoMs();
    proto::GetAttrRequest ga;
    *ga.mutable_cred() = c;
    ga.set_ino(parent);
    auto dir = MetaCall<proto::GetAttrReply>(proto::GET_ATTR, ga);
    Result<proto::ReadDirReply> page = Status(EIO, "not read");
    if (dir.ok()) {
      proto::ReadDirRequest rd;
      *rd.mutable_cred() = c;
      rd.set_ino(parent);
      rd.set_max_entries(kMaxPerDirectory);
      rd.set_plus(true);
      rd.set_layouts(true);
      page = MetaCall<proto::ReadDirReply>(proto::READ_DIR, rd);
    }
    std::lock_guard lk(ahead_mu);
    DirAhead& d = ahead[parent];
    d.fetching = false;
    now = MonoMs();
    if (!dir.ok() || !page.ok()) {
      // No read permission, say: lookups go to meta for a while.
      spdlog::debug("statahead of directory {}: {}", parent, (dir.ok() ? page.status() : dir.status()).ToString());
      d.retry_ms = now + std::max<int64_t>(ttl, 1000);
      return std::nullopt;
    }
    if (ahead_entries + page->entries_size() > kMaxEntries) {
      // Make room: the copies used longest ago go first.
      std::vector<std::pair<int64_t, uint64_t>> by_use;
      for (const auto& [ino, a] : ahead) {
        if (ino != parent && !a.entries.empty()) by_use.push_back({a.used_ms, ino});
      }
      std::sort(by_use.begin(), by_use.end());
      for (const auto& [used, ino] : by_use) {
        if (ahead_entries + page->entries_size() <= kMaxEntries) break;
        auto& other = ahead[ino];
        ahead_entries -= other.entries.size();
        other.entries.clear();
        other.fetched_ms = 0;
      }
    }
    ahead_entries -= d.entries.size();
    d.entries.clear();
    for (auto& e : *page->mutable_entries()) {
      std::string n = e.name();
      d.entries.emplace(std::move(n), std::move(e));
    }
    ahead_entries += d.entries.size();
    d.dir = std::move(dir->attr());
    d.changes = now_changes;
    d.fetched_ms = started;
    d.lookups = 0;
    d.hits = 0;
    if (!fresh(d)) return std::nullopt;
    out = answer(d);
  }
  if (!out || !out->ok()) return out;
  FileAttr& a = **out;
  if (a.type != FileType::kRegular) return out;
  if (auto f = FileOf(a.ino)) {
    // Our writes not yet committed count, as in WithLocalSize.
    std::lock_guard flk(f->mu);
    if (f->Dirty()) a.size = std::max(a.size, f->size);
  }
  if (layout.targets_size() > 0) {
    // For the prefetch at open, as a lookup from meta leaves it.
    std::lock_guard lk(mu);
    if (looked.size() >= 4096) looked.clear();
    looked[a.ino] = {std::move(layout), a.version, a.size, now};
  }
  return out;
}

}  // namespace stria
