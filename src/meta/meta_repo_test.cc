// Data repository links in stria-meta: who may link, where, and what
// unlink and rmdir refuse.
#include <fcntl.h>

#include <gtest/gtest.h>

#include "common/util.h"
#include "meta/meta_test_fixture.h"

namespace stria::meta {
namespace {

class RepoTest : public MetaTest {
 protected:
  Status RepoLink(uint64_t ino, const std::string& url, proto::Cred cred = {}) {
    proto::RepoLinkRequest req;
    *req.mutable_cred() = cred;
    req.set_ino(ino);
    req.mutable_link()->set_url(url);
    req.mutable_link()->set_endpoint("http://127.0.0.1:1");
    req.mutable_link()->set_region("us-east-1");
    return Call<proto::RepoLinkReply>(proto::REPO_LINK, req).status();
  }
  Status RepoUnlink(uint64_t ino, bool force = false, proto::Cred cred = {}) {
    proto::RepoUnlinkRequest req;
    *req.mutable_cred() = cred;
    req.set_ino(ino);
    req.set_force(force);
    return Call<proto::RepoUnlinkReply>(proto::REPO_UNLINK, req).status();
  }
  Result<proto::RepoListReply> List() { return Call<proto::RepoListReply>(proto::REPO_LIST, proto::RepoListRequest()); }
  proto::RepoCounts CountsOf(uint64_t root) {
    auto l = List();
    EXPECT_TRUE(l.ok());
    for (const auto& i : l->links()) {
      if (i.ino() == root) return i.counts();
    }
    ADD_FAILURE() << "no link " << root;
    return {};
  }
  Result<proto::RepoImportReply> Import(uint64_t dir, std::vector<proto::RepoObject> objects, bool complete) {
    proto::RepoImportRequest req;
    req.set_ino(dir);
    for (auto& o : objects) *req.add_objects() = o;
    req.set_complete(complete);
    return Call<proto::RepoImportReply>(proto::REPO_IMPORT, req);
  }
  static proto::RepoObject File(const std::string& name, uint64_t size) {
    proto::RepoObject o;
    o.set_name(name);
    o.set_size(size);
    o.set_etag("\"e-" + name + "\"");
    o.set_mtime_ns(1700000000000000000);
    return o;
  }
  static proto::RepoObject Dir(const std::string& name) {
    proto::RepoObject o;
    o.set_name(name);
    o.set_is_dir(true);
    return o;
  }
  Result<proto::OpenReply> OpenFile(uint64_t ino, uint32_t flags) {
    proto::OpenRequest req;
    req.set_ino(ino);
    req.set_flags(flags);
    return Call<proto::OpenReply>(proto::OPEN, req);
  }
  Status Open(uint64_t ino, uint32_t flags) { return OpenFile(ino, flags).status(); }
  // /data linked to s3://bucket/train with the level `dir/` imported and
  // the files of `dir` imported in it: (data, dir), or zeros on failure.
  std::pair<uint64_t, uint64_t> LinkedDir(const std::string& dir, std::vector<proto::RepoObject> files) {
    auto d = Mkdir(1, "data");
    if (!d.ok() || !RepoLink(d->ino(), "s3://bucket/train").ok() || !Import(d->ino(), {Dir(dir)}, true).ok()) {
      return {0, 0};
    }
    auto sub = Lookup(d->ino(), dir);
    if (!sub.ok() || !Import(sub->ino(), std::move(files), true).ok()) return {0, 0};
    return {d->ino(), sub->ino()};
  }
  Result<proto::Attr> Hydrated(uint64_t ino, uint64_t object_id, std::vector<uint32_t> indexes) {
    proto::RepoHydratedRequest req;
    req.mutable_hydrated()->set_ino(ino);
    req.mutable_hydrated()->set_object_id(object_id);
    for (uint32_t i : indexes) req.mutable_hydrated()->add_indexes(i);
    auto r = Call<proto::RepoHydratedReply>(proto::REPO_HYDRATED, req);
    if (!r.ok()) return r.status();
    return r->attr();
  }
};

TEST_F(RepoTest, LinkListUnlink) {
  auto d = Mkdir(1, "data");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(RepoLink(d->ino(), "s3://bucket/train/").ok());
  auto l = List();
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_EQ(l->links_size(), 1);
  EXPECT_EQ(l->links(0).ino(), d->ino());
  EXPECT_EQ(l->links(0).link().url(), "s3://bucket/train/");
  EXPECT_GT(l->links(0).link().created_ns(), 0);
  EXPECT_EQ(RepoLink(d->ino(), "s3://other").code(), EEXIST);
  // A linked directory cannot be removed while linked, nor replaced.
  EXPECT_EQ(Rmdir(1, "data").code(), EBUSY);
  ASSERT_TRUE(Mkdir(1, "other").ok());
  EXPECT_EQ(Rename(1, "other", 1, "data").code(), EBUSY);
  ASSERT_TRUE(RepoUnlink(d->ino()).ok());
  EXPECT_EQ(List()->links_size(), 0);
  EXPECT_EQ(RepoUnlink(d->ino()).code(), EINVAL);
  EXPECT_TRUE(Rmdir(1, "data").ok());
}

TEST_F(RepoTest, WhereLinksMayGo) {
  auto d = Mkdir(1, "d");
  ASSERT_TRUE(d.ok());
  auto f = Create(1, "f");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(RepoLink(f->attr().ino(), "s3://b").code(), ENOTDIR);
  EXPECT_EQ(RepoLink(d->ino(), "http://b").code(), EINVAL);
  EXPECT_EQ(RepoLink(d->ino(), "s3://").code(), EINVAL);
  EXPECT_EQ(RepoLink(d->ino(), "s3://b", User(1000)).code(), EPERM);
  ASSERT_TRUE(Create(d->ino(), "inside").ok());
  EXPECT_EQ(RepoLink(d->ino(), "s3://b").code(), ENOTEMPTY);
  // Not inside another link, however deep.
  auto outer = Mkdir(1, "outer");
  ASSERT_TRUE(outer.ok());
  ASSERT_TRUE(RepoLink(outer->ino(), "s3://b/outer").ok());
  EXPECT_EQ(Mkdir(outer->ino(), "x").status().code(), EREMOTE);   // its level first
  ASSERT_TRUE(Import(outer->ino(), {}, true).ok());
  auto inner = Mkdir(outer->ino(), "x");
  ASSERT_TRUE(inner.ok());
  auto deeper = Mkdir(inner->ino(), "y");
  ASSERT_TRUE(deeper.ok());
  EXPECT_EQ(RepoLink(deeper->ino(), "s3://b/inner").code(), EINVAL);
  EXPECT_EQ(RepoUnlink(outer->ino(), false, User(1000)).code(), EPERM);
}

TEST_F(RepoTest, LinksSurviveRestart) {
  auto d = Mkdir(1, "data");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(RepoLink(d->ino(), "s3://bucket/p/").ok());
  Reopen();
  auto l = List();
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->links_size(), 1);
  EXPECT_EQ(l->links(0).link().url(), "s3://bucket/p/");
}

// A linked directory is imported level by level: EREMOTE until a client
// sends its level, then released files and unlisted directories.
TEST_F(RepoTest, LazyImportLevelByLevel) {
  auto d = Mkdir(1, "data");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(RepoLink(d->ino(), "s3://bucket/train").ok());
  auto miss = Lookup(d->ino(), "a.bin");
  ASSERT_EQ(miss.status().code(), EREMOTE);
  // The client finds the directory in the message (client/connection.cc).
  EXPECT_EQ(miss.status().message().rfind("directory " + std::to_string(d->ino()) + " ", 0), 0u)
      << miss.status().message();
  EXPECT_EQ(Create(d->ino(), "new").status().code(), EREMOTE);
  proto::RepoDirInfoRequest ir;
  ir.set_ino(d->ino());
  auto info = Call<proto::RepoDirInfoReply>(proto::REPO_DIR_INFO, ir);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->prefix(), "train/");
  EXPECT_TRUE(info->unlisted());
  EXPECT_EQ(info->link().url(), "s3://bucket/train");

