// metrics.jsonl / summary.json reader, the cluster record sy-local adds, and the
// end-of-run summary (see run_report.h).
#include "orchestration/local/run_report.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <system_error>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sy::local {
namespace {

using Json = nlohmann::ordered_json;  // keeps the file's key order when summary.json is rewritten

absl::StatusOr<Json> ParseObject(const std::string& text, const std::string& where) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& e) {
    return absl::DataLossError(absl::StrCat(where, ": not JSON: ", e.what()));
  }
  if (!json.is_object()) return absl::DataLossError(absl::StrCat(where, ": not a JSON object"));
  return json;
}

// Whether `value` holds a T: integers for integral T, any number for double, text for a string.
template <typename T>
bool Holds(const Json& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value.is_string();
  } else if constexpr (std::is_integral_v<T>) {
    return value.is_number_integer();
  } else {
    return value.is_number();
  }
}

// Typed fields of one JSON object. The first missing or mistyped field becomes the
// shared status (DataLoss naming `where`); its getter returns an empty value.
class FieldReader {
 public:
  FieldReader(const Json& object, const std::string& where, absl::Status* status)
      : object_(object), where_(where), status_(status) {}

  bool Has(const char* key) const { return object_.contains(key); }

  // A required number (a JSON null is refused: the files write non-finite values as null).
  template <typename T>
  T Number(const char* key) {
    const Json* value = Find(key);
    if (value == nullptr) return T{};
    if (!Holds<T>(*value)) return Fail<T>(absl::StrCat("field \"", key, "\" is not a number"));
    return value->template get<T>();
  }
  // An optional number: absent or null gives nullopt.
  template <typename T>
  std::optional<T> OptionalNumber(const char* key) {
    if (!Has(key) || object_[key].is_null()) return std::nullopt;
    return Number<T>(key);
  }
  // A required non-empty string.
  std::string String(const char* key) {
    const Json* value = Find(key);
    if (value == nullptr) return "";
    if (!value->is_string() || value->empty()) return Fail<std::string>(absl::StrCat("missing field \"", key, "\""));
    return value->get<std::string>();
  }
  std::vector<std::vector<int64_t>> IntMatrix(const char* key) {
    using Matrix = std::vector<std::vector<int64_t>>;
    const Json* rows = Find(key);
    if (rows == nullptr) return {};
    const auto integers = [](const Json& row) {
      return row.is_array() && std::all_of(row.begin(), row.end(), Holds<int64_t>);
    };
    if (!rows->is_array() || !std::all_of(rows->begin(), rows->end(), integers)) {
      return Fail<Matrix>(absl::StrCat("\"", key, "\" is not an array of integer arrays"));
    }
    return rows->get<Matrix>();
  }
  // An object whose values are all T (`kind` names T in the error).
  template <typename T>
  std::map<std::string, T> MapOf(const char* key, const char* kind) {
    using Map = std::map<std::string, T>;
    const Json* map = Find(key);
    if (map == nullptr) return {};
    if (!map->is_object() || !std::all_of(map->begin(), map->end(), Holds<T>)) {
      return Fail<Map>(absl::StrCat("\"", key, "\" is not an object of ", kind));
    }
    return map->template get<Map>();
  }
  // The fields of the object under `key`, reported to the same status.
  FieldReader Object(const char* key) {
    const Json* value = Find(key);
    if (value != nullptr && value->is_object()) return FieldReader(*value, where_, status_);
    if (value != nullptr) Fail<int>(absl::StrCat("field \"", key, "\" is not an object"));
    return FieldReader(kEmptyObject, where_, status_);
  }

 private:
  // The value under `key`; null after recording that it is missing.
  const Json* Find(const char* key) {
    const auto it = object_.find(key);
    if (it != object_.end()) return &*it;
    Fail<int>(absl::StrCat("missing field \"", key, "\""));
    return nullptr;
  }
  template <typename T>
  T Fail(const std::string& what) {
    if (status_->ok()) *status_ = absl::DataLossError(absl::StrCat(where_, ": ", what));
    return T{};
  }

  static inline const Json kEmptyObject = Json::object();
  const Json& object_;
  const std::string& where_;
  absl::Status* status_;
};

