// The RPC face of stria-meta: every request type is handed to the
// MetaService executor, which replies from its own threads (handlers never
// block the io thread).
#pragma once

#include "common/rpc.h"
#include "meta/meta_service.h"

namespace stria::meta {

// Registers the meta request types (and PING) on server. service must
// outlive the server's serving.
void RegisterHandlers(rpc::Server& server, MetaService& service);

}  // namespace stria::meta
