// The sampling path: its logits are the training forward's (bit for bit), greedy and
// seeded sampling are deterministic, and a checkpoint database yields the same
// parameter block the model had when its actors' states were written.
#include "services/generate/generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/base/fnv1a.h"
#include "gpu/model/expert.h"
#include "services/cluster/placement.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/generate/checkpoint_weights.h"
#include "services/generate/sampling.h"
#include "tests/unit/generate/tiny_config.h"

namespace sy::generate {
namespace {

using ::testing::HasSubstr;

using testing::TinyConfig;

std::vector<float> InitialValues(const gpu::ModelConfig& config, uint64_t seed) {
  auto backend = gpu::CreateBackend(gpu::Device::Cpu()).value();
  auto model = gpu::Model::Create(config, backend.get(), seed).value();
  std::vector<float> values;
  EXPECT_TRUE(model->params().CopyToHost(&values).ok());
  return values;
}

TEST(SamplingTest, GreedyTakesTheLargestLogitAndTheLowestIndexAmongEquals) {
  const CounterRng rng = SamplingRng(1);
  EXPECT_EQ(SampleToken({0.5f, 2.0f, -1.0f, 2.0f}, 0.0, rng, 0), 1);
  EXPECT_EQ(SampleToken({3.0f}, 0.0, rng, 0), 0);
}

TEST(SamplingTest, DrawsFollowTheSoftmaxAndRepeatForASeed) {
  // Probabilities 1/7, 2/7, 4/7 at temperature 1: logits ln 1, ln 2, ln 4.
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(4.0f)};
  std::vector<int> counts(3, 0);
  const CounterRng rng = SamplingRng(9);
  constexpr int kDraws = 7000;
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(SampleToken(logits, 1.0, rng, i))];
  EXPECT_NEAR(counts[0], 1000, 150);
  EXPECT_NEAR(counts[1], 2000, 200);
  EXPECT_NEAR(counts[2], 4000, 200);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(SampleToken(logits, 1.0, rng, i), SampleToken(logits, 1.0, SamplingRng(9), i));
  // A very low temperature is greedy.
  for (int i = 0; i < 50; ++i) EXPECT_EQ(SampleToken(logits, 1e-4, rng, i), 2);
}

TEST(GeneratorTest, NextLogitsAreTheTrainingForwardsLogitsBitForBit) {
  const gpu::ModelConfig config = TinyConfig();
  const std::vector<float> values = InitialValues(config, 5);
  auto generator = Generator::Create(config, values).value();
  auto backend = gpu::CreateBackend(gpu::Device::Cpu()).value();
  auto model = gpu::Model::Create(config, backend.get(), 5).value();
  auto grads = model->NewGradBlock().value();
  for (int T : {1, 5, 8}) {
    std::vector<int32_t> window, targets(static_cast<size_t>(T), 0);
    for (int t = 0; t < T; ++t) window.push_back((t * 37 + 11) % 256);
    gpu::StepContext ctx;
    ctx.training = false;  // no dropout, no jitter, the evaluation capacity factor: what sampling runs
    ctx.record_logits = true;
    absl::StatusOr<gpu::MicroBatchStats> trained = model->ForwardBackward(window, targets, 1, T, ctx, 1.0f, grads.get());
    ASSERT_TRUE(trained.ok()) << trained.status();
    absl::StatusOr<std::vector<float>> sampled = generator->NextLogits(window);
    ASSERT_TRUE(sampled.ok()) << sampled.status();
    const std::vector<float> last(trained->logits.end() - config.vocab, trained->logits.end());
    EXPECT_EQ(*sampled, last) << "T=" << T;
  }
}

