// A run's records: progress lines, metrics.jsonl, the result and summary.json (see run_records.h).
#include "services/trainer/run_records.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/trainer/progress.h"

namespace sy::trainer {

RunRecords::RunRecords(const cluster::TrainerOptions& options, std::ostream& progress)
    : total_steps_(options.steps), workdir_(options.workdir), progress_(&progress) {}

absl::StatusOr<RunRecords> RunRecords::Open(const cluster::TrainerOptions& options, bool writes_files,
                                            std::ostream& progress) {
  RunRecords records(options, progress);
  if (writes_files && !options.workdir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.workdir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create --workdir ", options.workdir, ": ", ec.message()));
    }
    absl::StatusOr<std::unique_ptr<MetricsWriter>> writer = MetricsWriter::Create(options.workdir + "/metrics.jsonl");
    if (!writer.ok()) return writer.status();
    records.writer_ = *std::move(writer);
  }
  records.start_ = std::chrono::steady_clock::now();
  return records;
}

absl::Status RunRecords::Record(const StepMetrics& metrics) {
  if (metrics.val_loss) {
    result_.val_curve.emplace_back(metrics.step, *metrics.val_loss);
    result_.final_val_loss = *metrics.val_loss;
  }
  throughput_[metrics.step] = metrics.tokens_per_s;
  result_.final_loss = metrics.loss;
  if (recovering_since_unix_ms_ > 0) {
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    result_.recovery_seconds.push_back(static_cast<double>(now_ms - recovering_since_unix_ms_) / 1000.0);
    recovering_since_unix_ms_ = 0;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  *progress_ << FormatProgressLine(
                    {metrics.step, total_steps_, metrics.loss, metrics.val_loss, metrics.tokens_per_s, elapsed})
             << std::endl;
  if (writer_ == nullptr) return absl::OkStatus();
  return writer_->Append(metrics);
}

absl::Status RunRecords::DropAfter(int64_t step, int64_t failed_at_unix_ms) {
  const int64_t reached = throughput_.empty() ? step : std::max(step, throughput_.rbegin()->first);
  result_.rollbacks.push_back({reached, step});
  // Two rollbacks before a step completes: the time runs from the first failure.
  if (failed_at_unix_ms > 0 && recovering_since_unix_ms_ == 0) recovering_since_unix_ms_ = failed_at_unix_ms;
  if (writer_ != nullptr) {
    if (absl::Status s = writer_->DropAfter(step); !s.ok()) return s;
  }
  auto& curve = result_.val_curve;
  curve.erase(std::remove_if(curve.begin(), curve.end(), [step](const auto& p) { return p.first > step; }),
              curve.end());
  throughput_.erase(throughput_.upper_bound(step), throughput_.end());
  return absl::OkStatus();
}

absl::StatusOr<bool> RunRecords::TakeOver(int64_t step) {
  if (writer_ != nullptr || workdir_.empty()) return false;
  absl::StatusOr<std::unique_ptr<MetricsWriter>> adopted =
      MetricsWriter::Adopt(workdir_ + "/metrics.jsonl", step, &throughput_);
  if (!adopted.ok()) return adopted.status();
  writer_ = *std::move(adopted);
  return true;
}

absl::StatusOr<RunResult> RunRecords::Finish(const std::string& checksum, const RunShape& shape) {
  result_.steps = total_steps_;
  result_.param_checksum = checksum;
  result_.hosts = shape.hosts;
  result_.trainers = shape.trainers;
  std::vector<double> throughput;
  for (const auto& [step, tokens_per_s] : throughput_) throughput.push_back(tokens_per_s);
  result_.median_tokens_per_s = Median(throughput);
  *progress_ << "param_checksum " << result_.param_checksum << std::endl;
  if (workdir_.empty()) return result_;
  if (absl::Status s = WriteRunSummary(workdir_ + "/summary.json", result_); !s.ok()) return s;
  return result_;
}

}  // namespace sy::trainer
