// DeepSeek-V3 (and Kimi K2): its config keys, yarn rope against hand-computed values, group-limited sigmoid routing
// on small hand-worked cases, the absorbed latent attention kernel against a plain reference, and through the binary
// on make_model's tiny DeepSeek: every layout gives one rank's tokens (plain q_proj, older quantized kv_b_proj files),
// the older kv_b_proj loads as its exact dequantized transpose, and the KV cache holds only the latent.
// (The DeepSeek goldens themselves run in test_e2e_golden, test_parallel_golden and test_moe.)
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/check.h"
#include "core/dtype.h"
#include "io/hf_config.h"
#include "io/weight_index.h"
#include "kernels/mla_attention.h"
#include "model/moe.h"
#include "model/rope.h"
#include "model/weights.h"
#include "golden_check.h"
#include "test_support.h"

namespace meshlm {
namespace {

nlohmann::json deepseek_config() {
  return {{"architectures", {"DeepseekV3ForCausalLM"}}, {"model_type", "deepseek_v3"}, {"hidden_size", 64},
          {"intermediate_size", 128}, {"num_hidden_layers", 3}, {"num_attention_heads", 4},
          {"num_key_value_heads", 4}, {"vocab_size", 100}, {"max_position_embeddings", 16384},
          {"rms_norm_eps", 1e-6}, {"moe_intermediate_size", 32}, {"n_shared_experts", 2}, {"n_routed_experts", 8},
          {"routed_scaling_factor", 2.5}, {"kv_lora_rank", 32}, {"q_lora_rank", nullptr}, {"qk_rope_head_dim", 16},
          {"v_head_dim", 24}, {"qk_nope_head_dim", 32}, {"topk_method", "noaux_tc"}, {"n_group", 4},
          {"topk_group", 2}, {"num_experts_per_tok", 2}, {"moe_layer_freq", 1}, {"first_k_dense_replace", 2},
          {"norm_topk_prob", true}, {"scoring_func", "sigmoid"},
          {"rope_scaling", {{"type", "yarn"}, {"factor", 4}, {"original_max_position_embeddings", 4096},
                            {"beta_fast", 32}, {"beta_slow", 1}}}};
}


TEST(DeepseekConfig, MlaAndRoutingKeys) {
  const ModelConfig c = test::config_from_json(deepseek_config());
  EXPECT_EQ(c.arch, Arch::kDeepseekV3);
  EXPECT_EQ(c.mla.q_lora, 0);  // null: a plain q_proj
  EXPECT_EQ(c.mla.kv_lora, 32);
  EXPECT_EQ(c.head_dim, 48);   // nope + rope
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.cache_row(4), 48);  // the latent: kv_lora + rope, whatever the kv heads
  EXPECT_EQ(c.cache_row(1), 48);
  EXPECT_EQ(c.cache_planes(), 1);
  EXPECT_TRUE(c.moe.grouped);
  EXPECT_EQ(c.moe.n_group, 4);
  EXPECT_EQ(c.moe.topk_group, 2);
  EXPECT_DOUBLE_EQ(c.moe.routed_scale, 2.5);
  EXPECT_EQ(c.moe.shared_expert_dim, 64);  // 2 shared experts of 32
  EXPECT_FALSE(c.moe.shared_gated());
  EXPECT_FALSE(c.moe_layer(0));
  EXPECT_FALSE(c.moe_layer(1));
  EXPECT_TRUE(c.moe_layer(2));
  EXPECT_DOUBLE_EQ(c.attention_scale(), 1.0 / std::sqrt(48.0));  // no mscale_all_dim: unchanged
  auto j = deepseek_config();
  j["model_type"] = "kimi_k2";
  j["rope_scaling"]["mscale"] = 1.0;
  j["rope_scaling"]["mscale_all_dim"] = 1.0;
  j["rope_scaling"]["factor"] = 40;
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(test::config_from_json(j).attention_scale(), m * m / std::sqrt(48.0), 1e-15);
}

TEST(DeepseekConfig, Rejections) {
  auto with = [](const char* key, nlohmann::json v) {
    auto j = deepseek_config();
    j[key] = v;
    return test::config_error(j);
  };
  EXPECT_NE(with("scoring_func", "softmax").find("scoring_func \"softmax\" is not supported"), std::string::npos);
  EXPECT_NE(with("topk_method", "greedy").find("topk_method \"greedy\""), std::string::npos);
  EXPECT_NE(with("n_group", 3).find("not a multiple of n_group 3"), std::string::npos);
  EXPECT_NE(with("topk_group", 5).find("topk_group 5 is more than n_group 4"), std::string::npos);
  EXPECT_NE(with("qk_rope_head_dim", 15).find("qk_rope_head_dim 15 must be even"), std::string::npos);
  EXPECT_NE(with("kv_lora_rank", nullptr).find("missing required field \"kv_lora_rank\""), std::string::npos);
  EXPECT_NE(with("n_routed_experts", 0).find("\"n_routed_experts\" must be a positive integer"), std::string::npos);
  auto j = deepseek_config();
  j["rope_scaling"].erase("factor");
  EXPECT_NE(test::config_error(j).find("rope_scaling yarn needs \"factor\""), std::string::npos);
}

// rope dims 16, base 10000, original 4096, factor 4, beta 32/1: corr(32) = 16·ln(4096/(64π))/(2·ln 10⁴) = 2.618 -> low
// 2; corr(1) = 5.628 -> high 6; rampᵢ = clamp((i − 2)/4, 0, 1); θᵢ = 10⁴^(−2i/16)·(1 − ramp + ramp/4).
TEST(DeepseekRope, YarnFrequenciesAndAttentionFactor) {
  const ModelConfig c = test::config_from_json(deepseek_config());
  const Rope rope(c);
  ASSERT_EQ(rope.half(), 8);
  const double expected[8] = {1.0,                              // θᵢ = 10^(−i/2) below the ramp
                              std::pow(10.0, -0.5),
                              0.1,                              // ramp 0: unchanged
                              std::pow(10.0, -1.5) * 0.8125,    // ramp 0.25: 1 − 0.25 + 0.25/4
                              1e-2 * 0.625,                     // ramp 0.5
                              std::pow(10.0, -2.5) * 0.4375,    // ramp 0.75
                              1e-3 / 4,                         // ramp 1: divided by the factor
                              std::pow(10.0, -3.5) / 4};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(rope.inv_freq(i), expected[i], 1e-15) << i;
  EXPECT_NEAR(rope.attention_factor(), 0.1 * std::log(4.0) + 1.0, 1e-15);   // 1.1386: no mscale keys
  float cos[8], sin[8];
  rope.angles(3, cos, sin);
  EXPECT_NEAR(cos[1], std::cos(3 * std::pow(10.0, -0.5)) * 1.1386294361, 1e-6);
  EXPECT_NEAR(sin[6], std::sin(3 * 1e-3 / 4) * 1.1386294361, 1e-7);
  auto j = deepseek_config();  // DeepSeek-V3's own: mscale = mscale_all_dim = 1 -> cos and sin unscaled
  j["rope_scaling"]["mscale"] = 1.0;
  j["rope_scaling"]["mscale_all_dim"] = 1.0;
  EXPECT_DOUBLE_EQ(Rope(test::config_from_json(j)).attention_factor(), 1.0);
  j["rope_scaling"]["mscale"] = 0.707;
  EXPECT_NEAR(Rope(test::config_from_json(j)).attention_factor(), yarn_mscale(4, 0.707) / yarn_mscale(4, 1.0), 1e-15);
}

MoeConfig grouped(int experts, int groups, int keep, int k, bool norm, double scale) {
  MoeConfig m;
  m.n_experts = experts, m.n_group = groups, m.topk_group = keep, m.top_k = k, m.norm_topk = norm;
  m.routed_scale = scale, m.grouped = true;
  return m;
}

TEST(DeepseekRouting, GroupsChooseAndScoresWeigh) {
  // s = 0.5 except expert 6 (logit ln 3: s = 0.75). b = s + bias = .6 .5 | .8 .25 | .5 .5 | .7 .65, group scores
  // (two best) 1.1, 1.05, 1.0, 1.35: groups 3 and 0 kept. Expert 2 has the largest b but its group is dropped.
  const double logits[8] = {0, 0, 0, 0, 0, 0, std::log(3.0), 0};
  const float bias[8] = {0.1f, 0.0f, 0.3f, -0.25f, 0.0f, 0.0f, -0.05f, 0.15f};
  int32_t ids[2];
  float w[2];
  top_k_grouped_sigmoid(logits, bias, grouped(8, 4, 2, 2, true, 2.5), ids, w);
  EXPECT_EQ(ids[0], 6);
  EXPECT_EQ(ids[1], 7);
  EXPECT_NEAR(w[0], 0.75 / 1.25 * 2.5, 1e-6);  // weights are s (not b), renormalised, times the scale
  EXPECT_NEAR(w[1], 0.5 / 1.25 * 2.5, 1e-6);
  top_k_grouped_sigmoid(logits, bias, grouped(8, 4, 2, 2, false, 2.5), ids, w);
  EXPECT_NEAR(w[0], 0.75 * 2.5, 1e-6);
  EXPECT_NEAR(w[1], 0.5 * 2.5, 1e-6);
  // One group: no group limit, expert 2 wins.
  top_k_grouped_sigmoid(logits, bias, grouped(8, 1, 1, 2, true, 1.0), ids, w);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 6);
}