absl::StatusOr<StepRecord> ParseStep(const std::string& line, const std::string& where) {
  absl::StatusOr<Json> object = ParseObject(line, where);
  if (!object.ok()) return object.status();
  absl::Status status;
  FieldReader f(*object, where, &status);
  StepRecord r;
  r.step = f.Number<int64_t>("step");
  r.loss = f.Number<double>("loss");
  r.tokens_per_s = f.Number<double>("tokens_per_s");
  r.dropped_frac = f.Number<double>("dropped_frac");
  r.val_loss = f.OptionalNumber<double>("val_loss");
  r.bytes_sent = f.OptionalNumber<int64_t>("bytes_sent");
  r.expert_tokens = f.IntMatrix("expert_tokens");
  if (!status.ok()) return status;
  return r;
}

// The cluster record of summary.json, when sy-local added one (host_cpu_seconds always,
// each other part whole or not at all).
std::optional<ClusterRecord> ReadClusterRecord(FieldReader& f) {
  if (!f.Has("host_cpu_seconds") && !f.Has("recoveries")) return std::nullopt;
  ClusterRecord record;
  if (f.Has("recoveries")) {
    ClusterCounts& c = record.counts.emplace();
    c.recoveries = f.Number<uint32_t>("recoveries");
    c.checkpoints = f.Number<uint32_t>("checkpoints");
    c.migrations = f.Number<uint32_t>("migrations");
    c.replications = f.Number<uint32_t>("replications");
  }
  if (f.Has("max_over_mean_host_load")) {
    FieldReader load = f.Object("max_over_mean_host_load");
    HostLoadRatios& r = record.max_over_mean_host_load.emplace();
    r.first_10_steps = load.Number<double>("first_10_steps");
    r.last_10_steps = load.Number<double>("last_10_steps");
  }
  record.host_cpu_seconds = f.MapOf<double>("host_cpu_seconds", "numbers");
  if (f.Has("missing")) record.missing = f.MapOf<std::string>("missing", "strings");
  return record;
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
  absl::StatusOr<Json> summary = ParseObject(*summary_text, summary_path);
  if (!summary.ok()) return summary.status();
  absl::Status status;
  FieldReader f(*summary, summary_path, &status);
  report.summary_steps = f.Number<int64_t>("steps");
  report.final_loss = f.Number<double>("final_loss");
  report.final_val_loss = f.OptionalNumber<double>("final_val_loss");
  report.median_tokens_per_s = f.Number<double>("median_tokens_per_s");
  report.hosts = f.OptionalNumber<int>("hosts");
  report.trainers = f.OptionalNumber<int>("trainers");
  report.replicated_actors = f.OptionalNumber<int>("replicated_actors");
  report.replica_mismatches = f.OptionalNumber<int>("replica_mismatches");
  report.cluster = ReadClusterRecord(f);
  report.param_checksum = f.String("param_checksum");
  if (!status.ok()) return status;
  if (report.replicated_actors.has_value() != report.replica_mismatches.has_value()) {
    return absl::DataLossError(absl::StrCat(summary_path,
                                            ": \"replicated_actors\" and \"replica_mismatches\" come together"));
  }
  return report;
}

absl::Status AddClusterRecordToSummary(const std::string& path, const ClusterRecord& record) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return absl::DataLossError(absl::StrCat(path, " is not a JSON object"));
  absl::StatusOr<Json> summary = ParseObject(*text, path);
  if (!summary.ok()) return absl::DataLossError(absl::StrCat(path, " is not a JSON object"));
  Json& s = *summary;
  if (const std::optional<ClusterCounts>& c = record.counts) {
    s["recoveries"] = c->recoveries;
    s["checkpoints"] = c->checkpoints;
    s["migrations"] = c->migrations;
    s["replications"] = c->replications;
  }
  if (const std::optional<HostLoadRatios>& r = record.max_over_mean_host_load) {
    s["max_over_mean_host_load"] = {{"first_10_steps", r->first_10_steps}, {"last_10_steps", r->last_10_steps}};
  }
  s["host_cpu_seconds"] = Json::object();
  for (const auto& [host, seconds] : record.host_cpu_seconds) s["host_cpu_seconds"][host] = seconds;
  if (!record.host_load_per_step.empty()) {
    Json& series = s["host_load_per_step"] = Json::array();
    for (const HostLoadAtStep& h : record.host_load_per_step) {
      series.push_back({{"step", h.step}, {"epoch", h.epoch}, {"tokens", h.tokens}});
    }
  }
  if (record.checkpoint_steps) s["checkpoint_steps"] = *record.checkpoint_steps;
  if (!record.missing.empty()) s["missing"] = record.missing;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << s.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
    if (!out) return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot replace ", path, ": ", ec.message()));
  return absl::OkStatus();
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
