// The Switch-Transformer model (see model.h): forward and backward of every layer
// in the order of the shared spec, all compute through the Backend, activations
// in one arena sized for the largest micro-batch seen.
#include "gpu/model/model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "gpu/model/grad_stages.h"
#include "gpu/model/inprocess_executor.h"
#include "gpu/model/layers.h"

namespace sy::gpu {

RngKey DropoutKey(const StepContext& ctx, int layer, int site) {
  RngKey key;
  key.seed = ctx.seed;
  key.stream = RngStream::kDropout;
  key.a = static_cast<uint32_t>(ctx.step);
  key.b = static_cast<uint32_t>((static_cast<uint64_t>(ctx.micro_batch) << 12) | (layer << 4) | site);
  return key;
}

RngKey JitterKey(const StepContext& ctx, int layer) {
  RngKey key;
  key.seed = ctx.seed;
  key.stream = RngStream::kRouterJitter;
  key.a = static_cast<uint32_t>(ctx.step);
  key.b = static_cast<uint32_t>((static_cast<uint64_t>(ctx.micro_batch) << 12) | layer);
  return key;
}

namespace {

// Offsets of one layer's parameters within a block (the same for params and grads).
struct LayerOffsets {
  int64_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b;
  int64_t fc_w = -1, fc_b = -1, fcproj_w = -1, fcproj_b = -1;  // dense layers
  int64_t router_w = -1;                                         // Switch layers
};

// Per-layer activations (device pointers into the arena).
struct LayerActs {
  float *ln1, *ln1_mean, *ln1_rstd;  // (N, C), (N), (N)
  float* qkv;                        // (N, 3C)
  float* att;                        // (B, NH, T, T)
  float* atty;                       // (N, C)
  float* attproj;                    // (N, C) after dropout
  float* res1;                       // (N, C)
  float *ln2, *ln2_mean, *ln2_rstd;  // (N, C), (N), (N)
  float* ffn_out;                    // (N, C) after dropout
  float* res2;                       // (N, C) the layer's output
  // dense FFN
  float *fch, *fch_gelu;  // (N, F)
  // Switch FFN
  float *router_in, *noise;      // (N, C) jittered router input and its noise
  float *rlogits, *rprobs;       // (N, E)
  float* gate;                   // (N)
  int32_t *expert, *row;         // (N)
  int32_t *counts, *kept;        // (E)
  float* rlosses;                // (2)
  float *bucket_in, *bucket_out; // (N, C) packed buckets
  std::vector<int32_t> kept_host;
};

// Carves typed arrays out of one allocation: sizes first, then pointers.
class ArenaPlan {
 public:
  template <typename T>
  void Add(T** ptr, int64_t count) {
    entries_.push_back({reinterpret_cast<void**>(ptr), offset_});
    offset_ += (count * static_cast<int64_t>(sizeof(T)) + 63) / 64 * 64;
  }
  int64_t bytes() const { return offset_; }
  void Bind(void* base) {
    for (auto& e : entries_) *e.ptr = static_cast<char*>(base) + e.offset;
  }

