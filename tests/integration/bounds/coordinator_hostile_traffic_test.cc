// A real sy-coordinator, once with --insecure and once with cluster keys from `syctl
// keygen --cluster` (the traffic then comes from the accepted host-0), given over 256
// MiB of hostile traffic over loopback through a bare transport (so each request may
// name any sender): registrations of thousands of fresh nodes, registrations storing
// near-header-sized fields, checkpoint chunks for a checkpoint never begun, and frames
// far larger than any legitimate one. Its resident memory grows by at most 64 MB, it
// still answers a legitimate manifest query, and with --insecure a fresh node beyond
// --max_nodes is refused. The traffic is bounded in count and its wait by a deadline.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/cluster/cluster_keys.h"
#include "services/cluster/envelope.h"
#include "tests/integration/bounds/rss_probe.h"

namespace sy {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxGrowthKiB = 64 * 1024;
constexpr int kMaxNodes = 1024;
// The traffic: counts x sizes, about 380 MiB in all.
constexpr int kFreshNodes = 2 * kMaxNodes, kOutsizedRegistrations = 2048, kStrayChunks = 128, kOversized = 4;
constexpr size_t kOutsizedField = 60u << 10, kChunkBytes = 1u << 20, kOversizedBytes = 32u << 20;

class CoordinatorHostileTrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("sy-coord-hostile-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (pid_ > 0) testing::Terminate(pid_);
    fs::remove_all(dir_);
  }

  void StartCoordinator(const std::string& security_flag) {
    const std::string ready = dir_ + "/ready";
    pid_ = testing::SpawnUntilReady({SY_COORDINATOR_PATH, "--listen=tcp://127.0.0.1:0", "--ready_file=" + ready,
                                     "--db=" + dir_ + "/db", "--expected_hosts=2", "--metrics_port=-1",
                                     absl::StrCat("--max_nodes=", kMaxNodes), security_flag},
                                    ready, &endpoint_);
    ASSERT_GT(pid_, 0) << "sy-coordinator did not become ready";
  }

  std::unique_ptr<transport::ZmqTransport> Bare(const std::string& node_id, const transport::CurveKeys& curve) {
    transport::ZmqOptions zmq;
    zmq.node_id = node_id;
    zmq.curve = curve;
    auto t = transport::ZmqTransport::Create(zmq);
    EXPECT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE((*t)->Connect("coordinator", endpoint_).ok());
    return *std::move(t);
  }

  // A registration of trainer `id` whose device field has `device_bytes` bytes.
  static void Registration(capnp::MallocMessageBuilder& b, const std::string& id, size_t device_bytes) {
    auto req = cluster::InitBody<proto::coordinator::RegisterRequest>(b, proto::MessageKind::REGISTER);
    req.setNodeId(id);
    req.setRole(proto::coordinator::Role::TRAINER);
    req.setDevice(std::string(device_bytes, 'd'));
    req.setIncarnation(1);
    auto shape = req.initShape();
    shape.setNumSwitchLayers(1);
    shape.setNumExperts(8);
    shape.setNumDenseShards(2);
  }

  static std::vector<transport::Frame> StrayChunk(capnp::MallocMessageBuilder& b, uint32_t index) {
    auto chunk = cluster::InitBody<proto::checkpoint::ChunkRequest>(b, proto::MessageKind::CHECKPOINT_CHUNK);
    chunk.setCheckpointId(99);
    cluster::ActorKey::Expert(0, 0).ToProto(chunk.initActor());
    auto in = chunk.initChunk();
    in.setIndex(index);
    in.setCount(1u << 20);
    in.setOffset(uint64_t{index} * kChunkBytes);
    in.setTotalBytes(uint64_t{1} << 40);
    return cluster::AttachState(b, std::string(kChunkBytes, 'x'));
  }

  // Sends `b` as request `id` from `sender` (the envelope's sender); returns the bytes sent.
  static size_t Send(transport::Transport& t, capnp::MallocMessageBuilder& b, const std::string& sender,
                     uint64_t id, std::vector<transport::Frame> data = {}) {
    auto envelope = b.getRoot<proto::Envelope>();
    envelope.setSender(sender);
    envelope.setRequestId(id);
    envelope.setTtlMs(20000);
    transport::Message m({"coordinator"}, transport::EncodeHeader(b), std::move(data));
    const size_t bytes = m.ByteSize();
    EXPECT_TRUE(t.Send(std::move(m), absl::Now() + absl::Seconds(30)).ok());
    return bytes;
  }

