// Admin replies that grow with the run or the cluster decode on the client at any size.
// A coordinator with 1,000 experts, 500 checkpoints in its catalog and 10,000 steps of
// host load series answers every listing query of the admin API; its replies are far
// past a header's 64 KiB, so they travel in a data frame (services/coordinator/
// admin_reply.h), and syctl's AdminClient (default limits) and syctl itself (--json)
// read them whole. Also: an inFrame reply without its frame, or with a bad one, is refused.
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/base/fnv1a.h"
#include "proto/admin.capnp.h"
#include "services/cluster/admin_reply.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/coordinator_service.h"
#include "services/syctl/admin_client.h"
#include "services/syctl/command_line.h"
#include "services/syctl/syctl.h"
#include "tests/unit/coordinator/fake_node.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using cluster::ActorKey;
using cluster::AdminReplyMessage;
using cluster::kAdminReplyFrame;
using proto::admin::AdminReply;
using proto::admin::AdminRequest;
using testing::FakeHost;
using testing::FakeTrainer;
using testing::WaitFor;
using ::testing::HasSubstr;

constexpr uint32_t kExperts = 1000;
const cluster::ModelShape kShape{1, kExperts, 2};  // of the fake hosts' model
constexpr uint64_t kCheckpoints = 500;
constexpr uint64_t kSteps = 10000;
constexpr uint64_t kActorsPerCheckpoint = 8;

// Occurrences of `needle` in `text`.
size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

class AdminScaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = (fs::temp_directory_path() / ("sy_admin_scale_" + std::to_string(::getpid()))).string();
    fs::remove_all(db_);
    options_.db_path = db_;
    options_.expected_hosts = 2;
    options_.retain = static_cast<int>(kCheckpoints);
    options_.auto_rebalance = false;
    options_.heartbeat_timeout = absl::Minutes(10);  // the fake hosts do not heartbeat
    options_.call_timeout = absl::Seconds(5);
  }
  void TearDown() override {
    hosts_.clear();
    service_.reset();
    fs::remove_all(db_);
  }

  // Commits kCheckpoints checkpoints of kActorsPerCheckpoint experts each into the database.
  void FillCatalog() {
    CheckpointStoreOptions store_options;
    store_options.retain = options_.retain;
    auto store = CheckpointStore::Open(db_, store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::string state(16, 'w');
    for (uint64_t id = 1; id <= kCheckpoints; ++id) {
      CheckpointInfo info{id, id * 20, 1700000000000 + static_cast<int64_t>(id), 1, 0, 0, {}};
      for (uint32_t e = 0; e < kActorsPerCheckpoint; ++e) {
        const cluster::ActorKey actor = cluster::ActorKey::Expert(0, e);
        ASSERT_TRUE((*store)->PutChunk(id, actor, 0, state).ok());
        info.actors.push_back({actor, info.step, state.size(), 1, ChecksumOf(state)});
      }
      ASSERT_TRUE((*store)->Commit(info).ok()) << id;
    }
  }

  absl::StatusOr<cluster::AdminReplyMessage> Admin(const std::function<void(AdminRequest::Builder)>& fill) {
    return admin_->Call(fill, absl::Seconds(60));
  }

  std::string Syctl(const std::vector<std::string>& command, int* code) {
    std::vector<std::string> args = {"--coordinator=" + service_->endpoint(), "--json", "--timeout_ms=60000"};
    args.insert(args.end(), command.begin(), command.end());
    std::ostringstream out, err;
    *code = syctl::RunSyctl(args, out, err);
    EXPECT_EQ(err.str(), "");
    return out.str();
  }

  std::string db_;
  CoordinatorOptions options_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<syctl::AdminClient> admin_;
  std::vector<std::unique_ptr<FakeHost>> hosts_;
};

