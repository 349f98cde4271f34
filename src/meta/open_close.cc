// Open and Close: opens are counted per session (sessions.h); the last
// close of an unlinked file frees it.
#include <fcntl.h>

#include <spdlog/spdlog.h>

#include "common/util.h"
#include "meta/kv_schema.h"
#include "meta/meta_service.h"
#include "meta/ops_internal.h"
#include "common/permissions.h"

namespace stria::meta {

Status OpenForSession(Ctx& c, uint64_t session, uint64_t ino) {
  c.sessions.NoteUse(ino, NowNs());
  if (session == 0) return Status::Ok();   // a one-off caller without a session
  c.sessions.AddOpen(session, ino, MonoMs());
  return Status::Ok();
}

namespace {

// A file under a link: its last use outlives a restart of stria-meta, so
// that the watermark's release keeps what was read lately. It is kept to
// the hour, and written without a sync of its own (the next synced commit
// takes it along): a hint, not a change to the file.
void NoteRepoUse(Ctx& c, const InodeRecord& rec) {
  constexpr int64_t kStep = 3600LL * 1000000000;
  const uint64_t ino = rec.attr().ino();
  const int64_t now = NowNs(), seen = c.sessions.LastUse(ino);
  if (rec.repo_root() == 0 || rec.attr().type() != proto::FT_REG || (seen && now - seen < kStep)) return;
  std::string v;
  keys::PutBE(v, static_cast<uint64_t>(now), 8);
  auto st = c.db()->Put(rocksdb::WriteOptions(), keys::LastUse(ino), v);
  if (!st.ok()) spdlog::warn("inode {}: last use not kept: {}", ino, st.ToString());
}

}  // namespace

Result<std::string> OpOpen(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::OpenRequest>(msg, "open"));
  STRIA_ASSIGN_OR_RETURN(auto rec, c.GetInode(t, req.ino()));
  int acc = static_cast<int>(req.flags()) & O_ACCMODE;
  bool write = acc == O_WRONLY || acc == O_RDWR || (req.flags() & O_TRUNC);
  if (rec.attr().type() == proto::FT_DIR && write) return Err(EISDIR, "open: inode {} is a directory", req.ino());
  int mask = (acc == O_RDONLY || acc == O_RDWR ? kMayRead : 0) | (write ? kMayWrite : 0);
  STRIA_RETURN_IF_ERROR(CheckAccess(rec.attr(), req.cred(), mask, "open"));
  if ((req.flags() & O_TRUNC) && rec.attr().type() == proto::FT_REG) {
    STRIA_RETURN_IF_ERROR(TruncateToZero(c, t, rec, req.cred()));
    c.PutInode(t, rec);
    STRIA_ASSIGN_OR_RETURN(rec, c.GetInode(t, req.ino()));   // with its state as stored
  }
  // A released file: the reads fetch from the bucket what is not in yet
  // (a writer hydrates it whole first).
  STRIA_ASSIGN_OR_RETURN(auto source, SourceOf(c, t, rec));
  NoteRepoUse(c, rec);
  STRIA_RETURN_IF_ERROR(OpenForSession(c, req.session(), req.ino()));
  proto::OpenReply rep;
  *rep.mutable_attr() = rec.attr();
  *rep.mutable_layout() = rec.layout();
  if (source) *rep.mutable_source() = std::move(*source);
  return rep.SerializeAsString();
}

Result<std::string> OpClose(Ctx& c, Txn& t, const std::string& msg) {
  STRIA_ASSIGN_OR_RETURN(auto req, Parse<proto::CloseRequest>(msg, "close"));
  if (c.sessions.Exists(req.session())) {
    c.sessions.Touch(req.session(), MonoMs());
    c.sessions.DropOpen(req.session(), req.ino());
  }
  // The last close of an unlinked file frees it.
  if (!c.sessions.IsOpen(req.ino())) {
    STRIA_ASSIGN_OR_RETURN(auto orphan, t.Get(keys::Orphan(req.ino())));
    if (orphan) {
      auto rec = c.GetInode(t, req.ino());
      if (rec.ok() && rec->attr().nlink() == 0) STRIA_RETURN_IF_ERROR(c.DeleteInode(t, *rec));
      else t.Delete(keys::Orphan(req.ino()));
    }
  }
  return proto::CloseReply().SerializeAsString();
}

}  // namespace stria::meta
