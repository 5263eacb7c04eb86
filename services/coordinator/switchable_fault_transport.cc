// Run-time switchable outgoing fault injection (see switchable_fault_transport.h).
#include "services/coordinator/switchable_fault_transport.h"

namespace sy::coordinator {
namespace {

// Forwards to a transport it does not own; Close is a no-op so that replacing the
// fault wrapper never closes the real transport.
class Borrowed final : public transport::Transport {
 public:
  explicit Borrowed(transport::Transport* inner) : inner_(inner) {}
  const std::string& node_id() const override { return inner_->node_id(); }
  absl::StatusOr<std::string> Bind(const std::string& endpoint) override { return inner_->Bind(endpoint); }
  absl::Status Connect(const std::string& peer, const std::string& endpoint) override {
    return inner_->Connect(peer, endpoint);
  }
  absl::Status Disconnect(const std::string& peer) override { return inner_->Disconnect(peer); }
  absl::Status Send(transport::Message message, absl::Time deadline) override {
    return inner_->Send(std::move(message), deadline);
  }
  absl::StatusOr<transport::Message> Receive(absl::Time deadline) override { return inner_->Receive(deadline); }
  void Close() override {}
  transport::TransportStats stats() const override { return inner_->stats(); }

 private:
  transport::Transport* inner_;
};

}  // namespace

SwitchableFaultTransport::SwitchableFaultTransport(std::unique_ptr<transport::Transport> inner)
    : inner_(std::move(inner)) {}

SwitchableFaultTransport::~SwitchableFaultTransport() { Close(); }

absl::Status SwitchableFaultTransport::SetFaultSpec(absl::string_view spec) {
  auto parsed = transport::ParseFaultSpec(spec);
  if (!parsed.ok()) return parsed.status();
  std::shared_ptr<transport::Transport> next;
  if (parsed->Any()) next = transport::FaultyTransport::Wrap(std::make_unique<Borrowed>(inner_.get()), *parsed);
  std::shared_ptr<transport::Transport> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::move(faulty_);
    faulty_ = std::move(next);
    spec_ = std::string(spec);
  }
  if (old) old->Close();  // outside the lock: it joins its timer thread
  return absl::OkStatus();
}

std::string SwitchableFaultTransport::fault_spec() const {
  absl::MutexLock lock(&mu_);
  return spec_;
}

absl::Status SwitchableFaultTransport::Send(transport::Message message, absl::Time deadline) {
  std::shared_ptr<transport::Transport> faulty;
  {
    absl::MutexLock lock(&mu_);
    faulty = faulty_;
  }
  if (faulty) return faulty->Send(std::move(message), deadline);
  return inner_->Send(std::move(message), deadline);
}

void SwitchableFaultTransport::Close() {
  std::shared_ptr<transport::Transport> faulty;
  {
    absl::MutexLock lock(&mu_);
    faulty = std::move(faulty_);
  }
  if (faulty) faulty->Close();
  inner_->Close();
}

}  // namespace sy::coordinator
