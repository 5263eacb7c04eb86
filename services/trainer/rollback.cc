// Rollback orders: decoding, the trainer set's micro-batch split, the mailbox (see rollback.h).
#include "services/trainer/rollback.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "gpu/model/grad_tree.h"

namespace sy::trainer {

absl::StatusOr<RollbackOrder> DecodeRollback(proto::coordinator::TrainerControlRequest::Reader request,
                                             int64_t total_steps) {
  if (!request.isRollback()) {
    return absl::UnimplementedError("trainer control: only rollback and stop are supported (not resume or pause)");
  }
  auto rollback = request.getRollback();
  RollbackOrder order;
  order.epoch = request.getEpoch();
  order.step = rollback.getStep();
  order.checkpoint_id = rollback.getCheckpointId();
  order.failed_at_unix_ms = rollback.getFailedAtUnixMs();
  if (order.failed_at_unix_ms < 0) return absl::InvalidArgumentError("rollback: negative failedAtUnixMs");
  if (order.epoch == 0) return absl::InvalidArgumentError("rollback: placement epoch 0 (no table yet)");
  if (total_steps < 0 || order.step > static_cast<uint64_t>(total_steps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rollback to step ", order.step, " but the run has ", total_steps, " steps"));
  }
  std::set<std::string> seen;
  for (auto id : rollback.getTrainers()) {
    std::string name(id.cStr());
    if (name.empty()) return absl::InvalidArgumentError("rollback: an empty trainer id in the trainer list");
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("rollback: trainer '", name, "' listed twice"));
    }
    order.trainers.push_back(std::move(name));
  }
  return order;
}

absl::StatusOr<TrainerSlot> SlotIn(const std::vector<std::string>& trainers, const std::string& id) {
  for (size_t i = 0; i < trainers.size(); ++i) {
    if (trainers[i] == id) return TrainerSlot{static_cast<int>(i), static_cast<int>(trainers.size())};
  }
  return absl::NotFoundError(absl::StrCat(id, " is not in the live trainer set"));
}

std::vector<int> MicroBatchesOf(const TrainerSlot& slot, int num_micro_batches) {
  std::vector<int> mine;
  if (slot.count < 1 || slot.index < 0 || slot.index >= slot.count || num_micro_batches < 1) return mine;
  const int base = num_micro_batches / slot.count, extra = num_micro_batches % slot.count;
  const int first = slot.index * base + std::min(slot.index, extra);
  const int count = base + (slot.index < extra ? 1 : 0);
  for (int m = first; m < first + count; ++m) mine.push_back(m);
  return mine;
}

std::vector<cluster::MicroBatchSpan> DenseNodesOf(const TrainerSlot& slot, int num_micro_batches) {
  std::vector<cluster::MicroBatchSpan> nodes;
  const std::vector<int> share = MicroBatchesOf(slot, num_micro_batches);
  if (share.empty()) return nodes;
  for (const auto& [lo, hi] : gpu::GradTree::Cover(share.front(), share.back() + 1, num_micro_batches)) {
    nodes.push_back({static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)});
  }
  return nodes;
}

absl::Status RollbackMailbox::Post(RollbackOrder order) {
  absl::MutexLock lock(&mu_);
  if (order.epoch < newest_epoch_) {
    return absl::FailedPreconditionError(absl::StrCat("rollback of epoch ", order.epoch,
                                                      " is older than the rollback of epoch ", newest_epoch_,
                                                      " already received"));
  }
  newest_epoch_ = order.epoch;
  pending_ = std::move(order);
  return absl::OkStatus();
}

bool RollbackMailbox::aborted() const {
  absl::MutexLock lock(&mu_);
  return pending_.has_value() || stop_.has_value();
}

void RollbackMailbox::PostStop(std::string reason) {
  absl::MutexLock lock(&mu_);
  if (!stop_) stop_ = std::move(reason);
}

std::optional<std::string> RollbackMailbox::stopped() const {
  absl::MutexLock lock(&mu_);
  return stop_;
}

std::optional<RollbackOrder> RollbackMailbox::Take() {
  absl::MutexLock lock(&mu_);
  std::optional<RollbackOrder> order = std::move(pending_);
  pending_.reset();
  return order;
}

bool RollbackMailbox::Await(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(
                                  +[](RollbackMailbox* m) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return m->pending_.has_value() || m->stop_.has_value();
                                  },
                                  this),
                              timeout);
}

}  // namespace sy::trainer
