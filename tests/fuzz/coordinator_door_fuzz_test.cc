// The coordinator's door for hosts and trainers (services/coordinator
// coordinator_service, the ClusterActor and the CheckpointActor behind it):
// registrations (sender and node id apart, roles, hosts without endpoints, held actors
// outside the model, another model shape), heartbeats (unknown nodes, incarnations,
// steps), placement queries and updates, load reports, and chunks of the checkpoint
// being taken (other ids, actors, versions, positions, frames), then header bytes
// mutated, over loopback TCP. Every one is answered, and a refused one leaves the
// membership, the placement and the checkpoint catalog as they were.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proto/checkpoint.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "tests/fuzz/coordinator_fuzz_fixture.h"
#include "tests/fuzz/fuzz_rng.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kSeed = 0x5EED0040;
constexpr int kIterations = 1500;

const char* const kNodes[] = {"host-0", "trainer-0", "trainer-7", "host-7", ""};

std::string Node(FuzzRng& rng) { return kNodes[rng.Below(sizeof(kNodes) / sizeof(kNodes[0]))]; }

// An actor of the fake model ({1 layer, 4 experts, 2 dense shards}), or now and then one outside it.
cluster::ActorKey Actor(FuzzRng& rng) {
  if (rng.OneIn(8)) return cluster::ActorKey::Expert(1 + static_cast<uint32_t>(rng.Below(3)), 9);
  if (rng.OneIn(3)) return cluster::ActorKey::Dense(static_cast<uint32_t>(rng.Below(2)));
  return cluster::ActorKey::Expert(0, static_cast<uint32_t>(rng.Below(4)));
}

void Register(FuzzRng& rng, const std::string& sender, Seed& seed) {
  auto body = cluster::InitBody<proto::coordinator::RegisterRequest>(*seed.header, proto::MessageKind::REGISTER);
  body.setNodeId(rng.OneIn(8) ? Node(rng) : sender);
  const bool host = rng.OneIn(8) ? rng.OneIn(2) : sender.rfind("host", 0) == 0;
  body.setRole(rng.OneIn(10) ? proto::coordinator::Role::ADMIN
                             : host ? proto::coordinator::Role::EXPERT_HOST : proto::coordinator::Role::TRAINER);
  if (host && !rng.OneIn(6)) body.setEndpoint("tcp://127.0.0.1:" + std::to_string(1 + rng.Below(3)));
  body.setDevice("cpu");
  body.setIncarnation(rng.OneIn(6) ? 2 : 1);
  auto actors = body.initActors(static_cast<unsigned>(rng.Below(3)));
  for (unsigned i = 0; i < actors.size(); ++i) Actor(rng).ToProto(actors[i]);
  auto shape = body.initShape();
  shape.setNumSwitchLayers(rng.OneIn(8) ? 2 : 1);
  shape.setNumExperts(4);
  shape.setNumDenseShards(2);
  seed.summary += " register " + std::string(body.getNodeId().cStr());
}

void Heartbeat(FuzzRng& rng, const std::string& sender, Seed& seed) {
  auto body = cluster::InitBody<proto::coordinator::HeartbeatRequest>(*seed.header, proto::MessageKind::HEARTBEAT);
  body.setNodeId(sender);
  body.setIncarnation(rng.OneIn(6) ? rng.Below(4) : 1);
  body.setStep(kFuzzStep + rng.Below(2));
  body.setEpoch(rng.Below(3));
  body.setDraining(rng.OneIn(30));
  seed.summary += " heartbeat";
}

void Placement(FuzzRng& rng, Seed& seed) {
  auto body = cluster::InitBody<proto::coordinator::PlacementRequest>(*seed.header, proto::MessageKind::PLACEMENT);
  if (rng.OneIn(4)) {
    auto table = body.initUpdate();
    table.setEpoch(7);
    Actor(rng).ToProto(table.initEntries(1)[0].initActor());
    seed.summary += " placement-update";
  } else {
    body.setGet();
    body.setKnownEpoch(rng.Below(3));
    seed.summary += " placement-get";
  }
}

void LoadReport(FuzzRng& rng, const std::string& sender, Seed& seed) {
  auto body = cluster::InitBody<proto::coordinator::LoadReportRequest>(*seed.header, proto::MessageKind::LOAD_REPORT);
  body.setTrainer(sender);
  body.setStep(kFuzzStep + rng.Below(2));
  auto loads = body.initLoads(static_cast<unsigned>(rng.Below(4)));
  for (unsigned i = 0; i < loads.size(); ++i) {
    const cluster::ActorKey actor = Actor(rng);
    loads[i].initExpert().setSwitchLayer(actor.switch_layer);
    loads[i].getExpert().setExpert(actor.expert);
    loads[i].setTokens(rng.Below(100));
  }
  seed.summary += " load-report";
}

void Chunk(FuzzRng& rng, uint64_t checkpoint_id, Seed& seed) {
  auto body = cluster::InitBody<proto::checkpoint::ChunkRequest>(*seed.header, proto::MessageKind::CHECKPOINT_CHUNK);
  body.setCheckpointId(rng.OneIn(6) ? checkpoint_id + 1 + rng.Below(2) : checkpoint_id);
  body.setStep(kFuzzStep);
  const cluster::ActorKey actor = Actor(rng);
  actor.ToProto(body.initActor());
  body.setHost("host-0");
  auto chunk = body.initChunk();
  chunk.setVersion(rng.OneIn(6) ? kFuzzStep + 1 : kFuzzStep);
  chunk.setCount(rng.OneIn(8) ? 0 : 1 + static_cast<uint32_t>(rng.Below(3)));
  chunk.setIndex(static_cast<uint32_t>(rng.Below(4)));
  const std::string bytes(4 * (1 + rng.Below(64)), static_cast<char>(rng.Bits()));
  chunk.setTotalBytes(bytes.size() * chunk.getCount());
  chunk.setOffset(bytes.size() * chunk.getIndex());
  chunk.setChecksum(rng.Bits64());
  if (!rng.OneIn(8)) seed.data = cluster::AttachState(*seed.header, bytes);
  seed.summary += " chunk " + actor.ToString() + " " + std::to_string(chunk.getIndex()) + "/" +
                  std::to_string(chunk.getCount());
}

class CoordinatorDoorFuzz : public CoordinatorFuzzTest {
 protected:
  Seed Make(FuzzRng& rng) {
    Seed seed;
    std::string sender = Node(rng);
    if (sender.empty()) sender = "trainer-0";
    seed.summary = "from " + sender;
    switch (rng.Below(6)) {
      case 0: Register(rng, sender, seed); break;
      case 1: Heartbeat(rng, sender, seed); break;
      case 2: Placement(rng, seed); break;
      case 3: LoadReport(rng, sender, seed); break;
      default: Chunk(rng, checkpoint_id_, seed); break;
    }
    seed.header->getRoot<proto::Envelope>().setSender(sender);
    return seed;
  }
};

TEST_F(CoordinatorDoorFuzz, NodeRequestsAreAnsweredAndRefusalsChangeNothing) {
  const DoorTally tally = FuzzDoor(*door_, {kSeed, kIterations, [this](FuzzRng& rng) { return Make(rng); },
                                            [this] { return CoordinatorState(); }, [this] { Settle(); }});
  EXPECT_GT(tally.refused, kIterations / 10);
  EXPECT_GT(tally.answered, kIterations / 10);
  // Still serving: the trainer's placement query is answered.
  auto epoch = trainer_->PlacementTableEpoch();
  EXPECT_TRUE(epoch.ok()) << epoch.status();
}

}  // namespace
}  // namespace sy::fuzz
