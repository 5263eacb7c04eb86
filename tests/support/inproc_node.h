// Test servers on the in-process network: an RpcNode that serves `handler` under
// `name`, bound at inproc://NAME, the way fake hosts and hosts under test are started.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/transport/inproc_transport.h"
#include "common/transport/rpc.h"

namespace sy::test_support {

absl::StatusOr<std::unique_ptr<transport::RpcNode>> ServeInProc(transport::InProcNetwork& net,
                                                               const std::string& name,
                                                               transport::RpcNode::Handler handler,
                                                               const transport::RpcOptions& options = {});

}  // namespace sy::test_support
