// A real sy-expert-host process, once with --insecure and once with cluster keys from
// `syctl keygen --cluster` (the traffic then comes from the accepted trainer-0), given
// about 1 GiB of hostile traffic over loopback: full buckets for steps far ahead, a
// flood of requests that would park for the next version, restore chunks claiming a
// huge state, and frames far larger than any legitimate one. Its resident memory
// (sampled from /proc/PID/status while the traffic runs, and its peak VmHWM reset
// before) grows by at most 64 MB, and afterwards it still serves a legitimate forward.
// The traffic is bounded in count and by deadlines.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/message.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "gpu/model/bucket_codec.h"
#include "proto/expert.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/cluster_keys.h"
#include "services/cluster/envelope.h"
#include "tests/integration/bounds/rss_probe.h"

namespace sy {
namespace {

namespace fs = std::filesystem;

// sy-expert-host's default model: d_model 128, micro-batches of 8 x 128 tokens, model
// layer 1 a Switch layer of 8 experts.
constexpr uint32_t kDModel = 128, kRows = 1024, kSwitchModelLayer = 1;
constexpr int64_t kMaxGrowthKiB = 64 * 1024;
// The traffic: counts x frame sizes, about 1.1 GiB in all.
constexpr int kFutureSteps = 500, kParkingFlood = 500, kRestoreClaims = 64, kOversized = 8;
constexpr size_t kRestoreChunkBytes = 1 << 20, kOversizedBytes = 64u << 20;

class HostileTrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("sy-hostile-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (pid_ > 0) testing::Terminate(pid_);
    fs::remove_all(dir_);
  }

  void StartHost(const std::string& security_flag) {
    const std::string ready = dir_ + "/ready";
    std::vector<std::string> argv = {SY_EXPERT_HOST_PATH, "--listen=tcp://127.0.0.1:0", "--ready_file=" + ready,
                                     "--host_index=0",    "--num_hosts=1",                "--metrics_port=-1",
                                     "--threads=1",       security_flag};
    pid_ = testing::SpawnUntilReady(argv, ready, &endpoint_);
    ASSERT_GT(pid_, 0) << "sy-expert-host did not become ready";
  }

  std::unique_ptr<transport::RpcNode> Client(const std::string& node_id, const transport::CurveKeys& curve) {
    transport::ZmqOptions zmq;
    zmq.node_id = node_id;
    zmq.curve = curve;
    auto t = transport::ZmqTransport::Create(zmq);
    EXPECT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE((*t)->Connect("host-0", endpoint_).ok());
    transport::RpcOptions options;
    options.max_attempts = 1;  // hostile requests are never re-sent
    return *transport::RpcNode::Create(*std::move(t), options, nullptr);
  }

  // A forward of `rows` rows of 0.5 (evaluation unless `step` > 0) whose tensor frame has
  // `frame_bytes` bytes (the shape's, unless larger).
  static std::vector<transport::Frame> Forward(capnp::MallocMessageBuilder& header, uint64_t step,
                                               uint64_t version, uint32_t rows, size_t frame_bytes = 0) {
    auto body = cluster::InitBody<proto::expert::ExpertForwardRequest>(header, proto::MessageKind::EXPERT_FORWARD);
    auto bucket = body.initBucket();
    bucket.setStep(step);
    bucket.setLayer(kSwitchModelLayer);
    body.setTraining(step > 0);
    body.setVersion(version);
    body.setTokenCount(rows);
    body.setDModel(kDModel);
    transport::SetTensor(header.getRoot<proto::Envelope>().initTensors(1)[0], "activations",
                         proto::TensorRole::ACTIVATIONS, proto::DType::F32, {rows, kDModel});
    std::vector<float> values(std::max<size_t>(frame_bytes / sizeof(float), size_t{rows} * kDModel), 0.5f);
    return {gpu::EncodeFloats(values.data(), static_cast<int64_t>(values.size()), proto::DType::F32)};
  }

  static std::vector<transport::Frame> RestoreClaim(capnp::MallocMessageBuilder& header, uint32_t index) {
    auto req = cluster::InitBody<proto::expert::StateStreamRequest>(header, proto::MessageKind::STATE_STREAM);
    cluster::ActorKey::Expert(0, 0).ToProto(req.initActor());
    req.setCheckpointId(1);
    auto in = req.initChunkIn();
    in.setIndex(index);
    in.setCount(1u << 20);
    in.setOffset(uint64_t{index} * kRestoreChunkBytes);
    in.setTotalBytes(uint64_t{1} << 40);
    const std::string bytes(kRestoreChunkBytes, 'x');
    return cluster::AttachState(header, bytes);
  }

