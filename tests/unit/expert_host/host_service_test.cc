// HostService over the in-process transport: expert outputs equal the in-process
// expert unit; bad requests (wrong shape, d_model, unknown or foreign expert,
// stale step, backward without forward, a second contribution) get error
// replies and leave every actor's checksum unchanged; requests for the next
// version wait for the apply; an incomplete step is reported after the step
// timeout while the host keeps answering. Recovery: a coordinator table that adds
// an actor makes it wait (Unavailable) for a chunkIn restore, a removed actor
// answers NotFound, a restore in the middle of a step aborts its waiting requests
// and the replayed step matches a fresh host's, and requests with a stale placement
// epoch are refused. Replication: two hosts holding one expert, each serving every
// other micro-batch, end bit-identical to the expert trained on one host; bad
// replica gradients are refused and change nothing.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/base/fnv1a.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/faulty_transport.h"
#include "common/transport/inproc_transport.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/model.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement.h"
#include "services/cluster/placement_codec.h"
#include "services/cluster/placement_table.h"
#include "services/cluster/step_wire.h"
#include "services/expert_host/host_service.h"
#include "services/trainer/rpc_batch.h"
#include "services/trainer/step_client.h"
#include "tests/support/inproc_node.h"

namespace sy::expert_host {
namespace {

constexpr int kM = 2;

gpu::ModelConfig SmallConfig() {
  gpu::ModelConfig c;
  c.layers = 2;
  c.d_model = 8;
  c.heads = 2;
  c.d_ff = 16;
  c.experts = 4;
  c.moe_every = 1;
  c.context = 4;
  c.dropout = 0;
  c.expert_dropout = 0;
  return c;
}

struct BucketSpec {
  uint32_t layer = 0, expert = 0;
  uint64_t step = 1, version = 0;
  uint32_t micro_batch = 0;
  bool training = true;
  uint32_t rows = 3, d_model = 8;
  std::vector<uint64_t> shape;  // default (rows, d_model)
  uint64_t epoch = 0;           // placement epoch in the envelope
  std::string host = "host-0";  // where it goes
};

using cluster::ActorKey;

class HostServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(absl::Seconds(30)); }

  void Start(absl::Duration step_timeout, double duplicate_rate = 0) {
    steps_.reset();
    client_.reset();
    server_.reset();
    server1_.reset();
    service_.reset();
    service1_.reset();
    net_ = std::make_unique<transport::InProcNetwork>();
    backend_ = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
    HostConfig config;
    config.model = SmallConfig();
    config.seed = 7;
    config.micro_batches = kM;
    config.max_bucket_rows = 8;
    config.host_index = 0;
    config.num_hosts = 2;
    config.step_timeout = step_timeout;
    config_ = config;
    ASSERT_NO_FATAL_FAILURE(StartHost(0, &service_, &server_));
    auto client = *net_->CreateTransport("trainer-0");
    ASSERT_TRUE(client->Connect("host-0", "inproc://host-0").ok());
    transport::FaultSpec faults;
    faults.duplicate = duplicate_rate;  // every request sent twice with the same id when 1
    client_ = *transport::RpcNode::Create(transport::FaultyTransport::Wrap(std::move(client), faults), {}, nullptr);
    steps_ = std::make_unique<trainer::StepClient>(client_.get(), std::vector<std::string>{"host-0"}, kM, "trainer-0",
                                                   absl::Seconds(10));
  }

  // host-`index` of config_ on the in-process network at inproc://host-`index`.
  void StartHost(int index, std::unique_ptr<HostService>* service, std::unique_ptr<transport::RpcNode>* server) {
    HostConfig config = config_;
    config.host_index = index;
    *service = *HostService::Create(config, backend_.get(), &registry_);
    HostService* handler = service->get();
    transport::RpcOptions server_options;
    server_options.metrics = &registry_;
    auto node = test_support::ServeInProc(
        *net_, absl::StrCat("host-", index),
        [handler](transport::DecodedMessage r, transport::Responder responder) {
          handler->Handle(std::move(r), std::move(responder));
        },
        server_options);
    ASSERT_TRUE(node.ok()) << node.status();
    *server = *std::move(node);
    handler->set_rpc(server->get());
  }

  // host-1 beside host-0 (the client reaches it as "host-1").
  void StartSecondHost() {
    ASSERT_NO_FATAL_FAILURE(StartHost(1, &service1_, &server1_));
    ASSERT_TRUE(client_->transport().Connect("host-1", "inproc://host-1").ok());
  }

