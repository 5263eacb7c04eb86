// sy-generate end to end: a real short standalone run saves its model, sy-generate
// samples from it (N bytes, the same for a seed, greedy at temperature 0, the same as
// the library), refuses damaged or mismatched files, missing checkpoints and bad flags
// with exit status 2 and a message naming the problem, and samples from the checkpoint
// database of a short sy-local cluster run.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/generate/generator.h"
#include "services/generate/model_source.h"

namespace sy::generate {
namespace {

using ::testing::HasSubstr;

constexpr char kTinyModel[] =
    "--layers=2 --d_model=32 --heads=2 --d_ff=64 --experts=4 --moe_every=1 --context=32 --micro_batch=2 "
    "--micro_batches=2 --eval_every=0 --eval_batches=1";

struct ToolRun {
  int code = -1;
  std::string out, err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// Runs `argv` with stdout and stderr captured in files under `dir`.
ToolRun RunTool(const std::string& dir, std::vector<std::string> argv) {
  const std::string out_path = dir + "/tool.out", err_path = dir + "/tool.err";
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ReadAll(out_path), ReadAll(err_path)};
}

void WriteCorpus(const std::string& path) {
  std::string text;
  for (int i = 0; text.size() < 60000; ++i) {
    absl::StrAppend(&text, "the router sends token ", i % 17, " to expert ", i % 4, ", and the expert answers. ");
    if (i % 5 == 4) text += "\n";
  }
  std::ofstream(path) << text;
}

class GenerateCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(::testing::TempDir(), "/generate_cli_", getpid()));
    std::filesystem::remove_all(*dir_);
    std::filesystem::create_directories(*dir_);
    WriteCorpus(*dir_ + "/corpus.txt");
    std::vector<std::string> argv = {SY_TRAINER_BINARY, "--standalone", "--steps=3", "--seed=5",
                                     "--data=" + *dir_ + "/corpus.txt", "--workdir=" + *dir_ + "/run"};
    for (const std::string& w : Words(kTinyModel)) argv.push_back(w);
    const ToolRun train = RunTool(*dir_, argv);
    ASSERT_EQ(train.code, 0) << train.err;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  ToolRun Generate(std::vector<std::string> flags) const {
    flags.insert(flags.begin(), SY_GENERATE_BINARY);
    return RunTool(*dir_, flags);
  }
  // A copy of the run's directory to damage.
  std::string CopyOfRun(const std::string& name) const {
    const std::string copy = *dir_ + "/" + name;
    std::filesystem::remove_all(copy);
    std::filesystem::create_directories(copy);
    for (const char* f : {"model.bin", "model.json"}) std::filesystem::copy_file(run() + "/" + f, copy + "/" + f);
    return copy;
  }
  std::string run() const { return *dir_ + "/run"; }

  static std::string* dir_;
};
std::string* GenerateCliTest::dir_ = nullptr;

TEST_F(GenerateCliTest, TheRunSavedItsFinalWeightsUnderItsChecksum) {
  const std::string summary = ReadAll(run() + "/summary.json");
  const std::string json = ReadAll(run() + "/model.json");
  const size_t at = summary.find("\"param_checksum\":\"");
  ASSERT_NE(at, std::string::npos) << summary;
  EXPECT_THAT(json, HasSubstr(summary.substr(at, 36))) << json;
  EXPECT_THAT(json, HasSubstr("\"step\":3"));
  EXPECT_FALSE(std::filesystem::exists(run() + "/model.bin.tmp"));
}

TEST_F(GenerateCliTest, PrintsNBytesTheSameForASeed) {
  const ToolRun a = Generate({"--checkpoint=" + run(), "--tokens=40", "--seed=3", "--temperature=1"});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out.size(), 40u);
  EXPECT_THAT(a.err, HasSubstr("step 3"));
  EXPECT_EQ(Generate({"--checkpoint=" + run(), "--tokens=40", "--seed=3", "--temperature=1"}).out, a.out);
  EXPECT_NE(Generate({"--checkpoint=" + run(), "--tokens=40", "--seed=4", "--temperature=1"}).out, a.out);
}

TEST_F(GenerateCliTest, GreedyIgnoresTheSeedAndMatchesTheLibrary) {
  const ToolRun a = Generate({"--checkpoint=" + run(), "--tokens=30", "--prompt=the router", "--temperature=0",
                              "--seed=1"});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out.substr(0, 10), "the router");
  EXPECT_EQ(a.out.size(), 40u);
  EXPECT_EQ(Generate({"--checkpoint=" + run(), "--tokens=30", "--prompt=the router", "--temperature=0",
                      "--seed=99"}).out, a.out);
  absl::StatusOr<LoadedModel> model = LoadModel(run(), "");
  ASSERT_TRUE(model.ok()) << model.status();
  auto generator = Generator::Create(model->config, model->values).value();
  EXPECT_EQ("the router" + generator->Continue("the router", 30, 0.0, 1).value(), a.out);
}

