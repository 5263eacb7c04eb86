// A Transport whose outgoing fault injection can be changed while it runs: what
// `syctl faults SPEC` does to the coordinator itself. Sends go through a
// FaultyTransport built from the current spec (or straight to the inner transport
// when the spec has no faults); receives always come from the inner transport.
// Replacing the spec drops the messages the old wrapper still held back.
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/transport/faulty_transport.h"
#include "common/transport/transport.h"

namespace sy::coordinator {

class SwitchableFaultTransport final : public transport::Transport {
 public:
  explicit SwitchableFaultTransport(std::unique_ptr<transport::Transport> inner);
  ~SwitchableFaultTransport() override;

  // InvalidArgument (and no change) for a bad spec; "" clears.
  absl::Status SetFaultSpec(absl::string_view spec);
  std::string fault_spec() const;

  const std::string& node_id() const override { return inner_->node_id(); }
  absl::StatusOr<std::string> Bind(const std::string& endpoint) override { return inner_->Bind(endpoint); }
  absl::Status Connect(const std::string& peer, const std::string& endpoint) override {
    return inner_->Connect(peer, endpoint);
  }
  absl::Status Disconnect(const std::string& peer) override { return inner_->Disconnect(peer); }
  absl::Status Send(transport::Message message, absl::Time deadline) override;
  absl::StatusOr<transport::Message> Receive(absl::Time deadline) override { return inner_->Receive(deadline); }
  void Close() override;
  transport::TransportStats stats() const override { return inner_->stats(); }

 private:
  std::unique_ptr<transport::Transport> inner_;
  mutable absl::Mutex mu_;
  std::shared_ptr<transport::Transport> faulty_ ABSL_GUARDED_BY(mu_);  // null: no faults
  std::string spec_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sy::coordinator