  // Two pages; bad names are skipped, a name seen twice is made once.
  auto r = Import(d->ino(), {File("a.bin", 1000), Dir("cats"), File("..", 1), File(std::string(300, 'x'), 1)}, false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->created(), 2u);
  EXPECT_EQ(r->skipped(), 2u);
  EXPECT_EQ(Lookup(d->ino(), "a.bin").status().code(), EREMOTE);   // not complete yet
  r = Import(d->ino(), {File("b.bin", 24), File("a.bin", 5)}, true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->created(), 1u);
  auto a = Lookup(d->ino(), "a.bin");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size(), 1000u);
  EXPECT_EQ(a->mtime_ns(), 1700000000000000000);
  auto cats = Lookup(d->ino(), "cats");
  ASSERT_TRUE(cats.ok());
  EXPECT_EQ(cats->type(), proto::FT_DIR);
  EXPECT_EQ(Lookup(cats->ino(), "x").status().code(), EREMOTE);   // the next level waits its turn
  ir.set_ino(cats->ino());
  EXPECT_EQ(Call<proto::RepoDirInfoReply>(proto::REPO_DIR_INFO, ir)->prefix(), "train/cats/");
  auto n = CountsOf(d->ino());
  EXPECT_EQ(n.released_files(), 2u);
  EXPECT_EQ(n.released_bytes(), 1024u);

  // A released file opens with where its bytes are; O_TRUNC makes it new and dirty.
  auto opened = OpenFile(a->ino(), O_RDONLY);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->source().key(), "train/a.bin");
  EXPECT_EQ(opened->source().size(), 1000u);
  EXPECT_EQ(opened->attr().repo_state(), proto::RS_RELEASED);
  ASSERT_TRUE(Open(a->ino(), O_WRONLY | O_TRUNC).ok());
  n = CountsOf(d->ino());
  EXPECT_EQ(n.released_files(), 1u);
  EXPECT_EQ(n.released_bytes(), 24u);
  EXPECT_EQ(n.dirty_files(), 1u);
  EXPECT_EQ(n.dirty_bytes(), 0u);

  // New files under a link are dirty; their bytes follow their size.
  auto f = Create(d->ino(), "ckpt");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  proto::CommitWriteRequest cw;
  cw.set_ino(f->attr().ino());
  cw.set_min_size(4096);
  ASSERT_TRUE(Call<proto::CommitWriteReply>(proto::COMMIT_WRITE, cw).ok());
  n = CountsOf(d->ino());
  EXPECT_EQ(n.dirty_files(), 2u);
  EXPECT_EQ(n.dirty_bytes(), 4096u);
  ASSERT_TRUE(Unlink(d->ino(), "ckpt").ok());
  EXPECT_EQ(CountsOf(d->ino()).dirty_files(), 1u);

  // Names do not move between a link and the rest (EXDEV, as across mounts).
  auto outside = Mkdir(1, "outside");
  ASSERT_TRUE(outside.ok());
  EXPECT_EQ(Rename(d->ino(), "b.bin", outside->ino(), "b.bin").code(), EXDEV);
  EXPECT_EQ(Link(a->ino(), outside->ino(), "alias").status().code(), EXDEV);
  // A released file is not renamed (its bucket key is where its data is):
  // libstria hydrates it first.
  auto refused = Rename(d->ino(), "b.bin", d->ino(), "c.bin");
  EXPECT_EQ(refused.code(), ENODATA);
  EXPECT_NE(refused.message().find("released"), std::string::npos) << refused.message();

  // Unlink refuses while data is only in the bucket or not exported.
  EXPECT_EQ(RepoUnlink(d->ino()).code(), EBUSY);
  ASSERT_TRUE(RepoUnlink(d->ino(), true).ok());
  // With the link gone, an unimported level is simply empty.
  EXPECT_EQ(Lookup(cats->ino(), "x").status().code(), ENOENT);
}

