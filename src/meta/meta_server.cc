#include "meta/meta_server.h"

#include "proto/stria.pb.h"

namespace stria::meta {

void RegisterHandlers(rpc::Server& server, MetaService& service) {
  // Store data-path types (OBJ_*) are not ours: the server answers ENOSYS.
  for (int type = 1; type < proto::MsgType_ARRAYSIZE; type++) {
    if (!proto::MsgType_IsValid(type) || type >= proto::OBJ_WRITE) continue;
    server.Handle(static_cast<uint16_t>(type), [&service, type](rpc::Request&& req, rpc::Responder resp) {
      service.Submit(static_cast<uint16_t>(type), std::move(req.message), [resp](OpResult r) {
        if (!r.status.ok()) {
          resp.Fail(r.status);
          return;
        }
        resp.ReplyBytes(std::move(r.reply));
      });
    });
  }
  server.Handle(proto::PING, [](rpc::Request&&, rpc::Responder resp) { resp.Reply(proto::PingReply()); });
}

}  // namespace stria::meta
