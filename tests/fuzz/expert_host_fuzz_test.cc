// sy-expert-host's door checks under mutated requests, through HostService over the
// in-process transport (as the unit tests drive it). Forward, backward, dense push,
// pull and step requests start valid and get random fields broken (layer, expert,
// shard, step, version, micro-batch, token count, d_model, dtype, shape, tensor
// count, epoch, element count, an unknown step request) and payloads poisoned (NaN,
// infinities, empty or short frames). Every request must get a reply (an error or
// a valid one), the host must keep serving, and after every refused request the
// actors' state checksums (a status query) must be unchanged.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/any.h>
#include <capnp/schema.h>

#include "common/transport/envelope_codec.h"
#include "common/transport/inproc_transport.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/model.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement.h"
#include "services/cluster/step_wire.h"
#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/host_fuzz_fixture.h"
#include "tests/fuzz/mutator.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0003;
constexpr int kRequests = 600;
constexpr int kM = kHostMicroBatches;
constexpr uint32_t kDModel = kHostDModel;
constexpr uint32_t kMaxRows = kHostMaxRows;

struct Request {
  std::unique_ptr<capnp::MallocMessageBuilder> header = std::make_unique<capnp::MallocMessageBuilder>();
  std::vector<transport::Frame> data;
  std::string summary;  // what was broken, for failure messages
};

// A value near `valid`, or one of the classic breakers, or (usually) `valid` itself.
uint64_t Perturb(uint64_t valid, FuzzRng& rng, std::string* summary, const char* field) {
  if (!rng.OneIn(4)) return valid;
  static constexpr uint64_t kBreakers[] = {0, 1, 2, 3, 7, 8, 9, 0xFFFFFFFFu, 0x80000000u, uint64_t{1} << 40, ~uint64_t{0}};
  const uint64_t v = rng.OneIn(3) ? valid + 1 : kBreakers[rng.Below(sizeof(kBreakers) / sizeof(kBreakers[0]))];
  *summary += std::string(" ") + field + "=" + std::to_string(v);
  return v;
}

// Step 1 (the one in progress), or the invalid step 0. Later steps are valid requests
// that wait (by design) for step 1's apply, so they stay out of this test.
uint64_t StepOneOrZero(FuzzRng& rng, std::string* summary) {
  if (!rng.OneIn(6)) return 1;
  *summary += " step=0";
  return 0;
}

// `n` floats, some poisoned with NaN or infinities, in f32 or bf16; sometimes cut short or empty.
transport::Frame Payload(uint64_t n, proto::DType dtype, FuzzRng& rng, std::string* summary) {
  std::vector<float> values(static_cast<size_t>(std::min<uint64_t>(n, 4096)), 0.25f);
  if (rng.OneIn(4)) {
    *summary += " poisoned";
    for (float& v : values) {
      if (rng.OneIn(3)) v = rng.OneIn(2) ? std::numeric_limits<float>::quiet_NaN() : -std::numeric_limits<float>::infinity();
    }
  }
  transport::Frame frame = gpu::EncodeFloats(values.data(), static_cast<int64_t>(values.size()), dtype);
  if (rng.OneIn(10)) {
    *summary += " short-frame";
    return transport::Frame::CopyOf(frame.data(), rng.Below(frame.size() + 1));
  }
  return frame;
}

// The single tensor descriptor and frame of a bucket request, each part possibly wrong.
void BucketTensor(proto::Envelope::Builder env, uint64_t rows, uint64_t cols, proto::TensorRole role, FuzzRng& rng,
                  Request& r) {
  const unsigned count = rng.OneIn(12) ? static_cast<unsigned>(rng.Below(3)) : 1u;
  if (count != 1) r.summary += " tensors=" + std::to_string(count);
  auto tensors = env.initTensors(count);
  for (unsigned i = 0; i < count; ++i) {
    proto::DType dtype = rng.OneIn(4) ? proto::DType::BF16 : proto::DType::F32;
    std::vector<uint64_t> shape = {Perturb(rows, rng, &r.summary, "shape0"), Perturb(cols, rng, &r.summary, "shape1")};
    if (rng.OneIn(10)) shape.resize(rng.Below(4), 2);
    uint64_t n = 1;
    for (uint64_t d : shape) n = d > 4096 || n * d > 4096 ? 4097 : n * d;
    if (n > 4096) shape = {rows, cols}, n = rows * cols;  // the door would refuse a frame this large anyway
    transport::SetTensor(tensors[i], "bucket", role, dtype, shape);
    r.data.push_back(Payload(n, dtype, rng, &r.summary));
    tensors[i].setByteLength(r.data.back().size());  // frame and descriptor agree; the host checks the rest
  }
}

