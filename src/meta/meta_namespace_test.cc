// Namespace semantics with their errno: create/O_EXCL, rename, links,
// symlinks and Resolve, rmdir, xattrs, layouts.
#include <gtest/gtest.h>

#include "meta/meta_test_fixture.h"

namespace stria::meta {
namespace {

using NsTest = MetaTest;

TEST_F(NsTest, CreateExclusiveAndExisting) {
  auto f = Create(1, "f", true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->created());
  EXPECT_EQ(f->layout().object_id(), f->attr().ino());
  EXPECT_EQ(f->layout().stripe_count(), 2u);   // all up targets
  EXPECT_EQ(f->layout().stripe_size(), 1u << 20);
  EXPECT_EQ(Create(1, "f", true).status().code(), EEXIST);
  auto again = Create(1, "f", false);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created());
  EXPECT_EQ(again->attr().ino(), f->attr().ino());
  ASSERT_TRUE(Mkdir(1, "d").ok());
  EXPECT_EQ(Create(1, "d").status().code(), EISDIR);
  EXPECT_EQ(Mkdir(1, "d").status().code(), EEXIST);
  EXPECT_EQ(Create(f->attr().ino(), "x").status().code(), ENOTDIR);
  // mknod types get no layout.
  proto::CreateRequest mk;
  mk.set_parent(1);
  mk.set_name("fifo");
  mk.set_type(proto::FT_FIFO);
  auto m = Call<proto::CreateReply>(proto::CREATE, mk);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->layout().targets_size(), 0);
}

TEST_F(NsTest, LookupNames) {
  auto d = Mkdir(1, "d");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Lookup(1, "missing").status().code(), ENOENT);
  EXPECT_EQ(Lookup(1, std::string(256, 'x')).status().code(), ENAMETOOLONG);
  EXPECT_EQ(Lookup(d->ino(), "..")->ino(), 1u);
  EXPECT_EQ(Lookup(d->ino(), ".")->ino(), d->ino());
  auto f = Create(1, "file");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Lookup(f->attr().ino(), "x").status().code(), ENOTDIR);
  auto root = GetAttr(1);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->mode() & 07777, 0755u);
  EXPECT_EQ(root->nlink(), 3u);   // 2 + the subdirectory d
}

