// Checks the C++ Switch-Transformer model (gpu/model) against the PyTorch oracle
// (oracle.py, float64 torch autograd + torch.optim.AdamW): for each case the C++
// side builds a small model, exports its parameters and batch to a tensor file,
// runs forward+backward, the fixed-tree gradient combination, gradient clipping
// and one AdamW step; the oracle recomputes everything from the same file and the
// test compares every tensor, printing the largest error per tensor. The AdamW
// step is compared on identical input (torch steps from the C++ gradient) and end
// to end (torch steps from its own gradient; see CompareAll).
// Runs on "cpu", and on "cuda:0" when the build and the machine have a GPU.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/philox.h"
#include "gpu/backend.h"
#include "gpu/model/config.h"
#include "gpu/model/grad_tree.h"
#include "gpu/model/model.h"
#include "gpu/model/optimizer.h"
#include "gpu/model/params.h"
#include "gtest/gtest.h"
#include "tests/reference/error_table.h"
#include "tests/reference/tensor_file.h"

namespace sy::reference {
namespace {

#define SY_ASSERT_OK_AND_ASSIGN(lhs, expr)           \
  auto lhs##_or = (expr);                            \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status();   \
  auto lhs = std::move(*lhs##_or)
#define SY_ASSERT_OK(expr)                           \
  do {                                               \
    const absl::Status sy_status = (expr);           \
    ASSERT_TRUE(sy_status.ok()) << sy_status;        \
  } while (0)

constexpr uint64_t kSeed = 20260;
// Large enough that weight decay on a bias (a spec violation) moves it visibly.
constexpr float kLearningRate = 1e-2f;

struct OracleCase {
  std::string name;
  gpu::ModelConfig config;
  int B = 4, T = 16;
  int micro_batches = 1;
  int prior_steps = 0;       // C++ training steps before the compared one
  bool zero_router = false;  // router_w = 0: uniform probabilities, all ties
  bool expect_drops = false;
};

gpu::ModelConfig SmallConfig(int experts, int moe_every, float capacity_factor, float z_beta) {
  gpu::ModelConfig c;
  c.layers = 2;
  c.d_model = 32;
  c.heads = 4;
  c.d_ff = 64;
  c.context = 16;
  c.experts = experts;
  c.moe_every = moe_every;
  c.capacity_factor = capacity_factor;
  c.z_beta = z_beta;
  c.jitter_eps = 0;
  c.dropout = 0;
  c.expert_dropout = 0;
  return c;
}

// Tokens of (step, micro-batch): inputs and targets, B*T each, from the data stream.
struct Batch {
  std::vector<int32_t> inputs, targets;
};
Batch MakeBatch(int64_t step, int micro_batch, int n) {
  const CounterRng rng(kSeed, RngStream::kData, static_cast<uint32_t>(step), static_cast<uint32_t>(micro_batch));
  Batch b;
  for (int i = 0; i < n; ++i) {
    b.inputs.push_back(static_cast<int32_t>(rng.Below(2 * i, 256)));
    b.targets.push_back(static_cast<int32_t>(rng.Below(2 * i + 1, 256)));
  }
  return b;
}

// The value of a lookup, or an empty vector and a test failure.
template <typename T>
std::vector<T> OrEmpty(absl::StatusOr<std::vector<T>> v) {
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? std::move(*v) : std::vector<T>{};
}
template <typename T>
T OrZero(absl::StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : T{};
}

std::vector<float> Slice(const std::vector<float>& block, const gpu::ParamInfo& info) {
  return std::vector<float>(block.begin() + info.offset, block.begin() + info.offset + info.numel);
}

// Runs `command`, returning its exit status and, in *output, what it printed.
int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  return pclose(pipe);
}

// What the C++ side computed in the compared step.
struct CppResult {
  std::vector<gpu::MicroBatchStats> stats;
  std::vector<float> grads;  // combined, before clipping
  float grad_norm = 0;
  std::vector<float> params, m, v;  // after the AdamW step
};

class OracleTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<gpu::Device> device = gpu::Device::Parse(GetParam());
    ASSERT_TRUE(device.ok()) << device.status();
    absl::StatusOr<std::unique_ptr<gpu::Backend>> backend = gpu::CreateBackend(*device);
    if (!backend.ok() && device->kind == gpu::Device::Kind::kCuda) {
      GTEST_SKIP() << "no CUDA backend or device here: " << backend.status();
    }
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    dir_ = ::testing::TempDir();
  }