Request Forward(FuzzRng& rng) {
  Request r;
  r.summary = "forward";
  auto env = cluster::InitEnvelope(*r.header, proto::MessageKind::EXPERT_FORWARD);
  env.setPlacementEpoch(Perturb(0, rng, &r.summary, "epoch"));
  auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
  auto bucket = body.initBucket();
  bucket.setStep(StepOneOrZero(rng, &r.summary));
  bucket.setMicroBatch(static_cast<uint32_t>(Perturb(rng.Below(kM), rng, &r.summary, "mb")));
  bucket.setLayer(static_cast<uint32_t>(Perturb(rng.Below(2), rng, &r.summary, "layer")));
  bucket.setExpert(static_cast<uint32_t>(Perturb(2 * rng.Below(2), rng, &r.summary, "expert")));
  const uint64_t rows = 1 + rng.Below(kMaxRows);
  body.setTokenCount(static_cast<uint32_t>(Perturb(rows, rng, &r.summary, "tokens")));
  body.setDModel(static_cast<uint32_t>(Perturb(kDModel, rng, &r.summary, "dModel")));
  // The host's version 0: a version ahead is valid and waits (by design) for an apply.
  body.setVersion(0);
  body.setTraining(!rng.OneIn(4));
  body.setDropoutSeed(rng.Bits64());
  BucketTensor(env, rows, kDModel, proto::TensorRole::ACTIVATIONS, rng, r);
  return r;
}

Request Backward(FuzzRng& rng) {
  Request r;
  r.summary = "backward";
  auto env = cluster::InitEnvelope(*r.header, proto::MessageKind::EXPERT_BACKWARD);
  env.setPlacementEpoch(Perturb(0, rng, &r.summary, "epoch"));
  auto body = env.initBody().initAs<proto::expert::ExpertBackwardRequest>();
  auto bucket = body.initBucket();
  bucket.setStep(StepOneOrZero(rng, &r.summary));
  bucket.setMicroBatch(static_cast<uint32_t>(Perturb(rng.Below(kM), rng, &r.summary, "mb")));
  bucket.setLayer(static_cast<uint32_t>(Perturb(rng.Below(2), rng, &r.summary, "layer")));
  bucket.setExpert(static_cast<uint32_t>(Perturb(2 * rng.Below(2), rng, &r.summary, "expert")));
  const uint64_t rows = 1 + rng.Below(kMaxRows);
  body.setTokenCount(static_cast<uint32_t>(Perturb(rows, rng, &r.summary, "tokens")));
  body.setDModel(static_cast<uint32_t>(Perturb(kDModel, rng, &r.summary, "dModel")));
  body.setVersion(0);
  BucketTensor(env, rows, kDModel, proto::TensorRole::OUTPUT_GRAD, rng, r);
  return r;
}

Request Push(FuzzRng& rng, const std::vector<int64_t>& shard_numel) {
  Request r;
  r.summary = "push";
  auto env = cluster::InitEnvelope(*r.header, proto::MessageKind::PARAM_PUSH);
  auto body = env.initBody().initAs<proto::parameter::PushRequest>();
  const uint32_t shard = 2 * static_cast<uint32_t>(rng.Below((shard_numel.size() + 1) / 2));  // host 0's shards
  body.setShard(static_cast<uint32_t>(Perturb(shard, rng, &r.summary, "shard")));
  body.setStep(StepOneOrZero(rng, &r.summary));
  auto mbs = body.initMicroBatches(rng.OneIn(8) ? static_cast<unsigned>(rng.Below(3)) : 1u);
  for (unsigned i = 0; i < mbs.size(); ++i) mbs.set(i, static_cast<uint32_t>(Perturb(rng.Below(kM), rng, &r.summary, "mb")));
  const uint64_t numel = static_cast<uint64_t>(shard_numel[shard]);
  body.setElementCount(Perturb(numel, rng, &r.summary, "elements"));
  body.setTrainer("trainer-0");
  const unsigned count = rng.OneIn(12) ? static_cast<unsigned>(rng.Below(3)) : 1u;
  auto tensors = env.initTensors(count);
  for (unsigned i = 0; i < count; ++i) {
    const proto::DType dtype = rng.OneIn(6) ? proto::DType::BF16 : proto::DType::F32;
    uint64_t n = Perturb(numel, rng, &r.summary, "shape0");
    if (n > 4096) n = numel;
    transport::SetTensor(tensors[i], "grad", proto::TensorRole::GRADIENTS, dtype, {n});
    r.data.push_back(Payload(n, dtype, rng, &r.summary));
    tensors[i].setByteLength(r.data.back().size());
  }
  return r;
}

Request Pull(FuzzRng& rng) {
  Request r;
  r.summary = "pull";
  auto env = cluster::InitEnvelope(*r.header, proto::MessageKind::PARAM_PULL);
  auto body = env.initBody().initAs<proto::parameter::PullRequest>();
  body.setTarget(rng.OneIn(2) ? proto::parameter::PullTarget::EXPERT : proto::parameter::PullTarget::DENSE_SHARD);
  body.setShard(static_cast<uint32_t>(Perturb(2 * rng.Below(3), rng, &r.summary, "shard")));
  body.setExpertLayer(static_cast<uint32_t>(Perturb(rng.Below(2), rng, &r.summary, "layer")));
  body.setExpertIndex(static_cast<uint32_t>(Perturb(2 * rng.Below(2), rng, &r.summary, "expert")));
  body.setVersion(0);  // the host's version: a newer one would wait for an apply
  return r;
}

