// Placement tables at both doors that read them. The codec (services/cluster
// placement_codec): saved tables (the coordinator's RocksDB copy) mutated and as random
// bytes must parse or fail with DataLoss, never throw, and decode to no more replicas
// than their traversal budget lets a reader visit; unmutated ones round-trip exactly.
// The expert host's PLACEMENT door: updates over random hosts, with stale epochs,
// actors the model lacks, replica hosts without endpoints, a get instead of an update,
// then header bytes mutated: every one is answered, and a refused one leaves the held
// actors, the accepted epoch and every actor's state as they were.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/serialize.h>

#include "proto/coordinator.capnp.h"
#include "services/cluster/envelope.h"
#include "services/cluster/placement_codec.h"
#include "services/cluster/placement_table.h"
#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/host_fuzz_fixture.h"
#include "tests/fuzz/mutator.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kCodecSeed = 0x5EED0010;
constexpr int kCodecIterations = 20000;
constexpr uint64_t kDoorSeed = 0x5EED0011;
constexpr int kDoorIterations = 2000;

std::string HostName(uint64_t i) { return "host-" + std::to_string(i); }

// A complete table of a random shape: every actor on 1..3 of `hosts` hosts.
cluster::PlacementTable RandomTable(FuzzRng& rng, std::map<std::string, std::string>* endpoints) {
  const cluster::ModelShape shape{static_cast<uint32_t>(1 + rng.Below(3)), static_cast<uint32_t>(1 + rng.Below(6)),
                                  static_cast<uint32_t>(1 + rng.Below(4))};
  const uint64_t hosts = 1 + rng.Below(4);
  std::map<cluster::ActorKey, std::vector<std::string>> entries;
  for (const cluster::ActorKey& actor : shape.Actors()) {
    const uint64_t replicas = 1 + rng.Below(std::min<uint64_t>(hosts, 3));
    const uint64_t first = rng.Below(hosts);
    for (uint64_t r = 0; r < replicas; ++r) entries[actor].push_back(HostName((first + r) % hosts));
  }
  for (uint64_t h = 0; h < hosts; ++h) {
    if (!rng.OneIn(4)) (*endpoints)[HostName(h)] = "tcp://127.0.0.1:" + std::to_string(5000 + h);
  }
  cluster::PlacementTable table(shape);
  EXPECT_TRUE(table.Restore(1 + rng.Below(100), entries).ok());
  return table;
}

size_t ReplicaCount(const cluster::DecodedTable& table) {
  size_t n = 0;
  for (const auto& [actor, hosts] : table.entries) n += hosts.size();
  return n;
}

TEST(PlacementCodecFuzz, SavedTablesRoundTripAndDamagedOnesFailWithDataLoss) {
  int parsed = 0, refused = 0;
  for (uint64_t i = 0; i < kCodecIterations; ++i) {
    FuzzRng rng(kCodecSeed, i);
    std::map<std::string, std::string> endpoints;
    const cluster::PlacementTable table = RandomTable(rng, &endpoints);
    const std::string saved = cluster::SerializeTable(table, endpoints);
    const std::string where = "seed=" + std::to_string(kCodecSeed) + " iteration=" + std::to_string(i);
    if (i % 16 == 0) {  // intact: exactly what was saved
      absl::StatusOr<cluster::DecodedTable> decoded = cluster::ParseTable(saved);
      ASSERT_TRUE(decoded.ok()) << decoded.status() << " " << where;
      EXPECT_EQ(decoded->epoch, table.epoch()) << where;
      EXPECT_EQ(decoded->entries, table.entries()) << where;
      std::map<std::string, std::string> placed;  // the endpoints of hosts the table names travel with it
      for (const auto& [actor, hosts] : table.entries()) {
        for (const std::string& host : hosts) {
          if (endpoints.count(host) != 0) placed[host] = endpoints.at(host);
        }
      }
      EXPECT_EQ(decoded->endpoints, placed) << where;
      continue;
    }
    std::string bytes;
    if (rng.OneIn(8)) {
      bytes.resize(rng.Below(256));
      for (char& c : bytes) c = static_cast<char>(rng.Bits());
    } else {
      bytes = Mutate(saved, rng);
    }
    absl::StatusOr<cluster::DecodedTable> decoded = cluster::ParseTable(bytes);
    if (!decoded.ok()) {
      ++refused;
      ASSERT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status() << " " << where << "\n"
                                                                       << HexDump(bytes);
      continue;
    }
    ++parsed;
    // Each replica read costs the reader at least a word of its budget (4 per word saved, + 64).
    ASSERT_LE(ReplicaCount(*decoded), bytes.size() / 8 * 4 + 64) << where << "\n" << HexDump(bytes);
  }
  std::cout << "damaged tables: parsed " << parsed << ", refused " << refused << "\n";
  EXPECT_GT(refused, kCodecIterations / 10);
  EXPECT_GT(parsed, kCodecIterations / 20);
}

// The expert host's placement door.
class PlacementDoorFuzz : public HostFuzzTest {
 protected:
  // A placement request for host-0: a table of this model over host-0..host-2, broken at random.
  Seed Make(FuzzRng& rng) {
    Seed seed;
    seed.summary = "placement";
    const uint64_t current = service_->placement_epoch();
    uint64_t epoch = current + 1 + rng.Below(2);
    if (rng.OneIn(6)) {
      epoch = current > 0 ? rng.Below(current) : 0;
      seed.summary += " stale-epoch=" + std::to_string(epoch);
    }
    auto request =
        cluster::InitBody<proto::coordinator::PlacementRequest>(*seed.header, proto::MessageKind::PLACEMENT, epoch);
    if (rng.OneIn(10)) {
      seed.summary += " get";
      request.setGet();
      request.setKnownEpoch(current);
      return seed;
    }
    // Now and then a table of a model with a third layer, whose actors host-0 lacks.
    const bool outside = rng.OneIn(8);
    const cluster::ModelShape shape{outside ? 3u : 2u, 4, static_cast<uint32_t>(shard_numel_.size())};
    std::map<cluster::ActorKey, std::vector<std::string>> entries = StaticTable();
    for (const cluster::ActorKey& actor : shape.Actors()) {
      std::vector<std::string>& hosts = entries[actor];
      if (hosts.empty() || rng.OneIn(4)) hosts = {HostName(rng.Below(3))};
      if (rng.OneIn(6)) hosts.push_back(HostName(rng.Below(3)));
    }
    if (outside) seed.summary += " third-layer";
    cluster::PlacementTable table(shape);
    EXPECT_TRUE(table.Restore(epoch, entries).ok());
    cluster::TableToProto(table, Endpoints(), request.initUpdate());  // host-2 has no endpoint
    return seed;
  }
};

TEST_F(PlacementDoorFuzz, UpdatesAreAnsweredAndRefusalsChangeNothing) {
  FuzzHostDoor(kDoorSeed, kDoorIterations, [this](FuzzRng& rng) { return Make(rng); }, kDoorIterations / 20);
  // Still serving: the static table at a newer epoch is accepted.
  EXPECT_TRUE(SendPlacement(service_->placement_epoch() + 1, StaticTable()).ok());
}

}  // namespace
}  // namespace sy::fuzz
