// The RPC face of stria-meta: every request runs at once in the io thread
// (MetaService::Submit); mutations reply from the syncer thread after their
// WAL sync, so no handler waits for a disk flush.
#pragma once

#include "common/rpc.h"
#include "meta/meta_service.h"

namespace stria::meta {

// Registers the meta request types (and PING) on server. service must
// outlive the server's serving.
void RegisterHandlers(rpc::Server& server, MetaService& service);

}  // namespace stria::meta
