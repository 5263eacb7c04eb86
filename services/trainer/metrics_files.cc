// metrics.jsonl and summary.json writers (see metrics_files.h), on nlohmann::json.
#include "services/trainer/metrics_files.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace sy::trainer {
namespace {

using Json = nlohmann::ordered_json;  // keys in the order they are set

// JSON has no NaN or infinity: they become null. A whole number is written as an
// integer ("1000", not "1000.0"); any other keeps every digit it needs to read back exactly.
Json JsonNumber(double v) {
  if (!std::isfinite(v)) return nullptr;
  if (v == std::trunc(v) && std::fabs(v) < 0x1p53) return static_cast<int64_t>(v);
  return v;
}

std::string Dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

std::string StepMetricsJson(const StepMetrics& m) {
  Json json = {{"step", m.step}, {"loss", JsonNumber(m.loss)}, {"lb_loss", JsonNumber(m.lb_loss)},
               {"z_loss", JsonNumber(m.z_loss)}};
  if (m.val_loss) json["val_loss"] = JsonNumber(*m.val_loss);
  json["tokens_per_s"] = JsonNumber(m.tokens_per_s);
  json["dropped_frac"] = JsonNumber(m.dropped_frac);
  json["expert_tokens"] = m.expert_tokens;
  if (m.bytes_sent) json["bytes_sent"] = *m.bytes_sent;
  if (!m.switch_layer_dropped_frac.empty()) {
    Json& layers = json["switch_layer_dropped_frac"] = Json::array();
    for (double frac : m.switch_layer_dropped_frac) layers.push_back(JsonNumber(frac));
  }
  return Dump(json);
}

int64_t ReplayedSteps(const std::vector<Rollback>& rollbacks) {
  int64_t replayed = 0;
  for (const Rollback& r : rollbacks) replayed += r.reached_step - r.to_step;
  return replayed;
}

std::string RunSummaryJson(const RunSummary& s) {
  Json json = {{"steps", s.steps},
               {"final_loss", JsonNumber(s.final_loss)},
               {"final_val_loss", s.final_val_loss ? JsonNumber(*s.final_val_loss) : Json(nullptr)},
               {"param_checksum", s.param_checksum},
               {"median_tokens_per_s", JsonNumber(s.median_tokens_per_s)}};
  if (s.hosts) json["hosts"] = *s.hosts;
  if (s.trainers) json["trainers"] = *s.trainers;
  if (s.replicated_actors) json["replicated_actors"] = *s.replicated_actors;
  if (s.replica_mismatches) json["replica_mismatches"] = *s.replica_mismatches;
  if (!s.rollbacks.empty()) {
    Json& rollbacks = json["rollbacks"] = Json::array();
    for (const Rollback& r : s.rollbacks) rollbacks.push_back({{"reached_step", r.reached_step}, {"to_step", r.to_step}});
  }
  json["replayed_steps"] = ReplayedSteps(s.rollbacks);
  Json& recovery = json["recovery_seconds"] = Json::array();
  for (double seconds : s.recovery_seconds) recovery.push_back(JsonNumber(seconds));
  return Dump(json);
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
    const Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    const auto step_field = record.is_object() ? record.find("step") : record.end();
    if (step_field == record.end() || !step_field->is_number_integer()) {
      return absl::DataLossError(absl::StrCat(path, " line ", number, " has no step: ", line));
    }
    const int64_t line_step = step_field->get<int64_t>();
    if (line_step > step) continue;
    const auto rate = record.find("tokens_per_s");
    if (tokens_per_s != nullptr && rate != record.end()) {
      // A null rate (not finite when it was written) counts as 0.
      (*tokens_per_s)[line_step] = rate->is_number() ? rate->get<double>() : 0;
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