  void TearDown() override {
    client_->Close();
    for (auto* service : {&service_, &service1_}) {
      if (*service != nullptr) (*service)->set_rpc(nullptr);
    }
    for (auto* server : {&server_, &server1_}) {
      if (*server != nullptr) (*server)->Close();
    }
    service_.reset();
    service1_.reset();
  }

  std::vector<float> Input(const BucketSpec& b) const {
    std::vector<float> x(static_cast<size_t>(b.rows) * b.d_model);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
    return x;
  }

  absl::StatusOr<transport::DecodedMessage> Forward(const BucketSpec& b) {
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_FORWARD);
    env.setPlacementEpoch(b.epoch);
    auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
    auto bucket = body.initBucket();
    bucket.setStep(b.step);
    bucket.setMicroBatch(b.micro_batch);
    bucket.setLayer(b.layer);
    bucket.setExpert(b.expert);
    body.setTokenCount(b.rows);
    body.setDModel(b.d_model);
    body.setVersion(b.version);
    body.setTraining(b.training);
    body.setDropoutSeed(7);
    const std::vector<uint64_t> shape = b.shape.empty() ? std::vector<uint64_t>{b.rows, b.d_model} : b.shape;
    transport::SetTensor(env.initTensors(1)[0], "activations", proto::TensorRole::ACTIVATIONS, proto::DType::F32,
                         shape);
    const std::vector<float> x = Input(b);
    uint64_t elements = 1;
    for (uint64_t d : shape) elements *= d;
    std::vector<float> data(elements, 0.5f);
    std::memcpy(data.data(), x.data(), std::min(x.size(), data.size()) * sizeof(float));
    return client_->Call({b.host}, header, {gpu::EncodeFloats(data.data(), static_cast<int64_t>(data.size()),
                                                              proto::DType::F32)},
                         absl::Now() + absl::Seconds(10));
  }

  absl::StatusOr<transport::DecodedMessage> Backward(const BucketSpec& b) {
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_BACKWARD);
    env.setPlacementEpoch(b.epoch);
    auto body = env.initBody().initAs<proto::expert::ExpertBackwardRequest>();
    auto bucket = body.initBucket();
    bucket.setStep(b.step);
    bucket.setMicroBatch(b.micro_batch);
    bucket.setLayer(b.layer);
    bucket.setExpert(b.expert);
    body.setTokenCount(b.rows);
    body.setDModel(b.d_model);
    body.setVersion(b.version);
    transport::SetTensor(env.initTensors(1)[0], "outputGrad", proto::TensorRole::OUTPUT_GRAD, proto::DType::F32,
                         {b.rows, b.d_model});
    const std::vector<float> g = Input(b);
    return client_->Call({b.host}, header, {gpu::EncodeFloats(g.data(), static_cast<int64_t>(g.size()),
                                                              proto::DType::F32)},
                         absl::Now() + absl::Seconds(10));
  }

  // Commits every micro-batch of `step`, gathers the norms and applies.
  void CompleteStep(uint64_t step) {
    std::vector<cluster::MicroBatchStatsValue> stats(kM);
    for (int m = 0; m < kM; ++m) stats[m].micro_batch = static_cast<uint32_t>(m);
    ASSERT_TRUE(steps_->Commit(step, stats).ok());
    auto gathered = steps_->GatherNorms(step);
    ASSERT_TRUE(gathered.ok()) << gathered.status();
    ASSERT_TRUE(steps_->Apply(step, 1.0f, 0.01f).ok());
  }

  // Every actor of the model: the static placement over host-0 and host-1, with
  // `moved` actors on the other host instead.
  std::map<cluster::ActorKey, std::vector<std::string>> StaticTable(const std::vector<cluster::ActorKey>& moved = {}) const {
    cluster::ModelShape shape{2, 4, static_cast<uint32_t>(NumShards())};
    std::map<cluster::ActorKey, std::vector<std::string>> entries;
    for (const cluster::ActorKey& a : shape.Actors()) {
      size_t host = cluster::InitialHostIndex(a, shape, 2);
      if (std::find(moved.begin(), moved.end(), a) != moved.end()) host = 1 - host;
      entries[a] = {absl::StrCat("host-", host)};
    }
    return entries;
  }

  static size_t NumShards() { return cluster::DenseShardParams(gpu::ParamInfos(SmallConfig())).size(); }

  absl::Status SendPlacement(uint64_t epoch, std::map<cluster::ActorKey, std::vector<std::string>> entries,
                             const std::string& host = "host-0") {
    return SendPlacementAsync(epoch, std::move(entries), host)->Wait();
  }

  // A request sent without waiting; `Wait` returns its outcome.
  struct Pending {
    absl::Mutex mu;
    bool done = false;
    absl::Status status;
    absl::Status Wait() {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(&done));
      return status;
    }
    bool Done() {
      absl::MutexLock lock(&mu);
      return done;
    }
  };
  std::shared_ptr<Pending> CallAsync(capnp::MallocMessageBuilder& header, std::vector<transport::Frame> data = {},
                                     const std::string& host = "host-0") {
    auto pending = std::make_shared<Pending>();
    client_->CallAsync({host}, header, std::move(data), absl::Now() + absl::Seconds(20),
                       [pending](absl::StatusOr<transport::DecodedMessage> r) {
                         absl::MutexLock lock(&pending->mu);
                         pending->status = r.status();
                         pending->done = true;
                       });
    return pending;
  }

  std::shared_ptr<Pending> SendPlacementAsync(uint64_t epoch, std::map<cluster::ActorKey, std::vector<std::string>> entries,
                                              const std::string& host = "host-0") {
    cluster::PlacementTable table(cluster::ModelShape{2, 4, static_cast<uint32_t>(NumShards())});
    EXPECT_TRUE(table.Restore(epoch, std::move(entries)).ok());
    capnp::MallocMessageBuilder header;
    auto req = cluster::InitBody<proto::coordinator::PlacementRequest>(header, proto::MessageKind::PLACEMENT,
                                                                           epoch);
    cluster::TableToProto(table, {{"host-0", "inproc://host-0"}, {"host-1", "inproc://host-1"}},
                              req.initUpdate());
    return CallAsync(header, {}, host);
  }

  // A made-up checkpointed state of `key` (weights, m, v), different per actor and per `salt`.
  static std::string StateOf(const cluster::ActorKey& key, int salt) {
    const auto infos = gpu::ParamInfos(SmallConfig());
    const int64_t n = key.dense ? infos[cluster::DenseShardParams(infos)[key.shard]].numel : 8 * 16 * 2 + 16 + 8;
    std::vector<float> values(static_cast<size_t>(3 * n));
    for (int64_t i = 0; i < n; ++i) {
      const float x = static_cast<float>((i * 37 + key.layer * 11 + key.expert * 5 + key.shard * 3 + salt) % 101);
      values[i] = 0.002f * x - 0.1f;            // weights
      values[n + i] = 0.0001f * x;              // m
      values[2 * n + i] = 0.00001f * (x + 1);   // v
    }
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }

  // Sends `state` as a checkpoint restore of `key` at `version`, in two chunks.
  absl::Status Restore(const cluster::ActorKey& key, uint64_t version, const std::string& state, uint64_t epoch,
                       const std::string& host = "host-0") {
    const size_t half = state.size() / 8 * 4;
    for (uint32_t index = 0; index < 2; ++index) {
      capnp::MallocMessageBuilder header;
      auto req = cluster::InitBody<proto::expert::StateStreamRequest>(header, proto::MessageKind::STATE_STREAM,
                                                                          epoch);
      req.setPurpose(proto::expert::StatePurpose::CHECKPOINT);
      key.ToProto(req.initActor());
      req.setCheckpointId(1);
      auto in = req.initChunkIn();
      in.setVersion(version);
      in.setIndex(index);
      in.setCount(2);
      in.setOffset(index == 0 ? 0 : half);
      in.setTotalBytes(state.size());
      in.setChecksum(ChecksumOf(state));
      const absl::string_view bytes = index == 0 ? absl::string_view(state).substr(0, half)
                                                 : absl::string_view(state).substr(half);
      auto frames = cluster::AttachState(header, bytes);
      auto reply = client_->Call({host}, header, std::move(frames), absl::Now() + absl::Seconds(10));
      if (!reply.ok()) return reply.status();
    }
    return absl::OkStatus();
  }

  // Restores every actor host-0 holds in the static placement at `version`.
  void RestoreAll(uint64_t version, int salt) {
    for (const auto& [key, hosts] : StaticTable()) {
      if (hosts[0] != "host-0") continue;
      ASSERT_TRUE(Restore(key, version, StateOf(key, salt), 0).ok()) << key.ToString();
    }
  }

  absl::StatusOr<std::vector<float>> PullExpert(uint32_t layer, uint32_t expert, uint64_t version = 0) {
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::PARAM_PULL);
    auto body = env.initBody().initAs<proto::parameter::PullRequest>();
    body.setTarget(proto::parameter::PullTarget::EXPERT);
    body.setExpertLayer(layer);
    body.setExpertIndex(expert);
    body.setVersion(version);
    auto reply = client_->Call({"host-0"}, header, {}, absl::Now() + absl::Seconds(10));
    if (!reply.ok()) return reply.status();
    std::vector<float> values(reply->envelope().getTensors()[0].getShape()[0]);
    if (absl::Status s = gpu::DecodeFloats(reply->data(0), proto::DType::F32, static_cast<int64_t>(values.size()),
                                           values.data());
        !s.ok()) {
      return s;
    }
    return values;
  }

  std::shared_ptr<Pending> ForwardAsync(const BucketSpec& b) {
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_FORWARD);
    auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
    auto bucket = body.initBucket();
    bucket.setStep(b.step);
    bucket.setMicroBatch(b.micro_batch);
    bucket.setLayer(b.layer);
    bucket.setExpert(b.expert);
    body.setTokenCount(b.rows);
    body.setDModel(b.d_model);
    body.setVersion(b.version);
    body.setTraining(b.training);
    transport::SetTensor(env.initTensors(1)[0], "activations", proto::TensorRole::ACTIVATIONS, proto::DType::F32,
                         {b.rows, b.d_model});
    const std::vector<float> x = Input(b);
    return CallAsync(header, {gpu::EncodeFloats(x.data(), x.size(), proto::DType::F32)});
  }
  std::shared_ptr<Pending> GatherAsync(uint64_t step) {
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::STEP_COMMIT);
    auto body = env.initBody().initAs<proto::expert::StepCommitRequest>();
    body.setStep(step);
    body.setPhase(proto::expert::StepPhase::GATHER_NORMS);
    body.setTotalMicroBatches(kM);
    return CallAsync(header);
  }

  std::vector<uint64_t> Checksums() {
    auto status = steps_->Status(0);
    EXPECT_TRUE(status.ok()) << status.status();
    std::vector<uint64_t> sums;
    for (const auto& a : status->actors) sums.push_back(a.checksum);
    return sums;
  }

  std::unique_ptr<transport::InProcNetwork> net_;
  metrics::Registry registry_;
  std::unique_ptr<gpu::Backend> backend_;
  HostConfig config_;
  std::unique_ptr<HostService> service_, service1_;  // host-0, and host-1 once started
  std::unique_ptr<transport::RpcNode> server_, server1_, client_;
  std::unique_ptr<trainer::StepClient> steps_;
};

