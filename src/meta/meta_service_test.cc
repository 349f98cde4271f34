// MetaService on a real RocksDB in a temporary directory, called directly.
#include "meta/meta_test_fixture.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

namespace stria::meta {
namespace {

TEST_F(MetaTest, RetriedMutationIsAppliedOnce) {
  proto::MkdirRequest req;
  req.set_parent(1);
  req.set_name("once");
  req.set_mode(0755);
  req.mutable_mid()->set_session(77);
  req.mutable_mid()->set_seq(5);
  auto a = Call<proto::MkdirReply>(proto::MKDIR, req);
  ASSERT_TRUE(a.ok());
  auto b = Call<proto::MkdirReply>(proto::MKDIR, req);   // the retry: same reply, no EEXIST
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->attr().ino(), b->attr().ino());
  Reopen();   // also after a restart
  auto c = Call<proto::MkdirReply>(proto::MKDIR, req);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(a->attr().ino(), c->attr().ino());
  req.mutable_mid()->set_seq(6);   // a new mutation is applied: EEXIST
  EXPECT_EQ(Call<proto::MkdirReply>(proto::MKDIR, req).status().code(), EEXIST);
}

TEST_F(MetaTest, ConcurrentMutationsShareWalSyncs) {
  auto& reg = metrics::Registry::Default();
  auto& syncs = reg.GetCounter("stria_meta_wal_syncs_total", "");
  auto& muts = reg.GetCounter("stria_meta_mutations_total", "");
  uint64_t s0 = syncs.value(), m0 = muts.value();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; i++) {
        EXPECT_TRUE(Mkdir(1, "g" + std::to_string(t) + "-" + std::to_string(i)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t s = syncs.value() - s0, m = muts.value() - m0;
  EXPECT_EQ(m, 400u);
  EXPECT_LT(s, m) << "every mutation synced alone: no group commit";
}

TEST_F(MetaTest, EverythingAcknowledgedSurvivesReopen) {
  auto d = Mkdir(1, "dir");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(Create(d->ino(), "file").ok());
  Reopen();
  proto::ResolveRequest req;
  req.set_path("/dir/file");
  auto r = Call<proto::ResolveReply>(proto::RESOLVE, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().type(), proto::FT_REG);
  EXPECT_EQ(r->parent(), d->ino());
  // New inode numbers never repeat after a restart.
  auto f2 = Create(1, "after");
  ASSERT_TRUE(f2.ok());
  EXPECT_GT(f2->attr().ino(), r->attr().ino());
}

TEST_F(MetaTest, ReaddirCookiesStayValidWhileTheDirectoryChanges) {
  auto d = Mkdir(1, "big");
  ASSERT_TRUE(d.ok());
  for (int i = 0; i < 500; i++) ASSERT_TRUE(Create(d->ino(), "f" + std::to_string(i)).ok());
  std::set<std::string> seen, deleted;
  uint64_t cookie = 0;
  int page = 0, added = 0;
  while (true) {
    proto::ReadDirRequest req;
    req.set_ino(d->ino());
    req.set_cookie(cookie);
    req.set_max_entries(50);
    auto r = Call<proto::ReadDirReply>(proto::READ_DIR, req);
    ASSERT_TRUE(r.ok());
    for (auto& e : r->entries()) {
      EXPECT_TRUE(seen.insert(e.name()).second) << "twice: " << e.name();
      cookie = e.cookie();
    }
    if (r->eof()) break;
    // Between pages: delete one not yet listed, add a new one.
    std::string victim = "f" + std::to_string(499 - page);
    if (!seen.count(victim)) {
      ASSERT_TRUE(Unlink(d->ino(), victim).ok());
      deleted.insert(victim);
    }
    ASSERT_TRUE(Create(d->ino(), "new" + std::to_string(added++)).ok());
    page++;
  }
  for (int i = 0; i < 500; i++) {
    std::string n = "f" + std::to_string(i);
    if (!deleted.count(n)) EXPECT_TRUE(seen.count(n)) << "missing " << n;
    else EXPECT_FALSE(seen.count(n)) << "deleted but listed " << n;
  }
}

TEST_F(MetaTest, UnlinkedOpenFileLivesUntilLastClose) {
  proto::SessionOpenRequest so;
  auto s = Call<proto::SessionOpenReply>(proto::SESSION_OPEN, so);
  ASSERT_TRUE(s.ok());
  auto f = Create(1, "open", false, {}, s->session());
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(Unlink(1, "open").ok());
  EXPECT_TRUE(Garbage().empty());
  proto::GetAttrRequest ga;
  ga.set_ino(f->attr().ino());
  auto a = Call<proto::GetAttrReply>(proto::GET_ATTR, ga);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->attr().nlink(), 0u);
  proto::CloseRequest cl;
  cl.set_session(s->session());
  cl.set_ino(f->attr().ino());
  ASSERT_TRUE(Call<proto::CloseReply>(proto::CLOSE, cl).ok());
  EXPECT_EQ(Call<proto::GetAttrReply>(proto::GET_ATTR, ga).status().code(), ENOENT);
  auto g = Garbage();
  ASSERT_EQ(g.size(), 2u);   // one entry per target of the layout
  EXPECT_EQ(g[0].ino(), f->layout().object_id());
}

TEST_F(MetaTest, TruncateToZeroGivesFreshObjects) {
  auto f = Create(1, "t");
  ASSERT_TRUE(f.ok());
  proto::CommitWriteRequest cw;
  cw.set_ino(f->attr().ino());
  cw.set_min_size(1000);
  auto c = Call<proto::CommitWriteReply>(proto::COMMIT_WRITE, cw);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->attr().size(), 1000u);
  cw.set_min_size(10);   // a smaller write never shrinks the file
  EXPECT_EQ(Call<proto::CommitWriteReply>(proto::COMMIT_WRITE, cw)->attr().size(), 1000u);
  proto::SetAttrRequest sa;
  sa.set_ino(f->attr().ino());
  sa.set_mask(proto::SA_SIZE);
  sa.set_size(0);
  ASSERT_TRUE(Call<proto::SetAttrReply>(proto::SET_ATTR, sa).ok());
  proto::GetLayoutRequest gl;
  gl.set_ino(f->attr().ino());
  auto l = Call<proto::GetLayoutReply>(proto::GET_LAYOUT, gl);
  ASSERT_TRUE(l.ok());
  EXPECT_NE(l->layout().object_id(), f->layout().object_id());
  auto g = Garbage();
  ASSERT_FALSE(g.empty());
  EXPECT_EQ(g[0].ino(), f->layout().object_id());
}

TEST_F(MetaTest, PermissionsForAnUnprivilegedCaller) {
  auto d = Mkdir(1, "private", Root(), 0700);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Create(d->ino(), "x", false, User(1000)).status().code(), EACCES);
  auto pub = Mkdir(1, "sticky", Root(), 01777);
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(Create(pub->ino(), "mine", false, User(1000)).ok());
  EXPECT_EQ(Unlink(pub->ino(), "mine", User(1001)).code(), EPERM);   // sticky bit
  EXPECT_TRUE(Unlink(pub->ino(), "mine", User(1000)).ok());
  auto f = Create(pub->ino(), "owned", false, User(1000));
  ASSERT_TRUE(f.ok());
  proto::SetAttrRequest sa;
  *sa.mutable_cred() = User(1000);
  sa.set_ino(f->attr().ino());
  sa.set_mask(proto::SA_UID);
  sa.set_uid(1001);
  EXPECT_EQ(Call<proto::SetAttrReply>(proto::SET_ATTR, sa).status().code(), EPERM);
  sa.set_mask(proto::SA_MODE);
  sa.set_mode(0600);
  *sa.mutable_cred() = User(1001);
  EXPECT_EQ(Call<proto::SetAttrReply>(proto::SET_ATTR, sa).status().code(), EPERM);
  proto::SetXattrRequest sx;
  *sx.mutable_cred() = User(1000);
  sx.set_ino(f->attr().ino());
  sx.set_name("trusted.x");
  EXPECT_EQ(Call<proto::SetXattrReply>(proto::SET_XATTR, sx).status().code(), EPERM);
}

TEST_F(MetaTest, BadRequestsGetClearErrors) {
  EXPECT_EQ(svc_->Execute(999, "").status.code(), ENOSYS);
  EXPECT_EQ(svc_->Execute(proto::LOOKUP, std::string("\xff\xff\xff", 3)).status.code(), EBADMSG);
  EXPECT_EQ(Mkdir(1, std::string(256, 'n')).status().code(), ENAMETOOLONG);
  EXPECT_EQ(Mkdir(1, "a/b").status().code(), EINVAL);
  EXPECT_EQ(Mkdir(12345, "x").status().code(), ENOENT);
  proto::RenameRequest rn;
  rn.set_src_parent(1);
  rn.set_src_name("nothing");
  rn.set_dst_parent(1);
  rn.set_dst_name("else");
  EXPECT_EQ(Call<proto::RenameReply>(proto::RENAME, rn).status().code(), ENOENT);
}

}  // namespace
}  // namespace stria::meta
