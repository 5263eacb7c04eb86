// model.json through nlohmann-json (see model_json.h).
#include "services/cluster/model_json.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace sy::cluster {
namespace {

using Json = nlohmann::json;

constexpr char kFormat[] = "switchyard-model";
constexpr int kVersion = 1;

struct IntField {
  const char* name;
  int gpu::ModelConfig::*member;
};
struct FloatField {
  const char* name;
  float gpu::ModelConfig::*member;
};

constexpr IntField kIntFields[] = {
    {"vocab", &gpu::ModelConfig::vocab},         {"layers", &gpu::ModelConfig::layers},
    {"d_model", &gpu::ModelConfig::d_model},     {"heads", &gpu::ModelConfig::heads},
    {"d_ff", &gpu::ModelConfig::d_ff},           {"experts", &gpu::ModelConfig::experts},
    {"moe_every", &gpu::ModelConfig::moe_every}, {"context", &gpu::ModelConfig::context},
};
constexpr FloatField kFloatFields[] = {
    {"capacity_factor", &gpu::ModelConfig::capacity_factor},
    {"eval_capacity_factor", &gpu::ModelConfig::eval_capacity_factor},
    {"lb_alpha", &gpu::ModelConfig::lb_alpha},
    {"z_beta", &gpu::ModelConfig::z_beta},
    {"jitter_eps", &gpu::ModelConfig::jitter_eps},
    {"dropout", &gpu::ModelConfig::dropout},
    {"expert_dropout", &gpu::ModelConfig::expert_dropout},
    {"skew", &gpu::ModelConfig::skew},
};

// The field `name` of object `j` when it has the type `is` checks; InvalidArgument otherwise.
absl::StatusOr<const Json*> Field(const Json& j, const std::string& where, const char* name,
                                  bool (Json::*is)() const noexcept, const char* type) {
  auto it = j.find(name);
  if (it == j.end()) return absl::InvalidArgumentError(absl::StrCat("model.json: ", where, name, " is missing"));
  if (!((*it).*is)()) {
    return absl::InvalidArgumentError(absl::StrCat("model.json: ", where, name, " is not ", type));
  }
  return &*it;
}

absl::StatusOr<gpu::ModelConfig> ParseConfig(const Json& j) {
  gpu::ModelConfig config;
  for (const IntField& f : kIntFields) {
    absl::StatusOr<const Json*> v = Field(j, "config.", f.name, &Json::is_number_integer, "an integer");
    if (!v.ok()) return v.status();
    const int64_t value = (*v)->get<int64_t>();
    if (value < 0 || value > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat("model.json: config.", f.name, " = ", value, " is out of range"));
    }
    config.*f.member = static_cast<int>(value);
  }
  for (const FloatField& f : kFloatFields) {
    absl::StatusOr<const Json*> v = Field(j, "config.", f.name, &Json::is_number, "a number");
    if (!v.ok()) return v.status();
    config.*f.member = (*v)->get<float>();
  }
  if (absl::Status s = config.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("model.json: config: ", s.message()));
  }
  return config;
}

}  // namespace

std::string ModelJson(const ModelDescription& d) {
  Json config = Json::object();
  for (const IntField& f : kIntFields) config[f.name] = d.config.*f.member;
  for (const FloatField& f : kFloatFields) config[f.name] = d.config.*f.member;
  const Json j = {{"format", kFormat},        {"version", kVersion},
                  {"step", d.step},           {"param_count", d.param_count},
                  {"param_checksum", d.param_checksum}, {"config", config}};
  return j.dump() + "\n";
}

absl::StatusOr<ModelDescription> ParseModelJson(absl::string_view text) {
  const Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("model.json: not a JSON object");
  absl::StatusOr<const Json*> format = Field(j, "", "format", &Json::is_string, "a string");
  if (!format.ok()) return format.status();
  if ((*format)->get<std::string>() != kFormat) {
    return absl::InvalidArgumentError(absl::StrCat("model.json: format is '", (*format)->get<std::string>(),
                                                   "', expected '", kFormat, "'"));
  }
  absl::StatusOr<const Json*> version = Field(j, "", "version", &Json::is_number_integer, "an integer");
  if (!version.ok()) return version.status();
  if ((*version)->get<int64_t>() != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.json: version ", (*version)->get<int64_t>(), ", this build reads ", kVersion));
  }
  ModelDescription d;
  absl::StatusOr<const Json*> step = Field(j, "", "step", &Json::is_number_unsigned, "a non-negative integer");
  absl::StatusOr<const Json*> count =
      step.ok() ? Field(j, "", "param_count", &Json::is_number_unsigned, "a non-negative integer") : step.status();
  absl::StatusOr<const Json*> checksum =
      count.ok() ? Field(j, "", "param_checksum", &Json::is_string, "a string") : count.status();
  absl::StatusOr<const Json*> config = checksum.ok() ? Field(j, "", "config", &Json::is_object, "an object")
                                                     : checksum.status();
  if (!config.ok()) return config.status();
  d.step = (*step)->get<uint64_t>();
  d.param_count = (*count)->get<int64_t>();
  d.param_checksum = (*checksum)->get<std::string>();
  absl::StatusOr<gpu::ModelConfig> parsed = ParseConfig(**config);
  if (!parsed.ok()) return parsed.status();
  d.config = *parsed;
  return d;
}

}  // namespace sy::cluster