TEST_F(GenerateCliTest, CorruptOrTruncatedWeightsExitTwoNamingTheFile) {
  const std::string copy = CopyOfRun("corrupt");
  std::string bin = ReadAll(copy + "/model.bin");
  bin[bin.size() - 50] ^= 0x40;
  std::ofstream(copy + "/model.bin", std::ios::binary | std::ios::trunc) << bin;
  ToolRun r = Generate({"--checkpoint=" + copy, "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr(copy + "/model.bin: the values do not match the file's checksum"));
  EXPECT_TRUE(r.out.empty());
  std::ofstream(copy + "/model.bin", std::ios::binary | std::ios::trunc) << bin.substr(0, bin.size() / 2);
  r = Generate({"--checkpoint=" + copy, "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("truncated"));
  std::ofstream(copy + "/model.bin", std::ios::binary | std::ios::trunc) << "not a model";
  EXPECT_THAT(Generate({"--checkpoint=" + copy, "--tokens=5"}).err, HasSubstr("not a weights file"));
}

TEST_F(GenerateCliTest, AShapeMismatchExitsTwo) {
  const std::string copy = CopyOfRun("mismatch");
  std::string json = ReadAll(copy + "/model.json");
  json.replace(json.find("\"d_ff\":64"), 9, "\"d_ff\":96");
  std::ofstream(copy + "/model.json", std::ios::trunc) << json;
  const ToolRun r = Generate({"--checkpoint=" + copy, "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("shape mismatch"));
}

TEST_F(GenerateCliTest, MissingCheckpointsAndBadFlagsExitTwo) {
  ToolRun r = Generate({"--checkpoint=" + *dir_ + "/nowhere", "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("no such directory"));
  std::filesystem::create_directories(*dir_ + "/empty");
  r = Generate({"--checkpoint=" + *dir_ + "/empty", "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("neither a run directory"));
  for (const char* bad : {"--tokens=0", "--temperature=-1", "--no_such_flag=1"}) {
    r = Generate({"--checkpoint=" + run(), bad});
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_FALSE(r.err.empty()) << bad;
  }
  EXPECT_EQ(Generate({"--tokens=5"}).code, 2);
  r = Generate({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--temperature"));
}

// A cluster run's coordinator database: the latest committed checkpoint samples like the
// run's own saved model when that checkpoint is of the last step; a missing database exits 2.
TEST_F(GenerateCliTest, SamplesFromACoordinatorCheckpointDatabase) {
  const std::string cluster = *dir_ + "/cluster";
  std::vector<std::string> argv = {SY_LOCAL_BINARY, "--hosts=2", "--trainers=2", "--steps=4",
                                   "--checkpoint_every=2", "--seed=5", "--timeout_s=240",
                                   "--data=" + *dir_ + "/corpus.txt", "--workdir=" + cluster};
  for (const std::string& w : Words(kTinyModel)) argv.push_back(w);
  const ToolRun local = RunTool(*dir_, argv);
  ASSERT_EQ(local.code, 0) << local.out << local.err;
  const ToolRun from_db = Generate({"--checkpoint=" + cluster + "/coordinator.db", "--tokens=25", "--temperature=0"});
  ASSERT_EQ(from_db.code, 0) << from_db.err;
  EXPECT_EQ(from_db.out.size(), 25u);
  EXPECT_THAT(from_db.err, HasSubstr("coordinator.db checkpoint"));
  EXPECT_THAT(from_db.err, HasSubstr("(step 4,"));
  // The checkpoint of step 4 holds the weights the leader saved after step 4.
  EXPECT_EQ(Generate({"--checkpoint=" + cluster, "--tokens=25", "--temperature=0"}).out, from_db.out);

  ToolRun r = Generate({"--checkpoint=" + cluster + "/no.db", "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("no such directory"));
  // A database whose run left no model.json beside it, and none named.
  std::filesystem::create_directories(*dir_ + "/bare");
  std::filesystem::copy(cluster + "/coordinator.db", *dir_ + "/bare/db", std::filesystem::copy_options::recursive);
  r = Generate({"--checkpoint=" + *dir_ + "/bare/db", "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--model_config"));
  // Another model's config against this database.
  const std::string other = *dir_ + "/other.json";
  std::string json = ReadAll(cluster + "/model.json");
  json.replace(json.find("\"d_ff\":64"), 9, "\"d_ff\":96");
  std::ofstream(other, std::ios::trunc) << json;
  r = Generate({"--checkpoint=" + *dir_ + "/bare/db", "--model_config=" + other, "--tokens=5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("shape mismatch"));
}

}  // namespace
}  // namespace sy::generate