TEST_F(NsTest, RenameCases) {
  auto a = Mkdir(1, "a");
  auto b = Mkdir(1, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  auto f = Create(a->ino(), "f");
  auto g = Create(a->ino(), "g");
  ASSERT_TRUE(f.ok() && g.ok());
  // Within a directory, over an existing file: the victim goes to garbage.
  ASSERT_TRUE(Rename(a->ino(), "f", a->ino(), "g").ok());
  EXPECT_EQ(Lookup(a->ino(), "g")->ino(), f->attr().ino());
  EXPECT_EQ(Lookup(a->ino(), "f").status().code(), ENOENT);
  EXPECT_EQ(GetAttr(g->attr().ino()).status().code(), ENOENT);
  EXPECT_FALSE(Garbage().empty());
  // Across directories.
  ASSERT_TRUE(Rename(a->ino(), "g", b->ino(), "moved").ok());
  EXPECT_EQ(Lookup(b->ino(), "moved")->ino(), f->attr().ino());
  // Same inode (hard link) is a no-op.
  ASSERT_TRUE(Link(f->attr().ino(), b->ino(), "alias").ok());
  ASSERT_TRUE(Rename(b->ino(), "moved", b->ino(), "alias").ok());
  EXPECT_TRUE(Lookup(b->ino(), "moved").ok());
  // Directories: over an empty one works, over a full one is ENOTEMPTY.
  auto d1 = Mkdir(a->ino(), "d1");
  auto d2 = Mkdir(b->ino(), "d2");
  ASSERT_TRUE(d1.ok() && d2.ok());
  ASSERT_TRUE(Rename(a->ino(), "d1", b->ino(), "d2").ok());
  EXPECT_EQ(Lookup(b->ino(), "d2")->ino(), d1->ino());
  EXPECT_EQ(Lookup(d1->ino(), "..")->ino(), b->ino());   // the moved dir's parent follows
  EXPECT_EQ(GetAttr(a->ino())->nlink(), 2u);
  EXPECT_EQ(GetAttr(b->ino())->nlink(), 3u);
  ASSERT_TRUE(Mkdir(b->ino(), "full").ok());
  ASSERT_TRUE(Create(Lookup(b->ino(), "full")->ino(), "x").ok());
  EXPECT_EQ(Rename(b->ino(), "d2", b->ino(), "full").code(), ENOTEMPTY);
  // Type mismatches.
  EXPECT_EQ(Rename(b->ino(), "d2", b->ino(), "moved").code(), ENOTDIR);
  EXPECT_EQ(Rename(b->ino(), "moved", b->ino(), "d2").code(), EISDIR);
  // Into its own subtree.
  auto sub = Mkdir(d1->ino(), "sub");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(Rename(b->ino(), "d2", sub->ino(), "loop").code(), EINVAL);
  EXPECT_EQ(Rename(b->ino(), "d2", d1->ino(), "self").code(), EINVAL);
  // NOREPLACE and EXCHANGE.
  EXPECT_EQ(Rename(b->ino(), "moved", b->ino(), "d2", proto::RN_NOREPLACE).code(), EEXIST);
  ASSERT_TRUE(Rename(b->ino(), "moved", b->ino(), "d2", proto::RN_EXCHANGE).ok());
  EXPECT_EQ(Lookup(b->ino(), "d2")->ino(), f->attr().ino());
  EXPECT_EQ(Lookup(b->ino(), "moved")->ino(), d1->ino());
  EXPECT_EQ(Rename(b->ino(), "moved", b->ino(), "nope", proto::RN_EXCHANGE).code(), ENOENT);
  // Exchange across directories moves the directory's parent and link counts.
  auto h = Create(a->ino(), "h");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(Rename(b->ino(), "moved", a->ino(), "h", proto::RN_EXCHANGE).ok());
  EXPECT_EQ(Lookup(d1->ino(), "..")->ino(), a->ino());
  EXPECT_EQ(GetAttr(a->ino())->nlink(), 3u);
}

TEST_F(NsTest, HardLinkCounts) {
  auto f = Create(1, "f");
  ASSERT_TRUE(f.ok());
  auto d = Mkdir(1, "d");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Link(f->attr().ino(), 1, "l1")->nlink(), 2u);
  EXPECT_EQ(Link(f->attr().ino(), d->ino(), "l2")->nlink(), 3u);
  EXPECT_EQ(Link(d->ino(), 1, "dirlink").status().code(), EPERM);
  EXPECT_EQ(Link(f->attr().ino(), 1, "l1").status().code(), EEXIST);
  ASSERT_TRUE(Unlink(1, "f").ok());
  ASSERT_TRUE(Unlink(d->ino(), "l2").ok());
  EXPECT_EQ(GetAttr(f->attr().ino())->nlink(), 1u);
  EXPECT_TRUE(Garbage().empty());
  ASSERT_TRUE(Unlink(1, "l1").ok());
  EXPECT_EQ(GetAttr(f->attr().ino()).status().code(), ENOENT);
  EXPECT_EQ(Garbage().size(), 2u);
}

TEST_F(NsTest, RmdirAndUnlinkErrors) {
  auto d = Mkdir(1, "d");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(Create(d->ino(), "f").ok());
  EXPECT_EQ(Rmdir(1, "d").code(), ENOTEMPTY);
  EXPECT_EQ(Unlink(1, "d").code(), EISDIR);
  EXPECT_EQ(Rmdir(d->ino(), "f").code(), ENOTDIR);
  EXPECT_EQ(Rmdir(1, ".").code(), EINVAL);
  EXPECT_EQ(Unlink(1, "nothing").code(), ENOENT);
  ASSERT_TRUE(Unlink(d->ino(), "f").ok());
  ASSERT_TRUE(Rmdir(1, "d").ok());
  EXPECT_EQ(GetAttr(d->ino()).status().code(), ENOENT);
  EXPECT_EQ(GetAttr(1)->nlink(), 2u);
}

TEST_F(NsTest, ResolveFollowsSymlinks) {
  auto a = Mkdir(1, "a");
  ASSERT_TRUE(a.ok());
  auto b = Mkdir(a->ino(), "b");
  ASSERT_TRUE(b.ok());
  auto f = Create(b->ino(), "f");
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(Symlink(1, "abs", "/a/b").ok());
  ASSERT_TRUE(Symlink(a->ino(), "rel", "b/f").ok());
  auto r = Resolve("/abs/f");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().ino(), f->attr().ino());
  EXPECT_EQ(r->parent(), b->ino());
  r = Resolve("/a/rel");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().ino(), f->attr().ino());
  r = Resolve("/a/rel", false);   // the link itself
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attr().type(), proto::FT_SYMLINK);
  EXPECT_EQ(r->parent(), a->ino());
  r = Resolve("/a/./b/../b/f");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().ino(), f->attr().ino());
  EXPECT_EQ(Resolve("/")->attr().ino(), 1u);
  EXPECT_EQ(Resolve("/a/nothing").status().code(), ENOENT);
  EXPECT_EQ(Resolve("/a/b/f/x").status().code(), ENOTDIR);
  // Loops.
  ASSERT_TRUE(Symlink(1, "l1", "l2").ok());
  ASSERT_TRUE(Symlink(1, "l2", "/l1").ok());
  EXPECT_EQ(Resolve("/l1").status().code(), ELOOP);
  EXPECT_TRUE(Resolve("/l1", false).ok());
  proto::ReadlinkRequest rl;
  rl.set_ino(Lookup(1, "l2")->ino());
  EXPECT_EQ(Call<proto::ReadlinkReply>(proto::READLINK, rl)->target(), "/l1");
  rl.set_ino(f->attr().ino());
  EXPECT_EQ(Call<proto::ReadlinkReply>(proto::READLINK, rl).status().code(), EINVAL);
}

