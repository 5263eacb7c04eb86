// Tests of the sy-trainer binary's command line: --help exits 0 and lists the
// flags, bad flags exit 2 with a message naming the flag.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Outcome RunTrainer(const std::string& args) {
  const std::string command = std::string(SY_TRAINER_BINARY) + " " + args + " 2>&1";
  Outcome outcome;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return outcome;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) outcome.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

TEST(TrainerCliTest, HelpExitsZeroAndListsFlags) {
  const Outcome o = RunTrainer("--help");
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_NE(o.output.find("--micro_batches"), std::string::npos);
  EXPECT_NE(o.output.find("--wire_dtype"), std::string::npos);
}

TEST(TrainerCliTest, BadFlagsExitTwo) {
  Outcome o = RunTrainer("--standalone --data=/tmp/x --steps=3 --nonsense=1");
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.output.find("--nonsense"), std::string::npos) << o.output;
  o = RunTrainer("--standalone --data=/tmp/x --steps=zero");
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.output.find("--steps"), std::string::npos) << o.output;
  EXPECT_EQ(RunTrainer("--standalone --data=/tmp/x").exit_code, 2);
}

TEST(TrainerCliTest, MissingCorpusFailsWithoutCrashing) {
  const Outcome o = RunTrainer("--standalone --data=/nonexistent/corpus.txt --steps=1");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.output.find("/nonexistent/corpus.txt"), std::string::npos) << o.output;
}

}  // namespace
