// The --initial_placement file: a full placement parses into the shape and
// holders it describes and round-trips through InitialPlacementJson; every
// malformed file is refused saying what is wrong; PlaceInitially waits for the
// hosts it names and installs exactly the file's holders.
#include "services/coordinator/initial_placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace sy::coordinator {
namespace {

using cluster::ActorKey;
using ::testing::HasSubstr;

constexpr char kTwoLayers[] =
    R"({"experts": [[["host-0"], ["host-1", "host-2"]], [["host-2"], ["host-10"]]], "dense": [["host-0"], ["host-1"]]})";

TEST(InitialPlacement, AFullPlacementGivesItsShapeHoldersAndHosts) {
  absl::StatusOr<InitialPlacement> p = ParseInitialPlacement(kTwoLayers);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->shape.num_switch_layers, 2u);
  EXPECT_EQ(p->shape.num_experts, 2u);
  EXPECT_EQ(p->shape.num_dense_shards, 2u);
  EXPECT_EQ(p->entries.size(), 6u);
  EXPECT_EQ(p->entries.at(ActorKey::Expert(0, 1)), (std::vector<std::string>{"host-1", "host-2"}));
  EXPECT_EQ(p->entries.at(ActorKey::Expert(1, 1)), (std::vector<std::string>{"host-10"}));
  EXPECT_EQ(p->entries.at(ActorKey::Dense(1)), (std::vector<std::string>{"host-1"}));
  EXPECT_EQ(p->hosts, (std::vector<std::string>{"host-0", "host-1", "host-2", "host-10"}));  // natural order
  // What InitialPlacementJson writes reads back the same.
  absl::StatusOr<InitialPlacement> again = ParseInitialPlacement(InitialPlacementJson(p->shape, p->entries));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->entries, p->entries);
}

TEST(InitialPlacement, AMalformedFileIsRefusedSayingWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"experts\": [[[\"host-0\"]]", "not JSON"},
      {"[]", "must be a JSON object"},
      {R"({"dense": []})", "\"experts\" must list"},
      {R"({"experts": [], "dense": []})", "\"experts\" must list"},
      {R"({"experts": [[["host-0"]]]})", "\"dense\" must list"},
      {R"({"experts": [[["host-0"]]], "dense": [], "replicas": 2})", "unknown field \"replicas\""},
      {R"({"experts": [[["host-0"], ["host-1"]], [["host-0"]]], "dense": []})",
       "Switch layer 1 lists 1 experts, Switch layer 0 lists 2"},
      {R"({"experts": [[]], "dense": []})", "Switch layer 0 must list"},
      {R"({"experts": [[["host-0"], []]], "dense": []})", "actor L0E1 has no holder"},
      {R"({"experts": [[["host-0"]]], "dense": [["host-1", "host-1"]]})", "actor D0 lists host host-1 twice"},
      {R"({"experts": [[["host-0", ""]]], "dense": []})", "actor L0E0: a holder is not a non-empty host id"},
      {R"({"experts": [[["host-0", 3]]], "dense": []})", "a holder is not a non-empty host id: 3"},
      {R"({"experts": [["host-0"]], "dense": []})", "actor L0E0: holders must be an array"},
  };
  for (const auto& [text, error] : cases) {
    absl::StatusOr<InitialPlacement> p = ParseInitialPlacement(text);
    ASSERT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(error)) << text;
  }
}

TEST(InitialPlacement, ReadingNamesTheFileAndRefusesOneThatCannotBeRead) {
  const std::string path = ::testing::TempDir() + "/initial_placement_" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << kTwoLayers;
  absl::StatusOr<InitialPlacement> read = ReadInitialPlacement(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->entries.size(), 6u);
  std::ofstream(path) << "{\"experts\": 1}";
  EXPECT_THAT(std::string(ReadInitialPlacement(path).status().message()), HasSubstr(path + ": \"experts\" must list"));
  std::remove(path.c_str());
  const absl::Status missing = ReadInitialPlacement(path).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.message()), HasSubstr(path + ": cannot be opened"));
}

TEST(InitialPlacement, PlacementWaitsForEveryHostItNamesThenInstallsItsHolders) {
  absl::StatusOr<InitialPlacement> p = ParseInitialPlacement(kTwoLayers);
  ASSERT_TRUE(p.ok()) << p.status();
  cluster::PlacementTable table(p->shape);
  const absl::Status waiting = PlaceInitially(*p, {"host-0", "host-1", "host-3"}, table);
  EXPECT_EQ(waiting.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(waiting.message()), HasSubstr("names: host-2, host-10"));
  EXPECT_FALSE(table.initialized());
  ASSERT_TRUE(PlaceInitially(*p, {"host-10", "host-0", "host-1", "host-2", "host-3"}, table).ok());
  EXPECT_EQ(table.epoch(), 1u);
  EXPECT_EQ(table.entries(), p->entries);
  EXPECT_EQ(table.hosts(),
            p->hosts);  // an alive host the file does not name holds nothing
  // A placement of another shape does not fit a table: refused, the table
  // unchanged.
  cluster::PlacementTable other(cluster::ModelShape{1, 4, 2});
  EXPECT_EQ(PlaceInitially(*p, p->hosts, other).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(other.initialized());
}

}  // namespace
}  // namespace sy::coordinator