TEST(GeneratorTest, ContinueIsDeterministicAndGreedyIgnoresTheSeed) {
  const gpu::ModelConfig config = TinyConfig();
  auto generator = Generator::Create(config, InitialValues(config, 3)).value();
  const std::string a = generator->Continue("abc", 20, 1.0, 7).value();
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(generator->Continue("abc", 20, 1.0, 7).value(), a);
  EXPECT_NE(generator->Continue("abc", 20, 1.0, 8).value(), a);
  EXPECT_EQ(generator->Continue("abc", 20, 0.0, 1).value(), generator->Continue("abc", 20, 0.0, 2).value());
  // Longer than the context: the window slides.
  EXPECT_EQ(generator->Continue("", 30, 0.5, 1).value().size(), 30u);
}

TEST(GeneratorTest, RefusesAWrongNumberOfValues) {
  std::vector<float> values = InitialValues(TinyConfig(), 1);
  values.pop_back();
  EXPECT_EQ(Generator::Create(TinyConfig(), values).status().code(), absl::StatusCode::kInvalidArgument);
}

// Writes every actor's state (weights, m, v) of `values` as checkpoint 1 at step 12, as hosts would.
void WriteCheckpoint(const std::string& db, const gpu::ModelConfig& config, const std::vector<float>& values,
                     bool drop_one_expert) {
  auto store = coordinator::CheckpointStore::Open(db, {}).value();
  const std::vector<gpu::ParamInfo> infos = gpu::ParamInfos(config);
  std::map<cluster::ActorKey, std::vector<float>> weights;
  const std::vector<uint32_t> shards = cluster::DenseShardParams(infos);
  for (size_t s = 0; s < shards.size(); ++s) {
    const gpu::ParamInfo& i = infos[shards[s]];
    weights[cluster::ActorKey::Dense(static_cast<uint32_t>(s))].assign(values.begin() + i.offset,
                                                                        values.begin() + i.offset + i.numel);
  }
  const gpu::ExpertLayout layout(config);
  for (int l = 0; l < config.layers; ++l) {
    for (int e = 0; e < config.experts; ++e) {
      std::vector<float>& block = weights[cluster::ActorKey::Expert(static_cast<uint32_t>(l), e)];
      for (const gpu::ExpertPart& part : layout.parts()) {
        for (const gpu::ParamInfo& i : infos) {
          if (i.name != absl::StrCat("layer", l, ".", part.name)) continue;
          block.insert(block.end(), values.begin() + i.offset + e * part.numel,
                       values.begin() + i.offset + (e + 1) * part.numel);
        }
      }
    }
  }
  if (drop_one_expert) weights.erase(cluster::ActorKey::Expert(1, 3));
  coordinator::CheckpointInfo info;
  info.id = 1;
  info.step = 12;
  for (const auto& [key, w] : weights) {
    std::string state(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float));
    state += std::string(2 * state.size(), '\0');  // the moments
    ASSERT_TRUE(store->PutChunk(1, key, 0, state).ok());
    info.actors.push_back({key, 12, state.size(), 1, ChecksumOf(state)});
  }
  ASSERT_TRUE(store->Commit(info).ok());
}

TEST(CheckpointWeightsTest, TheLatestCheckpointGivesBackTheParameterBlock) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/checkpoint_weights_", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const gpu::ModelConfig config = TinyConfig();
  const std::vector<float> values = InitialValues(config, 4);
  WriteCheckpoint(dir + "/db", config, values, false);
  absl::StatusOr<CheckpointWeights> read = ReadCheckpointWeights(dir + "/db", config);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->step, 12u);
  EXPECT_EQ(read->values, values);

  gpu::ModelConfig wider = config;
  wider.d_ff = 64;
  EXPECT_THAT(ReadCheckpointWeights(dir + "/db", wider).status().message(), HasSubstr("shape mismatch"));
  WriteCheckpoint(dir + "/partial", config, values, true);
  EXPECT_THAT(ReadCheckpointWeights(dir + "/partial", config).status().message(), HasSubstr("has no actor L1E3"));
  EXPECT_EQ(ReadCheckpointWeights(dir + "/none", config).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sy::generate
