// sy-generate's flags and run (see generate_command.h).
#include "services/generate/generate_command.h"

#include <memory>

#include "absl/flags/flag.h"
#include "common/flags/flags.h"
#include "common/flags/log_level_flag.h"
#include "common/flags/option_flags.h"
#include "services/generate/generator.h"
#include "services/generate/model_source.h"

namespace {
// The flags defined below, each the copy of one GenerateOptions field.
struct GenerateFlagsName;
constexpr auto GenerateFlags = &sy::flags::OptionFlags<sy::generate::GenerateOptions, GenerateFlagsName>;
}  // namespace

SY_OPTION_FLAG(GenerateFlags, std::string, checkpoint,
               "a run's workdir (model.json + model.bin) or a coordinator's checkpoint database directory (required)");
SY_OPTION_FLAG(
    GenerateFlags, std::string, model_config,
    "with a checkpoint database: the model.json of the run that wrote it (default: the one beside the database)");
SY_OPTION_FLAG(GenerateFlags, int64_t, tokens, "bytes to generate, in [1, 1000000]");
SY_OPTION_FLAG(GenerateFlags, std::string, prompt, "text the sample continues (empty: a new line)");
SY_OPTION_FLAG(GenerateFlags, double, temperature,
               "softmax temperature in [0, 100]; 0 always takes the most likely byte");
SY_OPTION_FLAG(GenerateFlags, uint64_t, seed, "seed of the sampling draws: the same seed gives the same text");

namespace sy::generate {

absl::StatusOr<GenerateOptions> ParseGenerateOptions(const std::vector<std::string>& args) {
  if (absl::Status s = flags::ParseFlagArgs(args); !s.ok()) return s;
  GenerateOptions o;
  GenerateFlags().ReadInto(&o);
  if (absl::Status s = flags::FirstFailure({flags::RequireNonEmpty("checkpoint", o.checkpoint),
                                            flags::RequireInRange("tokens", o.tokens, 1, 1000000),
                                            flags::RequireInRange("temperature", o.temperature, 0.0, 100.0)});
      !s.ok()) {
    return s;
  }
  return o;
}

int RunGenerate(const GenerateOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<LoadedModel> loaded = LoadModel(options.checkpoint, options.model_config);
  if (!loaded.ok()) {
    err << "sy-generate: " << loaded.status().message() << "\n";
    return flags::kUsageErrorExitCode;
  }
  absl::StatusOr<std::unique_ptr<Generator>> generator = Generator::Create(loaded->config, loaded->values);
  if (!generator.ok()) {
    err << "sy-generate: " << generator.status().message() << "\n";
    return flags::kUsageErrorExitCode;
  }
  err << "sy-generate: " << loaded->description << ", " << options.tokens << " bytes at temperature "
      << options.temperature << ", seed " << options.seed << "\n";
  absl::StatusOr<std::string> text =
      (*generator)->Continue(options.prompt, options.tokens, options.temperature, options.seed);
  if (!text.ok()) {
    err << "sy-generate: " << text.status().message() << "\n";
    return text.status().code() == absl::StatusCode::kInvalidArgument ? flags::kUsageErrorExitCode : 1;
  }
  out << options.prompt << *text;
  out.flush();
  return 0;
}

}  // namespace sy::generate
