// What a trainer does with the coordinator's trainerControl{rollback} call
// (proto/coordinator.capnp): decode and validate the order, keep it for the
// training thread (RollbackMailbox: the coordinator's RPC thread posts, the
// training thread takes; posting also asks the running step to stop), and the
// micro-batches a trainer owns given its position in the live trainer set. A
// trainerControl{stop} (the coordinator cannot recover) goes through the same
// mailbox: it aborts the running step for good and the trainer exits with its reason.
//
//   absl::StatusOr<RollbackOrder> order = DecodeRollback(body, options.steps);
//   if (order.ok()) mailbox.Post(*order);            // RPC thread
//   if (auto o = mailbox.Take()) { ...replay from o->step + 1... }  // training thread
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/step_wire.h"

namespace sy::trainer {

struct RollbackOrder {
  uint64_t epoch = 0;          // placement epoch the trainer must reach before replaying
  uint64_t step = 0;           // the hosts hold version `step`: replay from step + 1
  uint64_t checkpoint_id = 0;  // the checkpoint restored (for logs)
  std::vector<std::string> trainers;  // live trainer ids in rank order; empty: unchanged
  int64_t failed_at_unix_ms = 0;  // when the coordinator detected the failure behind it; 0: none
};

// The rollback of `request`. Unimplemented for resume and pause (stop is read by
// the caller); InvalidArgument for epoch 0, a step past `total_steps`, a negative failure
// time, or a trainer list with an empty or repeated id.
absl::StatusOr<RollbackOrder> DecodeRollback(proto::coordinator::TrainerControlRequest::Reader request,
                                             int64_t total_steps);

// A trainer's share of a step: position `index` among `count` trainers.
struct TrainerSlot {
  int index = 0;
  int count = 1;
};

// Where `id` stands in `trainers`; NotFound when it is not listed.
absl::StatusOr<TrainerSlot> SlotIn(const std::vector<std::string>& trainers, const std::string& id);

// The slot's share of [0, num_micro_batches): consecutive micro-batches, ascending, the
// shares in slot order and differing in size by at most one. Consecutive, so that a
// trainer pushes its dense gradients pre-summed over the tree nodes its share covers.
std::vector<int> MicroBatchesOf(const TrainerSlot& slot, int num_micro_batches);

// The slot's share as the fewest nodes of the step's fixed gradient tree
// (GradTree::Cover), ascending: the dense pushes a trainer makes per parameter.
std::vector<cluster::MicroBatchSpan> DenseNodesOf(const TrainerSlot& slot, int num_micro_batches);

// Rollback orders from the coordinator's thread to the training thread. Thread-safe.
class RollbackMailbox {
 public:
  // Keeps `order` (replacing a pending one) and raises aborted(). FailedPrecondition,
  // keeping what was there, when its epoch is below the newest order's epoch seen.
  absl::Status Post(RollbackOrder order);
  // True from a Post until the order is taken, and for good after PostStop.
  bool aborted() const;
  // The pending order, if any; lowers aborted().
  std::optional<RollbackOrder> Take();
  // Waits up to `timeout` for an order or a stop; true when one is there.
  bool Await(absl::Duration timeout);
  // The coordinator ends the run: aborted() stays raised from now on. The first reason is kept.
  void PostStop(std::string reason);
  // The stop's reason, once posted.
  std::optional<std::string> stopped() const;

 private:
  mutable absl::Mutex mu_;
  std::optional<RollbackOrder> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> stop_ ABSL_GUARDED_BY(mu_);
  uint64_t newest_epoch_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sy::trainer
