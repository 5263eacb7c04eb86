// Tests that trainer flags map field by field onto the model and optimizer
// configuration, and that an invalid model is refused before anything is built.
#include "services/cluster/model_options.h"

#include "gtest/gtest.h"

namespace sy::trainer {
namespace {

TEST(ModelOptionsTest, MapsEveryModelAndOptimizerField) {
  cluster::TrainerOptions o;
  o.layers = 3;
  o.d_model = 48;
  o.heads = 6;
  o.d_ff = 80;
  o.experts = 5;
  o.moe_every = 3;
  o.context = 17;
  o.capacity_factor = 1.5;
  o.eval_capacity_factor = 3.0;
  o.jitter = 0.02;
  o.dropout = 0.15;
  o.expert_dropout = 0.35;
  o.weight_decay = 0.05;
  o.clip = 2.5;
  o.lb_alpha = 0.2;
  o.z_beta = 0.005;
  absl::StatusOr<gpu::ModelConfig> c = cluster::ModelConfigFromOptions(o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->layers, 3);
  EXPECT_EQ(c->d_model, 48);
  EXPECT_EQ(c->heads, 6);
  EXPECT_EQ(c->d_ff, 80);
  EXPECT_EQ(c->experts, 5);
  EXPECT_EQ(c->moe_every, 3);
  EXPECT_EQ(c->context, 17);
  EXPECT_FLOAT_EQ(c->capacity_factor, 1.5f);
  EXPECT_FLOAT_EQ(c->eval_capacity_factor, 3.0f);
  EXPECT_FLOAT_EQ(c->jitter_eps, 0.02f);
  EXPECT_FLOAT_EQ(c->dropout, 0.15f);
  EXPECT_FLOAT_EQ(c->expert_dropout, 0.35f);
  EXPECT_EQ(c->vocab, 256);
  EXPECT_FLOAT_EQ(c->lb_alpha, 0.2f);
  EXPECT_FLOAT_EQ(c->z_beta, 0.005f);
  const gpu::AdamWConfig a = cluster::AdamWConfigFromOptions(o);
  EXPECT_FLOAT_EQ(a.weight_decay, 0.05f);
  EXPECT_FLOAT_EQ(a.max_grad_norm, 2.5f);
  EXPECT_FLOAT_EQ(a.beta2, 0.95f);
}

TEST(ModelOptionsTest, InvalidModelIsInvalidArgument) {
  cluster::TrainerOptions o;
  o.d_model = 30;
  o.heads = 4;  // 30 is not divisible by 4
  EXPECT_EQ(cluster::ModelConfigFromOptions(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sy::trainer
