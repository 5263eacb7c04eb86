// Concurrent request batches, stale-epoch resends and rollback aborts (see rpc_batch.h).
#include "services/trainer/rpc_batch.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "proto/envelope.capnp.h"
#include <capnp/serialize.h>

namespace sy::trainer {

// One round of sends: replies[k] answers calls[which[k]].
struct PendingCalls::Shared {
  absl::Mutex mu;
  size_t left ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;  // the waiter stopped listening (rollback abort)
  std::vector<bool> answered ABSL_GUARDED_BY(mu);
  std::vector<absl::StatusOr<transport::DecodedMessage>> replies ABSL_GUARDED_BY(mu);
};

std::optional<uint64_t> StaleEpochOf(const absl::Status& status) {
  if (!absl::IsAborted(status)) return std::nullopt;
  const auto payload = status.GetPayload(transport::kCurrentEpochPayload);
  uint64_t epoch = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &epoch)) return std::nullopt;
  return epoch;
}

std::shared_ptr<PendingCalls::Shared> PendingCalls::Send(transport::RpcNode& node, std::vector<OutgoingCall>& calls,
                                                         const std::vector<size_t>& which, absl::Time deadline) {
  auto shared = std::make_shared<Shared>();
  {
    absl::MutexLock lock(&shared->mu);
    shared->left = which.size();
    shared->answered.assign(which.size(), false);
    for (size_t k = 0; k < which.size(); ++k) shared->replies.emplace_back(absl::UnknownError("no reply"));
  }
  for (size_t k = 0; k < which.size(); ++k) {
    OutgoingCall& call = calls[which[k]];
    node.CallAsync(call.to, *call.header, call.data, deadline,
                   [shared, k, what = call.what](absl::StatusOr<transport::DecodedMessage> reply) {
                     absl::MutexLock lock(&shared->mu);
                     if (shared->closed) return;
                     if (reply.ok()) {
                       shared->replies[k] = std::move(reply);
                     } else {
                       absl::Status status(reply.status().code(), absl::StrCat(what, ": ", reply.status().message()));
                       reply.status().ForEachPayload(
                           [&status](absl::string_view key, const absl::Cord& value) { status.SetPayload(key, value); });
                       shared->replies[k] = std::move(status);
                     }
                     shared->answered[k] = true;
                     --shared->left;
                   });
  }
  return shared;
}

void PendingCalls::Await(Shared& shared, CallGuard* guard) {
  absl::MutexLock lock(&shared.mu);
  const absl::Condition done(
      +[](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->left == 0; }, &shared);
  if (guard == nullptr) {
    shared.mu.Await(done);
    return;
  }
  // A rollback sets no condition this mutex sees: look at the guard every few milliseconds.
  while (!shared.mu.AwaitWithTimeout(done, absl::Milliseconds(20))) {
    if (!guard->aborted()) continue;
    shared.closed = true;
    for (size_t k = 0; k < shared.replies.size(); ++k) {
      if (!shared.answered[k]) shared.replies[k] = absl::AbortedError("the step was aborted by a rollback");
    }
    return;
  }
}

PendingCalls PendingCalls::Start(transport::RpcNode& node, std::vector<OutgoingCall> calls, absl::Time deadline,
                                 CallGuard* guard) {
  PendingCalls pending;
  pending.node_ = &node;
  pending.calls_ = std::move(calls);
  pending.deadline_ = deadline;
  pending.guard_ = guard;
  std::vector<size_t> all(pending.calls_.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  pending.shared_ = Send(node, pending.calls_, all, deadline);
  return pending;
}

std::vector<absl::StatusOr<transport::DecodedMessage>> PendingCalls::Wait() {
  Await(*shared_, guard_);
  std::vector<absl::StatusOr<transport::DecodedMessage>> replies;
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->closed = true;
    replies = std::move(shared_->replies);
  }
  for (int resend = 0; guard_ != nullptr && resend < kMaxStaleEpochResends; ++resend) {
    std::vector<size_t> stale;
    uint64_t newest = 0;
    for (size_t i = 0; i < replies.size(); ++i) {
      if (replies[i].ok()) continue;
      if (std::optional<uint64_t> epoch = StaleEpochOf(replies[i].status())) {
        stale.push_back(i);
        newest = std::max(newest, *epoch);
      }
    }
    if (stale.empty()) break;
    if (absl::Status s = guard_->RefreshPlacement(newest); !s.ok()) {
      for (size_t i : stale) {
        replies[i] = absl::Status(s.code(), absl::StrCat(calls_[i].what, ": refreshing the placement to epoch ",
                                                         newest, " after a stale-epoch refusal: ", s.message()));
      }
      break;
    }
    if (guard_->aborted()) {  // a rollback came instead: the step ends, nothing is resent
      for (size_t i : stale) {
        replies[i] = absl::AbortedError(absl::StrCat(calls_[i].what, ": the step was aborted by a rollback"));
      }
      break;
    }
    for (size_t i : stale) {
      OutgoingCall& call = calls_[i];
      if (call.route) call.to = call.route();
      call.header->getRoot<proto::Envelope>().setPlacementEpoch(guard_->epoch());
    }
    std::shared_ptr<Shared> again = Send(*node_, calls_, stale, deadline_);
    Await(*again, guard_);
    absl::MutexLock lock(&again->mu);
    again->closed = true;
    for (size_t k = 0; k < stale.size(); ++k) replies[stale[k]] = std::move(again->replies[k]);
  }
  return replies;
}

std::vector<absl::StatusOr<transport::DecodedMessage>> CallAll(transport::RpcNode& node,
                                                               std::vector<OutgoingCall>& calls, absl::Time deadline,
                                                               CallGuard* guard) {
  PendingCalls pending = PendingCalls::Start(node, std::move(calls), deadline, guard);
  auto replies = pending.Wait();
  calls = std::move(pending.calls());
  return replies;
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