  static absl::Status Legitimate(transport::RpcNode& node) {
    capnp::MallocMessageBuilder header;
    auto frames = Forward(header, 0, 0, 16);
    auto reply = node.Call({"host-0"}, header, std::move(frames), absl::Now() + absl::Seconds(20));
    if (!reply.ok()) return reply.status();
    return reply->message().data.size() == 1 && reply->data(0).size() == 16u * kDModel * sizeof(float)
               ? absl::OkStatus()
               : absl::InternalError("the forward's reply has no outputs of 16 x d_model");
  }

  // Sends the hostile traffic through `node` and waits (bounded) for every answer or
  // deadline. Returns the bytes sent.
  static size_t SendHostile(transport::RpcNode& node) {
    absl::Mutex mu;
    int left = 0;
    size_t bytes = 0;
    auto send = [&](capnp::MallocMessageBuilder& header, std::vector<transport::Frame> frames, absl::Duration wait) {
      for (const auto& f : frames) bytes += f.size();
      {
        absl::MutexLock lock(&mu);
        ++left;
      }
      node.CallAsync({"host-0"}, header, std::move(frames), absl::Now() + wait, [&](auto) {
        absl::MutexLock lock(&mu);
        --left;
      });
    };
    for (int i = 0; i < kFutureSteps; ++i) {
      capnp::MallocMessageBuilder header;
      send(header, Forward(header, 1000 + i, 999 + i, kRows), absl::Seconds(20));
    }
    for (int i = 0; i < kParkingFlood; ++i) {
      capnp::MallocMessageBuilder header;
      send(header, Forward(header, 0, 1, kRows), absl::Seconds(3));  // parks for version 1, never reached
    }
    for (uint32_t i = 0; i < kRestoreClaims; ++i) {
      capnp::MallocMessageBuilder header;
      send(header, RestoreClaim(header, i), absl::Seconds(20));
    }
    for (int i = 0; i < kOversized; ++i) {
      capnp::MallocMessageBuilder header;
      send(header, Forward(header, 0, 0, kRows, kOversizedBytes), absl::Seconds(3));
    }
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(+[](int* n) { return *n == 0; }, &left), absl::Seconds(120));
    EXPECT_EQ(left, 0) << "hostile requests still unanswered past their deadlines";
    return bytes;
  }

  // Runs the whole check against the started host, the traffic from `node_id`.
  void CheckBounded(const std::string& node_id, const transport::CurveKeys& curve) {
    auto check = Client(node_id + "@check", curve);
    ASSERT_TRUE(Legitimate(*check).ok());  // warm: the backend and the actor have run once
    testing::RssProbe probe(pid_);
    ASSERT_GT(probe.before_kib(), 0);
    size_t sent = 0;
    {
      auto hostile = Client(node_id, curve);
      sent = SendHostile(*hostile);
    }
    absl::Status after = Legitimate(*Client(node_id + "@after", curve));
    const int64_t growth = probe.Stop();
    std::printf("hostile traffic from %s: %.2f GiB sent; host RSS %lld KiB before, peak %lld KiB: growth %.1f MB\n",
                node_id.c_str(), static_cast<double>(sent) / (1 << 30), static_cast<long long>(probe.before_kib()),
                static_cast<long long>(probe.peak_kib()), growth / 1024.0);
    EXPECT_GE(sent, size_t{1} << 30);
    EXPECT_LE(growth, kMaxGrowthKiB);
    EXPECT_TRUE(after.ok()) << after;
  }

  std::string dir_;
  pid_t pid_ = -1;
  std::string endpoint_;
};

TEST_F(HostileTrafficTest, AnInsecureHostStaysBoundedAndServes) {
  ASSERT_NO_FATAL_FAILURE(StartHost("--insecure"));
  CheckBounded("trainer-0", {});
}

TEST_F(HostileTrafficTest, AKeyedHostStaysBoundedUnderAnAcceptedTrainer) {
  const std::string keys = dir_ + "/keys";
  const std::string keygen = std::string(SY_SYCTL_PATH) + " keygen --cluster=" + keys + " --hosts=1 --trainers=1";
  ASSERT_EQ(std::system((keygen + " >/dev/null 2>&1").c_str()), 0) << keygen;
  ASSERT_NO_FATAL_FAILURE(StartHost("--keys=" + keys));
  absl::StatusOr<transport::CurveKeys> curve = cluster::LoadNodeCurve({keys, false}, "trainer-0");
  ASSERT_TRUE(curve.ok()) << curve.status();
  CheckBounded("trainer-0", *curve);
}

}  // namespace
}  // namespace sy