// A sync compares a directory with the level its path names now (the
// client sends it): only a level below the link's prefix; a renamed
// directory takes it, and its new files inherit it.
TEST_F(RepoTest, SyncComparesWithTheLevelThePathNames) {
  auto d = Mkdir(1, "data");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(RepoLink(d->ino(), "s3://bucket/train").ok());
  ASSERT_TRUE(Import(d->ino(), {Dir("old")}, true).ok());
  auto old = Lookup(d->ino(), "old");
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE(Import(old->ino(), {File("a.bin", 10)}, true).ok());
  ASSERT_TRUE(Rename(d->ino(), "old", d->ino(), "new").ok());
  auto sync = [&](const std::optional<std::string>& prefix, std::vector<proto::RepoObject> objects) {
    proto::RepoSyncRequest req;
    req.set_ino(old->ino());
    if (prefix) req.set_prefix(*prefix);
    for (auto& o : objects) *req.add_objects() = o;
    return Call<proto::RepoSyncReply>(proto::REPO_SYNC, req);
  };
  for (const char* bad : {"elsewhere/new/", "train/new", "train//new/", "trainx/"}) {
    auto r = sync(bad, {});
    EXPECT_EQ(r.status().code(), EINVAL) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
  auto r = sync("train/new/", {File("b.bin", 5)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->created(), 1u);
  proto::RepoDirInfoRequest ir;
  ir.set_ino(old->ino());
  EXPECT_EQ(Call<proto::RepoDirInfoReply>(proto::REPO_DIR_INFO, ir)->prefix(), "train/new/");
  auto b = OpenFile(Lookup(old->ino(), "b.bin")->ino(), O_RDONLY);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->source().key(), "train/new/b.bin");
  // a.bin's content is still at its old key: not removed by the new level.
  EXPECT_EQ(Lookup(old->ino(), "a.bin")->repo_key(), "train/old/a.bin");
  auto c = Create(old->ino(), "c.bin");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Lookup(old->ino(), "c.bin")->repo_key(), "train/new/c.bin");
  // The parent's level still has old/ (a.bin's content): not a new directory.
  proto::RepoSyncRequest up;
  up.set_ino(d->ino());
  *up.add_objects() = Dir("old");
  *up.add_objects() = Dir("new");
  auto parent = Call<proto::RepoSyncReply>(proto::REPO_SYNC, up);
  ASSERT_TRUE(parent.ok()) << parent.status().ToString();
  EXPECT_EQ(parent->created(), 0u);
  EXPECT_EQ(parent->skipped(), 1u);
  EXPECT_EQ(Lookup(d->ino(), "old").status().code(), ENOENT);
}

