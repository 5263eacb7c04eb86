// Restored state at the expert host. RestoreChunks (services/expert_host
// restore_chunks): chunk sequences of random states, intact or broken (a chunk
// skipped, repeated or out of place, a wrong offset, size or checksum): a state comes
// out whole exactly when its sequence was intact, never unverified, and a broken
// sequence leaves nothing behind that spoils the next restore of that actor. The
// STATE_STREAM door: restores (chunkIn) of held, unheld and unknown actors with broken
// fields and frames, stream-outs to other destinations, then header bytes mutated:
// every one is answered, and a refused one leaves the host's state as it was.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <capnp/message.h>

#include "common/base/fnv1a.h"
#include "proto/expert.capnp.h"
#include "services/cluster/envelope.h"
#include "services/expert_host/restore_chunks.h"
#include "tests/fuzz/fuzz_rng.h"
#include "tests/fuzz/host_fuzz_fixture.h"

namespace sy::fuzz {
namespace {

constexpr uint64_t kChunksSeed = 0x5EED0020;
constexpr int kSequences = 10000;
constexpr uint64_t kDoorSeed = 0x5EED0021;
constexpr int kDoorIterations = 2000;

// `n` floats' bytes, finite and small.
std::string RandomState(FuzzRng& rng, size_t floats) {
  std::vector<float> values(floats);
  for (float& v : values) v = 0.001f * static_cast<float>(rng.Below(200)) - 0.1f;
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

struct Chunk {
  uint32_t index = 0, count = 0;
  uint64_t offset = 0, total = 0, checksum = 0;
  std::string bytes;
};

// `state` cut into `count` chunks.
std::vector<Chunk> Cut(const std::string& state, uint32_t count) {
  std::vector<Chunk> chunks;
  const size_t step = (state.size() + count - 1) / count;
  for (uint32_t i = 0; i < count; ++i) {
    Chunk c;
    c.index = i;
    c.count = count;
    c.offset = std::min(state.size(), i * step);
    c.total = state.size();
    c.checksum = ChecksumOf(state);
    c.bytes = state.substr(c.offset, step);
    chunks.push_back(c);
  }
  return chunks;
}

absl::StatusOr<std::optional<std::string>> AddChunk(expert_host::RestoreChunks& chunks, const cluster::ActorKey& key,
                                                    const Chunk& c, uint64_t state_bytes) {
  capnp::MallocMessageBuilder b;
  auto in = b.initRoot<proto::expert::ChunkIn>();
  in.setIndex(c.index);
  in.setCount(c.count);
  in.setOffset(c.offset);
  in.setTotalBytes(c.total);
  in.setChecksum(c.checksum);
  return chunks.Add(key, in.asReader(), transport::Frame::CopyOf(c.bytes.data(), c.bytes.size()), 1, state_bytes);
}

// Breaks one thing of `chunks` (or nothing); returns what, empty for nothing.
std::string Break(std::vector<Chunk>& chunks, FuzzRng& rng) {
  Chunk& c = chunks[rng.Below(chunks.size())];
  switch (rng.Below(8)) {
    case 0: chunks.erase(chunks.begin() + static_cast<long>(&c - chunks.data())); return "skipped";
    case 1: {
      const Chunk copy = c;
      chunks.insert(chunks.begin() + static_cast<long>(&c - chunks.data()), copy);
      return "repeated";
    }
    case 2: c.offset += 1 + rng.Below(8); return "offset";
    case 3: c.total = rng.OneIn(2) ? c.total - 1 : c.total + 4; return "total";
    case 4: c.checksum ^= uint64_t{1} << rng.Below(64); return "checksum";
    case 5: if (!c.bytes.empty()) { c.bytes[rng.Below(c.bytes.size())] ^= 1; return "flipped"; } return "";
    case 6: if (chunks.size() > 1) { std::swap(chunks.front(), chunks.back()); return "swapped"; } return "";
    default: return "";
  }
}

TEST(RestoreChunksFuzz, StatesComeOutWholeExactlyWhenIntact) {
  expert_host::RestoreChunks chunks;
  const cluster::ActorKey keys[] = {cluster::ActorKey::Expert(0, 1), cluster::ActorKey::Dense(0)};
  int whole = 0, broken_refused = 0;
  for (uint64_t i = 0; i < kSequences; ++i) {
    FuzzRng rng(kChunksSeed, i);
    const cluster::ActorKey& key = keys[rng.Below(2)];
    const std::string state = RandomState(rng, 1 + rng.Below(64));
    std::vector<Chunk> sequence = Cut(state, 1 + static_cast<uint32_t>(rng.Below(4)));
    const std::string broken = Break(sequence, rng);
    const std::string where = "seed=" + std::to_string(kChunksSeed) + " iteration=" + std::to_string(i) + " " +
                              key.ToString() + " broken=" + broken;
    std::optional<std::string> out;
    bool refused = false;
    for (const Chunk& c : sequence) {
      auto added = AddChunk(chunks, key, c, state.size());
      if (!added.ok()) {
        refused = true;
        ASSERT_TRUE(added.status().code() == absl::StatusCode::kInvalidArgument ||
                    added.status().code() == absl::StatusCode::kDataLoss)
            << added.status() << " " << where;
        continue;
      }
      if (added->has_value()) out = **added;
    }
    if (broken.empty()) {
      ASSERT_FALSE(refused) << where;
      ASSERT_EQ(out, state) << where;
      ++whole;
    } else if (out.has_value()) {
      // A break that still yields a state must yield exactly the intact one (a repeated last chunk).
      ASSERT_EQ(*out, state) << where;
    } else {
      broken_refused += refused;
    }
    // Whatever a broken sequence left behind, an intact one of the same actor restores.
    const std::string next = RandomState(rng, 8);
    std::optional<std::string> again;
    for (const Chunk& c : Cut(next, 2)) {
      auto added = AddChunk(chunks, key, c, next.size());
      ASSERT_TRUE(added.ok()) << added.status() << " after " << where;
      if (added->has_value()) again = **added;
    }
    ASSERT_EQ(again, next) << "after " << where;
  }
  EXPECT_GT(whole, kSequences / 10);
  EXPECT_GT(broken_refused, kSequences / 4);
}

// The host's STATE_STREAM door.
class StateStreamDoorFuzz : public HostFuzzTest {
 protected:
  // Floats in the checkpointed state (weights, m, v) of `key` in this model.
  size_t StateFloats(const cluster::ActorKey& key) const {
    const int64_t n = key.dense ? shard_numel_[key.shard]
                                : 2 * int64_t{kHostDModel} * config_.model.d_ff + config_.model.d_ff + kHostDModel;
    return static_cast<size_t>(3 * n);
  }

  cluster::ActorKey RandomKey(FuzzRng& rng, std::string* summary) const {
    switch (rng.Below(6)) {
      case 0: *summary += " outside-model"; return cluster::ActorKey::Expert(7, 0);
      case 1: return cluster::ActorKey::Dense(static_cast<uint32_t>(rng.Below(shard_numel_.size())));
      default:
        return cluster::ActorKey::Expert(static_cast<uint32_t>(rng.Below(2)), static_cast<uint32_t>(rng.Below(4)));
    }
  }

  Seed Make(FuzzRng& rng) {
    Seed seed;
    seed.summary = "state-stream";
    auto request = cluster::InitBody<proto::expert::StateStreamRequest>(*seed.header, proto::MessageKind::STATE_STREAM);
    const cluster::ActorKey key = RandomKey(rng, &seed.summary);
    key.ToProto(request.initActor());
    request.setCheckpointId(1 + rng.Below(3));
    seed.summary += " " + key.ToString();
    if (rng.OneIn(5)) {
      auto out = request.initStreamOut();
      out.setDestination(rng.OneIn(2) ? "trainer-0" : "coordinator");
      out.setAtStep(rng.Below(2));
      out.setChunkBytes(4 * (1 + rng.Below(64)));
      seed.summary += " stream-out";
      return seed;
    }
    const size_t floats = key.dense && key.shard >= shard_numel_.size() ? 8 : StateFloats(key);
    std::string state = RandomState(rng, rng.OneIn(6) ? 1 + rng.Below(floats) : floats);
    const uint32_t count = rng.OneIn(4) ? 2 : 1;
    std::vector<Chunk> chunks = Cut(state, count);
    Chunk c = chunks[rng.Below(count)];
    if (rng.OneIn(4)) {
      seed.summary += " broken=" + Break(chunks, rng);
      if (!chunks.empty()) c = chunks[rng.Below(chunks.size())];
    }
    auto in = request.initChunkIn();
    in.setVersion(rng.OneIn(8) ? 1 + rng.Below(3) : 0);
    in.setIndex(c.index);
    in.setCount(rng.OneIn(12) ? static_cast<uint32_t>(rng.Below(3)) : c.count);
    in.setOffset(c.offset);
    in.setTotalBytes(c.total);
    in.setChecksum(c.checksum);
    seed.summary += " chunk " + std::to_string(in.getIndex()) + "/" + std::to_string(in.getCount());
    switch (rng.Below(12)) {
      case 0: seed.summary += " no-frame"; break;
      case 1:
        seed.summary += " two-frames";
        seed.data = cluster::AttachState(*seed.header, c.bytes);
        seed.data.push_back(seed.data.back());
        break;
      default: seed.data = cluster::AttachState(*seed.header, c.bytes);
    }
    return seed;
  }
};

TEST_F(StateStreamDoorFuzz, RestoresAreAnsweredAndRefusalsChangeNothing) {
  FuzzHostDoor(kDoorSeed, kDoorIterations, [this](FuzzRng& rng) { return Make(rng); }, kDoorIterations / 20);
}

}  // namespace
}  // namespace sy::fuzz
