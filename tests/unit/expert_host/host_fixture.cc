// The HostService tests' fixture (see host_fixture.h).
#include "tests/unit/expert_host/host_fixture.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/base/fnv1a.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/faulty_transport.h"
#include "gpu/model/bucket_codec.h"
#include "gpu/model/params.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement.h"
#include "services/cluster/placement_codec.h"
#include "services/cluster/placement_table.h"
#include "services/cluster/step_wire.h"
#include "tests/support/inproc_node.h"

namespace sy::expert_host::testing {

absl::Status Pending::Wait() {
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&done));
  return status;
}

bool Pending::Done() {
  absl::MutexLock lock(&mu);
  return done;
}

void HostServiceTest::Start(absl::Duration step_timeout, double duplicate_rate, const gpu::ModelConfig& model,
                            const HostLimits& limits, double emulate_device_gflops) {
  steps_.reset();
  client_.reset();
  server_.reset();
  server1_.reset();
  service_.reset();
  service1_.reset();
  net_ = std::make_unique<transport::InProcNetwork>();
  backend_ = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
  HostConfig config;
  config.model = model;
  config.seed = 7;
  config.micro_batches = kM;
  config.max_bucket_rows = 8;
  config.host_index = 0;
  config.num_hosts = 2;
  config.step_timeout = step_timeout;
  config.limits = limits;
  config.emulate_device_gflops = emulate_device_gflops;
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

void HostServiceTest::StartHost(int index, std::unique_ptr<HostService>* service,
                                std::unique_ptr<transport::RpcNode>* server) {
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

void HostServiceTest::StartSecondHost() {
  ASSERT_NO_FATAL_FAILURE(StartHost(1, &service1_, &server1_));
  ASSERT_TRUE(client_->transport().Connect("host-1", "inproc://host-1").ok());
}

void HostServiceTest::TearDown() {
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

void SetBucket(const BucketSpec& b, proto::expert::BucketId::Builder bucket) {
  bucket.setStep(b.step);
  bucket.setMicroBatch(b.micro_batch);
  bucket.setLayer(b.layer);
  bucket.setExpert(b.expert);
}

std::vector<float> HostServiceTest::Input(const BucketSpec& b) const {
  std::vector<float> x(static_cast<size_t>(b.rows) * b.d_model);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  return x;
}

std::vector<transport::Frame> HostServiceTest::BuildForward(const BucketSpec& b,
                                                            capnp::MallocMessageBuilder& header) const {
  auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_FORWARD, b.epoch);
  auto body = env.initBody().initAs<proto::expert::ExpertForwardRequest>();
  SetBucket(b, body.initBucket());
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
  return {gpu::EncodeFloats(data.data(), static_cast<int64_t>(data.size()), proto::DType::F32)};
}

absl::StatusOr<transport::DecodedMessage> HostServiceTest::Forward(const BucketSpec& b) {
  capnp::MallocMessageBuilder header;
  std::vector<transport::Frame> frames = BuildForward(b, header);
  return client_->Call({b.host}, header, std::move(frames), absl::Now() + absl::Seconds(10));
}

std::shared_ptr<Pending> HostServiceTest::ForwardAsync(const BucketSpec& b) {
  capnp::MallocMessageBuilder header;
  std::vector<transport::Frame> frames = BuildForward(b, header);
  return CallAsync(header, std::move(frames), b.host);
}

absl::StatusOr<transport::DecodedMessage> HostServiceTest::Backward(const BucketSpec& b) {
  capnp::MallocMessageBuilder header;
  auto env = cluster::InitEnvelope(header, proto::MessageKind::EXPERT_BACKWARD, b.epoch);
  auto body = env.initBody().initAs<proto::expert::ExpertBackwardRequest>();
  SetBucket(b, body.initBucket());
  body.setTokenCount(b.rows);
  body.setDModel(b.d_model);
  body.setVersion(b.version);
  transport::SetTensor(env.initTensors(1)[0], "outputGrad", proto::TensorRole::OUTPUT_GRAD, proto::DType::F32,
                       {b.rows, b.d_model});
  const std::vector<float> g = Input(b);
  return client_->Call({b.host}, header,
                       {gpu::EncodeFloats(g.data(), static_cast<int64_t>(g.size()), proto::DType::F32)},
                       absl::Now() + absl::Seconds(10));
}

void HostServiceTest::CompleteStep(uint64_t step) {
  std::vector<cluster::MicroBatchStatsValue> stats(kM);
  for (int m = 0; m < kM; ++m) stats[m].micro_batch = static_cast<uint32_t>(m);
  ASSERT_TRUE(steps_->Commit(step, stats).ok());
  auto gathered = steps_->GatherNorms(step);
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  ASSERT_TRUE(steps_->Apply(step, 1.0f, 0.01f).ok());
}

std::shared_ptr<Pending> HostServiceTest::GatherAsync(uint64_t step) {
  capnp::MallocMessageBuilder header;
  auto gather = cluster::InitBody<proto::expert::StepRequest>(header, proto::MessageKind::STEP_COMMIT).initGatherNorms();
  gather.setStep(step);
  gather.setTotalMicroBatches(kM);
  return CallAsync(header);
}

std::map<cluster::ActorKey, std::vector<std::string>> HostServiceTest::StaticTable(
    const std::vector<cluster::ActorKey>& moved) const {
  cluster::ModelShape shape{2, 4, static_cast<uint32_t>(NumShards())};
  std::map<cluster::ActorKey, std::vector<std::string>> entries;
  for (const cluster::ActorKey& a : shape.Actors()) {
    size_t host = cluster::InitialHostIndex(a, shape, 2);
    if (std::find(moved.begin(), moved.end(), a) != moved.end()) host = 1 - host;
    entries[a] = {absl::StrCat("host-", host)};
  }
  return entries;
}

size_t HostServiceTest::NumShards() { return cluster::DenseShardParams(gpu::ParamInfos(SmallHostModel())).size(); }

absl::Status HostServiceTest::SendPlacement(uint64_t epoch,
                                            std::map<cluster::ActorKey, std::vector<std::string>> entries,
                                            const std::string& host, const std::vector<cluster::Move>& live,
                                            uint64_t last_source_step) {
  return SendPlacementAsync(epoch, std::move(entries), host, live, last_source_step)->Wait();
}

std::shared_ptr<Pending> HostServiceTest::CallAsync(capnp::MallocMessageBuilder& header,
                                                    std::vector<transport::Frame> data, const std::string& host) {
  auto pending = std::make_shared<Pending>();
  client_->CallAsync({host}, header, std::move(data), absl::Now() + absl::Seconds(20),
                     [pending](absl::StatusOr<transport::DecodedMessage> r) {
                       absl::MutexLock lock(&pending->mu);
                       pending->status = r.status();
                       pending->done = true;
                     });
  return pending;
}

absl::Status HostServiceTest::SendFirstPlacement(std::map<cluster::ActorKey, std::vector<std::string>> entries) {
  return SendPlacementAsync(1, std::move(entries), "host-0", {}, 0, /*initial=*/true)->Wait();
}

std::shared_ptr<Pending> HostServiceTest::SendPlacementAsync(
    uint64_t epoch, std::map<cluster::ActorKey, std::vector<std::string>> entries, const std::string& host,
    const std::vector<cluster::Move>& live, uint64_t last_source_step, bool initial) {
  cluster::PlacementTable table(cluster::ModelShape{2, 4, static_cast<uint32_t>(NumShards())});
  EXPECT_TRUE(table.Restore(epoch, std::move(entries)).ok());
  table.MarkLive(live, last_source_step);
  capnp::MallocMessageBuilder header;
  auto req = cluster::InitBody<proto::coordinator::PlacementRequest>(header, proto::MessageKind::PLACEMENT, epoch);
  cluster::TableToProto(table, {{"host-0", "inproc://host-0"}, {"host-1", "inproc://host-1"}}, req.initUpdate());
  req.setInitial(initial);
  return CallAsync(header, {}, host);
}

std::string HostServiceTest::StateOf(const cluster::ActorKey& key, int salt) {
  const auto infos = gpu::ParamInfos(SmallHostModel());
  const int64_t n = key.dense ? infos[cluster::DenseShardParams(infos)[key.shard]].numel : 8 * 16 * 2 + 16 + 8;
  std::vector<float> values(static_cast<size_t>(3 * n));
  for (int64_t i = 0; i < n; ++i) {
    const float x = static_cast<float>((i * 37 + key.switch_layer * 11 + key.expert * 5 + key.shard * 3 + salt) % 101);
    values[i] = 0.002f * x - 0.1f;           // weights
    values[n + i] = 0.0001f * x;             // m
    values[2 * n + i] = 0.00001f * (x + 1);  // v
  }
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

absl::Status HostServiceTest::Restore(const cluster::ActorKey& key, uint64_t version, const std::string& state,
                                      uint64_t epoch, const std::string& host) {
  const size_t half = state.size() / 8 * 4;
  for (uint32_t index = 0; index < 2; ++index) {
    capnp::MallocMessageBuilder header;
    auto req = cluster::InitBody<proto::expert::StateStreamRequest>(header, proto::MessageKind::STATE_STREAM, epoch);
    key.ToProto(req.initActor());
    req.setCheckpointId(1);
    auto in = req.initChunkIn();
    in.setVersion(version);
    in.setIndex(index);
    in.setCount(2);
    in.setOffset(index == 0 ? 0 : half);
    in.setTotalBytes(state.size());
    in.setChecksum(ChecksumOf(state));
    const absl::string_view bytes =
        index == 0 ? absl::string_view(state).substr(0, half) : absl::string_view(state).substr(half);
    auto frames = cluster::AttachState(header, bytes);
    auto reply = client_->Call({host}, header, std::move(frames), absl::Now() + absl::Seconds(10));
    if (!reply.ok()) return reply.status();
  }
  return absl::OkStatus();
}

void HostServiceTest::RestoreAll(uint64_t version, int salt) {
  for (const auto& [key, hosts] : StaticTable()) {
    if (hosts[0] != "host-0") continue;
    ASSERT_TRUE(Restore(key, version, StateOf(key, salt), 0).ok()) << key.ToString();
  }
}

absl::StatusOr<std::vector<float>> HostServiceTest::PullExpert(uint32_t layer, uint32_t expert, uint64_t version) {
  capnp::MallocMessageBuilder header;
  auto body = cluster::InitBody<proto::parameter::PullRequest>(header, proto::MessageKind::PARAM_PULL);
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

std::vector<uint64_t> HostServiceTest::Checksums() {
  auto status = steps_->Status(0);
  EXPECT_TRUE(status.ok()) << status.status();
  std::vector<uint64_t> sums;
  for (const auto& a : status->actors) sums.push_back(a.checksum);
  return sums;
}

}  // namespace sy::expert_host::testing