TEST_F(RepoTest, ImportNeedsALinkedDirectory) {
  auto d = Mkdir(1, "plain");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Import(d->ino(), {File("a", 1)}, true).status().code(), EINVAL);
  EXPECT_TRUE(Lookup(d->ino(), "a").status().code() == ENOENT);
}

// A released file: open hands out its source; its data may not change
// until it is hydrated; reports of fetched stripe objects make it resident
// when all of its objects are in, and stale reports change nothing.
TEST_F(RepoTest, HydrationMakesAFileResident) {
  auto d = Mkdir(1, "data");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(RepoLink(d->ino(), "s3://bucket/train").ok());
  proto::SetLayoutRequest sl;   // 4 KiB stripes over both targets
  sl.set_ino(d->ino());
  sl.mutable_layout()->set_stripe_size(4096);
  sl.mutable_layout()->set_stripe_count(2);
  ASSERT_TRUE(Call<proto::SetLayoutReply>(proto::SET_LAYOUT, sl).ok());
  ASSERT_TRUE(Import(d->ino(), {File("big", 3 * 4096 + 100), File("small", 100), File("empty", 0)}, true).ok());
  auto big = Lookup(d->ino(), "big");
  auto small = Lookup(d->ino(), "small");
  auto empty = Lookup(d->ino(), "empty");
  ASSERT_TRUE(big.ok() && small.ok() && empty.ok());
  EXPECT_EQ(big->repo_state(), proto::RS_RELEASED);
  EXPECT_EQ(empty->repo_state(), proto::RS_RESIDENT);   // nothing to fetch
  proto::LookupRequest lr;
  lr.set_parent(d->ino());
  lr.set_name("big");
  EXPECT_FALSE(Call<proto::LookupReply>(proto::LOOKUP, lr)->has_layout());   // no read before open

  auto o = OpenFile(big->ino(), O_RDONLY);
  ASSERT_TRUE(o.ok());
  ASSERT_TRUE(o->has_source());
  EXPECT_EQ(o->source().etag(), "\"e-big\"");
  EXPECT_EQ(o->source().link().url(), "s3://bucket/train");
  EXPECT_EQ(o->source().ino(), big->ino());
  EXPECT_FALSE(OpenFile(empty->ino(), O_RDONLY)->has_source());
  uint64_t oid = o->layout().object_id();

  // Its data cannot change before it is in: a write or a cut would mix
  // with bytes still to come from the bucket.
  proto::CommitWriteRequest cw;
  cw.set_ino(big->ino());
  cw.set_min_size(10);
  EXPECT_EQ(Call<proto::CommitWriteReply>(proto::COMMIT_WRITE, cw).status().code(), ENODATA);
  proto::SetAttrRequest sa;
  sa.set_ino(big->ino());
  sa.set_mask(proto::SA_SIZE);
  sa.set_size(10);
  EXPECT_EQ(Call<proto::SetAttrReply>(proto::SET_ATTR, sa).status().code(), ENODATA);

  // Object 0 in: still released; a report about other objects changes nothing.
  auto h = Hydrated(big->ino(), oid, {0});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->repo_state(), proto::RS_RELEASED);
  EXPECT_EQ(Hydrated(big->ino(), oid + 12345, {1})->repo_state(), proto::RS_RELEASED);
  // Through a store's heartbeat, as stores report it.
  proto::StoreHeartbeatRequest hb;
  hb.set_store_id(store_id_);
  auto* rh = hb.add_hydrated();
  rh->set_ino(big->ino());
  rh->set_object_id(oid);
  rh->add_indexes(1);
  ASSERT_TRUE(Call<proto::StoreHeartbeatReply>(proto::STORE_HEARTBEAT, hb).ok());
  EXPECT_EQ(GetAttr(big->ino())->repo_state(), proto::RS_RESIDENT);
  EXPECT_FALSE(OpenFile(big->ino(), O_RDONLY)->has_source());
  // 100 bytes live in object 0 only.
  EXPECT_EQ(Hydrated(small->ino(), OpenFile(small->ino(), O_RDONLY)->layout().object_id(), {0})->repo_state(),
            proto::RS_RESIDENT);
  auto n = CountsOf(d->ino());
  EXPECT_EQ(n.released_files(), 0u);
  EXPECT_EQ(n.resident_files(), 3u);
  EXPECT_EQ(n.resident_bytes(), 3 * 4096 + 200u);
  // Resident: its data may change now, and it becomes dirty.
  EXPECT_TRUE(Call<proto::CommitWriteReply>(proto::COMMIT_WRITE, cw).ok());
  EXPECT_EQ(GetAttr(big->ino())->repo_state(), proto::RS_DIRTY);
  // Reports about a file that is no longer released change nothing.
  EXPECT_EQ(Hydrated(big->ino(), oid, {0, 1})->repo_state(), proto::RS_DIRTY);
  // Reports about a removed file are no error.
  ASSERT_TRUE(Unlink(d->ino(), "small").ok());
  EXPECT_TRUE(Call<proto::StoreHeartbeatReply>(proto::STORE_HEARTBEAT, hb).ok());
}

