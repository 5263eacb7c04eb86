// metrics.jsonl / summary.json reader and the end-of-run summary (see run_report.h).
#include "orchestration/local/run_report.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sy::local {
namespace {

using boost::property_tree::ptree;

absl::StatusOr<ptree> ParseJson(const std::string& text, const std::string& where) {
  ptree tree;
  std::istringstream in(text);
  try {
    boost::property_tree::read_json(in, tree);
  } catch (const boost::property_tree::json_parser_error& e) {
    return absl::DataLossError(absl::StrCat(where, ": not JSON: ", e.message()));
  }
  return tree;
}

// A required number (a JSON null is refused: the files write non-finite values as null).
template <typename T>
absl::StatusOr<T> Number(const ptree& tree, const char* key, const std::string& where) {
  boost::optional<const ptree&> child = tree.get_child_optional(key);
  if (!child) return absl::DataLossError(absl::StrCat(where, ": missing field \"", key, "\""));
  boost::optional<T> value = child->get_value_optional<T>();
  if (!value) return absl::DataLossError(absl::StrCat(where, ": field \"", key, "\" is not a number"));
  return *value;
}

// An optional number: absent or null gives nullopt.
template <typename T>
absl::StatusOr<std::optional<T>> OptionalNumber(const ptree& tree, const char* key, const std::string& where) {
  boost::optional<const ptree&> child = tree.get_child_optional(key);
  if (!child || child->data() == "null") return std::optional<T>();
  boost::optional<T> value = child->get_value_optional<T>();
  if (!value) return absl::DataLossError(absl::StrCat(where, ": field \"", key, "\" is not a number"));
  return std::optional<T>(*value);
}

absl::StatusOr<std::vector<std::vector<int64_t>>> IntMatrix(const ptree& tree, const char* key,
                                                            const std::string& where) {
  boost::optional<const ptree&> rows = tree.get_child_optional(key);
  if (!rows) return absl::DataLossError(absl::StrCat(where, ": missing field \"", key, "\""));
  std::vector<std::vector<int64_t>> out;
  for (const auto& [row_key, row] : *rows) {
    if (!row_key.empty()) return absl::DataLossError(absl::StrCat(where, ": \"", key, "\" is not an array"));
    out.emplace_back();
    for (const auto& [cell_key, cell] : row) {
      boost::optional<int64_t> v = cell.get_value_optional<int64_t>();
      if (!cell_key.empty() || !v) {
        return absl::DataLossError(absl::StrCat(where, ": \"", key, "\" is not an array of integer arrays"));
      }
      out.back().push_back(*v);
    }
  }
  return out;
}

absl::StatusOr<StepRecord> ParseStep(const std::string& line, const std::string& where) {
  absl::StatusOr<ptree> tree = ParseJson(line, where);
  if (!tree.ok()) return tree.status();
  StepRecord r;
  absl::StatusOr<int64_t> step = Number<int64_t>(*tree, "step", where);
  absl::StatusOr<double> loss = Number<double>(*tree, "loss", where);
  absl::StatusOr<double> tps = Number<double>(*tree, "tokens_per_s", where);
  absl::StatusOr<double> dropped = Number<double>(*tree, "dropped_frac", where);
  absl::StatusOr<std::optional<double>> val = OptionalNumber<double>(*tree, "val_loss", where);
  absl::StatusOr<std::optional<int64_t>> bytes = OptionalNumber<int64_t>(*tree, "bytes_sent", where);
  absl::StatusOr<std::vector<std::vector<int64_t>>> experts = IntMatrix(*tree, "expert_tokens", where);
  for (const absl::Status& s : {step.status(), loss.status(), tps.status(), dropped.status(), val.status(),
                                bytes.status(), experts.status()}) {
    if (!s.ok()) return s;
  }
  r.step = *step;
  r.loss = *loss;
  r.tokens_per_s = *tps;
  r.dropped_frac = *dropped;
  r.val_loss = *val;
  r.bytes_sent = *bytes;
  r.expert_tokens = *std::move(experts);
  return r;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

absl::StatusOr<RunReport> ReadRunReport(const std::string& workdir) {
  RunReport report;
  const std::string metrics_path = workdir + "/metrics.jsonl";
  absl::StatusOr<std::string> metrics = ReadFile(metrics_path);
  if (!metrics.ok()) return metrics.status();
  std::istringstream lines(*metrics);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.empty()) continue;
    absl::StatusOr<StepRecord> r = ParseStep(line, absl::StrCat(metrics_path, ":", number));
    if (!r.ok()) return r.status();
    report.steps.push_back(*std::move(r));
  }
  const std::string summary_path = workdir + "/summary.json";
  absl::StatusOr<std::string> summary_text = ReadFile(summary_path);
  if (!summary_text.ok()) return summary_text.status();
  absl::StatusOr<ptree> summary = ParseJson(*summary_text, summary_path);
  if (!summary.ok()) return summary.status();
  absl::StatusOr<int64_t> steps = Number<int64_t>(*summary, "steps", summary_path);
  absl::StatusOr<double> final_loss = Number<double>(*summary, "final_loss", summary_path);
  absl::StatusOr<std::optional<double>> val = OptionalNumber<double>(*summary, "final_val_loss", summary_path);
  absl::StatusOr<double> tps = Number<double>(*summary, "median_tokens_per_s", summary_path);
  absl::StatusOr<std::optional<int>> hosts = OptionalNumber<int>(*summary, "hosts", summary_path);
  absl::StatusOr<std::optional<int>> trainers = OptionalNumber<int>(*summary, "trainers", summary_path);
  absl::StatusOr<std::optional<int>> replicated =
      OptionalNumber<int>(*summary, "replicated_actors", summary_path);
  absl::StatusOr<std::optional<int>> mismatches =
      OptionalNumber<int>(*summary, "replica_mismatches", summary_path);
  for (const absl::Status& s : {steps.status(), final_loss.status(), val.status(), tps.status(), hosts.status(),
                                trainers.status(), replicated.status(), mismatches.status()}) {
    if (!s.ok()) return s;
  }
  if (replicated->has_value() != mismatches->has_value()) {
    return absl::DataLossError(absl::StrCat(summary_path,
                                            ": \"replicated_actors\" and \"replica_mismatches\" come together"));
  }
  report.param_checksum = summary->get<std::string>("param_checksum", "");
  if (report.param_checksum.empty()) {
    return absl::DataLossError(absl::StrCat(summary_path, ": missing field \"param_checksum\""));
  }
  report.summary_steps = *steps;
  report.final_loss = *final_loss;
  report.final_val_loss = *val;
  report.median_tokens_per_s = *tps;
  report.hosts = *hosts;
  report.trainers = *trainers;
  report.replicated_actors = *replicated;
  report.replica_mismatches = *mismatches;
  return report;
}