  // Sends the hostile traffic as `sender` (a fresh name per registration when empty),
  // reading the replies as they come (a client that leaves them unread past their
  // deadline loses them), then until every request that is answered was (bounded by a
  // deadline). Returns the bytes sent; *capacity_refusals: registrations refused for --max_nodes.
  static size_t SendHostile(transport::Transport& t, const std::string& sender, int* capacity_refusals) {
    size_t bytes = 0;
    uint64_t id = 1;
    const uint64_t answerable = kFreshNodes + kOutsizedRegistrations + kStrayChunks;
    uint64_t answered = 0;
    auto read_replies = [&](absl::Time deadline) {
      while (answered < answerable) {
        absl::StatusOr<transport::Message> reply = t.Receive(deadline);
        if (!reply.ok()) return;
        auto decoded = transport::DecodedMessage::Decode(*std::move(reply), {});
        if (!decoded.ok() || decoded->envelope().getRequestId() > answerable) continue;
        ++answered;
        if (decoded->envelope().getStatus().getCode() == proto::ErrorCode::RESOURCE_EXHAUSTED) ++*capacity_refusals;
      }
    };
    auto name = [&](int i) { return sender.empty() ? absl::StrCat("trainer-", 1000 + i) : sender; };
    for (int i = 0; i < kFreshNodes; ++i) {
      capnp::MallocMessageBuilder b;
      Registration(b, name(i), 8);
      bytes += Send(t, b, name(i), id++);
      read_replies(absl::InfinitePast());
    }
    for (int i = 0; i < kOutsizedRegistrations; ++i) {
      capnp::MallocMessageBuilder b;
      Registration(b, name(kFreshNodes + i), kOutsizedField);
      bytes += Send(t, b, name(kFreshNodes + i), id++);
      read_replies(absl::InfinitePast());
    }
    for (uint32_t i = 0; i < kStrayChunks; ++i) {
      capnp::MallocMessageBuilder b;
      auto frames = StrayChunk(b, i);
      bytes += Send(t, b, sender.empty() ? "host-0" : sender, id++, std::move(frames));
      read_replies(absl::InfinitePast());
    }
    EXPECT_EQ(id - 1, answerable);
    read_replies(absl::Now() + absl::Seconds(120));
    EXPECT_EQ(answered, answerable) << "hostile requests unanswered";
    return bytes;
  }

  // Frames far over any legitimate size, from `t` (a frame over the limit may cost its
  // connection, so they have one of their own). Returns the bytes sent.
  static size_t SendOversized(transport::Transport& t, const std::string& sender) {
    size_t bytes = 0;
    for (int i = 0; i < kOversized; ++i) {
      capnp::MallocMessageBuilder b;
      cluster::InitBody<proto::coordinator::PlacementRequest>(b, proto::MessageKind::PLACEMENT).setGet();
      auto frames = cluster::AttachState(b, std::string(kOversizedBytes, 'z'));
      bytes += Send(t, b, sender, i + 1, std::move(frames));
    }
    return bytes;
  }

  // A host's query for the latest checkpoint's manifest (answered: there is none yet).
  static absl::Status Legitimate(transport::RpcNode& node) {
    capnp::MallocMessageBuilder b;
    cluster::InitBody<proto::checkpoint::ManifestRequest>(b, proto::MessageKind::CHECKPOINT_MANIFEST).setLatest();
    return node.Call({"coordinator"}, b, {}, absl::Now() + absl::Seconds(20)).status();
  }

  // Runs the whole check; the traffic from `sender` (empty: a fresh name per registration).
  void CheckBounded(const std::string& node_id, const std::string& sender, const transport::CurveKeys& curve,
                    int expected_capacity_refusals) {
    auto check = transport::RpcNode::Create(Bare(node_id + "@check", curve), {}, nullptr);
    ASSERT_TRUE(check.ok());
    const absl::Status warm = Legitimate(**check);
    ASSERT_TRUE(warm.ok()) << warm;
    testing::RssProbe probe(pid_);
    ASSERT_GT(probe.before_kib(), 0);
    int capacity_refusals = 0;
    size_t sent = 0;
    {
      auto oversized = Bare(node_id + "@oversized", curve);
      sent = SendOversized(*oversized, sender.empty() ? node_id : sender);
      auto hostile = Bare(node_id, curve);
      sent += SendHostile(*hostile, sender, &capacity_refusals);
    }
    auto after_node = transport::RpcNode::Create(Bare(node_id + "@after", curve), {}, nullptr);
    ASSERT_TRUE(after_node.ok());
    const absl::Status after = Legitimate(**after_node);
    const int64_t growth = probe.Stop();
    std::printf("hostile traffic from %s: %.2f MiB sent; coordinator RSS %lld KiB before, peak %lld KiB: growth "
                "%.1f MB\n",
                node_id.c_str(), static_cast<double>(sent) / (1 << 20), static_cast<long long>(probe.before_kib()),
                static_cast<long long>(probe.peak_kib()), growth / 1024.0);
    EXPECT_GE(sent, size_t{256} << 20);
    EXPECT_LE(growth, kMaxGrowthKiB);
    EXPECT_EQ(capacity_refusals, expected_capacity_refusals);
    EXPECT_TRUE(after.ok()) << after;
  }

  std::string dir_;
  pid_t pid_ = -1;
  std::string endpoint_;
};

TEST_F(CoordinatorHostileTrafficTest, AnInsecureCoordinatorStaysBoundedAndServes) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("--insecure"));
  CheckBounded("host-0", "", {}, kFreshNodes - kMaxNodes);
}

TEST_F(CoordinatorHostileTrafficTest, AKeyedCoordinatorStaysBoundedUnderAnAcceptedHost) {
  const std::string keys = dir_ + "/keys";
  const std::string keygen = std::string(SY_SYCTL_PATH) + " keygen --cluster=" + keys + " --hosts=1 --trainers=1";
  ASSERT_EQ(std::system((keygen + " >/dev/null 2>&1").c_str()), 0) << keygen;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("--keys=" + keys));
  absl::StatusOr<transport::CurveKeys> curve = cluster::LoadNodeCurve({keys, false}, "host-0");
  ASSERT_TRUE(curve.ok()) << curve.status();
  CheckBounded("host-0", "host-0", *curve, 0);  // its registrations of others are refused by role
}

}  // namespace
}  // namespace sy