// A step request with a union member no schema has (a sender from a newer version).
void SetUnknownStepRequest(proto::expert::StepRequest::Builder body, uint16_t member) {
  const auto schema = capnp::Schema::from<proto::expert::StepRequest>().getProto().getStruct();
  auto data = capnp::toAny(body).getDataSection();
  const size_t at = schema.getDiscriminantOffset() * sizeof(uint16_t);
  data[at] = static_cast<capnp::byte>(member & 0xff);
  data[at + 1] = static_cast<capnp::byte>(member >> 8);
}

Request Commit(FuzzRng& rng) {
  Request r;
  r.summary = "step";
  auto body = cluster::InitBody<proto::expert::StepRequest>(*r.header, proto::MessageKind::STEP_COMMIT);
  // Only commit and status: gathering or applying step 1 waits for all its micro-batches.
  if (rng.OneIn(2)) {
    r.summary += " status";
    body.setStatus();
  } else {
    auto commit = body.initCommit();
    commit.setTrainer("trainer-0");
    // Step 1 is the one in progress; a later step's phases would wait for it.
    commit.setStep(rng.OneIn(3) ? 0 : 1);
    commit.setTotalMicroBatches(static_cast<uint32_t>(Perturb(kM, rng, &r.summary, "total")));
    auto mbs = commit.initMicroBatches(static_cast<unsigned>(rng.Below(4)));
    for (unsigned i = 0; i < mbs.size(); ++i) {
      mbs.set(i, static_cast<uint32_t>(Perturb(rng.Below(kM), rng, &r.summary, "mb")));
    }
    r.summary += " commit step=" + std::to_string(commit.getStep());
  }
  if (rng.OneIn(3)) {
    const uint16_t member = static_cast<uint16_t>(4 + rng.Below(100));
    SetUnknownStepRequest(body, member);
    r.summary += " member=" + std::to_string(member);
  }
  return r;
}

using ExpertHostFuzz = HostFuzzTest;

TEST_F(ExpertHostFuzz, MutatedRequestsGetRepliesAndRefusalsChangeNothing) {
  std::vector<uint64_t> sums = Checksums();
  ASSERT_FALSE(sums.empty());
  int refused = 0, answered = 0, poisoned_answered = 0;
  for (uint64_t i = 0; i < kRequests; ++i) {
    FuzzRng rng(kSeed, i);
    Request r;
    switch (rng.Below(5)) {
      case 0: r = Forward(rng); break;
      case 1: r = Backward(rng); break;
      case 2: r = Push(rng, shard_numel_); break;
      case 3: r = Pull(rng); break;
      default: r = Commit(rng); break;
    }
    const std::string where = "seed=" + std::to_string(kSeed) + " iteration=" + std::to_string(i) + ": " + r.summary;
    auto reply = client_->Call({"host-0"}, *r.header, r.data, absl::Now() + absl::Seconds(20));
    ASSERT_NE(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << "no reply to " << where;
    const std::vector<uint64_t> after = Checksums();
    if (reply.ok()) {
      ++answered;
      poisoned_answered += r.summary.find("poisoned") != std::string::npos;
    } else {
      ++refused;
      ASSERT_NE(reply.status().code(), absl::StatusCode::kInternal) << reply.status() << " " << where;
      ASSERT_EQ(after, sums) << "refused request changed the state: " << reply.status() << " " << where;
    }
    sums = after;
  }
  std::cout << "answered " << answered << " (" << poisoned_answered << " with NaN/Inf payloads), refused " << refused
            << "\n";
  EXPECT_EQ(poisoned_answered, 0) << "NaN/Inf payloads must be refused at the door";
  EXPECT_GT(refused, kRequests / 4);
  EXPECT_GT(answered, kRequests / 20);

  // Still serving: an inference forward of a valid bucket is answered.
  FuzzRng rng(kSeed, kRequests);
  Request r;
  auto env = cluster::InitEnvelope(*r.header, proto::MessageKind::EXPERT_FORWARD);
  auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
  body.initBucket().setExpert(2);
  body.setTokenCount(2);
  body.setDModel(kDModel);
  body.setTraining(false);
  transport::SetTensor(env.initTensors(1)[0], "bucket", proto::TensorRole::ACTIVATIONS, proto::DType::F32, {2, kDModel});
  std::vector<float> x(2 * kDModel, 0.5f);
  auto reply = client_->Call({"host-0"}, *r.header,
                             {gpu::EncodeFloats(x.data(), static_cast<int64_t>(x.size()), proto::DType::F32)},
                             absl::Now() + absl::Seconds(20));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->data(0).size(), x.size() * sizeof(float));
}

}  // namespace
}  // namespace sy::fuzz
