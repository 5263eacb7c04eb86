// HostService over the in-process transport, the data path and the step protocol:
// expert outputs equal the in-process expert unit; bad requests (wrong shape,
// d_model, unknown or foreign expert, stale step, backward without forward, a second
// contribution) get error replies and leave every actor's checksum unchanged;
// duplicated requests are applied once; parked requests expire at their deadline and
// requests for the next version wait for the apply; an incomplete step is reported
// after the step timeout while the host keeps answering; status replies name experts
// by Switch layer while buckets name them by model layer.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/transport/envelope_codec.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/expert.h"
#include "gpu/model/model.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/step_wire.h"
#include "tests/unit/expert_host/host_fixture.h"

namespace sy::expert_host {
namespace {

using testing::BucketSpec;
using testing::HostServiceTest;
using testing::kM;
using testing::SmallHostModel;

TEST_F(HostServiceTest, OwnsTheStaticPlacementShare) {
  // 2 Switch layers x 4 experts over 2 hosts: global indices 0, 2, 4, 6 live here.
  EXPECT_EQ(service_->num_experts(), 4u);
  EXPECT_GT(service_->num_shards(), 0u);
}

TEST_F(HostServiceTest, StatusNamesExpertsBySwitchLayerWhileBucketsNameTheModelLayer) {
  gpu::ModelConfig model = SmallHostModel();
  model.moe_every = 2;  // model layer 0 is dense; model layer 1 is Switch layer 0
  Start(absl::Seconds(30), 0, model);
  BucketSpec b;
  b.layer = 1;
  b.expert = 2;  // Switch layer 0, global index 2: host 0
  ASSERT_TRUE(Forward(b).ok());
  b.layer = 0;  // a dense layer has no experts
  EXPECT_EQ(Forward(b).status().code(), absl::StatusCode::kNotFound);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok()) << status.status();
  std::vector<std::string> experts;
  for (const auto& a : status->actors) {
    if (!a.actor.dense) experts.push_back(a.actor.ToString());
  }
  EXPECT_EQ(experts, (std::vector<std::string>{"L0E0", "L0E2"}));
}

TEST_F(HostServiceTest, ForwardEqualsTheInProcessExpertUnit) {
  BucketSpec b;
  b.layer = 1;
  b.expert = 2;  // global index 4 + 2 = 6: host 0
  auto reply = Forward(b);
  ASSERT_TRUE(reply.ok()) << reply.status();
  std::vector<float> got(b.rows * b.d_model);
  ASSERT_TRUE(gpu::DecodeFloats(reply->data(0), proto::DType::F32, got.size(), got.data()).ok());

  auto model = *gpu::Model::Create(SmallHostModel(), backend_.get(), 7);
  const gpu::ParamBlock& p = model->params();
  const int64_t C = 8, F = 16, e = 2;
  const gpu::ExpertWeights w{p.Get("layer1.expert_w_in") + e * C * F, p.Get("layer1.expert_b_in") + e * F,
                             p.Get("layer1.expert_w_out") + e * F * C, p.Get("layer1.expert_b_out") + e * C};
  std::vector<float> in = Input(b), out(in.size()), pre(b.rows * F), act(b.rows * F);
  gpu::ExpertForward(backend_.get(), out.data(), {pre.data(), act.data()}, in.data(), b.rows, C, F, w, {});
  EXPECT_EQ(0, std::memcmp(out.data(), got.data(), out.size() * sizeof(float)));
}

TEST_F(HostServiceTest, BadRequestsGetErrorsAndChangeNothing) {
  CompleteStep(1);  // every actor at version 1
  const std::vector<uint64_t> before = Checksums();
  ASSERT_FALSE(before.empty());

  BucketSpec wrong_shape;
  wrong_shape.step = 2;
  wrong_shape.version = 1;
  wrong_shape.shape = {3, 9};
  EXPECT_EQ(Forward(wrong_shape).status().code(), absl::StatusCode::kInvalidArgument);

  BucketSpec wrong_width = wrong_shape;
  wrong_width.shape.clear();
  wrong_width.d_model = 9;
  EXPECT_EQ(Forward(wrong_width).status().code(), absl::StatusCode::kInvalidArgument);

  BucketSpec too_many_rows = wrong_width;
  too_many_rows.d_model = 8;
  too_many_rows.rows = 9;  // a micro-batch holds 8 tokens
  EXPECT_EQ(Forward(too_many_rows).status().code(), absl::StatusCode::kInvalidArgument);

  BucketSpec unknown = too_many_rows;
  unknown.rows = 3;
  unknown.expert = 99;
  EXPECT_EQ(Forward(unknown).status().code(), absl::StatusCode::kNotFound);
  unknown.expert = 0;
  unknown.layer = 5;
  EXPECT_EQ(Forward(unknown).status().code(), absl::StatusCode::kNotFound);

  BucketSpec foreign = unknown;
  foreign.layer = 0;
  foreign.expert = 1;  // global index 1: host 1
  EXPECT_EQ(Forward(foreign).status().code(), absl::StatusCode::kNotFound);

  BucketSpec stale;
  stale.step = 1;
  stale.version = 0;  // the expert is at version 1
  auto r = Forward(stale);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("stale step"), std::string::npos) << r.status();

