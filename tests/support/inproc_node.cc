// In-process test servers (see inproc_node.h).
#include "tests/support/inproc_node.h"

namespace sy::test_support {

absl::StatusOr<std::unique_ptr<transport::RpcNode>> ServeInProc(transport::InProcNetwork& net,
                                                               const std::string& name,
                                                               transport::RpcNode::Handler handler,
                                                               const transport::RpcOptions& options) {
  absl::StatusOr<std::unique_ptr<transport::Transport>> t = net.CreateTransport(name);
  if (!t.ok()) return t.status();
  if (absl::StatusOr<std::string> bound = (*t)->Bind("inproc://" + name); !bound.ok()) return bound.status();
  return transport::RpcNode::Create(*std::move(t), options, std::move(handler));
}

}  // namespace sy::test_support