TEST_F(HostServiceTest, OwnsTheStaticPlacementShare) {
  // 2 Switch layers x 4 experts over 2 hosts: global indices 0, 2, 4, 6 live here.
  EXPECT_EQ(service_->num_experts(), 4u);
  EXPECT_GT(service_->num_shards(), 0u);
}

TEST_F(HostServiceTest, ForwardEqualsTheInProcessExpertUnit) {
  BucketSpec b;
  b.layer = 1;
  b.expert = 2;  // global index 4 + 2 = 6: host 0
  auto reply = Forward(b);
  ASSERT_TRUE(reply.ok()) << reply.status();
  std::vector<float> got(b.rows * b.d_model);
  ASSERT_TRUE(gpu::DecodeFloats(reply->data(0), proto::DType::F32, got.size(), got.data()).ok());

  auto model = *gpu::Model::Create(SmallConfig(), backend_.get(), 7);
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

TEST_F(HostServiceTest, BadDensePushesGetErrorsAndChangeNothing) {
  const std::vector<uint64_t> before = Checksums();
  auto push = [&](uint32_t shard, uint64_t elements, uint64_t frame_elements, uint32_t micro_batch) {
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::PARAM_PUSH);
    auto body = env.initBody().initAs<proto::parameter::PushRequest>();
    body.setShard(shard);
    body.setStep(1);
    body.initMicroBatches(1).set(0, micro_batch);
    body.setElementCount(elements);
    transport::SetTensor(env.initTensors(1)[0], "g", proto::TensorRole::GRADIENTS, proto::DType::F32,
                         {frame_elements});
    std::vector<float> g(frame_elements, 1.0f);
    return client_->Call({"host-0"}, header, {gpu::EncodeFloats(g.data(), g.size(), proto::DType::F32)},
                         absl::Now() + absl::Seconds(10));
  };
  // Shard 0 is wte (256 x 8 = 2048 floats) and lives on host 0; shard 1 (wpe) on host 1.
  EXPECT_TRUE(push(0, 2048, 2048, 0).ok());
  EXPECT_EQ(push(0, 2048, 2048, 0).status().code(), absl::StatusCode::kAlreadyExists);  // a second contribution
  EXPECT_EQ(push(0, 2047, 2047, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(push(0, 2048, 2000, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(push(0, 2048, 2048, kM).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(push(1, 4 * 8, 4 * 8, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(push(999, 1, 1, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Checksums(), before);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  uint32_t contributions = 0;
  for (const auto& a : status->actors) contributions += a.contributions;
  EXPECT_EQ(contributions, 1u);
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

TEST_F(HostServiceTest, AnActorPlacedAtRuntimeWaitsForItsRestoreAndARemovedOneIsGone) {
  // A step-2 forward parked on expert (0, 2), which the table moves away.
  BucketSpec parked;
  parked.layer = 0;
  parked.expert = 2;
  parked.step = 2;
  parked.version = 1;
  std::shared_ptr<Pending> waiting = ForwardAsync(parked);
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(waiting->Done());

  // Epoch 1: expert (0, 1) joins host-0 (it was host-1's), expert (0, 2) leaves it.
  const cluster::ActorKey joined = cluster::ActorKey::Expert(0, 1), left = cluster::ActorKey::Expert(0, 2);
  ASSERT_TRUE(SendPlacement(1, StaticTable({joined, left})).ok());
  EXPECT_EQ(service_->placement_epoch(), 1u);
  EXPECT_EQ(service_->num_experts(), 4u);
  EXPECT_EQ(service_->num_awaiting_restore(), 1u);
  EXPECT_EQ(waiting->Wait().code(), absl::StatusCode::kNotFound) << waiting->Wait();

  BucketSpec to_left = parked;
  to_left.step = 1;
  to_left.version = 0;
  EXPECT_EQ(Forward(to_left).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(PullExpert(0, 2).status().code(), absl::StatusCode::kNotFound);

  const std::vector<uint64_t> before = Checksums();
  BucketSpec to_joined = to_left;
  to_joined.expert = 1;
  auto refused = Forward(to_joined);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("is being restored"), std::string::npos) << refused.status();
  EXPECT_EQ(Backward(to_joined).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PullExpert(0, 1).status().code(), absl::StatusCode::kUnavailable);
  std::vector<cluster::MicroBatchStatsValue> stats(kM);
  for (int m = 0; m < kM; ++m) stats[m].micro_batch = static_cast<uint32_t>(m);
  EXPECT_EQ(steps_->Commit(1, stats).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Checksums(), before);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->version, 0u);
  for (const auto& a : status->actors) EXPECT_EQ(a.contributions, 0u);

  // The restore lands (the coordinator's RestoreCheckpoint at step 0): the actor serves its weights.
  const std::string state = StateOf(joined, 1);
  ASSERT_TRUE(Restore(joined, 0, state, 1).ok());
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);
  auto weights = PullExpert(0, 1);
  ASSERT_TRUE(weights.ok()) << weights.status();
  ASSERT_EQ(weights->size() * sizeof(float) * 3, state.size());
  EXPECT_EQ(0, std::memcmp(weights->data(), state.data(), weights->size() * sizeof(float)));
  auto forward = Forward(to_joined);
  ASSERT_TRUE(forward.ok()) << forward.status();
  ASSERT_TRUE(Backward(to_joined).ok());
  CompleteStep(1);
  auto applied = steps_->Status(0);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->version, 1u);
  for (const auto& a : applied->actors) EXPECT_EQ(a.version, 1u);
}

TEST_F(HostServiceTest, ARestoreSentRightBehindItsPlacementFindsTheActor) {
  // The coordinator sends the table and then the restore chunks without waiting in between.
  const cluster::ActorKey joined = cluster::ActorKey::Dense(1);  // host-1's shard
  std::shared_ptr<Pending> placed = SendPlacementAsync(4, StaticTable({joined}));
  const std::string state = StateOf(joined, 2);
  const absl::Status restored = Restore(joined, 0, state, 4);
  EXPECT_TRUE(restored.ok()) << restored;
  ASSERT_TRUE(placed->Wait().ok());
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);
  EXPECT_EQ(service_->num_shards(), (NumShards() + 1) / 2 + 1);
}

TEST_F(HostServiceTest, ARestoreInTheMiddleOfAStepAbortsItsWaitersAndTheReplayMatchesAFreshHost) {
  BucketSpec b;  // expert (0, 0)
  ASSERT_TRUE(Forward(b).ok());
  ASSERT_TRUE(Backward(b).ok());
  CompleteStep(1);

  // Step 2 half done: micro-batch 0's contribution kept, micro-batch 1 ran forward
  // only, micro-batch 0 committed, the leader's gather waits for micro-batch 1, and
  // a step-3 forward waits for version 2.
  BucketSpec mb0 = b, mb1 = b;
  mb0.step = mb1.step = 2;
  mb0.version = mb1.version = 1;
  mb1.micro_batch = 1;
  ASSERT_TRUE(Forward(mb0).ok());
  ASSERT_TRUE(Backward(mb0).ok());
  ASSERT_TRUE(Forward(mb1).ok());
  cluster::MicroBatchStatsValue first;
  first.micro_batch = 0;
  ASSERT_TRUE(steps_->Commit(2, {first}).ok());
  std::shared_ptr<Pending> gather = GatherAsync(2);
  BucketSpec ahead = b;
  ahead.step = 3;
  ahead.version = 2;
  std::shared_ptr<Pending> forward = ForwardAsync(ahead);
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(gather->Done());
  ASSERT_FALSE(forward->Done());

  // Recovery rolls the cluster back to step 1.
  RestoreAll(1, 5);
  for (auto* pending : {gather.get(), forward.get()}) {
    const absl::Status s = pending->Wait();
    EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
    EXPECT_NE(s.message().find("rolled back to step 1"), std::string::npos) << s;
  }
  // Micro-batch 1's forward was dropped: its backward (sent before the trainer saw the
  // rollback) is aborted too, so the trainer waits for the rollback order.
  const absl::Status late_backward = Backward(mb1).status();
  EXPECT_EQ(late_backward.code(), absl::StatusCode::kAborted) << late_backward;
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->version, 1u);
  EXPECT_TRUE(status->missing_micro_batches.empty()) << "the step-2 commit was dropped";
  for (const auto& a : status->actors) {
    EXPECT_EQ(a.version, 1u);
    EXPECT_EQ(a.contributions, 0u);
  }

  // The replay of step 2: both micro-batches, commit, gather, apply.
  auto replay = [&] {
    for (BucketSpec* m : {&mb0, &mb1}) {
      ASSERT_TRUE(Forward(*m).ok());
      ASSERT_TRUE(Backward(*m).ok());
    }
    CompleteStep(2);
  };
  replay();
  const std::vector<uint64_t> recovered = Checksums();

  TearDown();
  Start(absl::Seconds(30));  // a fresh host, restored at step 1 from the same checkpoint
  RestoreAll(1, 5);
  replay();
  EXPECT_EQ(Checksums(), recovered);
}

TEST_F(HostServiceTest, RequestsWithAStalePlacementEpochAreAbortedAndChangeNothing) {
  ASSERT_TRUE(SendPlacement(3, StaticTable()).ok());
  EXPECT_EQ(service_->placement_epoch(), 3u);
  EXPECT_EQ(service_->num_awaiting_restore(), 0u);
  auto older = SendPlacement(2, StaticTable());
  EXPECT_EQ(older.code(), absl::StatusCode::kAborted) << older;
  EXPECT_EQ(service_->placement_epoch(), 3u);

  const std::vector<uint64_t> before = Checksums();
  BucketSpec stale;
  stale.epoch = 2;
  auto forward = Forward(stale);
  EXPECT_EQ(forward.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(forward.status().message().find("stale placement epoch 2; current is 3"), std::string::npos)
      << forward.status();
  EXPECT_EQ(cluster::CurrentEpochFrom(forward.status()), 3u);
  BucketSpec current = stale;
  current.epoch = 3;
  ASSERT_TRUE(Forward(current).ok());  // a forward keeps nothing but the saved activations
  EXPECT_EQ(Backward(stale).status().code(), absl::StatusCode::kAborted);

  capnp::MallocMessageBuilder push_header;
  {
    auto env = cluster::InitEnvelope(push_header, proto::MessageKind::PARAM_PUSH);
    env.setPlacementEpoch(1);
    auto body = env.initBody().initAs<proto::parameter::PushRequest>();
    body.setShard(0);
    body.setStep(1);
    body.initMicroBatches(1).set(0, 0);
    body.setElementCount(2048);
    transport::SetTensor(env.initTensors(1)[0], "g", proto::TensorRole::GRADIENTS, proto::DType::F32, {2048});
  }
  std::vector<float> g(2048, 1.0f);
  EXPECT_EQ(client_->Call({"host-0"}, push_header, {gpu::EncodeFloats(g.data(), g.size(), proto::DType::F32)},
                          absl::Now() + absl::Seconds(10))
                .status()
                .code(),
            absl::StatusCode::kAborted);

  capnp::MallocMessageBuilder commit_header;
  {
    auto env = cluster::InitEnvelope(commit_header, proto::MessageKind::STEP_COMMIT);
    env.setPlacementEpoch(2);
    auto body = env.initBody().initAs<proto::expert::StepCommitRequest>();
    body.setStep(1);
    body.setPhase(proto::expert::StepPhase::COMMIT);
    body.setTotalMicroBatches(kM);
    body.initMicroBatches(2).set(1, 1);
  }
  EXPECT_EQ(client_->Call({"host-0"}, commit_header, {}, absl::Now() + absl::Seconds(10)).status().code(),
            absl::StatusCode::kAborted);

  EXPECT_EQ(Checksums(), before);
  auto status = steps_->Status(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->version, 0u);
  for (const auto& a : status->actors) EXPECT_EQ(a.contributions, 0u);
  EXPECT_EQ(status->missing_micro_batches.size(), static_cast<size_t>(kM));  // the stale commit counted nothing
  // Epoch 0 (no coordinator) is not checked.
  BucketSpec unchecked = current;
  unchecked.epoch = 0;
  unchecked.micro_batch = 1;
  EXPECT_TRUE(Forward(unchecked).ok());
}


// Replication: expert (0, 0) on host-0 only, or on host-0 and host-1 (each serving
// every other micro-batch), restored everywhere from the same state at step 0.
class ReplicaExchangeTest : public HostServiceTest {
 protected:
  const cluster::ActorKey kExpert = cluster::ActorKey::Expert(0, 0);

  void SetUpPair(bool replicated) {
    Start(absl::Seconds(30));
    ASSERT_NO_FATAL_FAILURE(StartSecondHost());
    auto table = StaticTable();
    if (replicated) table[kExpert] = {"host-0", "host-1"};
    for (const char* host : {"host-0", "host-1"}) ASSERT_TRUE(SendPlacement(1, table, host).ok()) << host;
    for (const std::string& host : table[kExpert]) {
      ASSERT_TRUE(Restore(kExpert, 0, StateOf(kExpert, 3), 1, host).ok()) << host;
    }
    pair_steps_ = std::make_unique<trainer::StepClient>(
        client_.get(), std::vector<std::string>{"host-0", "host-1"}, kM, "trainer-0", absl::Seconds(10));
    replicated_ = replicated;
  }

  BucketSpec Bucket(uint64_t step, uint32_t m) const {
    BucketSpec b;
    b.step = step;
    b.version = step - 1;
    b.micro_batch = m;
    b.rows = 2 + m;  // a different contribution per micro-batch
    b.epoch = 1;
    b.host = replicated_ && m % 2 == 1 ? "host-1" : "host-0";
    return b;
  }

  void TrainStep(uint64_t step) {
    for (uint32_t m = 0; m < kM; ++m) {
      ASSERT_TRUE(Forward(Bucket(step, m)).ok());
      ASSERT_TRUE(Backward(Bucket(step, m)).ok());
    }
    ASSERT_NO_FATAL_FAILURE(CloseStep(step));
  }

  // Commits every micro-batch of `step` on both hosts, gathers the norms and applies.
  void CloseStep(uint64_t step) {
    std::vector<cluster::MicroBatchStatsValue> stats(kM);
    for (int m = 0; m < kM; ++m) stats[m].micro_batch = static_cast<uint32_t>(m);
    ASSERT_TRUE(pair_steps_->Commit(step, stats).ok());
    auto gathered = pair_steps_->GatherNorms(step);
    ASSERT_TRUE(gathered.ok()) << gathered.status();
    ASSERT_TRUE(pair_steps_->Apply(step, 1.0f, 0.01f).ok());
  }

  // The expert's checksum (weights and moments) on host `h`; 0 when it is not there.
  uint64_t ExpertChecksum(int h) {
    auto status = pair_steps_->Status(h);
    EXPECT_TRUE(status.ok()) << status.status();
    if (!status.ok()) return 0;
    for (const auto& a : status->actors) {
      if (a.is_expert && a.layer == 0 && a.expert == 0) return a.checksum;
    }
    return 0;
  }

  std::unique_ptr<trainer::StepClient> pair_steps_;
  bool replicated_ = false;
};

TEST_F(ReplicaExchangeTest, ReplicasStayIdenticalAndEqualTheUnreplicatedExpert) {
  ASSERT_NO_FATAL_FAILURE(SetUpPair(/*replicated=*/false));
  for (uint64_t step = 1; step <= 2; ++step) ASSERT_NO_FATAL_FAILURE(TrainStep(step));
  const uint64_t alone = ExpertChecksum(0);
  ASSERT_NE(alone, 0u);
  EXPECT_EQ(ExpertChecksum(1), 0u);

  ASSERT_NO_FATAL_FAILURE(SetUpPair(/*replicated=*/true));
  EXPECT_NE(ExpertChecksum(0), alone);  // the run has not happened yet
  for (uint64_t step = 1; step <= 2; ++step) ASSERT_NO_FATAL_FAILURE(TrainStep(step));
  EXPECT_EQ(ExpertChecksum(0), alone);
  EXPECT_EQ(ExpertChecksum(1), alone);
}

TEST_F(ReplicaExchangeTest, BadReplicaGradientsGetErrorsAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(SetUpPair(/*replicated=*/true));
  ASSERT_NO_FATAL_FAILURE(TrainStep(1));
  // Step 2 half done on host-0: its own micro-batch 0 is in.
  ASSERT_TRUE(Forward(Bucket(2, 0)).ok());
  ASSERT_TRUE(Backward(Bucket(2, 0)).ok());
  const int64_t size = 8 * 16 * 2 + 16 + 8;
  struct Case {
    const char* what;
    cluster::ActorKey actor;
    uint64_t step;
    std::vector<uint32_t> micro_batches;
    std::string sender;
    int64_t elements;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"unknown sender", kExpert, 2, {1}, "host-7", size, absl::StatusCode::kInvalidArgument},
      {"wrong size", kExpert, 2, {1}, "host-1", size - 1, absl::StatusCode::kInvalidArgument},
      {"micro-batch out of range", kExpert, 2, {kM}, "host-1", size, absl::StatusCode::kInvalidArgument},
      {"step 0", kExpert, 0, {1}, "host-1", size, absl::StatusCode::kInvalidArgument},
      {"a closed step", kExpert, 1, {1}, "host-1", size, absl::StatusCode::kFailedPrecondition},
      {"an actor not held here", cluster::ActorKey::Expert(0, 1), 2, {1}, "host-1", size, absl::StatusCode::kNotFound},
      {"a micro-batch this replica served", kExpert, 2, {0, 1}, "host-1", size, absl::StatusCode::kAlreadyExists},
  };
  const uint64_t before = ExpertChecksum(0);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    capnp::MallocMessageBuilder header;
    auto env = cluster::InitEnvelope(header, proto::MessageKind::REPLICA_GRADIENTS);
    auto body = env.initBody().initAs<proto::expert::ReplicaGradientsRequest>();
    c.actor.ToProto(body.initActor());
    body.setStep(c.step);
    body.setSender(c.sender);
    auto mbs = body.initMicroBatches(static_cast<unsigned>(c.micro_batches.size()));
    auto tensors = env.initTensors(static_cast<unsigned>(c.micro_batches.size()));
    std::vector<transport::Frame> frames;
    const std::vector<float> grad(static_cast<size_t>(c.elements), 0.25f);
    for (unsigned i = 0; i < c.micro_batches.size(); ++i) {
      mbs.set(i, c.micro_batches[i]);
      transport::SetTensor(tensors[i], "gradient", proto::TensorRole::GRADIENTS, proto::DType::F32,
                           {static_cast<uint64_t>(c.elements)});
      frames.push_back(gpu::EncodeFloats(grad.data(), c.elements, proto::DType::F32));
    }
    auto reply = client_->Call({"host-0"}, header, std::move(frames), absl::Now() + absl::Seconds(10));
    EXPECT_EQ(reply.status().code(), c.code) << reply.status();
  }
  EXPECT_EQ(ExpertChecksum(0), before);
  // Nothing was taken in: the step still completes, and the replicas agree.
  ASSERT_TRUE(Forward(Bucket(2, 1)).ok());
  ASSERT_TRUE(Backward(Bucket(2, 1)).ok());
  ASSERT_NO_FATAL_FAILURE(CloseStep(2));
  EXPECT_EQ(ExpertChecksum(0), ExpertChecksum(1));
}

}  // namespace
}  // namespace sy::expert_host