TEST_F(NsTest, XattrErrors) {
  auto f = Create(1, "f");
  ASSERT_TRUE(f.ok());
  uint64_t ino = f->attr().ino();
  auto set = [&](const std::string& name, const std::string& value, uint32_t flags) {
    proto::SetXattrRequest r;
    r.set_ino(ino);
    r.set_name(name);
    r.set_value(value);
    r.set_flags(flags);
    return Call<proto::SetXattrReply>(proto::SET_XATTR, r).status().code();
  };
  auto get = [&](const std::string& name) {
    proto::GetXattrRequest r;
    r.set_ino(ino);
    r.set_name(name);
    return Call<proto::GetXattrReply>(proto::GET_XATTR, r);
  };
  EXPECT_EQ(set("user.a", "1", proto::XA_REPLACE), ENODATA);
  EXPECT_EQ(set("user.a", "1", proto::XA_CREATE), 0);
  EXPECT_EQ(set("user.a", "2", proto::XA_CREATE), EEXIST);
  EXPECT_EQ(set("user.a", "3", proto::XA_REPLACE), 0);
  EXPECT_EQ(get("user.a")->value(), "3");
  EXPECT_EQ(get("user.none").status().code(), ENODATA);
  EXPECT_EQ(set("bogus.a", "1", 0), EOPNOTSUPP);
  EXPECT_EQ(set("user." + std::string(300, 'n'), "1", 0), ERANGE);
  EXPECT_EQ(set("user.big", std::string(64 * 1024 + 1, 'v'), 0), E2BIG);
  EXPECT_EQ(set("trusted.t", "1", 0), 0);   // root
  proto::ListXattrRequest l;
  l.set_ino(ino);
  auto names = Call<proto::ListXattrReply>(proto::LIST_XATTR, l);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->names_size(), 2);
  proto::RemoveXattrRequest rm;
  rm.set_ino(ino);
  rm.set_name("user.a");
  EXPECT_TRUE(Call<proto::RemoveXattrReply>(proto::REMOVE_XATTR, rm).ok());
  EXPECT_EQ(Call<proto::RemoveXattrReply>(proto::REMOVE_XATTR, rm).status().code(), ENODATA);
}

TEST_F(NsTest, LayoutInheritanceAndSetLayout) {
  auto d = Mkdir(1, "d");
  ASSERT_TRUE(d.ok());
  proto::SetLayoutRequest sl;
  sl.set_ino(d->ino());
  sl.mutable_layout()->set_stripe_size(64 * 1024);
  sl.mutable_layout()->set_stripe_count(1);
  ASSERT_TRUE(Call<proto::SetLayoutReply>(proto::SET_LAYOUT, sl).ok());
  proto::GetLayoutRequest gl;
  gl.set_ino(d->ino());
  auto dl = Call<proto::GetLayoutReply>(proto::GET_LAYOUT, gl);
  ASSERT_TRUE(dl.ok());
  EXPECT_TRUE(dl->is_default());
  EXPECT_EQ(dl->layout().stripe_size(), 64u * 1024);
  auto f = Create(d->ino(), "f");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->layout().stripe_size(), 64u * 1024);
  EXPECT_EQ(f->layout().stripe_count(), 1u);
  EXPECT_EQ(f->layout().targets_size(), 1);
  // A new subdirectory starts with its parent's default, and its files too.
  auto sub = Mkdir(d->ino(), "sub");
  ASSERT_TRUE(sub.ok());
  gl.set_ino(sub->ino());
  auto sl2 = Call<proto::GetLayoutReply>(proto::GET_LAYOUT, gl);
  ASSERT_TRUE(sl2.ok());
  EXPECT_TRUE(sl2->is_default());
  EXPECT_EQ(sl2->layout().stripe_size(), 64u * 1024);
  auto sf = Create(sub->ino(), "f");
  ASSERT_TRUE(sf.ok());
  EXPECT_EQ(sf->layout().stripe_size(), 64u * 1024);
  EXPECT_EQ(sf->layout().stripe_count(), 1u);
  // A new empty file may change its layout; one with data may not.
  sl.set_ino(f->attr().ino());
  sl.mutable_layout()->set_stripe_count(2);
  auto nl = Call<proto::SetLayoutReply>(proto::SET_LAYOUT, sl);
  ASSERT_TRUE(nl.ok()) << nl.status().ToString();
  EXPECT_EQ(nl->layout().targets_size(), 2);
  proto::CommitWriteRequest cw;
  cw.set_ino(f->attr().ino());
  cw.set_min_size(10);
  ASSERT_TRUE(Call<proto::CommitWriteReply>(proto::COMMIT_WRITE, cw).ok());
  EXPECT_EQ(Call<proto::SetLayoutReply>(proto::SET_LAYOUT, sl).status().code(), EBUSY);
  // Bad stripes.
  sl.set_ino(d->ino());
  sl.mutable_layout()->set_stripe_size(1000);
  EXPECT_EQ(Call<proto::SetLayoutReply>(proto::SET_LAYOUT, sl).status().code(), EINVAL);
  sl.mutable_layout()->set_stripe_size(4096);
  sl.mutable_layout()->set_stripe_count(3);
  EXPECT_EQ(Call<proto::SetLayoutReply>(proto::SET_LAYOUT, sl).status().code(), EINVAL);
}