 private:
  struct Entry {
    void** ptr;
    int64_t offset;
  };
  std::vector<Entry> entries_;
  int64_t offset_ = 0;
};

}  // namespace

class Model::Impl {
 public:
  Impl(const ModelConfig& cfg, Backend* backend, ParamBlock* params, ExpertExecutor* executor)
      : cfg_(cfg), backend_(backend), params_(params) {
    if (executor == nullptr) {
      owned_executor_ = std::make_unique<InProcessExpertExecutor>(cfg, params);
      executor = owned_executor_.get();
    }
    executor_ = executor;
    stages_ = BackwardStages(cfg);
    const auto& infos = params->infos();
    auto off = [&](const std::string& name) -> int64_t {
      for (const ParamInfo& i : infos) {
        if (i.name == name) return i.offset;
      }
      return -1;
    };
    wte_ = off("wte");
    wpe_ = off("wpe");
    lnf_w_ = off("lnf_w");
    lnf_b_ = off("lnf_b");
    for (int l = 0; l < cfg.layers; ++l) {
      const std::string p = absl::StrCat("layer", l, ".");
      LayerOffsets o{off(p + "ln1_w"), off(p + "ln1_b"), off(p + "qkv_w"), off(p + "qkv_b"),
                     off(p + "proj_w"), off(p + "proj_b"), off(p + "ln2_w"), off(p + "ln2_b")};
      if (cfg.IsSwitchLayer(l)) {
        o.router_w = off(p + "router_w");
      } else {
        o.fc_w = off(p + "fc_w");
        o.fc_b = off(p + "fc_b");
        o.fcproj_w = off(p + "fcproj_w");
        o.fcproj_b = off(p + "fcproj_b");
      }
      layer_offsets_.push_back(o);
    }
  }

  ~Impl() {
    if (arena_ != nullptr) backend_->Free(arena_);
  }

  void set_grad_listener(GradListener* listener) { listener_ = listener; }

  absl::Status Reserve(int B, int T) {
    const int64_t N = static_cast<int64_t>(B) * T;
    const int64_t att = N * T * cfg_.heads;
    if (N <= cap_tokens_ && att <= cap_att_) return absl::OkStatus();
    if (arena_ != nullptr) backend_->Free(arena_);
    arena_ = nullptr;
    cap_tokens_ = cap_att_ = 0;
    const int64_t C = cfg_.d_model, F = cfg_.d_ff, E = cfg_.experts, V = cfg_.vocab;
    ArenaPlan plan;
    // A layer norm's output (N, C) and the row mean and rstd its backward needs (N).
    const auto plan_layer_norm = [&plan, N, C](float** out, float** mean, float** rstd) {
      plan.Add(out, N * C);
      plan.Add(mean, N);
      plan.Add(rstd, N);
    };
    acts_.assign(cfg_.layers, LayerActs{});
    for (int l = 0; l < cfg_.layers; ++l) {
      LayerActs& a = acts_[l];
      plan_layer_norm(&a.ln1, &a.ln1_mean, &a.ln1_rstd);
      plan.Add(&a.qkv, N * 3 * C);
      plan.Add(&a.att, att);
      plan.Add(&a.atty, N * C);
      plan.Add(&a.attproj, N * C);
      plan.Add(&a.res1, N * C);
      plan_layer_norm(&a.ln2, &a.ln2_mean, &a.ln2_rstd);
      plan.Add(&a.ffn_out, N * C);
      plan.Add(&a.res2, N * C);
      if (cfg_.IsSwitchLayer(l)) {
        if (cfg_.jitter_eps > 0.0f) {
          plan.Add(&a.router_in, N * C);
          plan.Add(&a.noise, N * C);
        }
        plan.Add(&a.rlogits, N * E);
        plan.Add(&a.rprobs, N * E);
        plan.Add(&a.gate, N);
        plan.Add(&a.expert, N);
        plan.Add(&a.row, N);
        plan.Add(&a.counts, E);
        plan.Add(&a.kept, E);
        plan.Add(&a.rlosses, 2);
        plan.Add(&a.bucket_in, N * C);
        plan.Add(&a.bucket_out, N * C);
      } else {
        plan.Add(&a.fch, N * F);
        plan.Add(&a.fch_gelu, N * F);
      }
    }
    plan.Add(&tokens_, N);
    plan.Add(&targets_, N);
    plan.Add(&x0_, N * C);
    plan.Add(&lnf_, N * C);
    plan.Add(&lnf_mean_, N);
    plan.Add(&lnf_rstd_, N);
    plan.Add(&logits_, N * V);
    plan.Add(&probs_, N * V);
    plan.Add(&losses_, N);
    // backward scratch
    plan.Add(&dres_, N * C);
    plan.Add(&dbranch_, N * C);
    plan.Add(&dln_, N * C);
    plan.Add(&dtmp_, N * C);
    plan.Add(&dqkv_, N * 3 * C);
    plan.Add(&datt_, att);
    plan.Add(&dbig_, std::max(N * F, N * V));
    plan.Add(&dgate_, N);
    plan.Add(&drlogits_, N * std::max<int64_t>(E, 1));
    plan.Add(&dbucket_out_, N * C);
    plan.Add(&dbucket_in_, N * C);
    auto mem = backend_->Alloc(plan.bytes());
    if (!mem.ok()) return mem.status();
    arena_ = *mem;
    plan.Bind(arena_);
    cap_tokens_ = N;
    cap_att_ = att;
    return absl::OkStatus();
  }

