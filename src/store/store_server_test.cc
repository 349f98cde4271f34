// StoreService in-process on 127.0.0.1:0, called through a real rpc::Channel.
#include "store/store_server.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "proto/stria.pb.h"

namespace stria::store {
namespace {

class StoreServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = std::filesystem::temp_directory_path().string() + "/stria-store-XXXXXX";
    dir_ = mkdtemp(t.data());
    auto target = Target::Open(dir_);
    ASSERT_TRUE(target.ok()) << target.status().ToString();
    ASSERT_TRUE((*target)->SetId(7).ok());
    targets_.push_back(std::move(target).value());
    service_ = std::make_unique<StoreService>(&targets_, &pool_, "test-store");
    service_->RegisterHandlers(server_);
    auto port = server_.Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    server_.Start();
    ch_ = rpc::Channel::Create(io_.io(), fmt::format("127.0.0.1:{}", *port));
  }
  void TearDown() override {
    ch_->Close();
    server_.Stop();
    pool_.Shutdown();
    std::filesystem::remove_all(dir_);
  }
  rpc::CallOptions Opts() {
    rpc::CallOptions o;
    o.timeout = rpc::Millis(10000);
    return o;
  }

  std::string dir_;
  std::vector<std::unique_ptr<Target>> targets_;
  rpc::Server server_{"store"};
  WorkerPool pool_{2};
  std::unique_ptr<StoreService> service_;
  rpc::IoThread io_;
  std::shared_ptr<rpc::Channel> ch_;
};

TEST_F(StoreServerTest, WriteReadFsyncRoundTrip) {
  std::string data(10000, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7);
  proto::ObjWriteRequest w;
  w.set_target(7);
  w.set_ino(0x1234);
  w.set_index(2);
  w.set_offset(5000);
  auto wr = rpc::Call<proto::ObjWriteReply>(*ch_, proto::OBJ_WRITE, w, Opts(), rpc::Payload(data));
  ASSERT_TRUE(wr.ok()) << wr.status().ToString();

  proto::ObjFsyncRequest f;
  f.set_target(7);
  f.set_ino(0x1234);
  f.add_indexes(2);
  auto fr = rpc::Call<proto::ObjFsyncReply>(*ch_, proto::OBJ_FSYNC, f, Opts());
  ASSERT_TRUE(fr.ok()) << fr.status().ToString();

  proto::ObjReadRequest r;
  r.set_target(7);
  r.set_ino(0x1234);
  r.set_index(2);
  r.set_offset(0);
  r.set_length(100000);
  rpc::CallResult raw;
  auto rr = rpc::Call<proto::ObjReadReply>(*ch_, proto::OBJ_READ, r, Opts(), {}, &raw);
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  EXPECT_EQ(raw.payload, std::string(5000, '\0') + data);

  proto::ObjTruncateRequest t;
  t.set_target(7);
  t.set_ino(0x1234);
  t.set_index(2);
  t.set_length(6000);
  ASSERT_TRUE(rpc::Call<proto::ObjTruncateReply>(*ch_, proto::OBJ_TRUNCATE, t, Opts()).ok());
  rr = rpc::Call<proto::ObjReadReply>(*ch_, proto::OBJ_READ, r, Opts(), {}, &raw);
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(raw.payload, std::string(5000, '\0') + data.substr(0, 1000));
}

// Drops an object's pages from the page cache, so that its next read
// comes from the disk.
void DropCached(const std::string& path) {
  for (const std::string& p : {path, path + ".crc"}) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && p != path) continue;   // a small object's checksums: in its inode
    ASSERT_GE(fd, 0) << p;
    EXPECT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ::close(fd);
  }
}

