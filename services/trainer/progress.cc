// Progress line formatting (see progress.h).
#include "services/trainer/progress.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sy::trainer {

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  if (h > 0) return absl::StrFormat("%dh%02dm%02ds", h, m, s);
  if (m > 0) return absl::StrFormat("%dm%02ds", m, s);
  return absl::StrFormat("%ds", s);
}

std::string FormatProgressLine(const ProgressInfo& info) {
  std::string line = absl::StrFormat("step %d/%d | loss %.4f", info.step, info.total_steps, info.loss);
  if (info.val_loss) absl::StrAppendFormat(&line, " | val %.4f", *info.val_loss);
  absl::StrAppendFormat(&line, " | %.0f tok/s", info.tokens_per_s);
  const double eta = info.step > 0 ? info.elapsed_s / info.step * (info.total_steps - info.step) : -1;
  absl::StrAppend(&line, " | ETA ", FormatDuration(eta));
  return line;
}

}  // namespace sy::trainer