  float* P(int64_t offset) const { return params_->data() + offset; }

  absl::StatusOr<MicroBatchStats> Forward(absl::Span<const int32_t> inputs, absl::Span<const int32_t> targets, int B,
                                          int T, const StepContext& ctx, ParamBlock* grads) {
    if (absl::Status s = Reserve(B, T); !s.ok()) return s;
    const int N = B * T, C = cfg_.d_model, V = cfg_.vocab, NH = cfg_.heads;
    if (absl::Status s = backend_->CopyHostToDevice(tokens_, inputs.data(), N * sizeof(int32_t)); !s.ok()) return s;
    if (absl::Status s = backend_->CopyHostToDevice(targets_, targets.data(), N * sizeof(int32_t)); !s.ok()) return s;
    MicroBatchStats stats;
    stats.tokens = N;
    const float rate = ctx.training ? cfg_.dropout : 0.0f;
    backend_->EncoderForward(x0_, tokens_, P(wte_), P(wpe_), B, T, C);
    const float* x = x0_;
    for (int l = 0; l < cfg_.layers; ++l) {
      const LayerOffsets& o = layer_offsets_[l];
      LayerActs& a = acts_[l];
      backend_->LayerNormForward(a.ln1, a.ln1_mean, a.ln1_rstd, x, P(o.ln1_w), P(o.ln1_b), N, C);
      LinearForward(backend_, a.qkv, a.ln1, P(o.qkv_w), P(o.qkv_b), N, C, 3 * C);
      backend_->AttentionForward(a.atty, nullptr, a.att, a.qkv, B, T, C, NH);
      LinearForward(backend_, a.attproj, a.atty, P(o.proj_w), P(o.proj_b), N, C, C);
      if (rate > 0.0f) backend_->DropoutForward(a.attproj, a.attproj, int64_t{N} * C, rate, DropoutKey(ctx, l, 0));
      backend_->Add(a.res1, x, a.attproj, int64_t{N} * C);
      backend_->LayerNormForward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res1, P(o.ln2_w), P(o.ln2_b), N, C);
      if (cfg_.IsSwitchLayer(l)) {
        if (absl::Status s = SwitchForward(l, N, ctx, grads, &stats); !s.ok()) return s;
      } else {
        const int F = cfg_.d_ff;
        LinearForward(backend_, a.fch, a.ln2, P(o.fc_w), P(o.fc_b), N, C, F);
        backend_->GeluForward(a.fch_gelu, a.fch, int64_t{N} * F);
        LinearForward(backend_, a.ffn_out, a.fch_gelu, P(o.fcproj_w), P(o.fcproj_b), N, F, C);
      }
      if (rate > 0.0f) backend_->DropoutForward(a.ffn_out, a.ffn_out, int64_t{N} * C, rate, DropoutKey(ctx, l, 1));
      backend_->Add(a.res2, a.res1, a.ffn_out, int64_t{N} * C);
      x = a.res2;
    }
    backend_->LayerNormForward(lnf_, lnf_mean_, lnf_rstd_, x, P(lnf_w_), P(lnf_b_), N, C);
    backend_->Sgemm(logits_, lnf_, P(wte_), N, V, C, false, true, 1.0f, 0.0f, C, C, V);
    backend_->SoftmaxCrossEntropyForward(losses_, probs_, logits_, targets_, N, V);
    std::vector<float> losses(N);
    if (absl::Status s = backend_->CopyDeviceToHost(losses.data(), losses_, N * sizeof(float)); !s.ok()) return s;
    double ce = 0;
    for (float v : losses) ce += v;
    stats.ce = ce / N;
    stats.loss = stats.ce + stats.lb + stats.z;
    if (ctx.record_logits) {
      stats.logits.resize(static_cast<size_t>(N) * V);
      if (absl::Status s = backend_->CopyDeviceToHost(stats.logits.data(), logits_, stats.logits.size() * sizeof(float));
          !s.ok()) {
        return s;
      }
    }
    return stats;
  }