  // Writes the oracle's input: config, parameters, moments, batches, hyper-parameters.
  void ExportInput(const OracleCase& c, gpu::Model& model, gpu::AdamW& adam, const std::vector<Batch>& batches,
                   TensorFile* in) {
    const gpu::ModelConfig& cfg = c.config;
    for (auto [key, value] : std::vector<std::pair<const char*, int64_t>>{
             {"layers", cfg.layers}, {"d_model", cfg.d_model}, {"heads", cfg.heads}, {"d_ff", cfg.d_ff},
             {"context", cfg.context}, {"experts", cfg.experts}, {"moe_every", cfg.moe_every}}) {
      SY_ASSERT_OK(in->AddI64(absl::StrCat("cfg.", key), {}, {value}));
    }
    for (auto [key, value] : std::vector<std::pair<const char*, float>>{
             {"cfg.capacity_factor", cfg.capacity_factor}, {"cfg.lb_alpha", cfg.lb_alpha},
             {"cfg.z_beta", cfg.z_beta}, {"opt.lr", kLearningRate}, {"opt.beta1", adam.config().beta1},
             {"opt.beta2", adam.config().beta2}, {"opt.eps", adam.config().eps},
             {"opt.weight_decay", adam.config().weight_decay}, {"opt.max_norm", adam.config().max_grad_norm}}) {
      SY_ASSERT_OK(in->AddF32(key, {}, {value}));
    }
    SY_ASSERT_OK(in->AddI64("opt.step", {}, {adam.step() + 1}));
    std::vector<float> params, m, v;
    SY_ASSERT_OK(model.params().CopyToHost(&params));
    SY_ASSERT_OK(adam.m().CopyToHost(&m));
    SY_ASSERT_OK(adam.v().CopyToHost(&v));
    for (const gpu::ParamInfo& info : model.params().infos()) {
      SY_ASSERT_OK(in->AddF32("param." + info.name, info.shape, Slice(params, info)));
      if (adam.step() > 0) {
        SY_ASSERT_OK(in->AddF32("adam_m." + info.name, info.shape, Slice(m, info)));
        SY_ASSERT_OK(in->AddF32("adam_v." + info.name, info.shape, Slice(v, info)));
      }
    }
    std::vector<int32_t> inputs, targets;
    for (const Batch& b : batches) {
      inputs.insert(inputs.end(), b.inputs.begin(), b.inputs.end());
      targets.insert(targets.end(), b.targets.begin(), b.targets.end());
    }
    const std::vector<int64_t> dims = {static_cast<int64_t>(batches.size()), c.B, c.T};
    SY_ASSERT_OK(in->AddI32("batch.inputs", dims, inputs));
    SY_ASSERT_OK(in->AddI32("batch.targets", dims, targets));
  }

  // One training step of the C++ model; fills *result when it is non-null.
  void TrainStep(const OracleCase& c, gpu::Model& model, gpu::AdamW& adam, const std::vector<Batch>& batches,
                 CppResult* result) {
    gpu::Backend* backend = backend_.get();
    const int64_t size = model.params().size();
    SY_ASSERT_OK_AND_ASSIGN(tree, gpu::GradTree::Create(backend, size, c.micro_batches));
    for (int mb = 0; mb < c.micro_batches; ++mb) {
      SY_ASSERT_OK_AND_ASSIGN(grads, model.NewGradBlock());
      gpu::StepContext ctx{kSeed, adam.step() + 1, mb, /*training=*/true, /*record_routing=*/true,
                           /*record_logits=*/true};
      SY_ASSERT_OK_AND_ASSIGN(stats, model.ForwardBackward(batches[mb].inputs, batches[mb].targets, c.B, c.T, ctx,
                                                           1.0f / c.micro_batches, grads.get()));
      SY_ASSERT_OK(tree->Add(mb, grads->data()));
      if (result != nullptr) result->stats.push_back(std::move(stats));
    }
    SY_ASSERT_OK_AND_ASSIGN(sum, tree->Result());
    SY_ASSERT_OK_AND_ASSIGN(grads, model.NewGradBlock());
    SY_ASSERT_OK(backend->CopyDeviceToDevice(grads->data(), sum, size * sizeof(float)));
    if (result != nullptr) SY_ASSERT_OK(grads->CopyToHost(&result->grads));
    SY_ASSERT_OK_AND_ASSIGN(norm, adam.Step(&model.params(), grads.get(), kLearningRate));
    if (result == nullptr) return;
    result->grad_norm = norm;
    SY_ASSERT_OK(model.params().CopyToHost(&result->params));
    SY_ASSERT_OK(adam.m().CopyToHost(&result->m));
    SY_ASSERT_OK(adam.v().CopyToHost(&result->v));
  }