TEST(DeepseekRouting, DroppedGroupsScoreZeroNotMinusInfinity) {
  // All kept experts have b < 0, so the dropped group's experts (b set to 0.0, as transformers does) are chosen.
  const double logits[4] = {-10, -10, -10, -10};
  const float bias[4] = {-0.5f, -0.6f, -0.9f, -0.95f};
  int32_t ids[2];
  float w[2];
  top_k_grouped_sigmoid(logits, bias, grouped(4, 2, 1, 2, true, 1.0), ids, w);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 3);
}

// Plain reference: for each query row, softmax(scale·q·rowsᵀ) over the positions it sees, times rows[:, :r].
TEST(DeepseekKernel, LatentAttentionMatchesAPlainLoopThroughScrambledBlocks) {
  const int64_t r = 24, dr = 8, width = r + dr, B = 4, positions = 150, heads = 5;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  const int64_t n_blocks = (positions + B - 1) / B;
  std::vector<int> table(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) table[size_t(b)] = int((b * 17 + 5) % n_blocks);  // a permutation
  std::vector<float> pool(size_t(n_blocks * B * width)), q(size_t(positions * heads * width));
  for (float& v : pool) v = u(rng);
  for (float& v : q) v = u(rng);
  const LatentRows kv{pool.data(), table.data(), B, r, dr};
  const float scale = 0.3f;
  auto row_of = [&](int64_t t) { return pool.data() + (int64_t(table[size_t(t / B)]) * B + t % B) * width; };
  auto reference = [&](const float* qi, int64_t last, double* out) {
    std::vector<double> s(size_t(last + 1));
    double top = -INFINITY, sum = 0;
    for (int64_t t = 0; t <= last; ++t) {
      double d = 0;
      for (int64_t k = 0; k < width; ++k) d += double(qi[k]) * row_of(t)[k];
      top = std::max(top, s[size_t(t)] = d * scale);
    }
    for (double& v : s) sum += (v = std::exp(v - top));
    for (int64_t k = 0; k < r; ++k) {
      out[k] = 0;
      for (int64_t t = 0; t <= last; ++t) out[k] += s[size_t(t)] / sum * row_of(t)[k];
    }
  };
  std::vector<float> g, scores, out(size_t(positions * heads * r));
  double want[64];
  // One head over a run of 130 consecutive tokens from position 20 (query rows in blocks of 64).
  const int64_t pos0 = 20, m = 130;
  mla_gather(kv, pos0 + m, g);
  const int64_t h = 3;
  mla_attend(&q[size_t(h * width)], m, heads * width, pos0, 1, g.data(), r, dr, scale, scores, &out[size_t(h * r)],
             heads * r);
  for (int64_t i = 0; i < m; i += 7) {
    reference(&q[size_t((i * heads + h) * width)], pos0 + i, want);
    for (int64_t k = 0; k < r; ++k) ASSERT_NEAR(out[size_t((i * heads + h) * r + k)], want[k], 1e-5) << i << "," << k;
  }
  // All heads of one token at position 97.
  mla_gather(kv, 98, g);
  mla_attend(q.data(), heads, width, 97, 0, g.data(), r, dr, scale, scores, out.data(), r);
  for (int64_t hh = 0; hh < heads; ++hh) {
    reference(&q[size_t(hh * width)], 97, want);
    for (int64_t k = 0; k < r; ++k) ASSERT_NEAR(out[size_t(hh * r + k)], want[k], 1e-5);
  }
}