TEST_F(AdminScaleTest, EveryListingOfAThousandExpertsFiveHundredCheckpointsAndTenThousandStepsDecodes) {
  ASSERT_NO_FATAL_FAILURE(FillCatalog());
  auto service = CoordinatorService::Start(options_);
  ASSERT_TRUE(service.ok()) << service.status();
  service_ = *std::move(service);
  auto client = syctl::AdminClient::Connect(service_->endpoint());
  ASSERT_TRUE(client.ok()) << client.status();
  admin_ = *std::move(client);

  // The placement messages carry the whole table (about 100 bytes per actor): they are
  // not admin replies, so the fake hosts here accept headers up to 1 MiB.
  transport::EnvelopeLimits host_limits;
  host_limits.max_header_bytes = 1u << 20;
  for (const char* id : {"host-0", "host-1"}) {
    auto host = FakeHost::Start(id, service_->endpoint(), 1, kShape, host_limits);
    ASSERT_TRUE(host.ok()) << host.status();
    ASSERT_TRUE((*host)->Register().ok());
    hosts_.push_back(*std::move(host));
  }
  ASSERT_TRUE(WaitFor([&] {
    auto status = Admin([](AdminRequest::Builder r) { r.setStatus(); });
    return status.ok() && status->reply().getStatus().getPlacementReady();
  }));
  // One trainer's load reports for kSteps steps (the reports need no registration).
  auto trainer = FakeTrainer::Start("trainer-0", service_->endpoint());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  for (uint64_t step = 1; step <= kSteps; ++step) {
    ASSERT_TRUE((*trainer)
                    ->ReportLoad(step, {{cluster::ActorKey::Expert(0, 0), step, 0}, {cluster::ActorKey::Expert(0, 1), 2 * step, 0},
                                        {cluster::ActorKey::Expert(0, 2), 3, 1}, {cluster::ActorKey::Expert(0, 3), 4, 0}})
                    .ok())
        << step;
  }

  // Through the AdminClient, as sy-local asks at the end of a run.
  auto series = Admin([](AdminRequest::Builder r) { r.setHostLoadSeries(); });
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->reply().which(), AdminReply::HOST_LOAD_SERIES);
  auto steps = series->reply().getHostLoadSeries();
  ASSERT_EQ(steps.size(), kSteps);
  for (uint64_t i = 0; i < kSteps; ++i) {
    ASSERT_EQ(steps[i].getStep(), i + 1);
    ASSERT_EQ(steps[i].getHosts().size(), 2u);
    double tokens = 0;
    for (double t : steps[i].getTokens()) tokens += t;
    ASSERT_EQ(tokens, static_cast<double>(3 * (i + 1) + 7)) << "step " << i + 1;
  }
  auto experts = Admin([](AdminRequest::Builder r) { r.setExperts(); });
  ASSERT_TRUE(experts.ok()) << experts.status();
  auto expert_list = experts->reply().getExperts();  // once: each get counts against the read budget
  ASSERT_EQ(expert_list.size(), kExperts);
  for (uint32_t e = 0; e < kExperts; ++e) {
    EXPECT_EQ(expert_list[e].getExpert().getExpert(), e);
    EXPECT_EQ(expert_list[e].getHosts().size(), 1u);
  }
  EXPECT_EQ(expert_list[1].getTokensLastStep(), 2 * kSteps);
  auto checkpoints = Admin([](AdminRequest::Builder r) { r.setCheckpointList(); });
  ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
  auto manifests = checkpoints->reply().getCheckpoints();
  ASSERT_EQ(manifests.size(), kCheckpoints);
  EXPECT_EQ(manifests[kCheckpoints - 1].getStep(), kCheckpoints * 20);
  EXPECT_EQ(manifests[0].getActors().size(), kActorsPerCheckpoint);
  auto hosts = Admin([](AdminRequest::Builder r) { r.setHosts(); });
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ(hosts->reply().getHosts().size(), 2u);
  auto status = Admin([](AdminRequest::Builder r) { r.setStatus(); });
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->reply().getStatus().getLatestCheckpoint(), kCheckpoints);
  auto plan = Admin([](AdminRequest::Builder r) { r.initRebalance().setDryRun(true); });
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->reply().which(), AdminReply::REBALANCE);
  EXPECT_FALSE(plan->reply().getRebalance().getApplied());

  // Through syctl, with its JSON output.
  int code = -1;
  const std::string experts_json = Syctl({"experts"}, &code);
  EXPECT_EQ(code, syctl::kExitOk);
  EXPECT_EQ(Count(experts_json, "{\"expert\":"), kExperts);
  const std::string checkpoints_json = Syctl({"checkpoint", "list"}, &code);
  EXPECT_EQ(code, syctl::kExitOk);
  EXPECT_EQ(Count(checkpoints_json, "{\"id\":"), kCheckpoints);
  EXPECT_THAT(checkpoints_json, HasSubstr("{\"id\":500,\"step\":10000,\"epoch\":1,\"actors\":8,\"bytes\":128,"));
  const std::string hosts_json = Syctl({"hosts"}, &code);
  EXPECT_EQ(code, syctl::kExitOk);
  EXPECT_EQ(Count(hosts_json, "{\"node_id\":"), 2u);
  const std::string status_json = Syctl({"status"}, &code);
  EXPECT_EQ(code, syctl::kExitOk);
  EXPECT_THAT(status_json, HasSubstr("\"latest_checkpoint\":500"));
}