// A small read the page cache lacks is tried on the io thread, which
// must not wait, then read by a worker: the same bytes, and the same
// checksum check, as a read from the page cache.
TEST_F(StoreServerTest, UncachedSmallReadsAreRightAndChecked) {
  std::string data(64 << 10, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 13 + i / 4096);
  proto::ObjWriteRequest w;
  w.set_target(7);
  w.set_ino(0x77);
  w.set_index(3);
  w.set_sync(true);
  ASSERT_TRUE(rpc::Call<proto::ObjWriteReply>(*ch_, proto::OBJ_WRITE, w, Opts(), rpc::Payload(data)).ok());
  const std::string path = targets_[0]->ObjectPath(0x77, 3);

  proto::ObjReadRequest r;
  r.set_target(7);
  r.set_ino(0x77);
  r.set_index(3);
  struct Case {
    uint64_t offset, length;
  };
  for (Case c : {Case{0, 4096}, Case{5000, 9000}, Case{60000, 100000}, Case{0, 65536}, Case{70000, 10}}) {
    DropCached(path);
    r.set_offset(c.offset);
    r.set_length(c.length);
    rpc::CallResult raw;
    auto rr = rpc::Call<proto::ObjReadReply>(*ch_, proto::OBJ_READ, r, Opts(), {}, &raw);
    ASSERT_TRUE(rr.ok()) << rr.status().ToString();
    EXPECT_EQ(raw.payload, data.substr(std::min<uint64_t>(c.offset, data.size()), c.length))
        << c.offset << "+" << c.length;
  }
  // A byte changed behind the store's back: EIO naming the block.
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "!", 1, 3 * 4096 + 5), 1);
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
  DropCached(path);
  r.set_offset(3 * 4096);
  r.set_length(100);
  auto bad = rpc::Call<proto::ObjReadReply>(*ch_, proto::OBJ_READ, r, Opts());
  EXPECT_EQ(bad.status().code(), EIO);
  EXPECT_NE(bad.status().message().find("checksum mismatch in block 3"), std::string::npos)
      << bad.status().ToString();
}

TEST_F(StoreServerTest, UnknownTargetIsEnoent) {
  proto::ObjReadRequest r;
  r.set_target(8);
  r.set_length(10);
  auto rr = rpc::Call<proto::ObjReadReply>(*ch_, proto::OBJ_READ, r, Opts());
  EXPECT_EQ(rr.status().code(), ENOENT);
  EXPECT_NE(rr.status().message().find("test-store does not serve target 8"), std::string::npos)
      << rr.status().ToString();
}

TEST_F(StoreServerTest, BadRangesAreEinval) {
  proto::ObjReadRequest r;
  r.set_target(7);
  r.set_length(100u << 20);   // more than 64 MiB
  EXPECT_EQ(rpc::Call<proto::ObjReadReply>(*ch_, proto::OBJ_READ, r, Opts()).status().code(), EINVAL);
  r.set_length(10);
  r.set_offset(~0ull - 5);    // offset + length overflows
  EXPECT_EQ(rpc::Call<proto::ObjReadReply>(*ch_, proto::OBJ_READ, r, Opts()).status().code(), EINVAL);
  proto::ObjWriteRequest w;
  w.set_target(7);
  w.set_offset(~0ull - 2);
  auto wr = rpc::Call<proto::ObjWriteReply>(*ch_, proto::OBJ_WRITE, w, Opts(), rpc::Payload("abcdef"));
  EXPECT_EQ(wr.status().code(), EINVAL);
}

TEST_F(StoreServerTest, MalformedMessageThenConnectionStillWorks) {
  std::string garbage(11, '\xff');   // an overlong varint: never parses
  auto bad = ch_->CallSync(proto::OBJ_WRITE, garbage, rpc::Payload("x"), Opts());
  EXPECT_EQ(bad.status.code(), EBADMSG) << bad.status.ToString();
  auto ping = rpc::Call<proto::PingReply>(*ch_, proto::PING, proto::PingRequest(), Opts());
  EXPECT_TRUE(ping.ok()) << ping.status().ToString();
}

TEST_F(StoreServerTest, UnknownRequestTypeIsEnosys) {
  auto r = ch_->CallSync(4242, "", {}, Opts());
  EXPECT_EQ(r.status.code(), ENOSYS) << r.status.ToString();
  EXPECT_TRUE(rpc::Call<proto::PingReply>(*ch_, proto::PING, proto::PingRequest(), Opts()).ok());
}

}  // namespace
}  // namespace stria::store