// ---- through the binary, on make_model's tiny DeepSeek-V3 ----

class DeepseekModel : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(tmp_.file("p.jsonl"), "{\"id\": \"a\", \"prompt_ids\": [1, 40, 7, 99, 3, 250, 8, 9]}\n"
                                           "{\"id\": \"b\", \"prompt_ids\": [1, 5]}\n"
                                           "{\"id\": \"c\", \"prompt_ids\": [1, 17, 18, 19, 20, 21, 22, 23, 24]}\n");
  }
  std::string make(const std::string& name, std::vector<std::string> args = {}) {
    const std::string out = tmp_.file(name);
    args.insert(args.begin(), {test::make_model_binary(), "--out", out, "--preset", "tiny-dsv3"});
    const auto r = test::run_command(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
  std::string convert(const std::string& model, const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {test::mlx_convert_binary(), "--model", model, "--out", tmp_.file(name), "--bits",
                                     "8", "--group", "32"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = test::run_command(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return tmp_.file(name);
  }
  std::vector<nlohmann::json> generate(const std::string& model, int np, std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "--model", model, "--prompts", tmp_.file("p.jsonl"), "--output",
                                     tmp_.file("o.jsonl"), "--max-tokens", "10", "--output-order", "input",
                                     "--metrics-json", tmp_.file("m.json")};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = np == 1 ? test::run_meshlm(args) : test::run_mpi(np, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? test::read_jsonl(tmp_.file("o.jsonl")) : std::vector<nlohmann::json>{};
  }
  static std::vector<nlohmann::json> ids(const std::vector<nlohmann::json>& out) {
    std::vector<nlohmann::json> v;
    for (const auto& o : out) v.push_back(o["token_ids"]);
    return v;
  }
  test::TempDir tmp_;
};

TEST_F(DeepseekModel, EveryLayoutGivesOneRanksTokens) {
  // Plain q_proj (q_lora_rank null) in bf16; the older MLX files' quantized kv_b_proj; the current split one.
  const std::string plain = make("plain", {"--q-lora", "0"}), lora = make("lora");
  const std::string old_mlx = convert(lora, "kvb8", {"--mla-kv-b"}), new_mlx = convert(lora, "split8");
  struct Run {
    int np;
    std::vector<std::string> args;
  };
  const std::vector<Run> runs = {{2, {"--tp", "2", "--moe-split", "experts"}},
                                 {3, {"--tp", "3", "--moe-split", "tensor"}},
                                 {4, {"--tp", "4"}},
                                 {3, {"--pp", "3"}},
                                 {4, {"--tp", "2", "--pp", "2", "--prefill-chunk", "3", "--max-batch", "2", "--max-batch-tokens", "5"}}};
  for (const std::string& m : {plain, old_mlx, new_mlx}) {
    const auto one = ids(generate(m, 1, {}));
    ASSERT_EQ(one.size(), 3u) << m;
    for (const Run& run : runs) {
      SCOPED_TRACE(m + " with " + std::to_string(run.np) + " ranks " + run.args[1]);
      EXPECT_EQ(ids(generate(m, run.np, run.args)), one);
    }
  }
}

// Absorbed and expanded attention (and auto, which expands prefill runs and absorbs the rest) agree, with chunked
// prefill mixing both in one step, and each meets the goldens on its own.
TEST_F(DeepseekModel, AbsorbedAndExpandedAttentionAgree) {
  const std::string m = make("m");
  const auto want = ids(generate(m, 1, {"--mla-attention", "absorb"}));
  ASSERT_EQ(want.size(), 3u);
  EXPECT_EQ(ids(generate(m, 1, {"--mla-attention", "expand"})), want);
  EXPECT_EQ(ids(generate(m, 1, {"--max-batch", "3", "--max-batch-tokens", "7", "--prefill-chunk", "5"})), want);
  EXPECT_EQ(ids(generate(m, 2, {"--tp", "2", "--mla-attention", "expand"})), want);
  const auto bad = test::run_meshlm({"generate", "--model", m, "--prompts", tmp_.file("p.jsonl"), "--output",
                                     tmp_.file("o.jsonl"), "--mla-attention", "fold"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--mla-attention must be absorb, expand or auto, got 'fold'"), std::string::npos) << bad.err;
  if (test::shared_dir().empty()) return;
  for (const char* golden : {"golden/models/tiny-deepseekv3-bf16", "golden/models/tiny-deepseekv3-mlx4"})
    for (const char* mode : {"absorb", "expand"}) {
      SCOPED_TRACE(std::string(golden) + " --mla-attention " + mode);
      test::check_golden(test::shared_dir() + "/" + golden, test::run_meshlm, {"--mla-attention", mode});
    }
}

TEST_F(DeepseekModel, BadCheckpointsNameTheTensor) {
  const std::string m = make("m");
  auto c = nlohmann::json::parse(test::read_file(m + "/config.json"));
  c["kv_lora_rank"] = 48;  // the file's latent is 32 wide
  test::write_file(m + "/config.json", c.dump());
  auto r = test::run_meshlm({"generate", "--model", m, "--prompts", tmp_.file("p.jsonl"), "--output", tmp_.file("o")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model.layers.0.self_attn.kv_a_proj_with_mqa.weight': expected shape [64, 64]"),
            std::string::npos) << r.err;
  c["kv_lora_rank"] = 32;
  c["q_lora_rank"] = nullptr;  // the file has q_a_proj / q_b_proj, not q_proj
  test::write_file(m + "/config.json", c.dump());
  r = test::run_meshlm({"generate", "--model", m, "--prompts", tmp_.file("p.jsonl"), "--output", tmp_.file("o")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << r.err;
}

TEST_F(DeepseekModel, KvCacheHoldsOnlyTheLatent) {
  const std::string m = make("m");
  generate(m, 1, {});
  auto metrics = nlohmann::json::parse(test::read_file(tmp_.file("m.json")));
  EXPECT_EQ(metrics["kv_bytes_per_token"], 3 * (32 + 16) * 4);  // 3 layers x (kv_lora + rope) fp32
  generate(m, 2, {"--tp", "2"});  // each tensor rank keeps the whole latent
  metrics = nlohmann::json::parse(test::read_file(tmp_.file("m.json")));
  EXPECT_EQ(metrics["kv_bytes_per_token"], 2 * 3 * (32 + 16) * 4);
  const auto r = test::run_meshlm({"info", "--model", m});
  EXPECT_NE(r.out.find("multi-head latent: q_lora 48, kv_lora 32, head dims 32 nope + 16 rope, v 24"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("576 bytes per token (fp32, the latent"), std::string::npos) << r.out;
}

// The older files' quantized kv_b_proj: each head's k_nope rows are held dequantized and transposed (W_kᵀ, fp32) and
// its v rows as quantized. Checked against a dequantization of the file's 8-bit words done here.
TEST_F(DeepseekModel, OlderKvBProjLoadsAsItsDequantizedTranspose) {
  const std::string m = convert(make("m"), "kvb8", {"--mla-kv-b"});
  const WeightIndex index(m);
  const ModelConfig c = load_model_config(m);
  const ModelWeights w = load_weights(index, c, ParallelLayout::single(c));
  const int64_t H = 4, dn = 32, dv = 24, r = 32, group = 32;
  const std::string name = "model.layers.1.self_attn.kv_b_proj.";
  const TensorInfo& words = index.get(name + "weight");
  const TensorInfo& scales = index.get(name + "scales");
  const TensorInfo& biases = index.get(name + "biases");
  ASSERT_EQ(words.shape, (std::vector<int64_t>{H * (dn + dv), r / 4}));
  std::vector<uint8_t> q(words.nbytes), s(scales.nbytes), b(biases.nbytes);
  index.file_of(words.name).read_rows(words, 0, words.rows(), q.data());
  index.file_of(scales.name).read_rows(scales, 0, scales.rows(), s.data());
  index.file_of(biases.name).read_rows(biases, 0, biases.rows(), b.data());
  auto value = [&](int64_t row, int64_t col) {  // 8 bits: value i of a row is its byte i
    float sc, bi;
    to_f32(&s[size_t((row * (r / group) + col / group) * 2)], scales.dtype, &sc, 1);
    to_f32(&b[size_t((row * (r / group) + col / group) * 2)], biases.dtype, &bi, 1);
    return sc * float(q[size_t(row * r + col)]) + bi;
  };
  const LayerWeights& L = w.layers[1];
  ASSERT_EQ(L.mla.embed_q.size(), size_t(H));
  std::vector<float> row(size_t(std::max(dn, r)));
  for (int64_t h = 0; h < H; ++h) {
    const WeightView e = L.mla.embed_q[size_t(h)].view(), o = L.mla.unembed_out[size_t(h)].view();
    ASSERT_EQ(e.rows, r);
    ASSERT_EQ(e.cols, dn);
    for (int64_t j = 0; j < r; ++j) {
      weight_row(e, j, row.data());
      for (int64_t d = 0; d < dn; ++d) ASSERT_FLOAT_EQ(row[size_t(d)], value(h * (dn + dv) + d, j)) << h << "," << j;
    }
    ASSERT_EQ(o.rows, dv);
    for (int64_t i = 0; i < dv; ++i) {
      weight_row(o, i, row.data());
      for (int64_t j = 0; j < r; ++j) ASSERT_FLOAT_EQ(row[size_t(j)], value(h * (dn + dv) + dn + i, j));
    }
  }
}

TEST_F(DeepseekModel, MultiTokenPredictionLayersAreSkipped) {
  // A checkpoint whose last layer is declared as a next-token-prediction layer (num_nextn_predict_layers) loads and
  // runs as the shorter model; its tensors are never read.
  const std::string m = make("m");
  auto c = nlohmann::json::parse(test::read_file(m + "/config.json"));
  c["num_hidden_layers"] = 2;
  c["num_nextn_predict_layers"] = 1;
  test::write_file(m + "/config.json", c.dump());
  EXPECT_EQ(generate(m, 1, {}).size(), 3u);
  const auto r = test::run_meshlm({"info", "--model", m});
  EXPECT_NE(r.out.find("layers        2"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace meshlm
