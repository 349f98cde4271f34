// Data repository links in stria-meta: who may link, where, and what
// unlink and rmdir refuse.
#include <fcntl.h>

#include <gtest/gtest.h>

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
  Status Open(uint64_t ino, uint32_t flags) {
    proto::OpenRequest req;
    req.set_ino(ino);
    req.set_flags(flags);
    return Call<proto::OpenReply>(proto::OPEN, req).status();
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

  // A released file is never read as zeros; O_TRUNC makes it new and dirty.
  EXPECT_EQ(Open(a->ino(), O_RDONLY).code(), ENODATA);
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
  EXPECT_TRUE(Rename(d->ino(), "b.bin", d->ino(), "c.bin").ok());

  // Unlink refuses while data is only in the bucket or not exported.
  EXPECT_EQ(RepoUnlink(d->ino()).code(), EBUSY);
  ASSERT_TRUE(RepoUnlink(d->ino(), true).ok());
  // With the link gone, an unimported level is simply empty.
  EXPECT_EQ(Lookup(cats->ino(), "x").status().code(), ENOENT);
}

TEST_F(RepoTest, ImportNeedsALinkedDirectory) {
  auto d = Mkdir(1, "plain");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Import(d->ino(), {File("a", 1)}, true).status().code(), EINVAL);
  EXPECT_TRUE(Lookup(d->ino(), "a").status().code() == ENOENT);
}

}  // namespace
}  // namespace stria::meta
