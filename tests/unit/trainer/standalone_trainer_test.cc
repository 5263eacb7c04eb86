// End-to-end tests of the standalone training loop on a tiny Switch model and a
// small English-like text generated here: loss falls, the same seed gives the
// same parameter checksum, another seed a different one, and the metrics files
// describe the run.
#include "services/trainer/standalone_trainer.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace sy::trainer {
namespace {

// ~24 KB of sentences picked by a fixed LCG: learnable structure, no external file.
std::string WriteCorpus() {
  static const char* kSentences[] = {
      "The quick brown fox jumps over the lazy dog. ", "To be, or not to be, that is the question. ",
      "All that glitters is not gold. ", "A journey of a thousand miles begins with a single step. ",
      "Brevity is the soul of wit. ", "The lady doth protest too much, methinks. ",
      "Now is the winter of our discontent. ", "What light through yonder window breaks? "};
  const std::string path = ::testing::TempDir() + "/standalone_corpus.txt";
  std::ofstream out(path);
  uint32_t state = 12345;
  for (int i = 0; i < 600; ++i) {
    state = state * 1664525u + 1013904223u;
    out << kSentences[(state >> 16) % 8];
  }
  return path;
}

cluster::TrainerOptions TinyOptions(uint64_t seed, const std::string& workdir = "") {
  static const std::string corpus = WriteCorpus();
  cluster::TrainerOptions o;
  o.standalone = true;
  o.data = corpus;
  o.steps = 25;
  o.workdir = workdir;
  o.threads = 1;
  o.layers = 2;
  o.d_model = 32;
  o.heads = 2;
  o.d_ff = 64;
  o.experts = 4;
  o.moe_every = 1;
  o.context = 32;
  o.micro_batch = 4;
  o.micro_batches = 3;  // not a power of two: exercises the gradient tree
  o.lr = 1e-2;
  o.warmup = 3;
  o.dropout = 0.1;
  o.expert_dropout = 0.2;
  o.jitter = 0.01;
  o.eval_every = 10;
  o.eval_batches = 2;
  o.seed = seed;
  return o;
}

RunResult Train(const cluster::TrainerOptions& o, double* initial_val = nullptr) {
  absl::StatusOr<std::unique_ptr<StandaloneTrainer>> trainer = StandaloneTrainer::Create(o);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  if (!trainer.ok()) return {};
  if (initial_val != nullptr) *initial_val = (*trainer)->Validate().value();
  std::ostringstream progress;
  absl::StatusOr<RunResult> result = (*trainer)->Run(progress);
  EXPECT_TRUE(result.ok()) << result.status();
  const std::string last = "step " + std::to_string(o.steps) + "/" + std::to_string(o.steps) + " | loss ";
  EXPECT_NE(progress.str().find(last), std::string::npos) << progress.str();
  EXPECT_NE(progress.str().find("param_checksum "), std::string::npos);
  return result.ok() ? *result : RunResult{};
}

TEST(StandaloneTrainerTest, LossFallsAndSameSeedGivesSameChecksum) {
  double initial_val = 0;
  const RunResult a = Train(TinyOptions(7), &initial_val);
  const RunResult b = Train(TinyOptions(7));
  const RunResult c = Train(TinyOptions(8));
  ASSERT_TRUE(a.final_val_loss.has_value());
  // ln(256) + 1/2 at init: the tied head gives unit-variance logits (wte std 1/sqrt(d_model)).
  EXPECT_NEAR(initial_val, 5.545 + 0.5, 0.3);
  EXPECT_LT(*a.final_val_loss, initial_val - 1.5) << "validation loss did not fall";
  ASSERT_EQ(a.val_curve.size(), 3u);  // steps 10, 20 and the last
  EXPECT_EQ(a.val_curve.back().first, 25);
  EXPECT_EQ(a.param_checksum.size(), 16u);
  EXPECT_EQ(a.param_checksum, b.param_checksum);
  EXPECT_EQ(a.final_val_loss, b.final_val_loss);
  EXPECT_NE(a.param_checksum, c.param_checksum);
}

TEST(StandaloneTrainerTest, Bf16WireIsDeterministicAndDiffersFromF32) {
  cluster::TrainerOptions f32 = TinyOptions(7);
  f32.steps = 8;
  cluster::TrainerOptions bf16 = f32;
  bf16.wire_dtype = "bf16";
  double initial_val = 0;
  const RunResult a = Train(bf16, &initial_val);
  const RunResult b = Train(bf16);
  ASSERT_TRUE(a.final_val_loss.has_value());
  EXPECT_LT(*a.final_val_loss, initial_val - 0.3) << "validation loss did not fall";
  EXPECT_EQ(a.param_checksum, b.param_checksum);
  EXPECT_NE(a.param_checksum, Train(f32).param_checksum);  // rounding changed the trajectory
}

TEST(StandaloneTrainerTest, ChecksumDoesNotDependOnThreadCount) {
  cluster::TrainerOptions one = TinyOptions(11);
  one.steps = 6;
  cluster::TrainerOptions two = one;
  two.threads = 2;
  EXPECT_EQ(Train(one).param_checksum, Train(two).param_checksum);
}

TEST(StandaloneTrainerTest, WritesMetricsAndSummary) {
  const std::string dir = ::testing::TempDir() + "/standalone_workdir";
  cluster::TrainerOptions o = TinyOptions(3, dir);
  o.steps = 4;
  o.eval_every = 2;
  const RunResult r = Train(o);
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::string line;
  int lines = 0, with_val = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    EXPECT_EQ(line.rfind("{\"step\":" + std::to_string(lines) + ",", 0), 0u) << line;
    EXPECT_NE(line.find("\"expert_tokens\":[["), std::string::npos) << line;  // 2 Switch layers
    with_val += line.find("\"val_loss\":") != std::string::npos;
  }
  EXPECT_EQ(lines, 4);
  EXPECT_EQ(with_val, 2);
  std::ifstream summary(dir + "/summary.json");
  std::stringstream text;
  text << summary.rdbuf();
  EXPECT_NE(text.str().find("\"param_checksum\":\"" + r.param_checksum + "\""), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\"steps\":4,"), std::string::npos);
}