TEST_F(NsTest, SetAttrTimesAndSize) {
  auto f = Create(1, "f");
  ASSERT_TRUE(f.ok());
  proto::SetAttrRequest sa;
  sa.set_ino(f->attr().ino());
  sa.set_mask(proto::SA_MTIME | proto::SA_ATIME_NOW | proto::SA_SIZE | proto::SA_MODE);
  sa.set_mtime_ns(12345);
  sa.set_size(5000);
  sa.set_mode(0600);
  auto r = Call<proto::SetAttrReply>(proto::SET_ATTR, sa);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().mtime_ns(), 12345);
  EXPECT_EQ(r->attr().size(), 5000u);
  EXPECT_EQ(r->attr().mode() & 07777, 0600u);
  EXPECT_GT(r->attr().version(), f->attr().version());
  EXPECT_GT(r->attr().ctime_ns(), f->attr().ctime_ns());
}

// A user who does not own the file may not choose its times (EPERM), but
// may set an mtime the kernel's writeback cache chose (SA_WRITE_TIMES: of a
// write, a truncate, a utimensat to now) when it may write the file, or
// through a handle it opened for writing.
TEST_F(NsTest, KernelChosenMtimeNeedsWriteAccessOrAWriteHandle) {
  auto f = Create(1, "shared");   // 0644, root's
  ASSERT_TRUE(f.ok());
  proto::SetAttrRequest sa;
  sa.mutable_cred()->set_uid(1234);
  sa.mutable_cred()->set_gid(1234);
  sa.set_ino(f->attr().ino());
  sa.set_mtime_ns(777);
  sa.set_mask(proto::SA_MTIME);
  EXPECT_EQ(Call<proto::SetAttrReply>(proto::SET_ATTR, sa).status().code(), EPERM);
  sa.set_mask(proto::SA_MTIME | proto::SA_WRITE_TIMES);
  EXPECT_EQ(Call<proto::SetAttrReply>(proto::SET_ATTR, sa).status().code(), EACCES);   // may not write
  sa.set_mask(proto::SA_MTIME | proto::SA_ATIME | proto::SA_WRITE_TIMES);
  EXPECT_EQ(Call<proto::SetAttrReply>(proto::SET_ATTR, sa).status().code(), EPERM);    // a chosen atime
  sa.set_open_for_write(true);
  sa.set_mask(proto::SA_MTIME | proto::SA_WRITE_TIMES);
  auto r = Call<proto::SetAttrReply>(proto::SET_ATTR, sa);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().mtime_ns(), 777);
  // Without a handle, write permission is enough (utimensat to now).
  proto::SetAttrRequest ch;
  ch.set_ino(f->attr().ino());
  ch.set_mask(proto::SA_MODE);
  ch.set_mode(0666);
  ASSERT_TRUE(Call<proto::SetAttrReply>(proto::SET_ATTR, ch).ok());
  sa.set_open_for_write(false);
  sa.set_mtime_ns(888);
  sa.set_mask(proto::SA_MTIME | proto::SA_ATIME_NOW | proto::SA_WRITE_TIMES);
  r = Call<proto::SetAttrReply>(proto::SET_ATTR, sa);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attr().mtime_ns(), 888);
}

}  // namespace
}  // namespace stria::meta
