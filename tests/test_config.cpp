// config.json -> ModelConfig: every supported architecture, defaults, eos forms, and clear rejections.
#include <gtest/gtest.h>

#include "core/check.h"
#include "io/hf_config.h"
#include "test_support.h"

namespace meshlm {
namespace {

nlohmann::json base() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 128},
          {"num_hidden_layers", 2}, {"num_attention_heads", 8}, {"num_key_value_heads", 2},
          {"vocab_size", 100}, {"max_position_embeddings", 256}, {"rms_norm_eps", 1e-5}, {"eos_token_id", 2}};
}


TEST(Config, Llama) {
  const ModelConfig c = test::config_from_json(base());
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.kv_dim(), 16);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.eos_ids, std::vector<int>{2});
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
}

TEST(Config, Llama3RopeScalingAndEosList) {
  auto j = base();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 64}};
  j["eos_token_id"] = {5, 7};
  const ModelConfig c = test::config_from_json(j, R"({"eos_token_id": [7, 9]})");
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(c.rope_scaling.original_max_position, 64);
  EXPECT_EQ(c.eos_ids, (std::vector<int>{5, 7, 9}));
}

TEST(Config, Qwen2AndQwen3) {
  auto j = base();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["tie_word_embeddings"] = true;
  j["sliding_window"] = 32;  // ignored without use_sliding_window
  ModelConfig c = test::config_from_json(j);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.sliding_window, 0);
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["head_dim"] = 16;  // head_dim != hidden / heads
  c = test::config_from_json(j);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.q_dim(), 128);
}

TEST(Config, MistralSlidingWindow) {
  auto j = base();
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = 32;
  EXPECT_EQ(test::config_from_json(j).sliding_window, 32);
}

// MoE keys, with transformers' defaults where a key is missing.
TEST(Config, MixtureOfExperts) {
  auto j = base();
  j["architectures"] = {"MixtralForCausalLM"};
  ModelConfig c = test::config_from_json(j);
  EXPECT_EQ(c.arch, Arch::kMixtral);
  EXPECT_EQ(c.moe.n_experts, 8);  // num_local_experts
  EXPECT_EQ(c.moe.top_k, 2);
  EXPECT_EQ(c.moe.expert_dim, 128);  // intermediate_size
  EXPECT_TRUE(c.moe.norm_topk);
  EXPECT_TRUE(c.moe_layer(0) && c.moe_layer(1));
  j["num_local_experts"] = 4;
  j["num_experts_per_tok"] = 1;
  j["sliding_window"] = 16;
  c = test::config_from_json(j);
  EXPECT_EQ(c.moe.n_experts, 4);
  EXPECT_EQ(c.moe.top_k, 1);
  EXPECT_EQ(c.sliding_window, 16);

  j = base();
  j["architectures"] = {"Qwen3MoeForCausalLM"};
  c = test::config_from_json(j);
  EXPECT_EQ(c.moe.n_experts, 128);
  EXPECT_EQ(c.moe.top_k, 8);
  EXPECT_EQ(c.moe.expert_dim, 768);
  EXPECT_FALSE(c.moe.norm_topk);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.moe.shared_expert_dim, 0);
  j["num_experts"] = 8, j["num_experts_per_tok"] = 2, j["moe_intermediate_size"] = 32, j["norm_topk_prob"] = true;
  j["mlp_only_layers"] = {0};
  c = test::config_from_json(j);
  EXPECT_TRUE(c.moe.norm_topk);
  EXPECT_FALSE(c.moe_layer(0));
  EXPECT_TRUE(c.moe_layer(1));

  j = base();
  j["architectures"] = {"Qwen2MoeForCausalLM"};
  c = test::config_from_json(j);
  EXPECT_EQ(c.moe.n_experts, 60);
  EXPECT_EQ(c.moe.top_k, 4);
  EXPECT_EQ(c.moe.expert_dim, 1408);
  EXPECT_EQ(c.moe.shared_expert_dim, 5632);
  EXPECT_TRUE(c.qkv_bias);
  j["decoder_sparse_step"] = 2;
  c = test::config_from_json(j);
  EXPECT_FALSE(c.moe_layer(0));
  EXPECT_TRUE(c.moe_layer(1));

  j["num_experts_per_tok"] = 61;
  EXPECT_NE(test::config_error(j).find("num_experts_per_tok 61 is more than the 60 experts"), std::string::npos) << test::config_error(j);
  j["num_experts_per_tok"] = 2;
  j["mlp_only_layers"] = "1";
  EXPECT_NE(test::config_error(j).find("\"mlp_only_layers\" must be a list"), std::string::npos) << test::config_error(j);
  j["mlp_only_layers"] = {2};
  EXPECT_NE(test::config_error(j).find("not a layer index in [0, 2)"), std::string::npos) << test::config_error(j);
}

