// Picks the balanced steps of a run and summarises them (see steady_state.h).
#include "orchestration/local/steady_state.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"

namespace sy::local {

absl::StatusOr<SteadyState> MeasureSteadyState(const RunReport& report, double max_dropped, int min_steps) {
  SteadyState s;
  std::vector<double> tokens_per_s;
  double dropped = 0, bytes = 0;
  int with_bytes = 0;
  for (const StepRecord& r : report.steps) {
    if (r.dropped_frac >= max_dropped) continue;
    if (s.steps == 0) s.first_step = r.step;
    s.last_step = r.step;
    ++s.steps;
    tokens_per_s.push_back(r.tokens_per_s);
    dropped += r.dropped_frac;
    if (r.bytes_sent) {
      bytes += static_cast<double>(*r.bytes_sent);
      ++with_bytes;
    }
  }
  if (s.steps < std::max(min_steps, 1)) {
    double last = report.steps.empty() ? 1.0 : report.steps.back().dropped_frac;
    return absl::FailedPreconditionError(absl::StrFormat(
        "only %d of %d steps dropped under %.1f%% of their tokens (at least %d needed; the last step dropped "
        "%.1f%%): the router has not balanced yet, run more --steps",
        s.steps, report.steps.size(), 100 * max_dropped, min_steps, 100 * last));
  }
  std::sort(tokens_per_s.begin(), tokens_per_s.end());
  s.median_tokens_per_s = tokens_per_s[tokens_per_s.size() / 2];
  s.mean_dropped_frac = dropped / s.steps;
  if (with_bytes > 0) s.bytes_sent_per_step = bytes / with_bytes;
  return s;
}

}  // namespace sy::local
