// Namespace semantics through libstria on a real cluster, including clients
// in separate processes racing on the same names.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <functional>
#include <set>
#include <thread>

#include "tests/system/cluster.h"

namespace stria::systest {
namespace {

class NamespaceTest : public SharedClusterTest {
 protected:
  void SetUp() override {
    SharedClusterTest::SetUp();
    c_ = client_.get();
    dir_ = std::string("/") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_OK(c_->Mkdir(dir_));
  }
  void Touch(const std::string& path, const std::string& content = "") {
    auto fd = c_->Open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_OK(fd);
    if (!content.empty()) ASSERT_OK(c_->Write(*fd, content.data(), content.size()));
    ASSERT_OK(c_->Close(*fd));
  }
  std::string ReadAll(const std::string& path) {
    auto fd = c_->Open(path, O_RDONLY);
    if (!fd.ok()) return "<" + fd.status().ToString() + ">";
    std::string out(1 << 16, '\0');
    auto n = c_->Read(*fd, out.data(), out.size());
    (void)c_->Close(*fd);
    if (!n.ok()) return "<" + n.status().ToString() + ">";
    out.resize(*n);
    return out;
  }
  int Code(const Status& st) { return st.code(); }

  // Runs body(client, p) in procs child processes, each with a client of its
  // own (a session of its own). body returns two counts, or a non-zero exit
  // code through *fail. Returns the counts added up over the children.
  std::array<int, 2> InProcesses(int procs, const std::function<std::array<int, 2>(Client&, int, int*)>& body) {
    CloseClientBeforeFork();
    std::vector<std::pair<pid_t, int>> kids;   // pid, read end of its pipe
    for (int p = 0; p < procs; p++) {
      int fds[2];
      EXPECT_EQ(pipe(fds), 0);
      pid_t pid = fork();
      EXPECT_GE(pid, 0);
      if (pid == 0) {
        close(fds[0]);
        ClientOptions o;
        o.meta = cluster_->meta();
        auto c = Client::Connect(o);
        if (!c.ok()) _exit(10);
        int fail = 0;
        std::array<int, 2> counts = body(**c, p, &fail);
        if (fail) _exit(fail);
        (void)!write(fds[1], counts.data(), sizeof(counts));
        c->reset();
        _exit(0);
      }
      close(fds[1]);
      kids.emplace_back(pid, fds[0]);
    }
    std::array<int, 2> total = {0, 0};
    for (auto [pid, fd] : kids) {
      int status = 0;
      waitpid(pid, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child exit " << status;
      std::array<int, 2> counts = {0, 0};
      EXPECT_EQ(read(fd, counts.data(), sizeof(counts)), (ssize_t)sizeof(counts));
      close(fd);
      total[0] += counts[0];
      total[1] += counts[1];
    }
    Reconnect();
    c_ = client_.get();
    return total;
  }

  Client* c_ = nullptr;
  std::string dir_;
};

// Statahead (ClientOptions::lookup_ahead): after a quick run of lookups
// from meta in one directory, the next ones come from a copy of it. The copy may be as
// old as lookup_ahead (another client's change shows once it is), never
// older than this client's own changes, never hides a name it lacks, and
// refuses a caller without search permission.
TEST_F(NamespaceTest, StatAheadAnswersFromACopyOnlyWhileItHolds) {
  ClientOptions o;
  o.meta = cluster_->meta();
  o.lookup_ahead = std::chrono::milliseconds(1500);
  auto a = Client::Connect(o);
  ASSERT_OK(a);
  Client& ahead = **a;
  for (int i = 0; i < 10; i++) Touch(dir_ + "/f" + std::to_string(i));
  auto dir = c_->Stat(dir_);
  ASSERT_OK(dir);
  const Caller root;
  auto mode_of = [&](const std::string& name) -> int {
    auto r = ahead.Lookup(root, dir->ino, name);
    return r.ok() ? static_cast<int>(r->mode) : -r.status().code();
  };
  // Looks names up until a copy answers (the run of lookups must be quick:
  // a stalled machine may need another round).
  auto copy_now = [&] {
    for (int round = 0; round < 50; round++) {
      for (int i = 0; i < 5; i++) EXPECT_EQ(mode_of("f" + std::to_string(i)), 0644) << i;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      auto r = ahead.Lookup(root, dir->ino, "f0");
      if (r.ok() && r->age_ms > 0) return;
    }
    ADD_FAILURE() << "no copy of the directory after 50 runs of lookups";
  };
  copy_now();
  ASSERT_OK(c_->Chmod(dir_ + "/f5", 0600));   // another client's change
  auto f5 = ahead.Lookup(root, dir->ino, "f5");
  ASSERT_OK(f5);
  EXPECT_EQ(f5->mode, 0644u) << "not from the copy";
  EXPECT_LT(f5->age_ms, 1500);
  // A change of this client ends the copy.
  ASSERT_OK(ahead.Chmod(dir_ + "/f6", 0640));
  EXPECT_EQ(mode_of("f5"), 0600);
  EXPECT_EQ(mode_of("f6"), 0640);

  copy_now();
  ASSERT_OK(c_->Chmod(dir_ + "/f7", 0604));
  EXPECT_EQ(mode_of("f7"), 0644);
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(mode_of("f7"), 0604) << "the copy outlived lookup_ahead";

  // A name the copy lacks asks meta; one it has that is gone stays until it expires.
  copy_now();
  Touch(dir_ + "/late");
  EXPECT_EQ(mode_of("late"), 0644);
  EXPECT_EQ(mode_of("nothing"), -ENOENT);

  // Search permission, checked on the copy as meta checks it (the chmod of
  // this client ends the copy that says 0755).
  ASSERT_OK(ahead.Chmod(dir_, 0700));
  copy_now();
  EXPECT_EQ(mode_of("f8"), 0644);
  Caller other;
  other.uid = other.gid = 4321;
  auto refused = ahead.Lookup(other, dir->ino, "f1");
  EXPECT_EQ(refused.status().code(), EACCES) << refused.status().ToString();
  ASSERT_OK(c_->Chmod(dir_, 0755));
}

TEST_F(NamespaceTest, CreateExclusive) {
  auto fd = c_->Open(dir_ + "/f", O_CREAT | O_EXCL | O_WRONLY, 0600);
  ASSERT_OK(fd);
  ASSERT_OK(c_->Close(*fd));
  EXPECT_EQ(c_->Open(dir_ + "/f", O_CREAT | O_EXCL | O_WRONLY, 0600).status().code(), EEXIST);
  auto again = c_->Open(dir_ + "/f", O_CREAT | O_WRONLY, 0600);   // without O_EXCL: opens
  ASSERT_OK(again);
  ASSERT_OK(c_->Close(*again));
  auto a = c_->Stat(dir_ + "/f");
  ASSERT_OK(a);
  EXPECT_EQ(a->mode, 0600u);
  EXPECT_EQ(a->type, FileType::kRegular);
  EXPECT_EQ(c_->Open(dir_ + "/missing", O_RDONLY).status().code(), ENOENT);
  EXPECT_EQ(c_->Open(dir_ + "/f/x", O_CREAT | O_WRONLY).status().code(), ENOTDIR);
}

TEST_F(NamespaceTest, RenameCases) {
  Touch(dir_ + "/a", "A");
  Touch(dir_ + "/b", "B");
  ASSERT_OK(c_->Mkdir(dir_ + "/d1"));
  ASSERT_OK(c_->Mkdir(dir_ + "/d2"));
  ASSERT_OK(c_->Mkdir(dir_ + "/d1/sub"));
  // Over an existing file: atomic replace.
  ASSERT_OK(c_->Rename(dir_ + "/a", dir_ + "/b"));
  EXPECT_EQ(ReadAll(dir_ + "/b"), "A");
  EXPECT_EQ(c_->Stat(dir_ + "/a").status().code(), ENOENT);
  // Across directories.
  ASSERT_OK(c_->Rename(dir_ + "/b", dir_ + "/d2/b"));
  EXPECT_EQ(ReadAll(dir_ + "/d2/b"), "A");
  // A directory over an empty directory; not over a non-empty one.
  ASSERT_OK(c_->Mkdir(dir_ + "/empty"));
  ASSERT_OK(c_->Rename(dir_ + "/d1", dir_ + "/empty"));
  EXPECT_OK(c_->Stat(dir_ + "/empty/sub"));
  EXPECT_EQ(c_->Rename(dir_ + "/empty", dir_ + "/d2").code(), ENOTEMPTY);
  // Into its own subtree.
  EXPECT_EQ(c_->Rename(dir_ + "/empty", dir_ + "/empty/sub/x").code(), EINVAL);
  // File over directory and directory over file.
  Touch(dir_ + "/f", "F");
  EXPECT_EQ(c_->Rename(dir_ + "/f", dir_ + "/d2").code(), EISDIR);
  EXPECT_EQ(c_->Rename(dir_ + "/d2", dir_ + "/f").code(), ENOTDIR);
  // NOREPLACE and EXCHANGE.
  EXPECT_EQ(c_->Rename(dir_ + "/f", dir_ + "/d2/b", 1).code(), EEXIST);
  ASSERT_OK(c_->Rename(dir_ + "/f", dir_ + "/d2/b", 2));
  EXPECT_EQ(ReadAll(dir_ + "/f"), "A");
  EXPECT_EQ(ReadAll(dir_ + "/d2/b"), "F");
  // Missing source.
  EXPECT_EQ(c_->Rename(dir_ + "/nope", dir_ + "/x").code(), ENOENT);
}

TEST_F(NamespaceTest, UnlinkOpenFileKeepsDataUntilClose) {
  std::string data(2 << 20, 'k');
  Touch(dir_ + "/open", data);
  auto fd = c_->Open(dir_ + "/open", O_RDONLY);
  ASSERT_OK(fd);
  ASSERT_OK(c_->Unlink(dir_ + "/open"));
  EXPECT_EQ(c_->Stat(dir_ + "/open").status().code(), ENOENT);
  // Another client's session must not free it either.
  auto other = cluster_->Connect();
  EXPECT_EQ(other->Stat(dir_ + "/open").status().code(), ENOENT);
  other.reset();
  std::string got(data.size(), '\0');
  auto n = c_->Pread(*fd, got.data(), got.size(), 0);
  ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());
  EXPECT_TRUE(got == data);
  ASSERT_OK(c_->Close(*fd));
}

TEST_F(NamespaceTest, DirectoriesAndReaddir) {
  EXPECT_EQ(c_->Mkdir(dir_).code(), EEXIST);
  EXPECT_EQ(c_->Mkdir(dir_ + "/no/such").code(), ENOENT);
  std::set<std::string> want;
  for (int i = 0; i < 300; i++) {
    std::string name = "e" + std::to_string(i);
    Touch(dir_ + "/" + name);
    want.insert(name);
  }
  auto list = c_->ReadDir(dir_);
  ASSERT_OK(list);
  std::set<std::string> got;
  for (auto& e : *list) got.insert(e.name);
  EXPECT_EQ(got, want);
  // Pages continue from cookies while the directory changes.
  auto page = c_->ReadDirPage(dir_, 0, 100, true);
  ASSERT_OK(page);
  ASSERT_EQ(page->entries.size(), 100u);
  std::set<std::string> seen;
  for (auto& e : page->entries) seen.insert(e.name);
  Touch(dir_ + "/late");
  uint64_t cookie = page->entries.back().cookie;
  while (true) {
    auto p = c_->ReadDirPage(dir_, cookie, 100, false);
    ASSERT_OK(p);
    for (auto& e : p->entries) {
      EXPECT_TRUE(seen.insert(e.name).second) << "listed twice: " << e.name;
      cookie = e.cookie;
    }
    if (p->eof || p->entries.empty()) break;
  }
  for (auto& n : want) EXPECT_TRUE(seen.count(n)) << "missing " << n;
  EXPECT_EQ(c_->Rmdir(dir_).code(), ENOTEMPTY);
  EXPECT_EQ(c_->Rmdir(dir_ + "/e1").code(), ENOTDIR);
  EXPECT_EQ(c_->Unlink(dir_).code(), EISDIR);
}

TEST_F(NamespaceTest, LinksAndSymlinks) {
  Touch(dir_ + "/target", "T");
  ASSERT_OK(c_->Link(dir_ + "/target", dir_ + "/hard"));
  auto a = c_->Stat(dir_ + "/target");
  ASSERT_OK(a);
  EXPECT_EQ(a->nlink, 2u);
  ASSERT_OK(c_->Unlink(dir_ + "/target"));
  EXPECT_EQ(ReadAll(dir_ + "/hard"), "T");
  EXPECT_EQ(c_->Stat(dir_ + "/hard")->nlink, 1u);
  EXPECT_EQ(c_->Link(dir_, dir_ + "/dirlink").code(), EPERM);

  ASSERT_OK(c_->Symlink("hard", dir_ + "/sym"));
  EXPECT_EQ(*c_->Readlink(dir_ + "/sym"), "hard");
  EXPECT_EQ(ReadAll(dir_ + "/sym"), "T");
  EXPECT_EQ(c_->Lstat(dir_ + "/sym")->type, FileType::kSymlink);
  ASSERT_OK(c_->Symlink("nowhere", dir_ + "/dangling"));
  EXPECT_EQ(c_->Stat(dir_ + "/dangling").status().code(), ENOENT);
  EXPECT_OK(c_->Lstat(dir_ + "/dangling"));
  ASSERT_OK(c_->Symlink("loop2", dir_ + "/loop1"));
  ASSERT_OK(c_->Symlink("loop1", dir_ + "/loop2"));
  EXPECT_EQ(c_->Stat(dir_ + "/loop1").status().code(), ELOOP);
  EXPECT_EQ(c_->Readlink(dir_ + "/hard").status().code(), EINVAL);
}

TEST_F(NamespaceTest, XattrsAndAttributes) {
  Touch(dir_ + "/x");
  std::string p = dir_ + "/x";
  ASSERT_OK(c_->SetXattr(p, "user.tag", "v1"));
  EXPECT_EQ(*c_->GetXattr(p, "user.tag"), "v1");
  EXPECT_EQ(c_->SetXattr(p, "user.tag", "v2", 1).code(), EEXIST);
  EXPECT_EQ(c_->SetXattr(p, "user.new", "v", 2).code(), ENODATA);
  ASSERT_OK(c_->SetXattr(p, "user.tag", "v2", 2));
  EXPECT_EQ(*c_->GetXattr(p, "user.tag"), "v2");
  auto names = c_->ListXattr(p);
  ASSERT_OK(names);
  EXPECT_EQ(*names, std::vector<std::string>{"user.tag"});
  ASSERT_OK(c_->RemoveXattr(p, "user.tag"));
  EXPECT_EQ(c_->GetXattr(p, "user.tag").status().code(), ENODATA);
  EXPECT_EQ(c_->RemoveXattr(p, "user.tag").code(), ENODATA);

  ASSERT_OK(c_->Chmod(p, 0640));
  EXPECT_EQ(c_->Stat(p)->mode, 0640u);
  ASSERT_OK(c_->Utimens(p, 1000000000ll * 100, 1000000000ll * 200));
  EXPECT_EQ(c_->Stat(p)->mtime_ns, 1000000000ll * 200);
  auto v1 = c_->Stat(p)->version;
  Touch(p, "changed");
  EXPECT_NE(c_->Stat(p)->version, v1);
}

TEST_F(NamespaceTest, LayoutsInheritFromDirectory) {
  ASSERT_OK(c_->SetLayout(dir_, 2, 128 * 1024));
  auto d = c_->GetLayout(dir_);
  ASSERT_OK(d);
  EXPECT_TRUE(d->is_default);
  EXPECT_EQ(d->stripe_count, 2u);
  Touch(dir_ + "/child", std::string(1 << 20, 'c'));
  auto l = c_->GetLayout(dir_ + "/child");
  ASSERT_OK(l);
  EXPECT_EQ(l->stripe_count, 2u);
  EXPECT_EQ(l->stripe_size, 128u * 1024);
  ASSERT_EQ(l->targets.size(), 2u);
  EXPECT_NE(l->targets[0], l->targets[1]);
  // A non-empty file cannot be re-striped.
  EXPECT_NE(c_->SetLayout(dir_ + "/child", 1, 1 << 20).code(), 0);
  EXPECT_EQ(c_->SetLayout(dir_ + "/bad", 1, 1000).code(), EINVAL);   // not a multiple of 4 KiB
  // Default files stripe over all targets.
  Touch("/" + std::string("default-layout-file"), "x");
  EXPECT_EQ(c_->GetLayout("/default-layout-file")->stripe_count, 3u);
}

// Clients in separate processes race: exactly one O_EXCL create wins each
// name, and every file created by anyone is listed afterwards.
TEST_F(NamespaceTest, ConcurrentClientsInSeparateProcesses) {
  constexpr int kProcs = 4, kFiles = 40;
  auto total = InProcesses(kProcs, [&](Client& c, int p, int* fail) -> std::array<int, 2> {
    int wins = 0;
    for (int i = 0; i < kFiles; i++) {
      auto fd = c.Open(dir_ + "/race" + std::to_string(i), O_CREAT | O_EXCL | O_WRONLY);
      if (fd.ok()) {
        wins++;
        if (!c.Close(*fd).ok()) { *fail = 11; return {}; }
      } else if (fd.status().code() != EEXIST) {
        *fail = 12;
        return {};
      }
      auto own = c.Open(dir_ + "/own" + std::to_string(p) + "-" + std::to_string(i), O_CREAT | O_EXCL | O_WRONLY);
      if (!own.ok() || !c.Close(*own).ok()) { *fail = 13; return {}; }
    }
    return {wins, 0};
  });
  EXPECT_EQ(total[0], kFiles);
  auto list = c_->ReadDir(dir_);
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), static_cast<size_t>(kFiles + kProcs * kFiles));
}