  absl::Status SwitchForward(int l, int N, const StepContext& ctx, ParamBlock* grads, MicroBatchStats* stats) {
    const LayerOffsets& o = layer_offsets_[l];
    LayerActs& a = acts_[l];
    const int C = cfg_.d_model, E = cfg_.experts;
    const float* router_in = a.ln2;
    if (ctx.training && cfg_.jitter_eps > 0.0f) {
      backend_->JitterForward(a.router_in, a.noise, a.ln2, int64_t{N} * C, cfg_.jitter_eps, JitterKey(ctx, l));
      router_in = a.router_in;
    }
    backend_->Sgemm(a.rlogits, router_in, P(o.router_w), N, E, C, false, false, 1.0f, 0.0f, C, E, E);
    backend_->RouterSoftmaxTop1(a.rprobs, a.expert, a.gate, a.rlogits, N, E);
    const int capacity = cfg_.Capacity(N, ctx.training ? cfg_.capacity_factor : cfg_.eval_capacity_factor);
    backend_->RouterAssign(a.row, a.counts, a.kept, a.expert, N, E, capacity);
    backend_->RouterLosses(a.rlosses, a.rprobs, a.rlogits, a.counts, N, E, cfg_.lb_alpha, cfg_.z_beta);
    std::vector<int32_t> counts(E);
    a.kept_host.assign(E, 0);
    float rl[2];
    if (absl::Status s = backend_->CopyDeviceToHost(counts.data(), a.counts, E * sizeof(int32_t)); !s.ok()) return s;
    if (absl::Status s = backend_->CopyDeviceToHost(a.kept_host.data(), a.kept, E * sizeof(int32_t)); !s.ok()) return s;
    if (absl::Status s = backend_->CopyDeviceToHost(rl, a.rlosses, sizeof rl); !s.ok()) return s;
    stats->lb += rl[0];
    stats->z += rl[1];
    stats->expert_counts.emplace_back(counts.begin(), counts.end());
    int64_t admitted = 0;
    for (int32_t k : a.kept_host) admitted += k;
    stats->dropped_tokens += N - admitted;
    stats->switch_layer_dropped_tokens.push_back(N - admitted);
    if (ctx.record_routing) {
      LayerRouting r;
      r.layer = l;
      r.expert.resize(N);
      std::vector<int32_t> row(N);
      if (absl::Status s = backend_->CopyDeviceToHost(r.expert.data(), a.expert, N * sizeof(int32_t)); !s.ok()) return s;
      if (absl::Status s = backend_->CopyDeviceToHost(row.data(), a.row, N * sizeof(int32_t)); !s.ok()) return s;
      r.dropped.resize(N);
      for (int n = 0; n < N; ++n) r.dropped[n] = row[n] < 0 ? 1 : 0;
      stats->routing.push_back(std::move(r));
    }
    backend_->DispatchForward(a.bucket_in, a.ln2, a.row, N, C);
    std::vector<ExpertBucket> buckets;
    int64_t offset = 0;
    for (int e = 0; e < E; ++e) {
      const int rows = a.kept_host[e];
      if (rows > 0) buckets.push_back({e, rows, a.bucket_in + offset * C, a.bucket_out + offset * C});
      offset += rows;
    }
    if (absl::Status s = executor_->Forward(Call(l, ctx, grads), buckets); !s.ok()) return s;
    backend_->CombineForward(a.ffn_out, a.bucket_out, a.row, a.gate, N, C);
    return absl::OkStatus();
  }

