// The expert host fuzz tests' fixture (see host_fuzz_fixture.h).
#include "tests/fuzz/host_fuzz_fixture.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gpu/model/params.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement.h"
#include "services/cluster/placement_codec.h"
#include "services/cluster/placement_table.h"

namespace sy::fuzz {

void HostFuzzTest::SetUp() {
  backend_ = *gpu::CreateBackend(gpu::Device::Cpu(), {1});
  config_.model = SmallHostModel();
  config_.seed = 7;
  config_.micro_batches = kHostMicroBatches;
  config_.max_bucket_rows = kHostMaxRows;
  config_.host_index = 0;
  config_.num_hosts = 2;
  config_.step_timeout = absl::Seconds(30);
  service_ = *expert_host::HostService::Create(config_, backend_.get(), &registry_);
  auto server = *net_.CreateTransport("host-0");
  ASSERT_TRUE(server->Bind("inproc://host-0").ok());
  expert_host::HostService* service = service_.get();
  server_ = *transport::RpcNode::Create(std::move(server), {}, [service](transport::DecodedMessage r,
                                                                         transport::Responder responder) {
    service->Handle(std::move(r), std::move(responder));
  });
  service_->set_rpc(server_.get());
  auto client = *net_.CreateTransport("trainer-0");
  ASSERT_TRUE(client->Connect("host-0", "inproc://host-0").ok());
  client_ = *transport::RpcNode::Create(std::move(client), {}, nullptr);
  steps_ = std::make_unique<trainer::StepClient>(client_.get(), std::vector<std::string>{"host-0"}, kHostMicroBatches,
                                                 "trainer-0", absl::Seconds(10));
  auto raw = *net_.CreateTransport("raw-client");
  ASSERT_TRUE(raw->Connect("host-0", "inproc://host-0").ok());
  door_ = std::make_unique<RawDoor>(std::move(raw), "host-0");
  const std::vector<gpu::ParamInfo> infos = gpu::ParamInfos(config_.model);
  for (uint32_t param : cluster::DenseShardParams(infos)) shard_numel_.push_back(infos[param].numel);
}

void HostFuzzTest::TearDown() {
  door_.reset();
  client_->Close();
  service_->set_rpc(nullptr);
  server_->Close();
  service_.reset();
}

std::vector<uint64_t> HostFuzzTest::Checksums() {
  auto status = steps_->Status(0);
  EXPECT_TRUE(status.ok()) << status.status();
  std::vector<uint64_t> sums;
  if (status.ok()) {
    for (const auto& a : status->actors) sums.push_back(a.checksum);
  }
  return sums;
}

std::string HostFuzzTest::HostState() {
  std::string s = absl::StrCat("epoch ", service_->placement_epoch(), ", awaiting restore ",
                               service_->num_awaiting_restore(), ", held");
  for (const cluster::ActorKey& key : service_->held_actors()) absl::StrAppend(&s, " ", key.ToString());
  absl::StrAppend(&s, ", checksums");
  for (uint64_t sum : Checksums()) absl::StrAppend(&s, " ", sum);
  return s;
}

std::map<cluster::ActorKey, std::vector<std::string>> HostFuzzTest::StaticTable() const {
  const cluster::ModelShape shape{2, 4, static_cast<uint32_t>(shard_numel_.size())};
  std::map<cluster::ActorKey, std::vector<std::string>> entries;
  for (const cluster::ActorKey& a : shape.Actors()) {
    entries[a] = {absl::StrCat("host-", cluster::InitialHostIndex(a, shape, 2))};
  }
  return entries;
}

std::map<std::string, std::string> HostFuzzTest::Endpoints() {
  return {{"host-0", "inproc://host-0"}, {"host-1", "inproc://host-1"}};
}

absl::Status HostFuzzTest::SendPlacement(uint64_t epoch,
                                         const std::map<cluster::ActorKey, std::vector<std::string>>& entries) {
  cluster::PlacementTable table(cluster::ModelShape{2, 4, static_cast<uint32_t>(shard_numel_.size())});
  if (absl::Status s = table.Restore(epoch, entries); !s.ok()) return s;
  capnp::MallocMessageBuilder header;
  auto req = cluster::InitBody<proto::coordinator::PlacementRequest>(header, proto::MessageKind::PLACEMENT, epoch);
  cluster::TableToProto(table, Endpoints(), req.initUpdate());
  return client_->Call({"host-0"}, header, {}, absl::Now() + absl::Seconds(20)).status();
}

void HostFuzzTest::FuzzHostDoor(uint64_t seed, int iterations, std::function<Seed(FuzzRng&)> make,
                                int min_answered) {
  const DoorTally tally = FuzzDoor(*door_, {seed, iterations, std::move(make), [this] { return HostState(); }, {}});
  EXPECT_GT(tally.refused, iterations / 10);
  EXPECT_GE(tally.answered, min_answered);
  EXPECT_FALSE(Checksums().empty()) << "the host stopped answering";
}

}  // namespace sy::fuzz
