// The MetaService test fixture: a real RocksDB in a temporary directory,
// one registered store with two targets, and helpers that call the service
// directly (no network).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "meta/meta_service.h"

namespace stria::meta {

class MetaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = std::filesystem::temp_directory_path().string() + "/stria-meta-XXXXXX";
    dir_ = mkdtemp(t.data());
    Reopen();
    // One store with two targets, so that files get layouts.
    proto::RegisterStoreRequest reg;
    reg.set_address("127.0.0.1:1");
    for (int i = 0; i < 2; i++) {
      auto* tr = reg.add_targets();
      tr->set_uuid("uuid" + std::to_string(i));
      tr->set_path("/t" + std::to_string(i));
      tr->set_capacity(1 << 30);
    }
    auto r = Call<proto::RegisterStoreReply>(proto::REGISTER_STORE, reg);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    store_id_ = r->store_id();
  }
  void TearDown() override {
    svc_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    svc_.reset();
    MetaOptions o = opts_;
    o.data_dir = dir_;
    auto s = MetaService::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(s).value();
  }
  template <typename Reply>
  Result<Reply> Call(proto::MsgType type, const google::protobuf::MessageLite& req) {
    OpResult r = svc_->Execute(type, req.SerializeAsString());
    if (!r.status.ok()) return r.status;
    Reply rep;
    if (!rep.ParseFromString(r.reply)) return Err(EBADMSG, "reply does not parse");
    return rep;
  }
  proto::Cred Root() { return proto::Cred(); }
  proto::Cred User(uint32_t uid) {
    proto::Cred c;
    c.set_uid(uid);
    c.set_gid(uid);
    return c;
  }
  Result<proto::Attr> Mkdir(uint64_t parent, const std::string& name, proto::Cred cred = {},
                            uint32_t mode = 0755) {
    proto::MkdirRequest req;
    *req.mutable_cred() = cred;
    req.set_parent(parent);
    req.set_name(name);
    req.set_mode(mode);
    auto r = Call<proto::MkdirReply>(proto::MKDIR, req);
    if (!r.ok()) return r.status();
    return r->attr();
  }
  Result<proto::CreateReply> Create(uint64_t parent, const std::string& name, bool excl = false,
                                    proto::Cred cred = {}, uint64_t session = 0) {
    proto::CreateRequest req;
    *req.mutable_cred() = cred;
    req.set_parent(parent);
    req.set_name(name);
    req.set_mode(0644);
    req.set_exclusive(excl);
    if (session) {
      req.set_open(true);
      req.set_session(session);
    }
    return Call<proto::CreateReply>(proto::CREATE, req);
  }
  Status Unlink(uint64_t parent, const std::string& name, proto::Cred cred = {}) {
    proto::UnlinkRequest req;
    *req.mutable_cred() = cred;
    req.set_parent(parent);
    req.set_name(name);
    return Call<proto::UnlinkReply>(proto::UNLINK, req).status();
  }
  std::vector<proto::ObjectRef> Garbage() {
    proto::StoreHeartbeatRequest hb;
    hb.set_store_id(store_id_);
    auto r = Call<proto::StoreHeartbeatReply>(proto::STORE_HEARTBEAT, hb);
    EXPECT_TRUE(r.ok());
    return r.ok() ? std::vector<proto::ObjectRef>(r->remove().begin(), r->remove().end())
                  : std::vector<proto::ObjectRef>();
  }

  Status Rmdir(uint64_t parent, const std::string& name, proto::Cred cred = {}) {
    proto::RmdirRequest req;
    *req.mutable_cred() = cred;
    req.set_parent(parent);
    req.set_name(name);
    return Call<proto::RmdirReply>(proto::RMDIR, req).status();
  }
  Status Rename(uint64_t sp, const std::string& sn, uint64_t dp, const std::string& dn,
                uint32_t flags = 0, proto::Cred cred = {}) {
    proto::RenameRequest req;
    *req.mutable_cred() = cred;
    req.set_src_parent(sp);
    req.set_src_name(sn);
    req.set_dst_parent(dp);
    req.set_dst_name(dn);
    req.set_flags(flags);
    return Call<proto::RenameReply>(proto::RENAME, req).status();
  }
  Result<proto::Attr> Lookup(uint64_t parent, const std::string& name, proto::Cred cred = {}) {
    proto::LookupRequest req;
    *req.mutable_cred() = cred;
    req.set_parent(parent);
    req.set_name(name);
    auto r = Call<proto::LookupReply>(proto::LOOKUP, req);
    if (!r.ok()) return r.status();
    return r->attr();
  }
  Result<proto::Attr> GetAttr(uint64_t ino) {
    proto::GetAttrRequest req;
    req.set_ino(ino);
    auto r = Call<proto::GetAttrReply>(proto::GET_ATTR, req);
    if (!r.ok()) return r.status();
    return r->attr();
  }
  Result<proto::ResolveReply> Resolve(const std::string& path, bool follow = true,
                                      proto::Cred cred = {}) {
    proto::ResolveRequest req;
    *req.mutable_cred() = cred;
    req.set_path(path);
    req.set_follow_last(follow);
    return Call<proto::ResolveReply>(proto::RESOLVE, req);
  }
  Result<proto::Attr> Symlink(uint64_t parent, const std::string& name, const std::string& target) {
    proto::SymlinkRequest req;
    req.set_parent(parent);
    req.set_name(name);
    req.set_target(target);
    auto r = Call<proto::SymlinkReply>(proto::SYMLINK, req);
    if (!r.ok()) return r.status();
    return r->attr();
  }
  Result<proto::Attr> Link(uint64_t ino, uint64_t parent, const std::string& name) {
    proto::LinkRequest req;
    req.set_ino(ino);
    req.set_new_parent(parent);
    req.set_new_name(name);
    auto r = Call<proto::LinkReply>(proto::LINK, req);
    if (!r.ok()) return r.status();
    return r->attr();
  }

  std::string dir_;
  MetaOptions opts_;   // used by Reopen
  std::unique_ptr<MetaService> svc_;
  uint32_t store_id_ = 0;
};

}  // namespace stria::meta