  BucketSpec inconsistent = stale;
  inconsistent.step = 3;  // training step 3 must expect version 2
  EXPECT_EQ(Forward(inconsistent).status().code(), absl::StatusCode::kInvalidArgument);

  BucketSpec no_forward;
  no_forward.step = 2;
  no_forward.version = 1;
  EXPECT_EQ(Backward(no_forward).status().code(), absl::StatusCode::kFailedPrecondition);

  EXPECT_EQ(Checksums(), before);
  auto errors = [&](const char* code) {
    return registry_.GetCounter("sy_host_errors_total", "", {{"code", code}}).value();
  };
  EXPECT_EQ(errors("INVALID_ARGUMENT"), 4);
  EXPECT_EQ(errors("NOT_FOUND"), 3);
  EXPECT_EQ(errors("FAILED_PRECONDITION"), 2);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  for (const auto& a : status->actors) EXPECT_EQ(a.contributions, 0u);
}

// A dense push of step 1 to host-0: `frame_elements` ones as the gradient of
// `micro_batches`, its header claiming `elements`.
absl::StatusOr<transport::DecodedMessage> PushDense(transport::RpcNode& client, uint32_t shard,
                                                   uint64_t elements, uint64_t frame_elements,
                                                   const std::vector<uint32_t>& micro_batches,
                                                   proto::DType dtype = proto::DType::F32) {
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::PARAM_PUSH);
  auto body = env.initBody().initAs<proto::parameter::PushRequest>();
  body.setShard(shard);
  body.setStep(1);
  auto mbs = body.initMicroBatches(static_cast<unsigned>(micro_batches.size()));
  for (unsigned i = 0; i < micro_batches.size(); ++i) mbs.set(i, micro_batches[i]);
  body.setElementCount(elements);
  transport::SetTensor(env.initTensors(1)[0], "g", proto::TensorRole::GRADIENTS, dtype, {frame_elements});
  std::vector<float> g(frame_elements, 1.0f);
  return client.Call({"host-0"}, header, {gpu::EncodeFloats(g.data(), g.size(), dtype)},
                     absl::Now() + absl::Seconds(10));
}

// Dense shard `shard`'s values at version 0 from host-0, asked for in `dtype`; the reply must say that dtype.
absl::StatusOr<std::vector<float>> PullDense(transport::RpcNode& client, uint32_t shard, proto::DType dtype) {
  capnp::MallocMessageBuilder header;
  auto body = cluster::InitBody<proto::parameter::PullRequest>(header, proto::MessageKind::PARAM_PULL);
  body.setTarget(proto::parameter::PullTarget::DENSE_SHARD);
  body.setShard(shard);
  body.setDtype(dtype);
  auto reply = client.Call({"host-0"}, header, {}, absl::Now() + absl::Seconds(10));
  if (!reply.ok()) return reply.status();
  const auto tensor = reply->envelope().getTensors()[0];
  if (tensor.getDtype() != dtype) return absl::InternalError("the reply's values are not in the dtype asked for");
  std::vector<float> values(tensor.getShape()[0]);
  if (absl::Status s = gpu::DecodeFloats(reply->data(0), dtype, static_cast<int64_t>(values.size()), values.data());
      !s.ok()) {
    return s;
  }
  return values;
}

