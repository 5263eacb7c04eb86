// Tests of sy-trainer's flag parsing: every flag reaches its field, bad input is
// a clear InvalidArgument, --help lists every flag.
#include "common/flags/flags.h"
#include "gtest/gtest.h"
#include "services/trainer/trainer_flags.h"

namespace sy::trainer {
namespace {

// The shared run, model and training flags of a standalone trainer.
absl::StatusOr<cluster::TrainerOptions> ParseStandalone(const std::vector<std::string>& args) {
  absl::StatusOr<cluster::ClusterTrainerOptions> o = ParseClusterTrainerOptions(args);
  if (!o.ok()) return o.status();
  return o->base;
}

absl::StatusOr<cluster::TrainerOptions> Parse(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--standalone", "--data=/tmp/x", "--steps=5"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ParseStandalone(args);
}

TEST(OptionsTest, ParsesModelAndTrainingFlags) {
  absl::StatusOr<cluster::TrainerOptions> o =
      Parse({"--layers=2", "--d_model", "64", "--heads=2", "--d_ff=96", "--experts=4", "--moe_every=1",
             "--context=32", "--micro_batch=3", "--micro_batches=5", "--capacity_factor=1.5", "--lr=3e-3",
             "--seed=77", "--wire_dtype=bf16", "--warmup=7", "--weight_decay=0", "--clip=0.5",
             "--dropout=0.1", "--expert_dropout=0.4", "--eval_every=9", "--eval_batches=2", "--threads=1",
             "--log_level=warning", "--workdir=/tmp/w", "--device=cuda:1", "--jitter=0.01"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->standalone);
  EXPECT_EQ(o->data, "/tmp/x");
  EXPECT_EQ(o->steps, 5);
  EXPECT_EQ(o->layers, 2);
  EXPECT_EQ(o->d_model, 64);
  EXPECT_EQ(o->heads, 2);
  EXPECT_EQ(o->d_ff, 96);
  EXPECT_EQ(o->experts, 4);
  EXPECT_EQ(o->moe_every, 1);
  EXPECT_EQ(o->context, 32);
  EXPECT_EQ(o->micro_batch, 3);
  EXPECT_EQ(o->micro_batches, 5);
  EXPECT_DOUBLE_EQ(o->capacity_factor, 1.5);
  EXPECT_DOUBLE_EQ(o->lr, 3e-3);
  EXPECT_EQ(o->seed, 77u);
  EXPECT_EQ(o->wire_dtype, "bf16");
  EXPECT_EQ(o->warmup, 7);
  EXPECT_DOUBLE_EQ(o->weight_decay, 0);
  EXPECT_DOUBLE_EQ(o->clip, 0.5);
  EXPECT_DOUBLE_EQ(o->dropout, 0.1);
  EXPECT_DOUBLE_EQ(o->expert_dropout, 0.4);
  EXPECT_DOUBLE_EQ(o->jitter, 0.01);
  EXPECT_EQ(o->eval_every, 9);
  EXPECT_EQ(o->eval_batches, 2);
  EXPECT_EQ(o->threads, 1);
  EXPECT_EQ(o->log_level, "warning");
  EXPECT_EQ(o->workdir, "/tmp/w");
  EXPECT_EQ(o->device, "cuda:1");
}

TEST(OptionsTest, BadInputIsInvalidArgumentNamingTheFlag) {
  const std::vector<std::vector<std::string>> bad = {
      {"--layers=0"},        {"--layers=two"},      {"--lr=-1"},          {"--lr=nan"},
      {"--wire_dtype=f16"},  {"--bogus=1"},         {"--heads=3"},        {"--experts=1"},
      {"--dropout=1"},       {"--device=tpu"},      {"positional"},       {"--context"},
      {"--standalone=maybe"}, {"--seed=-4"},        {"--micro_batch=99999999999"}, {"--dense_wire_dtype=fp8"}};
  for (const std::vector<std::string>& args : bad) {
    absl::StatusOr<cluster::TrainerOptions> o = Parse(args);
    ASSERT_FALSE(o.ok()) << args[0];
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << args[0];
  }
  EXPECT_NE(Parse({"--bogus=1"}).status().message().find("--bogus"), std::string::npos);
  EXPECT_NE(Parse({"--lr=-1"}).status().message().find("--lr"), std::string::npos);
  EXPECT_FALSE(ParseStandalone({"--standalone", "--steps=3"}).ok());     // no --data
  EXPECT_FALSE(ParseStandalone({"--standalone", "--data=/tmp/x"}).ok());  // no --steps
}

TEST(OptionsTest, HelpListsEveryFlagAndSkipsRequiredChecks) {
  // main() answers --help before any check (flags::ExitWithHelpIfRequested).
  EXPECT_EQ(flags::HelpRequested({"--help"}), flags::Help::kOwn);
  const std::string help = flags::HelpText(kTrainerUsage, flags::Help::kOwn);
  for (const char* flag : {"--layers", "--d_model", "--heads", "--d_ff", "--experts", "--moe_every", "--context",
                           "--micro_batch", "--micro_batches", "--capacity_factor", "--lr", "--seed",
                           "--wire_dtype", "--warmup", "--weight_decay", "--clip", "--dropout",
                           "--expert_dropout", "--eval_every", "--eval_batches", "--threads", "--log_level",
                           "--data", "--steps", "--workdir", "--standalone", "--device"}) {
    EXPECT_NE(help.find(std::string(flag) + " "), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace sy::trainer
