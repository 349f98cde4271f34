// libFuzzer target: every byte string must be either rejected with a Status
// by the frame decoder or decoded; a decoded message is then parsed as every
// request type the servers accept. Nothing may crash or leak.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/frame.h"
#include "proto/stria.pb.h"

namespace {

const std::vector<std::unique_ptr<google::protobuf::MessageLite>>& Messages() {
  using namespace stria::proto;
  static auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<google::protobuf::MessageLite>>();
    v->emplace_back(new Error);
    v->emplace_back(new SessionOpenRequest);
    v->emplace_back(new LookupRequest);
    v->emplace_back(new ResolveRequest);
    v->emplace_back(new SetAttrRequest);
    v->emplace_back(new CreateRequest);
    v->emplace_back(new RenameRequest);
    v->emplace_back(new ReadDirRequest);
    v->emplace_back(new SetXattrRequest);
    v->emplace_back(new SetLayoutRequest);
    v->emplace_back(new RegisterStoreRequest);
    v->emplace_back(new StoreHeartbeatRequest);
    v->emplace_back(new ObjWriteRequest);
    v->emplace_back(new ObjReadRequest);
    v->emplace_back(new ObjFsyncRequest);
    v->emplace_back(new GetClusterMapReply);
    return v;
  }();
  return *all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto frame = stria::wire::DecodeFrame(bytes);
  // Also the raw bytes as a message body, as a server sees after a valid header.
  std::string_view body = frame.ok() ? frame->message : bytes;
  for (const auto& proto : Messages()) {
    std::unique_ptr<google::protobuf::MessageLite> m(proto->New());
    (void)m->ParseFromArray(body.data(), static_cast<int>(body.size()));
  }
  return 0;
}