  ExpertCall Call(int l, const StepContext& ctx, ParamBlock* grads) const {
    return ExpertCall{ctx.seed, ctx.step, ctx.micro_batch, l, ctx.training, cfg_.expert_dropout, grads};
  }

  absl::Status Backward(int B, int T, const StepContext& ctx, float grad_scale, ParamBlock* grads) {
    const int N = B * T, C = cfg_.d_model, V = cfg_.vocab, NH = cfg_.heads;
    const int64_t NC = int64_t{N} * C;
    float* g = grads->data();
    const float rate = ctx.training ? cfg_.dropout : 0.0f;
    if (absl::Status s = grads->SetZero(); !s.ok()) return s;
    float* dlogits = dbig_;
    backend_->SoftmaxCrossEntropyBackward(dlogits, probs_, targets_, grad_scale / N, N, V);
    // logits = lnf · wte^T
    backend_->Sgemm(dln_, dlogits, P(wte_), N, C, V, false, false, 1.0f, 0.0f, V, C, C);
    backend_->Sgemm(g + wte_, dlogits, lnf_, V, C, N, true, false, 1.0f, 1.0f, V, C, C);
    if (absl::Status s = backend_->Zero(dres_, NC * sizeof(float)); !s.ok()) return s;
    const float* x_last = cfg_.layers > 0 ? acts_[cfg_.layers - 1].res2 : x0_;
    backend_->LayerNormBackward(dres_, g + lnf_w_, g + lnf_b_, dln_, x_last, P(lnf_w_), lnf_mean_, lnf_rstd_, N, C);
    if (absl::Status s = StageDone(0, ctx, *grads); !s.ok()) return s;
    for (int l = cfg_.layers - 1; l >= 0; --l) {
      const LayerOffsets& o = layer_offsets_[l];
      LayerActs& a = acts_[l];
      const float* x = l > 0 ? acts_[l - 1].res2 : x0_;
      // FFN branch: res2 = res1 + dropout(ffn(ln2(res1)))
      backend_->DropoutBackward(dbranch_, dres_, NC, rate, DropoutKey(ctx, l, 1));
      if (cfg_.IsSwitchLayer(l)) {
        if (absl::Status s = SwitchBackward(l, N, ctx, grad_scale, grads); !s.ok()) return s;
      } else {
        const int F = cfg_.d_ff;
        LinearBackward(backend_, dbig_, g + o.fcproj_w, g + o.fcproj_b, dbranch_, a.fch_gelu, P(o.fcproj_w), N, F, C);
        backend_->GeluBackward(dbig_, a.fch, dbig_, int64_t{N} * F);
        LinearBackward(backend_, dln_, g + o.fc_w, g + o.fc_b, dbig_, a.ln2, P(o.fc_w), N, C, F);
      }
      backend_->LayerNormBackward(dres_, g + o.ln2_w, g + o.ln2_b, dln_, a.res1, P(o.ln2_w), a.ln2_mean, a.ln2_rstd,
                                  N, C);
      // attention branch: res1 = x + dropout(proj(attn(qkv(ln1(x)))))
      backend_->DropoutBackward(dbranch_, dres_, NC, rate, DropoutKey(ctx, l, 0));
      LinearBackward(backend_, dtmp_, g + o.proj_w, g + o.proj_b, dbranch_, a.atty, P(o.proj_w), N, C, C);
      backend_->AttentionBackward(dqkv_, nullptr, datt_, nullptr, dtmp_, a.qkv, nullptr, a.att, B, T, C, NH);
      LinearBackward(backend_, dln_, g + o.qkv_w, g + o.qkv_b, dqkv_, a.ln1, P(o.qkv_w), N, C, 3 * C);
      backend_->LayerNormBackward(dres_, g + o.ln1_w, g + o.ln1_b, dln_, x, P(o.ln1_w), a.ln1_mean, a.ln1_rstd, N, C);
      if (absl::Status s = StageDone(cfg_.layers - l, ctx, *grads); !s.ok()) return s;
    }
    backend_->EncoderBackward(g + wte_, g + wpe_, dres_, tokens_, B, T, C);
    return StageDone(stages_.size() - 1, ctx, *grads);
  }