  // Runs the oracle on `in`; a missing torch is a failure with the remedy.
  void RunOracle(const std::string& name, const TensorFile& in, TensorFile* out) {
    // The pid keeps concurrent runs (other build trees, ctest -j) apart.
    const std::string stem = absl::StrCat(dir_, "/oracle_", getpid(), "_", name);
    const std::string in_path = stem + "_in.sytf", out_path = stem + "_out.sytf";
    SY_ASSERT_OK(in.Save(in_path));
    std::string output;
    const int rc = RunCommand(absl::StrCat(SY_PYTHON, " ", SY_ORACLE_PY, " ", in_path, " ", out_path), &output);
    if (rc != 0) {
      std::string import_output;
      if (RunCommand(absl::StrCat(SY_PYTHON, " -c 'import torch'"), &import_output) != 0) {
        FAIL() << SY_PYTHON << " cannot import torch (" << import_output
               << "): the oracle needs Debian's python3-torch; run `make deps` to install it.";
      }
      FAIL() << "oracle failed:\n" << output;
    }
    SY_ASSERT_OK_AND_ASSIGN(file, TensorFile::Load(out_path));
    *out = std::move(file);
    std::remove(in_path.c_str());
    std::remove(out_path.c_str());
  }

  // Creates the case's model and optimizer and runs its prior training steps.
  void PrepareModel(const OracleCase& c, std::unique_ptr<gpu::Model>* model_out,
                    std::unique_ptr<gpu::AdamW>* adam_out) {
    SY_ASSERT_OK_AND_ASSIGN(model, gpu::Model::Create(c.config, backend_.get(), kSeed));
    SY_ASSERT_OK_AND_ASSIGN(adam, gpu::AdamW::Create(model->params(), gpu::AdamWConfig{}));
    // The spec initialises biases to 0 and LN weights to 1, which would hide bias
    // and LN mistakes (e.g. weight decay applied to them): draw them at random.
    std::vector<float> host;
    SY_ASSERT_OK(model->params().CopyToHost(&host));
    for (size_t p = 0; p < model->params().infos().size(); ++p) {
      const gpu::ParamInfo& info = model->params().infos()[p];
      const CounterRng rng(kSeed + 1, RngStream::kInit, static_cast<uint32_t>(p));
      const bool ln_weight = info.name.find("ln") != std::string::npos && info.name.back() == 'w';
      for (int64_t i = 0; i < info.numel; ++i) {
        float& x = host[info.offset + i];
        if (!info.decays) x = (ln_weight ? 1.0f : 0.0f) + 0.5f * (rng.Uniform(i) - 0.5f);
        if (c.zero_router && info.name.find("router_w") != std::string::npos) x = 0.0f;
      }
    }
    SY_ASSERT_OK(model->params().CopyFromHost(host));
    for (int step = 1; step <= c.prior_steps; ++step) {
      std::vector<Batch> batches;
      for (int mb = 0; mb < c.micro_batches; ++mb) batches.push_back(MakeBatch(step, mb, c.B * c.T));
      ASSERT_NO_FATAL_FAILURE(TrainStep(c, *model, *adam, batches, nullptr));
    }
    *model_out = std::move(model);
    *adam_out = std::move(adam);
  }

