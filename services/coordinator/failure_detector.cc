// Suspicion and probe verdicts of the fast failure detection (see failure_detector.h).
#include "services/coordinator/failure_detector.h"

#include "absl/strings/str_cat.h"

namespace sy::coordinator {

bool FailureDetector::Suspect(const std::string& host, uint64_t incarnation) {
  auto [it, inserted] = suspected_.emplace(host, incarnation);
  if (inserted) return true;
  if (it->second == incarnation) return false;  // its probe is out
  it->second = incarnation;
  return true;
}

std::optional<std::string> FailureDetector::ProbeEnded(const std::string& host, uint64_t incarnation,
                                                       bool answered) {
  auto it = suspected_.find(host);
  if (it == suspected_.end() || it->second != incarnation) return std::nullopt;  // stale
  suspected_.erase(it);
  if (answered) return std::nullopt;
  return absl::StrCat(host, " disconnected; probe unanswered in ", absl::ToInt64Milliseconds(probe_deadline_),
                      " ms: declared dead");
}

}  // namespace sy::coordinator
