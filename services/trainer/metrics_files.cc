// metrics.jsonl and summary.json writers (see metrics_files.h).
#include "services/trainer/metrics_files.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sy::trainer {
namespace {

// JSON has no NaN or infinity: they become null.
std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.9g", v);
}

std::string JsonOptional(const std::optional<double>& v) { return v ? JsonNumber(*v) : "null"; }

// Callers only pass fixed keys and hex digits: nothing needs escaping.
std::string JsonString(const std::string& s) { return absl::StrCat("\"", s, "\""); }

std::string JsonIntMatrix(const std::vector<std::vector<int64_t>>& rows) {
  std::string out = "[";
  for (size_t r = 0; r < rows.size(); ++r) {
    absl::StrAppend(&out, r ? "," : "", "[");
    for (size_t c = 0; c < rows[r].size(); ++c) absl::StrAppend(&out, c ? "," : "", rows[r][c]);
    absl::StrAppend(&out, "]");
  }
  return out + "]";
}

}  // namespace

std::string StepMetricsJson(const StepMetrics& m) {
  std::string out = absl::StrCat("{\"step\":", m.step, ",\"loss\":", JsonNumber(m.loss),
                                 ",\"lb_loss\":", JsonNumber(m.lb_loss), ",\"z_loss\":", JsonNumber(m.z_loss));
  if (m.val_loss) absl::StrAppend(&out, ",\"val_loss\":", JsonNumber(*m.val_loss));
  absl::StrAppend(&out, ",\"tokens_per_s\":", JsonNumber(m.tokens_per_s),
                  ",\"dropped_frac\":", JsonNumber(m.dropped_frac),
                  ",\"expert_tokens\":", JsonIntMatrix(m.expert_tokens));
  if (m.bytes_sent) absl::StrAppend(&out, ",\"bytes_sent\":", *m.bytes_sent);
  return out + "}";
}

std::string RunSummaryJson(const RunSummary& s) {
  std::string out = absl::StrCat("{\"steps\":", s.steps, ",\"final_loss\":", JsonNumber(s.final_loss),
                                 ",\"final_val_loss\":", JsonOptional(s.final_val_loss),
                                 ",\"param_checksum\":", JsonString(s.param_checksum),
                                 ",\"median_tokens_per_s\":", JsonNumber(s.median_tokens_per_s));
  if (s.hosts) absl::StrAppend(&out, ",\"hosts\":", *s.hosts);
  if (s.trainers) absl::StrAppend(&out, ",\"trainers\":", *s.trainers);
  if (s.replicated_actors) absl::StrAppend(&out, ",\"replicated_actors\":", *s.replicated_actors);
  if (s.replica_mismatches) absl::StrAppend(&out, ",\"replica_mismatches\":", *s.replica_mismatches);
  return out + "}";
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  if (values.size() % 2 == 1) return values[mid];
  const double upper = values[mid];
  const double lower = *std::max_element(values.begin(), values.begin() + mid);
  return (lower + upper) / 2;
}

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Create(const std::string& path) {
  std::unique_ptr<MetricsWriter> writer(new MetricsWriter(path));
  writer->out_.open(path, std::ios::out | std::ios::trunc);
  if (!writer->out_) return absl::FailedPreconditionError(absl::StrCat("cannot create metrics file '", path, "'"));
  return writer;
}

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Adopt(const std::string& path, int64_t step,
                                                                     std::map<int64_t, double>* tokens_per_s) {
  std::unique_ptr<MetricsWriter> writer(new MetricsWriter(path));
  std::ifstream in(path);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    // Lines are StepMetricsJson's: "step" comes first, "tokens_per_s" has a number or null.
    const size_t at = line.find("{\"step\":");
    if (at != 0) return absl::DataLossError(absl::StrCat(path, " line ", number, " has no step: ", line));
    const int64_t line_step = std::atoll(line.c_str() + 8);
    if (line_step > step) continue;
    const size_t rate = line.find("\"tokens_per_s\":");
    if (tokens_per_s != nullptr && rate != std::string::npos) {
      (*tokens_per_s)[line_step] = std::atof(line.c_str() + rate + 15);
    }
    writer->lines_.emplace_back(line_step, line);
  }
  if (absl::Status s = writer->DropAfter(step); !s.ok()) return s;
  return writer;
}

absl::Status MetricsWriter::Append(const StepMetrics& m) {
  std::string line = StepMetricsJson(m);
  out_ << line << '\n';
  out_.flush();
  if (!out_) return absl::DataLossError(absl::StrCat("error writing metrics file '", path_, "'"));
  lines_.emplace_back(m.step, std::move(line));
  return absl::OkStatus();
}

absl::Status MetricsWriter::DropAfter(int64_t step) {
  std::vector<std::pair<int64_t, std::string>> kept;
  for (auto& line : lines_) {
    if (line.first <= step) kept.push_back(std::move(line));
  }
  lines_ = std::move(kept);
  out_.close();
  out_.open(path_, std::ios::out | std::ios::trunc);
  if (!out_) return absl::DataLossError(absl::StrCat("cannot rewrite metrics file '", path_, "'"));
  for (const auto& line : lines_) out_ << line.second << '\n';
  out_.flush();
  if (!out_) return absl::DataLossError(absl::StrCat("error rewriting metrics file '", path_, "'"));
  return absl::OkStatus();
}

absl::Status WriteRunSummary(const std::string& path, const RunSummary& s) {
  std::ofstream out(path, std::ios::out | std::ios::trunc);
  if (!out) return absl::FailedPreconditionError(absl::StrCat("cannot create summary file '", path, "'"));
  out << RunSummaryJson(s) << '\n';
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat("error writing summary file '", path, "'"));
  return absl::OkStatus();
}

}  // namespace sy::trainer