  // From dbranch_ (gradient wrt the Switch FFN output) to dln_ (wrt ln2).
  absl::Status SwitchBackward(int l, int N, const StepContext& ctx, float grad_scale, ParamBlock* grads) {
    const LayerOffsets& o = layer_offsets_[l];
    LayerActs& a = acts_[l];
    const int C = cfg_.d_model, E = cfg_.experts;
    backend_->CombineBackward(dbucket_out_, dgate_, dbranch_, a.bucket_out, a.row, a.gate, N, C);
    std::vector<ExpertBucketGrad> buckets;
    int64_t offset = 0;
    for (int e = 0; e < E; ++e) {
      const int rows = a.kept_host[e];
      if (rows > 0) buckets.push_back({e, rows, dbucket_out_ + offset * C, dbucket_in_ + offset * C});
      offset += rows;
    }
    if (absl::Status s = executor_->Backward(Call(l, ctx, grads), buckets); !s.ok()) return s;
    backend_->DispatchBackward(dln_, dbucket_in_, a.row, N, C);
    backend_->RouterBackward(drlogits_, dgate_, a.rprobs, a.rlogits, a.expert, a.counts, N, E, cfg_.lb_alpha,
                             cfg_.z_beta, grad_scale);
    const bool jitter = ctx.training && cfg_.jitter_eps > 0.0f;
    const float* router_in = jitter ? a.router_in : a.ln2;
    float* g = grads->data();
    LinearBackward(backend_, dtmp_, g + o.router_w, nullptr, drlogits_, router_in, P(o.router_w), N, C, E);
    if (jitter) backend_->Multiply(dtmp_, dtmp_, a.noise, int64_t{N} * C);
    backend_->Add(dln_, dln_, dtmp_, int64_t{N} * C);
    return absl::OkStatus();
  }

 private:
  ModelConfig cfg_;
  Backend* backend_;
  ParamBlock* params_;
  std::unique_ptr<ExpertExecutor> owned_executor_;
  ExpertExecutor* executor_;
  std::vector<std::vector<uint32_t>> stages_;  // BackwardStages(cfg_)
  GradListener* listener_ = nullptr;

  // Backward stage k's gradients are final: tell the listener.
  absl::Status StageDone(size_t k, const StepContext& ctx, const ParamBlock& grads) {
    return listener_ == nullptr ? absl::OkStatus() : listener_->GradsReady(ctx, stages_[k], grads);
  }
  int64_t wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<LayerOffsets> layer_offsets_;
  std::vector<LayerActs> acts_;
  void* arena_ = nullptr;
  int64_t cap_tokens_ = 0, cap_att_ = 0;
  int32_t *tokens_ = nullptr, *targets_ = nullptr;
  float *x0_ = nullptr, *lnf_ = nullptr, *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr;
  float *logits_ = nullptr, *probs_ = nullptr, *losses_ = nullptr;
  float *dres_ = nullptr, *dbranch_ = nullptr, *dln_ = nullptr, *dtmp_ = nullptr, *dqkv_ = nullptr;
  float *datt_ = nullptr, *dbig_ = nullptr, *dgate_ = nullptr, *drlogits_ = nullptr;
  float *dbucket_out_ = nullptr, *dbucket_in_ = nullptr;
};

