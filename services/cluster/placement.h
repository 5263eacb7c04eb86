// Where every actor lives: Switch-layer experts and dense parameter shards mapped
// to host indices. The data path (remote executor, dense-parameter client, expert
// host) asks only this interface, so the coordinator's placement table (with an
// epoch) replaces the static rule without touching it. Dense shard s is the s-th
// dense parameter tensor in canonical order. An expert may be replicated on
// several hosts: replica i of n serves the micro-batches m with m % n == i (its
// forward and its backward). Experts are asked for as the data path names them, by
// model layer `layer` (one of the model's Switch layers) and expert index.
// Thread-safe (immutable).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"

#include "gpu/model/config.h"
#include "gpu/model/params.h"

namespace sy::cluster {

class Placement {
 public:
  virtual ~Placement() = default;
  virtual int num_hosts() const = 0;
  // Placement-table epoch the answers belong to (0 for the static rule).
  virtual uint64_t epoch() const = 0;
  // The expert's first replica (the one final weights are pulled from).
  virtual int HostOfExpert(int layer, int expert) const = 0;
  // Every host holding the expert, in replica order (first: HostOfExpert); never empty.
  virtual std::vector<int> ExpertReplicas(int layer, int expert) const { return {HostOfExpert(layer, expert)}; }
  virtual int HostOfDenseShard(int shard) const = 0;
  // The holders that serve step `step` (pulls of version v: step v + 1). A table made
  // by live moves hands each moved actor over only after the moves' boundary step;
  // up to it the actor's holders before the moves serve it. Other tables: as above.
  virtual std::vector<int> ExpertReplicasAt(uint64_t step, int layer, int expert) const {
    (void)step;
    return ExpertReplicas(layer, expert);
  }
  virtual int HostOfDenseShardAt(uint64_t step, int shard) const {
    (void)step;
    return HostOfDenseShard(shard);
  }
  // The replica that serves micro-batch `micro_batch` of the expert at step `step`:
  // replicas[micro_batch % replicas.size()].
  int HostOfExpertMicroBatch(uint64_t step, int layer, int expert, int64_t micro_batch) const;
};

// The rule used until the coordinator exists: expert e of model layer l, global index
// g = SwitchLayerOf(l) * E + e, lives on host g % H; shard s on host s % H.
class StaticPlacement : public Placement {
 public:
  StaticPlacement(const gpu::ModelConfig& config, int num_hosts);
  int num_hosts() const override { return num_hosts_; }
  uint64_t epoch() const override { return 0; }
  int HostOfExpert(int layer, int expert) const override;
  int HostOfDenseShard(int shard) const override;

 private:
  gpu::ModelConfig config_;
  int num_hosts_;
};

// A Placement whose table is replaced when the trainer refreshes it from the
// coordinator (rollback, stale-epoch refusal); the data path keeps one pointer to
// this. Thread-safe.
class LivePlacement : public Placement {
 public:
  explicit LivePlacement(std::unique_ptr<const Placement> initial);
  // Answers from `next` from now on.
  void Replace(std::unique_ptr<const Placement> next);
  int num_hosts() const override { return Current()->num_hosts(); }
  uint64_t epoch() const override { return Current()->epoch(); }
  int HostOfExpert(int layer, int expert) const override { return Current()->HostOfExpert(layer, expert); }
  std::vector<int> ExpertReplicas(int layer, int expert) const override {
    return Current()->ExpertReplicas(layer, expert);
  }
  int HostOfDenseShard(int shard) const override { return Current()->HostOfDenseShard(shard); }
  std::vector<int> ExpertReplicasAt(uint64_t step, int layer, int expert) const override {
    return Current()->ExpertReplicasAt(step, layer, expert);
  }
  int HostOfDenseShardAt(uint64_t step, int shard) const override { return Current()->HostOfDenseShardAt(step, shard); }

 private:
  std::shared_ptr<const Placement> Current() const;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Placement> current_ ABSL_GUARDED_BY(mu_);
};

// Indices of the hosts that hold at least one expert (any replica of it) of
// `config` or one of `num_dense_shards` dense shards under `placement` at step
// `step` (see ExpertReplicasAt), ascending.
std::vector<int> HostsInUse(const Placement& placement, const gpu::ModelConfig& config, int num_dense_shards,
                            uint64_t step);

// Canonical parameter index of every dense shard (shard s -> index), i.e. of
// every parameter that is not an expert tensor.
std::vector<uint32_t> DenseShardParams(const std::vector<gpu::ParamInfo>& infos);

}  // namespace sy::cluster