// A resident file renamed away still counts on its old key as its copy in
// the bucket. Another file's content sent to that key takes the copy away:
// the first file is dirty then (to be exported, never released unsent).
TEST_F(RepoTest, AFileWhoseKeyAnotherTakesIsDirty) {
  auto [data, a] = LinkedDir("a", {File("x", 100)});
  ASSERT_NE(a, 0u);
  auto x = Lookup(a, "x");
  ASSERT_TRUE(x.ok());
  auto h = Hydrated(x->ino(), OpenFile(x->ino(), O_RDONLY)->layout().object_id(), {0});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->repo_state(), proto::RS_RESIDENT);
  ASSERT_TRUE(Rename(data, "a", data, "b").ok());
  auto a2 = Mkdir(data, "a");
  ASSERT_TRUE(a2.ok());
  auto n = Create(a2->ino(), "x");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Lookup(a2->ino(), "x")->repo_key(), "train/a/x");
  proto::RepoExportedRequest ex;
  ex.set_ino(n->attr().ino());
  ex.set_version(n->attr().version());
  ex.set_size(0);
  ex.set_key("train/a/x");
  ex.set_etag("\"e-new\"");
  auto done = Call<proto::RepoExportedReply>(proto::REPO_EXPORTED, ex);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->attr().repo_state(), proto::RS_RESIDENT);
  EXPECT_EQ(GetAttr(x->ino())->repo_state(), proto::RS_DIRTY);
  auto counts = CountsOf(data);
  EXPECT_EQ(counts.dirty_files(), 1u);
  EXPECT_EQ(counts.resident_files(), 1u);
  // Release leaves a dirty file as it is.
  proto::RepoReleaseRequest rel;
  rel.set_ino(x->ino());
  auto r = Call<proto::RepoReleaseReply>(proto::REPO_RELEASE, rel);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().repo_state(), proto::RS_DIRTY);
}

