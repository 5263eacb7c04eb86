// Concurrent request batches (see rpc_batch.h).
#include "services/trainer/rpc_batch.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include <capnp/serialize.h>

namespace sy::trainer {

struct PendingCalls::Shared {
  absl::Mutex mu;
  size_t left ABSL_GUARDED_BY(mu) = 0;
  std::vector<absl::StatusOr<transport::DecodedMessage>> replies ABSL_GUARDED_BY(mu);
};

PendingCalls PendingCalls::Start(transport::RpcNode& node, std::vector<OutgoingCall>& calls, absl::Time deadline) {
  PendingCalls pending;
  pending.shared_ = std::make_shared<Shared>();
  const std::shared_ptr<Shared>& shared = pending.shared_;
  {
    absl::MutexLock lock(&shared->mu);
    shared->left = calls.size();
    for (size_t i = 0; i < calls.size(); ++i) shared->replies.emplace_back(absl::UnknownError("no reply"));
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    OutgoingCall& call = calls[i];
    node.CallAsync(call.to, *call.header, call.data, deadline,
                   [shared, i, what = call.what](absl::StatusOr<transport::DecodedMessage> reply) {
                     absl::MutexLock lock(&shared->mu);
                     if (reply.ok()) {
                       shared->replies[i] = std::move(reply);
                     } else {
                       shared->replies[i] =
                           absl::Status(reply.status().code(), absl::StrCat(what, ": ", reply.status().message()));
                     }
                     --shared->left;
                   });
  }
  return pending;
}

std::vector<absl::StatusOr<transport::DecodedMessage>> PendingCalls::Wait() {
  absl::MutexLock lock(&shared_->mu);
  shared_->mu.Await(absl::Condition(
      +[](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->left == 0; }, shared_.get()));
  return std::move(shared_->replies);
}

std::vector<absl::StatusOr<transport::DecodedMessage>> CallAll(transport::RpcNode& node,
                                                               std::vector<OutgoingCall>& calls, absl::Time deadline) {
  return PendingCalls::Start(node, calls, deadline).Wait();
}

absl::Status FirstError(const std::vector<absl::StatusOr<transport::DecodedMessage>>& replies) {
  for (const auto& r : replies) {
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

uint64_t CallBytes(OutgoingCall& call) {
  uint64_t bytes = capnp::computeSerializedSizeInWords(*call.header) * sizeof(capnp::word);
  for (const transport::Frame& f : call.data) bytes += f.size();
  return bytes;
}

}  // namespace sy::trainer