double MeanLossOfFirst(const RunReport& report, int count) {
  const size_t n = std::min<size_t>(std::max(count, 0), report.steps.size());
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += report.steps[i].loss;
  return n ? sum / n : 0;
}

double MeanLossOfLast(const RunReport& report, int count) {
  const size_t n = std::min<size_t>(std::max(count, 0), report.steps.size());
  double sum = 0;
  for (size_t i = report.steps.size() - n; i < report.steps.size(); ++i) sum += report.steps[i].loss;
  return n ? sum / n : 0;
}

std::vector<std::vector<int64_t>> TotalExpertTokens(const RunReport& report) {
  std::vector<std::vector<int64_t>> total;
  for (const StepRecord& r : report.steps) {
    if (total.size() < r.expert_tokens.size()) total.resize(r.expert_tokens.size());
    for (size_t l = 0; l < r.expert_tokens.size(); ++l) {
      if (total[l].size() < r.expert_tokens[l].size()) total[l].resize(r.expert_tokens[l].size(), 0);
      for (size_t e = 0; e < r.expert_tokens[l].size(); ++e) total[l][e] += r.expert_tokens[l][e];
    }
  }
  return total;
}

double MeanDroppedFraction(const RunReport& report) {
  double sum = 0;
  for (const StepRecord& r : report.steps) sum += r.dropped_frac;
  return report.steps.empty() ? 0 : sum / report.steps.size();
}

