// model.bin and model.json: round trips, and every kind of damage refused with a
// message naming it (truncation at any length, a flipped value, another config).
#include "gpu/model/weights_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "services/cluster/model_json.h"
#include "services/cluster/param_checksum.h"
#include "services/cluster/saved_model.h"
#include "tests/unit/generate/tiny_config.h"

namespace sy::generate {
namespace {

using ::testing::HasSubstr;

using testing::TinyConfig;

gpu::Weights TinyWeights(const gpu::ModelConfig& config) {
  const std::vector<gpu::ParamInfo> infos = gpu::ParamInfos(config);
  std::vector<float> values(static_cast<size_t>(gpu::ParamCount(infos)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 97) * 0.25f - 3.0f;
  return gpu::WeightsOfParams(infos, std::move(values), /*step=*/42);
}

TEST(WeightsFileTest, RoundTripKeepsNamesShapesValuesStepAndTheParamChecksum) {
  const gpu::ModelConfig config = TinyConfig();
  const gpu::Weights w = TinyWeights(config);
  absl::StatusOr<gpu::Weights> back = gpu::ParseWeights(gpu::SerializeWeights(w));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->step, 42u);
  EXPECT_EQ(back->values, w.values);
  ASSERT_EQ(back->tensors.size(), w.tensors.size());
  EXPECT_EQ(back->tensors[0].name, "wte");
  EXPECT_TRUE(gpu::CheckWeightsFit(*back, gpu::ParamInfos(config)).ok());
  // The trailer is the run's param_checksum over the same values.
  cluster::ParamChecksum checksum;
  checksum.Add(w.values.data(), w.values.size());
  EXPECT_EQ(back->checksum, checksum.value());
}

TEST(WeightsFileTest, EveryTruncationIsRefusedAsTruncated) {
  const std::string bytes = gpu::SerializeWeights(TinyWeights(TinyConfig()));
  for (size_t n = 0; n < bytes.size(); n += (n < 600 ? 1 : 997)) {
    absl::StatusOr<gpu::Weights> w = gpu::ParseWeights(absl::string_view(bytes).substr(0, n));
    ASSERT_FALSE(w.ok()) << n;
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument) << n;
    if (n >= 4) {
      EXPECT_THAT(w.status().message(), HasSubstr("truncated")) << n;
    }
  }
  EXPECT_THAT(gpu::ParseWeights(bytes + "x").status().message(), HasSubstr("bytes after the checksum"));
  EXPECT_THAT(gpu::ParseWeights("SYTF" + bytes.substr(4)).status().message(), HasSubstr("magic"));
}

TEST(WeightsFileTest, AFlippedValueIsDataLoss) {
  std::string bytes = gpu::SerializeWeights(TinyWeights(TinyConfig()));
  bytes[bytes.size() - 100] ^= 0x10;
  absl::StatusOr<gpu::Weights> w = gpu::ParseWeights(bytes);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(w.status().message(), HasSubstr("corrupt"));
}

TEST(WeightsFileTest, WeightsOfAnotherShapeDoNotFit) {
  gpu::ModelConfig other = TinyConfig();
  other.d_ff = 64;
  const absl::Status s = gpu::CheckWeightsFit(TinyWeights(TinyConfig()), gpu::ParamInfos(other));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("shape mismatch"));
}

TEST(ModelJsonTest, RoundTripAndClearErrors) {
  cluster::ModelDescription d;
  d.config = TinyConfig();
  d.config.dropout = 0.1f;
  d.step = 7;
  d.param_count = 1234;
  d.param_checksum = "00112233aabbccdd";
  absl::StatusOr<cluster::ModelDescription> back = cluster::ParseModelJson(cluster::ModelJson(d));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->config.DebugString(), d.config.DebugString());
  EXPECT_EQ(back->config.dropout, 0.1f);
  EXPECT_EQ(back->step, 7u);
  EXPECT_EQ(back->param_checksum, d.param_checksum);
  EXPECT_THAT(cluster::ParseModelJson("{").status().message(), HasSubstr("not a JSON object"));
  EXPECT_THAT(cluster::ParseModelJson(R"({"format":"other","version":1})").status().message(), HasSubstr("format"));
  std::string no_heads = cluster::ModelJson(d);
  no_heads.replace(no_heads.find("\"heads\""), 7, "\"headz\"");
  EXPECT_THAT(cluster::ParseModelJson(no_heads).status().message(), HasSubstr("config.heads is missing"));
}

TEST(SavedModelTest, SavesAtomicallyAndRefusesAPairThatDoesNotBelongTogether) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/saved_model_", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const gpu::ModelConfig config = TinyConfig();
  ASSERT_TRUE(cluster::SaveModel(dir, config, TinyWeights(config)).ok());
  EXPECT_FALSE(std::filesystem::exists(dir + "/model.bin.tmp"));
  absl::StatusOr<cluster::SavedModel> saved = cluster::LoadSavedModel(dir);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->weights.values, TinyWeights(config).values);
  // model.bin of other values beside this model.json: the checksums disagree.
  gpu::Weights other = TinyWeights(config);
  other.values[0] += 1;
  other = gpu::WeightsOfParams(gpu::ParamInfos(config), other.values, 42);
  std::ofstream(dir + "/model.bin", std::ios::binary | std::ios::trunc) << gpu::SerializeWeights(other);
  EXPECT_THAT(cluster::LoadSavedModel(dir).status().message(), HasSubstr("is not the model"));
  std::filesystem::remove(dir + "/model.bin");
  EXPECT_EQ(cluster::LoadSavedModel(dir).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sy::generate