  // Runs a training step of a case on both sides and compares everything.
  void RunCase(const OracleCase& c, TensorFile* oracle_out, CppResult* cpp, const TensorFile* extra_input = nullptr) {
    std::unique_ptr<gpu::Model> model;
    std::unique_ptr<gpu::AdamW> adam;
    ASSERT_NO_FATAL_FAILURE(PrepareModel(c, &model, &adam));
    const int n = c.B * c.T;
    std::vector<Batch> batches;
    for (int mb = 0; mb < c.micro_batches; ++mb) batches.push_back(MakeBatch(c.prior_steps + 1, mb, n));
    TensorFile in;
    ASSERT_NO_FATAL_FAILURE(ExportInput(c, *model, *adam, batches, &in));
    if (extra_input != nullptr) {
      for (const std::string& name : extra_input->names()) {
        SY_ASSERT_OK_AND_ASSIGN(t, extra_input->Find(name, TensorDType::kF32));
        SY_ASSERT_OK(in.AddF32(name, t->dims, OrEmpty(extra_input->F32(name))));
      }
    }
    ASSERT_NO_FATAL_FAILURE(TrainStep(c, *model, *adam, batches, cpp));
    for (const gpu::ParamInfo& info : model->params().infos()) {
      SY_ASSERT_OK(in.AddF32("step_grad." + info.name, info.shape, Slice(cpp->grads, info)));
    }
    ASSERT_NO_FATAL_FAILURE(RunOracle(absl::StrCat(c.name, "_", GetParam().substr(0, 3)), in, oracle_out));
    ASSERT_NO_FATAL_FAILURE(CompareAll(c, *model, *cpp, *oracle_out));
  }

  // Logits, losses and routing of every micro-batch; adds the dropped tokens to *dropped_total.
  void CompareForward(const OracleCase& c, const std::vector<gpu::MicroBatchStats>& stats, const TensorFile& ref,
                      ErrorTable* table, int64_t* dropped_total) {
    auto ref_f32 = [&](const std::string& name) { return OrEmpty(ref.F32(name)); };
    ASSERT_EQ(static_cast<int>(stats.size()), c.micro_batches);
    for (int mb = 0; mb < c.micro_batches; ++mb) {
      const gpu::MicroBatchStats& s = stats[mb];
      const std::string pre = absl::StrCat("mb", mb, ".");
      table->Compare(pre + "logits", s.logits, ref_f32(pre + "logits"));
      for (auto [key, value] : std::vector<std::pair<const char*, double>>{
               {"ce", s.ce}, {"lb", s.lb}, {"z", s.z}, {"loss", s.loss}}) {
        table->Compare(pre + key, {static_cast<float>(value)}, ref_f32(pre + key));
      }
      int switch_index = 0;
      const int64_t dropped_before = *dropped_total;
      for (int l = 0; l < c.config.layers; ++l) {
        if (!c.config.IsSwitchLayer(l)) continue;
        const std::string lp = absl::StrCat(pre, "layer", l, ".");
        ASSERT_LT(switch_index, static_cast<int>(s.routing.size())) << lp << " has no C++ routing record";
        const gpu::LayerRouting& routing = s.routing[switch_index];
        EXPECT_EQ(routing.layer, l);
        EXPECT_EQ(routing.expert, OrEmpty(ref.I32(lp + "expert"))) << lp << "expert: routing decisions differ";
        const std::vector<int32_t> dropped(routing.dropped.begin(), routing.dropped.end());
        EXPECT_EQ(dropped, OrEmpty(ref.I32(lp + "dropped"))) << lp << "dropped: dropped tokens differ";
        ASSERT_LT(switch_index, static_cast<int>(s.expert_counts.size())) << lp << " has no C++ expert counts";
        EXPECT_EQ(s.expert_counts[switch_index], OrEmpty(ref.I64(lp + "assigned"))) << lp << "assigned: counts differ";
        std::vector<int64_t> admitted(c.config.experts, 0);
        ASSERT_EQ(routing.expert.size(), dropped.size()) << lp;
        for (size_t n = 0; n < dropped.size(); ++n) {
          const int32_t e = routing.expert[n];
          ASSERT_TRUE(e >= 0 && e < c.config.experts) << lp << " token " << n << " routed to expert " << e;
          admitted[e] += dropped[n] ? 0 : 1;
        }
        EXPECT_EQ(admitted, OrEmpty(ref.I64(lp + "admitted"))) << lp << "admitted: counts differ";
        for (int32_t d : dropped) *dropped_total += d;
        ++switch_index;
      }
      EXPECT_EQ(switch_index, static_cast<int>(s.routing.size()));
      EXPECT_EQ(s.tokens, c.B * c.T);
      EXPECT_EQ(s.dropped_tokens, *dropped_total - dropped_before) << pre << "dropped_tokens disagrees with the routing";
    }
  }

