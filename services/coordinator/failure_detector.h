// FailureDetector: the fast path of failure detection. A host whose connection to the
// coordinator dropped is suspected and probed with a short-deadline ping; a probe left
// unanswered by its deadline declares it dead, a reply clears the suspicion. A host that
// hangs (SIGSTOP) or is cut off keeps its connection or loses it silently, so it is
// never suspected here: Membership's heartbeat timeout covers it.
//
// Suspicions are per incarnation: a probe's outcome for an incarnation the host no
// longer has (it registered again meanwhile) decides nothing.
//
// Not thread-safe: owned by the coordinator's ClusterActor, which sends the probes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace sy::coordinator {

class FailureDetector {
 public:
  explicit FailureDetector(absl::Duration probe_deadline) : probe_deadline_(probe_deadline) {}

  // `host` at `incarnation` lost its connection: true when a probe should go out now
  // (false while one is already out for it).
  bool Suspect(const std::string& host, uint64_t incarnation);
  // The probe of `host` at `incarnation` ended, `answered` or not. Returns why the host
  // is dead ("host-2 disconnected; probe unanswered in 200 ms: declared dead") when it
  // is; nullopt when the host answered or the suspicion is stale.
  std::optional<std::string> ProbeEnded(const std::string& host, uint64_t incarnation, bool answered);
  // The host registered again or was declared failed otherwise: its suspicion ends.
  void Forget(const std::string& host) { suspected_.erase(host); }

  bool suspected(const std::string& host) const { return suspected_.count(host) != 0; }
  absl::Duration probe_deadline() const { return probe_deadline_; }

 private:
  absl::Duration probe_deadline_;
  std::map<std::string, uint64_t> suspected_;  // host -> incarnation under suspicion
};

}  // namespace sy::coordinator
