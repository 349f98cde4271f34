// Cluster map, garbage delivery, sessions and orphans.
#include <gtest/gtest.h>

#include <fcntl.h>

#include <thread>

#include "meta/meta_test_fixture.h"
#include "meta/sessions.h"

namespace stria::meta {
namespace {

using ClusterTest = MetaTest;

proto::RegisterStoreRequest TwoTargets(const std::string& address) {
  proto::RegisterStoreRequest reg;
  reg.set_address(address);
  for (int i = 0; i < 2; i++) {
    auto* tr = reg.add_targets();
    tr->set_uuid("uuid" + std::to_string(i));
    tr->set_path("/t" + std::to_string(i));
    tr->set_capacity(1 << 30);
  }
  return reg;
}

TEST_F(ClusterTest, ReRegistrationKeepsIdsAndUpdatesAddresses) {
  auto map0 = Call<proto::GetClusterMapReply>(proto::GET_CLUSTER_MAP, proto::GetClusterMapRequest());
  ASSERT_TRUE(map0.ok());
  ASSERT_EQ(map0->targets_size(), 2);
  auto r = Call<proto::RegisterStoreReply>(proto::REGISTER_STORE, TwoTargets("127.0.0.1:2"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->store_id(), store_id_);
  auto map = Call<proto::GetClusterMapReply>(proto::GET_CLUSTER_MAP, proto::GetClusterMapRequest());
  ASSERT_TRUE(map.ok());
  EXPECT_GT(map->version(), map0->version());
  ASSERT_EQ(map->targets_size(), 2);
  EXPECT_EQ(map->targets(0).address(), "127.0.0.1:2");
  EXPECT_EQ(map->targets(0).id(), map0->targets(0).id());
  EXPECT_EQ(map->targets(0).state(), proto::TS_UP);
  ASSERT_EQ(map->stores_size(), 1);
  // A second store gets new ids.
  auto other = TwoTargets("127.0.0.1:3");
  other.mutable_targets(0)->set_uuid("other0");
  other.mutable_targets(1)->set_uuid("other1");
  auto r2 = Call<proto::RegisterStoreReply>(proto::REGISTER_STORE, other);
  ASSERT_TRUE(r2.ok());
  EXPECT_NE(r2->store_id(), store_id_);
  auto fs = Call<proto::StatFsReply>(proto::STAT_FS, proto::StatFsRequest());
  ASSERT_TRUE(fs.ok());
  EXPECT_EQ(fs->capacity(), 4ull << 30);
  EXPECT_EQ(fs->inodes(), 1u);   // the root
}

TEST_F(ClusterTest, UnknownStoreHeartbeatIsEnoent) {
  proto::StoreHeartbeatRequest hb;
  hb.set_store_id(999);
  EXPECT_EQ(Call<proto::StoreHeartbeatReply>(proto::STORE_HEARTBEAT, hb).status().code(), ENOENT);
}

TEST_F(ClusterTest, SilentStoreGoesDownAndNoFileCanBePlaced) {
  opts_.store_timeout_ms = 300;
  Reopen();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto map = Call<proto::GetClusterMapReply>(proto::GET_CLUSTER_MAP, proto::GetClusterMapRequest());
  ASSERT_TRUE(map.ok());
  ASSERT_EQ(map->targets_size(), 2);
  EXPECT_EQ(map->targets(0).state(), proto::TS_DOWN);
  EXPECT_EQ(Create(1, "f").status().code(), ENOSPC);
  // A heartbeat (reporting its targets, as stores do) brings it back.
  proto::StoreHeartbeatRequest hb;
  hb.set_store_id(store_id_);
  for (auto& t : map->targets()) {
    auto* tr = hb.add_targets();
    tr->set_id(t.id());
    tr->set_capacity(1 << 30);
  }
  ASSERT_TRUE(Call<proto::StoreHeartbeatReply>(proto::STORE_HEARTBEAT, hb).ok());
  EXPECT_TRUE(Create(1, "f").ok());
}

TEST_F(ClusterTest, FreedGarbageLeavesTheList) {
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(Create(1, "f" + std::to_string(i)).ok());
    ASSERT_TRUE(Unlink(1, "f" + std::to_string(i)).ok());
  }
  auto g = Garbage();
  ASSERT_EQ(g.size(), 6u);   // 3 objects x 2 targets
  EXPECT_EQ(g[0].count(), 2u);
  EXPECT_TRUE(Garbage().empty());   // handed out recently: not again yet
  proto::StoreHeartbeatRequest hb;
  hb.set_store_id(store_id_);
  for (auto& ref : g) *hb.add_freed() = ref;
  ASSERT_TRUE(Call<proto::StoreHeartbeatReply>(proto::STORE_HEARTBEAT, hb).ok());
  Reopen();   // nothing comes back after a restart either
  EXPECT_TRUE(Garbage().empty());
}

// A heartbeat carries the client's open set as it was when sent: an open
// that reached meta after that must survive it (else an unlinked file
// still open would be freed), while a close that never came is repaired
// by the heartbeats after.
TEST(Sessions, AHeartbeatKeepsOpensNewerThanItself) {
  Sessions s;
  s.AddOpen(7, 100, 1000);
  s.ReplaceOpens(7, {}, 1500, 4000);
  EXPECT_TRUE(s.IsOpen(100));
  s.ReplaceOpens(7, {}, 6000, 4000);
  EXPECT_FALSE(s.IsOpen(100));
  s.AddOpen(7, 200, 7000);
  s.AddOpen(8, 200, 7000);
  s.ReplaceOpens(7, {}, 20000, 4000);   // session 7's close got lost
  EXPECT_TRUE(s.IsOpen(200));           // session 8 still holds it
  s.DropOpen(8, 200);
  EXPECT_FALSE(s.IsOpen(200));
}

TEST_F(ClusterTest, AnOpenNewerThanAHeartbeatKeepsAnUnlinkedFile) {
  auto s = Call<proto::SessionOpenReply>(proto::SESSION_OPEN, proto::SessionOpenRequest());
  ASSERT_TRUE(s.ok());
  auto f = Create(1, "f", false, {}, s->session());   // open by the session
  ASSERT_TRUE(f.ok());
  proto::SessionHeartbeatRequest hb;   // sent before the client saw its open
  hb.set_session(s->session());
  ASSERT_TRUE(Call<proto::SessionHeartbeatReply>(proto::SESSION_HEARTBEAT, hb).ok());
  ASSERT_TRUE(Unlink(1, "f").ok());
  EXPECT_TRUE(GetAttr(f->attr().ino()).ok());
}

TEST_F(ClusterTest, ResumedSessionKeepsItsOrphanAndExpiryFreesIt) {
  opts_.session_timeout_ms = 400;
  Reopen();
  auto s = Call<proto::SessionOpenReply>(proto::SESSION_OPEN, proto::SessionOpenRequest());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->root_ino(), 1u);
  auto f = Create(1, "f", false, {}, s->session());
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(Unlink(1, "f").ok());
  // meta restarts; the client resumes with its open set.
  Reopen();
  proto::SessionOpenRequest resume;
  resume.set_resume_session(s->session());
  resume.add_open_inodes(f->attr().ino());
  auto s2 = Call<proto::SessionOpenReply>(proto::SESSION_OPEN, resume);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->session(), s->session());
  for (int i = 0; i < 4; i++) {   // heartbeats keep it alive past the timeout
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    proto::SessionHeartbeatRequest hb;
    hb.set_session(s->session());
    hb.add_open_inodes(f->attr().ino());
    ASSERT_TRUE(Call<proto::SessionHeartbeatReply>(proto::SESSION_HEARTBEAT, hb).ok());
  }
  EXPECT_TRUE(GetAttr(f->attr().ino()).ok());
  // The client vanishes: its session expires and the orphan is freed.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(GetAttr(f->attr().ino()).status().code(), ENOENT);
  EXPECT_EQ(Garbage().size(), 2u);
  proto::SessionHeartbeatRequest hb;
  hb.set_session(s->session());
  EXPECT_EQ(Call<proto::SessionHeartbeatReply>(proto::SESSION_HEARTBEAT, hb).status().code(), ENOENT);
}

TEST_F(ClusterTest, OpenWithTruncate) {
  auto f = Create(1, "f");
  ASSERT_TRUE(f.ok());
  proto::CommitWriteRequest cw;
  cw.set_ino(f->attr().ino());
  cw.set_min_size(100);
  ASSERT_TRUE(Call<proto::CommitWriteReply>(proto::COMMIT_WRITE, cw).ok());
  proto::OpenRequest o;
  o.set_ino(f->attr().ino());
  o.set_flags(O_WRONLY | O_TRUNC);
  *o.mutable_cred() = User(1000);
  EXPECT_EQ(Call<proto::OpenReply>(proto::OPEN, o).status().code(), EACCES);   // 0644 root's
  o.clear_cred();
  auto r = Call<proto::OpenReply>(proto::OPEN, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attr().size(), 0u);
  EXPECT_NE(r->layout().object_id(), f->layout().object_id());
}

}  // namespace
}  // namespace stria::meta