  void CompareAll(const OracleCase& c, const gpu::Model& model, const CppResult& cpp, const TensorFile& ref) {
    ErrorTable table;
    auto ref_f32 = [&](const std::string& name) { return OrEmpty(ref.F32(name)); };
    int64_t dropped_total = 0;
    ASSERT_NO_FATAL_FAILURE(CompareForward(c, cpp.stats, ref, &table, &dropped_total));
    if (c.expect_drops) {
      EXPECT_GT(dropped_total, 0) << "the case is meant to overflow capacity";
    }
    table.Compare("grad_norm", {cpp.grad_norm}, ref_f32("grad_norm"));
    for (const gpu::ParamInfo& info : model.params().infos()) {
      table.Compare("grad." + info.name, Slice(cpp.grads, info), ref_f32("grad." + info.name));
    }
    // The optimizer on identical input: torch's step from the C++ gradient.
    table.Compare("given.grad_norm", {cpp.grad_norm}, ref_f32("given.grad_norm"));
    for (const gpu::ParamInfo& info : model.params().infos()) {
      for (auto [what, block] : {std::pair{"param_new.", &cpp.params}, {"adam_m.", &cpp.m}, {"adam_v.", &cpp.v}}) {
        table.Compare(what + info.name, Slice(*block, info), ref_f32(absl::StrCat("given.", what, info.name)));
      }
    }
    // End to end: torch's step from its own gradient. At step 1 Adam's update is
    // about g/(|g|+eps), so where g is near eps (1e-8) the tiny gradient error moves
    // the parameter visibly; such elements must be explained by the torch step from
    // the C++ gradient.
    for (const gpu::ParamInfo& info : model.params().infos()) {
      const std::vector<float> given = ref_f32("given.param_new." + info.name);
      table.Compare("e2e.param_new." + info.name, Slice(cpp.params, info), ref_f32("param_new." + info.name), &given);
    }
    table.Print(absl::StrCat("== oracle case ", c.name, " on ", GetParam(), " (", dropped_total,
                             " tokens dropped over all Switch layers)"));
  }

  void Run(const OracleCase& c) {
    TensorFile out;
    CppResult cpp;
    ASSERT_NO_FATAL_FAILURE(RunCase(c, &out, &cpp));
  }

  std::unique_ptr<gpu::Backend> backend_;
  std::string dir_;
};

TEST_P(OracleTest, DenseModel) { Run({"dense", SmallConfig(0, 0, 1.25f, 0.001f)}); }

TEST_P(OracleTest, SwitchCapacityFactorOneDropsTokens) {
  OracleCase c{"switch_cf1", SmallConfig(4, 1, 1.0f, 0.001f)};
  c.expect_drops = true;
  Run(c);
}

TEST_P(OracleTest, SwitchCapacityFactorTwo) { Run({"switch_cf2", SmallConfig(4, 1, 2.0f, 0.001f)}); }

// Capacity ceil(1.1 * 64 / 4) = ceil(17.6) = 18: the rounding matters.
TEST_P(OracleTest, SwitchWithoutZLossFractionalCapacity) {
  Run({"switch_noz", SmallConfig(4, 1, 1.1f, 0.0f)});
}

// Layer 1 is a Switch layer, layer 0 dense; sequences shorter than the context.
TEST_P(OracleTest, MixedDenseAndSwitchLayersShortSequences) {
  OracleCase c{"mixed", SmallConfig(4, 2, 1.25f, 0.001f)};
  c.T = 12;
  Run(c);
}

// Three micro-batches (tree [0,2) + [2,3)) == torch's gradient of the mean loss, at
// optimizer step 2 (non-zero moments, bias correction with t = 2).
TEST_P(OracleTest, ThreeMicroBatchesAtSecondStep) {
  OracleCase c{"micro3", SmallConfig(4, 1, 1.0f, 0.001f)};
  c.micro_batches = 3;
  c.prior_steps = 1;
  Run(c);
}