// MLX "quantization": global bits and group, per-module dicts; files from before Aug 2025 also list modules as true
// (global) or false (not quantized: their file has no scales), and may have no "mode".
TEST(Config, MlxQuantization) {
  auto j = base();
  j["quantization"] = {{"group_size", 64}, {"bits", 4}, {"model.layers.0.mlp.down_proj", {{"group_size", 32}, {"bits", 8}}},
                       {"model.layers.0.self_attn.q_proj", true}, {"lm_head", false}};
  ModelConfig c = test::config_from_json(j);
  EXPECT_EQ(c.affine.bits, 4);
  EXPECT_EQ(c.affine.group, 64);
  EXPECT_EQ(c.affine.of("model.layers.0.mlp.down_proj"), (std::pair{8, 32}));
  EXPECT_EQ(c.affine.of("model.layers.0.self_attn.q_proj"), (std::pair{4, 64}));
  j["quantization"]["mode"] = "nvfp4";
  EXPECT_NE(test::config_error(j).find("mode \"nvfp4\" is not supported"), std::string::npos) << test::config_error(j);
  j["quantization"] = {{"group_size", 64}, {"bits", 7}};
  EXPECT_NE(test::config_error(j).find("bits 7 is not supported"), std::string::npos) << test::config_error(j);
  j.erase("quantization");
  j["quantization_config"] = {{"quant_method", "gptq"}, {"desc_act", false}};
  EXPECT_NE(test::config_error(j).find("quant_method \"gptq\" is not supported"), std::string::npos) << test::config_error(j);
}

TEST(Config, Rejections) {
  auto j = base();
  j["architectures"] = {"GPTNeoXForCausalLM"};
  EXPECT_NE(test::config_error(j).find("GPTNeoXForCausalLM\" is not supported"), std::string::npos) << test::config_error(j);
  j = base();
  j.erase("hidden_size");
  EXPECT_NE(test::config_error(j).find("missing required field \"hidden_size\""), std::string::npos) << test::config_error(j);
  j = base();
  j["num_attention_heads"] = "eight";
  EXPECT_NE(test::config_error(j).find("\"num_attention_heads\" must be a positive integer"), std::string::npos);
  j = base();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(test::config_error(j).find("multiple of num_key_value_heads"), std::string::npos);
  j = base();
  j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 4.0}};
  EXPECT_NE(test::config_error(j).find("\"longrope\" is not supported"), std::string::npos);
  j = base();
  j["eos_token_id"] = 1000;
  EXPECT_NE(test::config_error(j).find("outside the vocabulary"), std::string::npos);
  j = base();
  j["hidden_act"] = "gelu";
  EXPECT_NE(test::config_error(j).find("hidden_act"), std::string::npos);
  test::TempDir tmp;
  test::write_file(tmp.file("config.json"), "{ not json");
  EXPECT_THROW(load_model_config(tmp.path.string()), Error);
  EXPECT_THROW(load_model_config(tmp.file("nope")), Error);
}

}  // namespace
}  // namespace meshlm