TEST_F(HostServiceTest, BadDensePushesGetErrorsAndChangeNothing) {
  const std::vector<uint64_t> before = Checksums();
  // Shard 0 is wte (256 x 8 = 2048 floats) and lives on host 0; shard 1 (wpe) on host 1.
  EXPECT_TRUE(PushDense(*client_, 0, 2048, 2048, {0}).ok());
  // A second contribution of micro-batch 0:
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {0}).status().code(), absl::StatusCode::kAlreadyExists);
  // Micro-batches [0, 2) pre-summed are the whole tree over kM = 2, but 0 is in already.
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {0, 1}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {1, 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {1, 1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {1, kM}).status().code(), absl::StatusCode::kInvalidArgument);  // past M
  EXPECT_EQ(PushDense(*client_, 0, 2047, 2047, {1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2000, {1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {kM}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PushDense(*client_, 1, 4 * 8, 4 * 8, {1}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(PushDense(*client_, 999, 1, 1, {1}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Checksums(), before);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  uint32_t contributions = 0;
  for (const auto& a : status->actors) contributions += a.contributions;
  EXPECT_EQ(contributions, 1u);
}

// --dense_wire_dtype=bf16: a bf16 push is taken; an f32 one cannot join its step; a pull
// asked for in bf16 is the f32 master rounded to bf16, in half the bytes.
TEST_F(HostServiceTest, DenseGradientsAndValuesMayTravelInBf16) {
  ASSERT_TRUE(PushDense(*client_, 0, 2048, 2048, {0}, proto::DType::BF16).ok());
  const std::vector<uint64_t> before = Checksums();
  auto mixed = PushDense(*client_, 0, 2048, 2048, {1});
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mixed.status().message().find("--dense_wire_dtype"), std::string::npos) << mixed.status();
  EXPECT_EQ(Checksums(), before);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  uint32_t contributions = 0;
  for (const auto& a : status->actors) contributions += a.contributions;
  EXPECT_EQ(contributions, 1u) << "the refused f32 push changed nothing";
  EXPECT_TRUE(PushDense(*client_, 0, 2048, 2048, {1}, proto::DType::BF16).ok());

  auto f32 = PullDense(*client_, 0, proto::DType::F32);
  auto bf16 = PullDense(*client_, 0, proto::DType::BF16);
  ASSERT_TRUE(f32.ok()) << f32.status();
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  ASSERT_EQ(f32->size(), 2048u);
  ASSERT_EQ(bf16->size(), 2048u);
  bool rounded = false;
  for (size_t i = 0; i < f32->size(); ++i) {
    ASSERT_EQ((*bf16)[i], gpu::RoundToBf16((*f32)[i])) << i;
    rounded |= (*bf16)[i] != (*f32)[i];
  }
  EXPECT_TRUE(rounded) << "the master weights are f32, not already bf16";
  EXPECT_EQ(PullDense(*client_, 0, static_cast<proto::DType>(7)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HostServiceTest, APushOfANodePreSummedCountsForEachOfItsMicroBatches) {
  ASSERT_TRUE(PushDense(*client_, 0, 2048, 2048, {0, 1}).ok());  // [0, 2): the whole tree over kM = 2
  EXPECT_EQ(PushDense(*client_, 0, 2048, 2048, {1}).status().code(), absl::StatusCode::kAlreadyExists);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  uint32_t contributions = 0;
  for (const auto& a : status->actors) contributions += a.contributions;
  EXPECT_EQ(contributions, 2u);
}

TEST_F(HostServiceTest, AContributionIsKeptOnceAndAppliedAtTheStep) {
  BucketSpec b;  // layer 0, expert 0, step 1, micro-batch 0
  ASSERT_TRUE(Forward(b).ok());
  ASSERT_TRUE(Backward(b).ok());
  // A second backward of the same micro-batch (a new request, not a retry) is refused.
  EXPECT_EQ(Backward(b).status().code(), absl::StatusCode::kFailedPrecondition);
  const std::vector<uint64_t> before = Checksums();
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  uint32_t contributions = 0;
  for (const auto& a : status->actors) contributions += a.contributions;
  EXPECT_EQ(contributions, 1u);
  CompleteStep(1);
  const std::vector<uint64_t> after = Checksums();
  EXPECT_NE(after, before);
  auto applied = steps_->Status(0);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->version, 1u);
  for (const auto& a : applied->actors) EXPECT_EQ(a.version, 1u);
}

TEST_F(HostServiceTest, DuplicatedRequestsAreAppliedOnce) {
  TearDown();
  Start(absl::Seconds(30), /*duplicate_rate=*/1.0);
  BucketSpec b;
  ASSERT_TRUE(Forward(b).ok());
  ASSERT_TRUE(Backward(b).ok());  // its duplicate is answered from the reply cache
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  uint32_t contributions = 0;
  for (const auto& a : status->actors) contributions += a.contributions;
  EXPECT_EQ(contributions, 1u);
  EXPECT_EQ(registry_.GetCounter("sy_host_errors_total", "", {{"code", "ALREADY_EXISTS"}}).value(), 0);
  const double duplicates =
      registry_.GetCounter("sy_rpc_duplicates_answered_total", "", {{"node", "host-0"}}).value() +
      registry_.GetCounter("sy_rpc_duplicates_in_progress_total", "", {{"node", "host-0"}}).value();
  EXPECT_GT(duplicates, 0) << "the duplicates must have reached the host";
}

TEST_F(HostServiceTest, AParkedRequestExpiresAtItsDeadline) {
  BucketSpec ahead;
  ahead.step = 3;
  ahead.version = 2;  // the expert is at version 0 and stays there
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_FORWARD);
  auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
  body.initBucket().setStep(3);
  body.setTokenCount(ahead.rows);
  body.setDModel(8);
  body.setVersion(2);
  body.setTraining(true);
  transport::SetTensor(env.initTensors(1)[0], "activations", proto::TensorRole::ACTIVATIONS, proto::DType::F32,
                       {ahead.rows, 8});
  const std::vector<float> x = Input(ahead);
  auto reply = client_->Call({"host-0"}, header, {gpu::EncodeFloats(x.data(), x.size(), proto::DType::F32)},
                             absl::Now() + absl::Milliseconds(300));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
  // The host drops the parked request too (it answers DeadlineExceeded, counted), instead of keeping it forever.
  metrics::Counter& expired = registry_.GetCounter("sy_host_errors_total", "", {{"code", "DEADLINE_EXCEEDED"}});
  for (int i = 0; i < 200 && expired.value() == 0; ++i) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(expired.value(), 1);
}

TEST_F(HostServiceTest, ARequestForTheNextVersionWaitsForTheApply) {
  BucketSpec next;
  next.step = 2;
  next.version = 1;
  absl::Mutex mu;
  bool done = false;
  absl::Status result;
  capnp::MallocMessageBuilder header;
  {
    auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_FORWARD);
    auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
    auto bucket = body.initBucket();
    bucket.setStep(2);
    body.setTokenCount(next.rows);
    body.setDModel(8);
    body.setVersion(1);
    body.setTraining(true);
    transport::SetTensor(env.initTensors(1)[0], "activations", proto::TensorRole::ACTIVATIONS, proto::DType::F32,
                         {next.rows, 8});
  }
  const std::vector<float> x = Input(next);
  client_->CallAsync({"host-0"}, header, {gpu::EncodeFloats(x.data(), x.size(), proto::DType::F32)},
                     absl::Now() + absl::Seconds(20), [&](absl::StatusOr<transport::DecodedMessage> r) {
                       absl::MutexLock lock(&mu);
                       result = r.status();
                       done = true;
                     });
  absl::SleepFor(absl::Milliseconds(300));
  {
    absl::MutexLock lock(&mu);
    EXPECT_FALSE(done) << "a request for version 1 was answered at version 0";
  }
  CompleteStep(1);
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&done));
  EXPECT_TRUE(result.ok()) << result;
}

TEST_F(HostServiceTest, AnIncompleteStepIsReportedAndTheHostKeepsServing) {
  TearDown();
  Start(absl::Milliseconds(300));  // a fresh host with a short step timeout
  cluster::MicroBatchStatsValue only_first;
  only_first.micro_batch = 0;
  ASSERT_TRUE(steps_->Commit(1, {only_first}).ok());
  auto gathered = steps_->GatherNorms(1);  // waits for micro-batch 1, which never comes
  EXPECT_EQ(gathered.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(gathered.status().message().find("missing micro-batches [1]"), std::string::npos) << gathered.status();
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->step_timeouts, 1u);
  EXPECT_EQ(status->missing_micro_batches, std::vector<uint32_t>{1});
  EXPECT_EQ(registry_.GetCounter("sy_host_step_timeouts_total", "").value(), 1);
  BucketSpec eval;
  eval.training = false;
  eval.step = 0;
  EXPECT_TRUE(Forward(eval).ok());  // still serving
}

}  // namespace
}  // namespace sy::expert_host