// router_w = 0 makes every router probability 1/E, so by hand: every token ties
// and goes to expert 0, the first ceil(N/E) tokens are admitted, and per Switch
// layer lb = alpha * E * (1 * 1/E) = alpha, z = beta * ln(E)^2. The oracle's aux
// losses are also checked on hand-made logits: rows [ln 3, 0] and [0, 0] give
// probs (3/4, 1/4) and (1/2, 1/2), both argmax 0, so f = (1, 0), P = (5/8, 3/8),
// lb = alpha * 2 * 5/8, z = beta * (ln(4)^2 + ln(2)^2) / 2.
TEST_P(OracleTest, ZeroRouterMatchesHandComputedLosses) {
  OracleCase c{"zero_router", SmallConfig(4, 1, 1.0f, 0.001f)};
  c.zero_router = true;
  c.expect_drops = true;
  TensorFile extra;
  SY_ASSERT_OK(extra.AddF32("aux_check.router_logits", {2, 2}, std::vector<float>{std::log(3.0f), 0, 0, 0}));
  TensorFile out;
  CppResult cpp;
  ASSERT_NO_FATAL_FAILURE(RunCase(c, &out, &cpp, &extra));

  const double alpha = c.config.lb_alpha, beta = c.config.z_beta, ln2 = std::log(2.0), ln4 = std::log(4.0);
  EXPECT_NEAR(OrZero(out.ScalarF32("aux_check.lb")), alpha * 2 * 5.0 / 8, 1e-8);
  EXPECT_NEAR(OrZero(out.ScalarF32("aux_check.z")), beta * (ln4 * ln4 + ln2 * ln2) / 2, 1e-8);
  EXPECT_EQ(OrEmpty(out.I32("aux_check.expert")), (std::vector<int32_t>{0, 0}));

  const int layers = c.config.layers, n = c.B * c.T, capacity = n / c.config.experts;
  EXPECT_NEAR(OrZero(out.ScalarF32("mb0.lb")), alpha * layers, 1e-8);
  EXPECT_NEAR(OrZero(out.ScalarF32("mb0.z")), beta * ln4 * ln4 * layers, 1e-8);
  EXPECT_NEAR(cpp.stats[0].lb, alpha * layers, 1e-7);
  EXPECT_NEAR(cpp.stats[0].z, beta * ln4 * ln4 * layers, 1e-7);
  std::vector<int32_t> dropped(n, 1);
  std::fill(dropped.begin(), dropped.begin() + capacity, 0);
  for (int l = 0; l < layers; ++l) {
    const std::string lp = absl::StrCat("mb0.layer", l, ".");
    EXPECT_EQ(OrEmpty(out.I32(lp + "expert")), std::vector<int32_t>(n, 0)) << lp;
    EXPECT_EQ(OrEmpty(out.I32(lp + "dropped")), dropped) << lp;
    EXPECT_EQ(OrEmpty(out.I64(lp + "admitted")), (std::vector<int64_t>{capacity, 0, 0, 0})) << lp;
  }
}

// Model::Evaluate (no backward) routes with the evaluation capacity factor (2.0 by
// default) instead of the training one (1.0 here): torch gets the evaluation one.
TEST_P(OracleTest, EvaluationUsesEvaluationCapacity) {
  OracleCase c{"eval", SmallConfig(4, 1, 1.0f, 0.001f)};
  std::unique_ptr<gpu::Model> model;
  std::unique_ptr<gpu::AdamW> adam;
  ASSERT_NO_FATAL_FAILURE(PrepareModel(c, &model, &adam));
  const std::vector<Batch> batches = {MakeBatch(1, 0, c.B * c.T)};
  OracleCase torch_case = c;
  torch_case.config.capacity_factor = c.config.eval_capacity_factor;
  TensorFile in, out;
  ASSERT_NO_FATAL_FAILURE(ExportInput(torch_case, *model, *adam, batches, &in));
  SY_ASSERT_OK_AND_ASSIGN(stats, model->Evaluate(batches[0].inputs, batches[0].targets, c.B, c.T,
                                                 /*record_routing=*/true, /*record_logits=*/true));
  ASSERT_NO_FATAL_FAILURE(RunOracle(absl::StrCat(c.name, "_", GetParam().substr(0, 3)), in, &out));
  ErrorTable table;
  int64_t dropped_total = 0;
  ASSERT_NO_FATAL_FAILURE(CompareForward(torch_case, {stats}, out, &table, &dropped_total));
  table.Print(absl::StrCat("== oracle case eval on ", GetParam(), " (", dropped_total, " tokens dropped)"));
}

INSTANTIATE_TEST_SUITE_P(Devices, OracleTest, ::testing::Values("cpu", "cuda:0"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "cpu" ? std::string("Cpu") : std::string("Cuda0");
                         });

}  // namespace
}  // namespace sy::reference