// A reply message with an inFrame body, `frames` data frames named `name`, and `payload` as each frame.
absl::StatusOr<transport::DecodedMessage> InFrameReply(size_t frames, const std::string& name,
                                                       const transport::Frame& payload) {
  capnp::MallocMessageBuilder b;
  auto envelope = b.initRoot<proto::Envelope>();
  envelope.setSender("coordinator");
  envelope.setRequestId(7);
  envelope.setIsReply(true);
  envelope.setKind(proto::MessageKind::ADMIN);
  envelope.getBody().initAs<AdminReply>().setInFrame();
  auto tensors = envelope.initTensors(static_cast<unsigned>(frames));
  std::vector<transport::Frame> data;
  for (size_t i = 0; i < frames; ++i) {
    transport::SetTensor(tensors[static_cast<unsigned>(i)], name, proto::TensorRole::OTHER, proto::DType::F32,
                         {static_cast<uint64_t>(payload.size() / 4)});
    data.push_back(payload);
  }
  return transport::DecodedMessage::Decode(transport::Message{{"coordinator"}, transport::EncodeHeader(b), data}, {});
}

TEST(AdminReplyMessageTest, InFrameWithoutItsFrameOrWithABadOneIsRefused) {
  capnp::MallocMessageBuilder good;
  good.initRoot<AdminReply>().setCheckpointId(42);
  const transport::Frame good_frame = transport::EncodeHeader(good);
  capnp::MallocMessageBuilder nested;
  nested.initRoot<AdminReply>().setInFrame();
  const std::string garbage(64, '\x7f');

  auto read = [](absl::StatusOr<transport::DecodedMessage> message) {
    EXPECT_TRUE(message.ok()) << message.status();
    return cluster::AdminReplyMessage::Read(*std::move(message));
  };
  auto ok = read(InFrameReply(1, cluster::kAdminReplyFrame, good_frame));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->reply().getCheckpointId(), 42u);

  struct Case {
    size_t frames;
    std::string name;
    transport::Frame payload;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {0, cluster::kAdminReplyFrame, good_frame, "without its one"},
           {2, cluster::kAdminReplyFrame, good_frame, "without its one"},
           {1, "state", good_frame, "without its one"},
           {1, cluster::kAdminReplyFrame, transport::Frame::CopyOf(garbage.data(), garbage.size()), "message frame"},
           {1, cluster::kAdminReplyFrame, transport::EncodeHeader(nested), "inFrame again"}}) {
    auto refused = read(InFrameReply(c.frames, c.name, c.payload));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << c.why;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr(c.why));
  }
}

}  // namespace
}  // namespace sy::coordinator