Model::Model(const ModelConfig& config, Backend* backend) : config_(config), backend_(backend) {}
Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Create(const ModelConfig& config, Backend* backend, uint64_t seed,
                                                     ExpertExecutor* executor) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (backend == nullptr) return absl::InvalidArgumentError("Model::Create: null backend");
  std::unique_ptr<Model> model(new Model(config, backend));
  auto params = ParamBlock::Create(backend, ParamInfos(config));
  if (!params.ok()) return params.status();
  model->params_ = std::move(*params);
  if (absl::Status s = InitParams(config, seed, model->params_.get()); !s.ok()) return s;
  model->impl_ = std::make_unique<Impl>(config, backend, model->params_.get(), executor);
  return model;
}

absl::StatusOr<std::unique_ptr<ParamBlock>> Model::NewGradBlock() const {
  auto block = ParamBlock::Create(backend_, params_->infos());
  if (!block.ok()) return block.status();
  if (absl::Status s = (*block)->SetZero(); !s.ok()) return s;
  return block;
}

namespace {
absl::Status CheckBatch(const ModelConfig& cfg, absl::Span<const int32_t> inputs, absl::Span<const int32_t> targets,
                        int B, int T) {
  if (B <= 0 || T <= 0 || T > cfg.context) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch shape B=", B, " T=", T, ": need B >= 1 and 1 <= T <= context (", cfg.context, ")"));
  }
  const int64_t N = int64_t{B} * T;
  if (N > (int64_t{1} << 24)) return absl::InvalidArgumentError(absl::StrCat("batch of ", N, " tokens is too large"));
  if (N * T * cfg.heads > (int64_t{1} << 32)) {
    return absl::InvalidArgumentError(absl::StrCat("batch B=", B, " T=", T, ": attention scores (B*heads*T*T = ",
                                                   N * T * cfg.heads, ") exceed 2^32 elements"));
  }
  if (static_cast<int64_t>(inputs.size()) != N || static_cast<int64_t>(targets.size()) != N) {
    return absl::InvalidArgumentError(absl::StrCat("batch B*T=", N, " tokens but got ", inputs.size(), " inputs and ",
                                                   targets.size(), " targets"));
  }
  for (int64_t i = 0; i < N; ++i) {
    if (inputs[i] < 0 || inputs[i] >= cfg.vocab || targets[i] < 0 || targets[i] >= cfg.vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", i, " out of range [0, ", cfg.vocab, "): input ", inputs[i], ", target ", targets[i]));
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<MicroBatchStats> Model::ForwardBackward(absl::Span<const int32_t> inputs,
                                                       absl::Span<const int32_t> targets, int B, int T,
                                                       const StepContext& ctx, float grad_scale, ParamBlock* grads) {
  if (absl::Status s = CheckBatch(config_, inputs, targets, B, T); !s.ok()) return s;
  if (grads == nullptr || grads->size() != params_->size() || grads->backend() != backend_) {
    return absl::InvalidArgumentError("ForwardBackward: gradient block missing or not laid out like the parameters");
  }
  if (!std::isfinite(grad_scale)) return absl::InvalidArgumentError("ForwardBackward: grad_scale is not finite");
  auto stats = impl_->Forward(inputs, targets, B, T, ctx, grads);
  if (!stats.ok()) return stats.status();
  if (absl::Status s = impl_->Backward(B, T, ctx, grad_scale, grads); !s.ok()) return s;
  return stats;
}

void Model::set_grad_listener(GradListener* listener) { impl_->set_grad_listener(listener); }

absl::StatusOr<MicroBatchStats> Model::Evaluate(absl::Span<const int32_t> inputs, absl::Span<const int32_t> targets,
                                                int B, int T, bool record_routing, bool record_logits) {
  if (absl::Status s = CheckBatch(config_, inputs, targets, B, T); !s.ok()) return s;
  StepContext ctx;
  ctx.training = false;
  ctx.record_routing = record_routing;
  ctx.record_logits = record_logits;
  return impl_->Forward(inputs, targets, B, T, ctx, nullptr);
}

}  // namespace sy::gpu
