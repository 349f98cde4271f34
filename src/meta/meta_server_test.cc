// The meta server in-process on 127.0.0.1:0, spoken to through rpc::Channel.
#include "meta/meta_server.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace stria::meta {
namespace {

class MetaServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = std::filesystem::temp_directory_path().string() + "/stria-metasrv-XXXXXX";
    dir_ = mkdtemp(t.data());
    MetaOptions o;
    o.data_dir = dir_;
    auto s = MetaService::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(s).value();
    server_ = std::make_unique<rpc::Server>("meta");
    RegisterHandlers(*server_, *svc_);
    auto port = server_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    server_->Start();
    ch_ = rpc::Channel::Create(io_.io(), "127.0.0.1:" + std::to_string(*port));
  }
  void TearDown() override {
    ch_->Close();
    server_->Stop();
    svc_.reset();
    std::filesystem::remove_all(dir_);
  }
  rpc::CallResult Call(proto::MsgType type, std::string msg) {
    return ch_->CallSync(type, std::move(msg), {}, rpc::CallOptions{});
  }

  std::string dir_;
  std::unique_ptr<MetaService> svc_;
  std::unique_ptr<rpc::Server> server_;
  rpc::IoThread io_;
  std::shared_ptr<rpc::Channel> ch_;
};

TEST_F(MetaServerTest, CreateThenLookupOverTheWire) {
  // Without stores a regular file cannot be placed; a FIFO needs no layout.
  proto::CreateRequest c;
  c.set_parent(1);
  c.set_name("f");
  c.set_mode(0644);
  auto r = Call(proto::CREATE, c.SerializeAsString());
  EXPECT_EQ(r.status.code(), ENOSPC) << r.status.ToString();
  c.set_type(proto::FT_FIFO);
  r = Call(proto::CREATE, c.SerializeAsString());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  proto::CreateReply cr;
  ASSERT_TRUE(cr.ParseFromString(r.message));
  EXPECT_TRUE(cr.created());

  proto::LookupRequest l;
  l.set_parent(1);
  l.set_name("f");
  r = Call(proto::LOOKUP, l.SerializeAsString());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  proto::LookupReply lr;
  ASSERT_TRUE(lr.ParseFromString(r.message));
  EXPECT_EQ(lr.attr().ino(), cr.attr().ino());
  EXPECT_EQ(lr.attr().type(), proto::FT_FIFO);
}

TEST_F(MetaServerTest, MalformedMessageGetsEbadmsgAndTheConnectionServesOn) {
  auto r = Call(proto::MKDIR, std::string("\xff\xff\xff\xff", 4));
  EXPECT_EQ(r.status.code(), EBADMSG) << r.status.ToString();
  proto::GetAttrRequest g;
  g.set_ino(1);
  r = Call(proto::GET_ATTR, g.SerializeAsString());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  proto::GetAttrReply gr;
  ASSERT_TRUE(gr.ParseFromString(r.message));
  EXPECT_EQ(gr.attr().ino(), 1u);
  EXPECT_EQ(gr.attr().type(), proto::FT_DIR);
}

TEST_F(MetaServerTest, UnknownTypeGetsEnosys) {
  EXPECT_EQ(Call(static_cast<proto::MsgType>(55), "").status.code(), ENOSYS);   // no such type
  EXPECT_EQ(Call(proto::OBJ_READ, "").status.code(), ENOSYS);   // a store's request
  EXPECT_TRUE(Call(proto::PING, "").status.ok());
}

}  // namespace
}  // namespace stria::meta
