// Replica gradients at the expert host's REPLICA_GRADIENTS door (services/expert_host
// replica_links, the door and the ParamActor behind it). host-0 holds an expert and a
// dense shard replicated with host-1; requests from "host-1" start as its valid
// contributions of step 1 and get fields broken (actor: unreplicated, unheld, outside
// the model; sender; step; micro-batches unsorted, repeated or out of range; tensor
// count, dtype, shape; NaN/Inf; short frames), then header bytes mutated. Every one is
// answered, and a refused one leaves the host's state as it was.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/host_fuzz_fixture.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0030;
constexpr int kIterations = 1500;

class ReplicaGradientsFuzz : public HostFuzzTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(HostFuzzTest::SetUp());
    auto table = StaticTable();
    for (auto& [actor, hosts] : table) {
      if (hosts[0] != "host-0") continue;
      if (actor.dense ? !replicated_shard_.has_value() : !replicated_expert_.has_value()) {
        (actor.dense ? replicated_shard_ : replicated_expert_) = actor;
        hosts.push_back("host-1");
      } else if (!actor.dense && !unreplicated_.has_value()) {
        unreplicated_ = actor;
      }
    }
    for (const auto& [actor, hosts] : table) {
      if (!actor.dense && hosts[0] == "host-1" && !unheld_.has_value()) unheld_ = actor;
    }
    ASSERT_TRUE(replicated_expert_ && replicated_shard_ && unreplicated_ && unheld_);
    ASSERT_TRUE(SendPlacement(1, table).ok());
  }

  size_t GradientSize(const cluster::ActorKey& key) const {
    return key.dense ? static_cast<size_t>(shard_numel_[key.shard])
                     : 2 * size_t{kHostDModel} * config_.model.d_ff + config_.model.d_ff + kHostDModel;
  }

  cluster::ActorKey Actor(FuzzRng& rng, std::string* summary) const {
    switch (rng.Below(10)) {
      case 0: *summary += " unreplicated"; return *unreplicated_;
      case 1: *summary += " unheld"; return *unheld_;
      case 2: *summary += " outside-model"; return cluster::ActorKey::Expert(3, 9);
      case 3: case 4: case 5: return *replicated_shard_;
      default: return *replicated_expert_;
    }
  }

  Seed Make(FuzzRng& rng) {
    Seed seed;
    seed.summary = "replica-gradients";
    auto env = cluster::InitEnvelope(*seed.header, proto::MessageKind::REPLICA_GRADIENTS, rng.OneIn(8) ? 2 : 1);
    // A later step waits (by design) until this deadline: short, so the loop stays bounded.
    env.setTtlMs(1000);
    auto body = env.initBody().initAs<proto::expert::ReplicaGradientsRequest>();
    const cluster::ActorKey actor = Actor(rng, &seed.summary);
    actor.ToProto(body.initActor());
    uint64_t step = 1;
    if (rng.OneIn(6)) step = 0;
    if (rng.OneIn(40)) step = 2;
    body.setStep(step);
    body.setSender(rng.OneIn(8) ? "host-2" : "host-1");
    std::vector<uint32_t> mbs = {1};  // host-1 serves the odd micro-batches of M = 2
    if (rng.OneIn(6)) mbs = {static_cast<uint32_t>(rng.Below(4))};
    if (rng.OneIn(8)) mbs = {1, static_cast<uint32_t>(rng.Below(3))};
    if (rng.OneIn(12)) mbs.clear();
    auto list = body.initMicroBatches(static_cast<unsigned>(mbs.size()));
    for (unsigned i = 0; i < mbs.size(); ++i) list.set(i, mbs[i]);
    seed.summary += " " + actor.ToString() + " sender=" + body.getSender().cStr() + " step=" + std::to_string(step) +
                    " mbs=" + std::to_string(mbs.size());
    unsigned tensors = static_cast<unsigned>(mbs.size());
    if (rng.OneIn(10)) tensors = static_cast<unsigned>(rng.Below(3));
    const size_t size = actor == cluster::ActorKey::Expert(3, 9) ? 8 : GradientSize(actor);
    auto descs = env.initTensors(tensors);
    for (unsigned i = 0; i < tensors; ++i) {
      std::vector<float> grad(rng.OneIn(10) ? size + 1 : size, 0.01f);
      if (rng.OneIn(6)) {
        seed.summary += " poisoned";
        grad[rng.Below(grad.size())] =
            rng.OneIn(2) ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
      }
      const proto::DType dtype = rng.OneIn(8) ? proto::DType::BF16 : proto::DType::F32;
      transport::SetTensor(descs[i], "gradient", proto::TensorRole::GRADIENTS, dtype, {grad.size()});
      seed.data.push_back(gpu::EncodeFloats(grad.data(), static_cast<int64_t>(grad.size()), dtype));
    }
    return seed;
  }

  std::optional<cluster::ActorKey> replicated_expert_, replicated_shard_, unreplicated_, unheld_;
};

TEST_F(ReplicaGradientsFuzz, GradientsAreAnsweredAndRefusalsChangeNothing) {
  FuzzHostDoor(kSeed, kIterations, [this](FuzzRng& rng) { return Make(rng); }, 1);
}

}  // namespace
}  // namespace sy::fuzz