// The export claims a key before it copies or uploads there: a released
// file still at the key keeps it (EBUSY for the export), a resident one
// turns dirty at once (no release can free it while its copy goes).
TEST_F(RepoTest, ClaimingAKeyStopsAtAReleasedFileAndDirtiesAResidentOne) {
  auto [data, a] = LinkedDir("a", {File("x", 100), File("y", 100)});
  ASSERT_NE(a, 0u);
  auto x = Lookup(a, "x");
  auto y = Lookup(a, "y");
  ASSERT_TRUE(x.ok() && y.ok());
  ASSERT_EQ(Hydrated(x->ino(), OpenFile(x->ino(), O_RDONLY)->layout().object_id(), {0})->repo_state(),
            proto::RS_RESIDENT);
  ASSERT_TRUE(Rename(data, "a", data, "b").ok());
  auto a2 = Mkdir(data, "a");
  ASSERT_TRUE(a2.ok());
  auto n = Create(a2->ino(), "n");
  ASSERT_TRUE(n.ok());
  auto claim = [&](uint64_t ino, const std::string& key) {
    proto::RepoClaimKeyRequest req;
    req.set_ino(ino);
    req.set_key(key);
    return Call<proto::RepoClaimKeyReply>(proto::REPO_CLAIM_KEY, req);
  };
  auto r = claim(n->attr().ino(), "train/a/y");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->held_by(), y->ino());
  EXPECT_EQ(GetAttr(y->ino())->repo_state(), proto::RS_RELEASED);
  EXPECT_EQ(claim(x->ino(), "train/a/x")->held_by(), 0u);   // its own key
  EXPECT_EQ(GetAttr(x->ino())->repo_state(), proto::RS_RESIDENT);
  r = claim(n->attr().ino(), "train/a/x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->held_by(), 0u);
  EXPECT_EQ(GetAttr(x->ino())->repo_state(), proto::RS_DIRTY);
  EXPECT_EQ(claim(n->attr().ino(), "train/nothing/here")->held_by(), 0u);
  EXPECT_EQ(claim(n->attr().ino(), "").status().code(), EINVAL);
  auto plain = Create(1, "plain");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(claim(plain->attr().ino(), "train/a/x").status().code(), EINVAL);
}

// The watermark's "last use" of a file under a link outlives a restart of
// stria-meta (kept to the hour); else its mtime would count.
TEST_F(RepoTest, LastUseOutlivesARestart) {
  auto [data, dir] = LinkedDir("a", {File("x", 100)});
  ASSERT_NE(dir, 0u);
  auto x = Lookup(dir, "x");
  ASSERT_TRUE(x.ok());
  const int64_t before = NowNs();
  ASSERT_EQ(Hydrated(x->ino(), OpenFile(x->ino(), O_RDONLY)->layout().object_id(), {0})->repo_state(),
            proto::RS_RESIDENT);
  Reopen();
  proto::RepoColdestRequest req;
  req.set_bytes(1 << 20);
  auto r = Call<proto::RepoColdestReply>(proto::REPO_COLDEST, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->files_size(), 1);
  EXPECT_EQ(r->files(0).ino(), x->ino());
  EXPECT_GE(r->files(0).last_use_ns(), before);   // the import's mtime is years older
}

}  // namespace
}  // namespace stria::meta