// Clients in separate processes race renames and unlinks on the same
// names: each source moves exactly once, each name is removed exactly once,
// renames over one target leave exactly one winner, and nothing else is left.
TEST_F(NamespaceTest, RenameAndUnlinkRacesBetweenProcesses) {
  constexpr int kProcs = 4, kFiles = 30;
  for (int i = 0; i < kFiles; i++) {
    Touch(dir_ + "/src" + std::to_string(i), std::to_string(i));
    Touch(dir_ + "/u" + std::to_string(i), "u");
    for (int p = 0; p < kProcs; p++) {
      Touch(dir_ + "/mine" + std::to_string(p) + "-" + std::to_string(i), "p" + std::to_string(p));
    }
  }
  auto total = InProcesses(kProcs, [&](Client& c, int p, int* fail) -> std::array<int, 2> {
    std::array<int, 2> wins = {0, 0};
    for (int i = 0; i < kFiles; i++) {
      std::string n = std::to_string(i);
      Status st = c.Rename(dir_ + "/src" + n, dir_ + "/won" + n + "-p" + std::to_string(p));
      if (st.ok()) wins[0]++;
      else if (st.code() != ENOENT) { *fail = 11; return {}; }
      st = c.Unlink(dir_ + "/u" + n);
      if (st.ok()) wins[1]++;
      else if (st.code() != ENOENT) { *fail = 12; return {}; }
      if (!c.Rename(dir_ + "/mine" + std::to_string(p) + "-" + n, dir_ + "/target" + n).ok()) {
        *fail = 13;
        return {};
      }
    }
    return wins;
  });
  int renames = total[0], unlinks = total[1];
  EXPECT_EQ(renames, kFiles);
  EXPECT_EQ(unlinks, kFiles);
  auto list = c_->ReadDir(dir_);
  ASSERT_OK(list);
  std::set<std::string> names;
  for (const auto& e : *list) names.insert(e.name);
  EXPECT_EQ(names.size(), static_cast<size_t>(2 * kFiles));
  for (int i = 0; i < kFiles; i++) {
    std::string n = std::to_string(i);
    int found = 0;
    for (int p = 0; p < kProcs; p++) {
      std::string won = "won" + n + "-p" + std::to_string(p);
      if (names.count(won)) {
        found++;
        EXPECT_EQ(ReadAll(dir_ + "/" + won), n);
      }
    }
    EXPECT_EQ(found, 1) << "src" << n;
    ASSERT_TRUE(names.count("target" + n)) << n;
    std::string t = ReadAll(dir_ + "/target" + n);
    EXPECT_TRUE(t == "p0" || t == "p1" || t == "p2" || t == "p3") << t;
  }
}

}  // namespace
}  // namespace stria::systest