std::optional<double> MeanBytesSentPerStep(const RunReport& report) {
  double sum = 0;
  int n = 0;
  for (const StepRecord& r : report.steps) {
    if (r.bytes_sent) {
      sum += static_cast<double>(*r.bytes_sent);
      ++n;
    }
  }
  if (n == 0) return std::nullopt;
  return sum / n;
}

std::string FormatRunReport(const RunReport& report) {
  std::string out = "summary";
  if (report.hosts && report.trainers) {
    absl::StrAppend(&out, " (", *report.hosts, " hosts x ", *report.trainers, " trainers)");
  } else {
    absl::StrAppend(&out, " (standalone: every expert in-process)");
  }
  absl::StrAppend(&out, "\n");
  const int window = std::max<int>(1, std::min<int>(10, report.steps.size() / 5));
  if (!report.steps.empty()) {
    absl::StrAppendFormat(&out, "  loss           %.4f (step %d) -> %.4f (step %d); mean of first/last %d steps %.4f -> %.4f\n",
                          report.steps.front().loss, report.steps.front().step, report.steps.back().loss,
                          report.steps.back().step, window, MeanLossOfFirst(report, window),
                          MeanLossOfLast(report, window));
  }
  std::string val_curve;
  for (const StepRecord& r : report.steps) {
    if (r.val_loss) absl::StrAppendFormat(&val_curve, "%s%.4f (step %d)", val_curve.empty() ? "" : ", ", *r.val_loss, r.step);
  }
  if (!val_curve.empty()) absl::StrAppend(&out, "  val loss       ", val_curve, "\n");
  absl::StrAppendFormat(&out, "  tokens/s       %.0f (median over %d steps)\n", report.median_tokens_per_s,
                        report.summary_steps);
  if (!report.steps.empty()) {
    absl::StrAppendFormat(&out, "  dropped        %.1f%% of routed tokens over capacity (step %d) -> %.1f%% (step %d); mean %.1f%%\n",
                          100 * report.steps.front().dropped_frac, report.steps.front().step,
                          100 * report.steps.back().dropped_frac, report.steps.back().step,
                          100 * MeanDroppedFraction(report));
  }
  absl::StrAppend(&out, "  param checksum ", report.param_checksum, "\n");
  if (report.replicated_actors.value_or(0) > 0) {
    const int mismatches = report.replica_mismatches.value_or(0);
    absl::StrAppendFormat(&out, "  replicas       %d replicated experts at the end; %s\n", *report.replicated_actors,
                          mismatches == 0 ? std::string("every replica identical")
                                          : absl::StrCat(mismatches, " with replicas that DIFFER"));
  }
  if (std::optional<double> bytes = MeanBytesSentPerStep(report)) {
    absl::StrAppendFormat(&out, "  wire           %.0f bytes sent per step (mean; requests of every trainer)\n", *bytes);
  }
  const std::vector<std::vector<int64_t>> experts = TotalExpertTokens(report);
  if (!experts.empty()) {
    absl::StrAppend(&out, "expert load: tokens routed to each expert over the run (share of its layer; max/mean)\n");
    absl::StrAppend(&out, "  switch layer");
    size_t width = 0;
    for (const auto& row : experts) width = std::max(width, row.size());
    for (size_t e = 0; e < width; ++e) absl::StrAppendFormat(&out, " %14s", absl::StrCat("expert ", e));
    absl::StrAppend(&out, "  max/mean\n");
    for (size_t l = 0; l < experts.size(); ++l) {
      const int64_t sum = std::accumulate(experts[l].begin(), experts[l].end(), int64_t{0});
      const int64_t max = experts[l].empty() ? 0 : *std::max_element(experts[l].begin(), experts[l].end());
      absl::StrAppendFormat(&out, "  %12d", l);
      for (int64_t tokens : experts[l]) {
        absl::StrAppendFormat(&out, " %7d (%4.1f%%)", tokens, sum ? 100.0 * tokens / sum : 0.0);
      }
      const double mean = experts[l].empty() ? 0 : static_cast<double>(sum) / experts[l].size();
      absl::StrAppendFormat(&out, "  %8.2f\n", mean > 0 ? max / mean : 0.0);
    }
  }
  return out;
}

}  // namespace sy::local
