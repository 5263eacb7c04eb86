// A Transport wrapper that injects faults where components meet: it drops,
// duplicates, delays and reorders outgoing messages at configured rates. Every
// decision is a pure function of (seed, message index) through Philox
// (common/base/philox.h), so a run with the same seed and the same send order
// injects the same faults. Receive is passed through unchanged.
//
// The spec string is what every binary takes from its --faults flag:
//   "drop=0.1,dup=0.05,delay=0.2,delay_ms=20,reorder=0.1,reorder_ms=5,seed=7"
// drop/dup/delay/reorder are probabilities per message; delay_ms is how long a
// delayed message waits; reorder holds a message back for reorder_ms so later ones
// overtake it. delay_ms without delay delays every message. "" = no faults.
//
// Thread-safe. A timer thread sends delayed and held-back messages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/transport/transport.h"

namespace sy::transport {

struct FaultSpec {
  double drop = 0;       // probability a message is lost
  double duplicate = 0;  // "dup": probability a message is sent twice
  double delay = 0;      // probability a message waits delay_ms
  int delay_ms = 10;
  double reorder = 0;    // probability a message is held back reorder_ms
  int reorder_ms = 5;
  uint64_t seed = 0;     // of the Philox draws

  bool Any() const { return drop > 0 || duplicate > 0 || delay > 0 || reorder > 0; }
};

// Parses a spec string (see the file comment). InvalidArgument names the bad item;
// rates must be in [0, 1], times in [0, 60000] ms.
absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view spec);

struct FaultStats {
  uint64_t messages = 0;    // Send calls seen
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t delayed = 0;
  uint64_t reordered = 0;
};

class FaultyTransport : public Transport {
 public:
  static std::unique_ptr<FaultyTransport> Wrap(std::unique_ptr<Transport> inner, FaultSpec spec);
  virtual FaultStats fault_stats() const = 0;
};

// What a binary does with its --faults flag: `inner` unchanged for a spec without
// faults, else wrapped. InvalidArgument for a bad spec.
absl::StatusOr<std::unique_ptr<Transport>> WithFaultsFromFlag(std::unique_ptr<Transport> inner,
                                                              absl::string_view spec);

}  // namespace sy::transport