TEST(StandaloneTrainerTest, StepMetricsCountEveryRoutedToken) {
  cluster::TrainerOptions o = TinyOptions(5);
  o.capacity_factor = 0.5;  // forces drops
  std::unique_ptr<StandaloneTrainer> trainer = StandaloneTrainer::Create(o).value();
  const StepMetrics m = trainer->TrainStep(1).value();
  ASSERT_EQ(m.expert_tokens.size(), 2u);  // both layers are Switch layers
  for (const std::vector<int64_t>& switch_layer_tokens : m.expert_tokens) {
    ASSERT_EQ(switch_layer_tokens.size(), 4u);
    int64_t total = 0;
    for (int64_t t : switch_layer_tokens) total += t;
    EXPECT_EQ(total, 3 * 4 * 32);  // M * B * T tokens, counted before capacity
  }
  EXPECT_GE(m.dropped_frac, 0.5);  // capacity holds at most half of the tokens
  EXPECT_LE(m.dropped_frac, 1.0);
  EXPECT_GT(m.lb_loss, 0);
  EXPECT_GT(m.z_loss, 0);
  EXPECT_GT(m.tokens_per_s, 0);
}

TEST(StandaloneTrainerTest, BadSetupIsAClearError) {
  cluster::TrainerOptions o = TinyOptions(1);
  o.data = "/nonexistent/corpus.txt";
  EXPECT_EQ(StandaloneTrainer::Create(o).status().code(), absl::StatusCode::kNotFound);
  o = TinyOptions(1);
  o.context = 100000;  // longer than the validation split
  EXPECT_EQ(StandaloneTrainer::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = TinyOptions(1);
  o.device = "cuda:7";
  EXPECT_FALSE(StandaloneTrainer::Create(o).ok());  // no such GPU here (or no CUDA build)
}

}  // namespace
}  // namespace sy::trainer
