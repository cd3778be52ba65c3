// Mixture-of-experts models: routing (ties, renormalisation, agreement with a plain reference), grouping tokens by
// expert, the split arithmetic of both --moe-split modes, parameter counts, the goldens in every layout and mode,
// independence from the other requests in a batch, expert-load metrics, and bad MoE checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "core/check.h"
#include "golden_check.h"
#include "model/moe.h"
#include "model/parallel_layout.h"

namespace meshlm {
namespace {

TEST(MoeRouting, TopKBreaksTiesToTheLowerExpertId) {
  const double logits[] = {1.0, 3.0, 3.0, 0.0, 3.0};
  int32_t ids[3];
  float w[3];
  top_k_softmax(logits, 5, 2, false, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  top_k_softmax(logits, 5, 3, false, ids, w);
  EXPECT_EQ(ids[2], 4);
  const double flat[] = {0.5, 0.5, 0.5, 0.5};
  top_k_softmax(flat, 4, 2, false, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
  EXPECT_FLOAT_EQ(w[0], 0.25f);
  top_k_softmax(flat, 4, 2, true, ids, w);
  EXPECT_FLOAT_EQ(w[0], 0.5f);
  EXPECT_FLOAT_EQ(w[1], 0.5f);
}

TEST(MoeRouting, WeightsAreTheSoftmaxOverAllExpertsOptionallyRenormalised) {
  const double logits[] = {0.1, -1.0, 2.0, 0.7, 1.5, -0.3};
  double total = 0;
  for (double l : logits) total += std::exp(l);
  int32_t ids[2];
  float w[2];
  top_k_softmax(logits, 6, 2, false, ids, w);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 4);
  EXPECT_NEAR(w[0], std::exp(2.0) / total, 1e-7);
  EXPECT_NEAR(w[1], std::exp(1.5) / total, 1e-7);
  top_k_softmax(logits, 6, 2, true, ids, w);
  EXPECT_NEAR(w[0], std::exp(2.0) / (std::exp(2.0) + std::exp(1.5)), 1e-7);
  EXPECT_NEAR(w[0] + w[1], 1.0, 1e-7);
}

TEST(MoeRouting, RouteMatchesAPlainReference) {
  const int64_t n = 7, dim = 33;
  MoeConfig m;
  m.n_experts = 9, m.top_k = 3, m.norm_topk = true;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(size_t(n * dim)), router(size_t(m.n_experts * dim));
  for (float& v : x) v = u(rng);
  for (float& v : router) v = u(rng);
  std::vector<int32_t> ids(size_t(n * m.top_k));
  std::vector<float> w(ids.size());
  route(x.data(), n, dim, router.data(), nullptr, m, ids.data(), w.data());
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, int>> p;
    for (int e = 0; e < m.n_experts; ++e) {
      long double s = 0;
      for (int64_t k = 0; k < dim; ++k) s += (long double)x[size_t(i * dim + k)] * router[size_t(e * dim + k)];
      p.push_back({double(s), e});
    }
    std::sort(p.begin(), p.end(), [](auto& a, auto& b) { return a.first > b.first; });
    double kept = 0;
    for (int j = 0; j < m.top_k; ++j) kept += std::exp(p[size_t(j)].first);
    for (int j = 0; j < m.top_k; ++j) {
      EXPECT_EQ(ids[size_t(i * m.top_k + j)], p[size_t(j)].second) << "token " << i;
      EXPECT_NEAR(w[size_t(i * m.top_k + j)], std::exp(p[size_t(j)].first) / kept, 1e-6);
    }
  }
}

TEST(MoeGrouping, TokensGroupedByLocalExpertInTokenOrder) {
  // 4 tokens, top 2; this rank holds experts [1, 3).
  const int32_t ids[] = {0, 2, 2, 1, 1, 0, 2, 3};
  const float w[] = {0.5f, 0.25f, 0.75f, 0.125f, 0.6f, 0.4f, 0.9f, 0.1f};
  ExpertGroups g;
  g.build(ids, w, 4, 2, {1, 3});
  ASSERT_EQ(g.offset, (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(g.token, (std::vector<int32_t>{1, 2, 0, 1, 3}));
  EXPECT_EQ(g.weight, (std::vector<float>{0.125f, 0.6f, 0.25f, 0.75f, 0.9f}));
  EXPECT_EQ(g.rows(0), 2);
  EXPECT_EQ(g.rows(1), 3);
  g.build(ids, w, 4, 2, {4, 6});  // experts nobody chose
  EXPECT_EQ(g.offset, (std::vector<int64_t>{0, 0, 0}));
}

ModelConfig moe_config(int experts, int expert_dim, int shared) {
  ModelConfig c;
  c.arch = Arch::kQwen2Moe;
  c.dim = 64, c.hidden_dim = 96, c.n_layers = 4, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 8, c.vocab_size = 100;
  c.moe.n_experts = experts, c.moe.top_k = 2, c.moe.expert_dim = expert_dim, c.moe.shared_expert_dim = shared;
  return c;
}

TEST(MoeSplit, ExpertsWholeOrSlicedPerRank) {
  const ModelConfig c = moe_config(8, 64, 100);
  const Range want_experts[] = {{0, 3}, {3, 6}, {6, 8}};
  const Range want_slices[] = {{0, 22}, {22, 43}, {43, 64}};
  const Range want_shared[] = {{0, 34}, {34, 67}, {67, 100}};
  for (int t = 0; t < 3; ++t) {
    const ParallelLayout e = ParallelLayout::make(c, 3, t, 3, 1, {4}, MoeSplit::kExperts);
    EXPECT_EQ(e.experts.begin, want_experts[t].begin);
    EXPECT_EQ(e.experts.end, want_experts[t].end);
    EXPECT_EQ(e.expert_hidden.size(), 64);
    const ParallelLayout s = ParallelLayout::make(c, 3, t, 3, 1, {4}, MoeSplit::kTensor);
    EXPECT_EQ(s.experts.size(), 8);
    EXPECT_EQ(s.expert_hidden.begin, want_slices[t].begin);
    EXPECT_EQ(s.expert_hidden.end, want_slices[t].end);
    for (const ParallelLayout* l : {&e, &s}) {  // the shared expert splits like a dense MLP in both modes
      EXPECT_EQ(l->shared_hidden.begin, want_shared[t].begin);
      EXPECT_EQ(l->shared_hidden.end, want_shared[t].end);
    }
  }
  EXPECT_THROW(check_degrees(4, 4, 1, moe_config(3, 64, 0), MoeSplit::kExperts), Error);  // a rank without experts
  EXPECT_NO_THROW(check_degrees(4, 4, 1, moe_config(3, 64, 0), MoeSplit::kTensor));
  EXPECT_EQ(parse_moe_split("experts"), MoeSplit::kExperts);
  EXPECT_EQ(parse_moe_split("tensor"), MoeSplit::kTensor);
  EXPECT_THROW(parse_moe_split("rows"), Error);
}

TEST(MoeSplit, SparseAndDenseLayers) {
  ModelConfig c = moe_config(8, 64, 0);
  c.moe.dense_layers = {1};
  c.moe.sparse_step = 1;
  EXPECT_TRUE(c.moe_layer(0));
  EXPECT_FALSE(c.moe_layer(1));
  c.moe.dense_layers.clear();
  c.moe.sparse_step = 2;  // Qwen decoder_sparse_step: layers 1, 3, ... are sparse
  EXPECT_FALSE(c.moe_layer(0));
  EXPECT_TRUE(c.moe_layer(1));
  EXPECT_FALSE(c.moe_layer(2));
}

TEST(MoeParams, ModelCardCounts) {
  ModelConfig mixtral;  // Mixtral-8x7B: 46.7 B parameters, 12.9 B active
  mixtral.dim = 4096, mixtral.hidden_dim = 14336, mixtral.n_layers = 32, mixtral.n_heads = 32, mixtral.n_kv_heads = 8;
  mixtral.head_dim = 128, mixtral.vocab_size = 32000;
  mixtral.moe.n_experts = 8, mixtral.moe.top_k = 2, mixtral.moe.expert_dim = 14336;
  const auto layers = layer_params(mixtral);
  const double total = std::accumulate(layers.begin(), layers.end(), 0.0) + 2 * head_params(mixtral);
  EXPECT_NEAR(total / 1e9, 46.7, 0.05);
  EXPECT_NEAR(active_params(mixtral) / 1e9, 12.9, 0.05);
  ModelConfig qwen = mixtral;  // Qwen3-30B-A3B: 30.5 B, 3.3 B active
  qwen.dim = 2048, qwen.n_layers = 48, qwen.n_heads = 32, qwen.n_kv_heads = 4, qwen.vocab_size = 151936;
  qwen.moe.n_experts = 128, qwen.moe.top_k = 8, qwen.moe.expert_dim = 768;
  const auto ql = layer_params(qwen);
  EXPECT_NEAR((std::accumulate(ql.begin(), ql.end(), 0.0) + 2 * head_params(qwen)) / 1e9, 30.5, 0.1);
  EXPECT_NEAR(active_params(qwen) / 1e9, 3.3, 0.06);
}

TEST(MoeParams, PipelineSplitWeighsLayersByTheirBytes) {
  // Unequal layers: the busiest stage is minimized, not the layer count evened.
  EXPECT_EQ(layer_counts_fit({1, 1, 5, 5, 1, 1}, {1, 1}, {}), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(layer_counts_fit({1, 1, 5, 5, 1, 1}, {1, 2}, {}), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(layer_counts_fit({5, 1, 1, 1, 1, 1}, {1, 1}, {}), (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(layer_counts_fit({1, 1, 1, 1}, {1, 1}, {0, 2.5}), (std::vector<int64_t>{3, 1}));
  // Layers 0-1 dense, 2-3 MoE (experts 3.6x a dense layer's bytes): 3|1, where an even count would give 2|2.
  ModelConfig c = moe_config(8, 64, 0);
  c.moe.dense_layers = {0, 1};
  const auto p = layer_params(c);
  EXPECT_LT(p[0], p[2]);
  EXPECT_EQ(layer_counts_fit(p, {1, 1}, {}), (std::vector<int64_t>{3, 1}));
}

// ---- through the binary ----

const char* kMoeGoldens[] = {"golden/models/tiny-mixtral-bf16",   "golden/models/tiny-qwen3moe-bf16",
                             "golden/models/tiny-qwen2moe-f32",   "golden/models/tiny-qwen3moe-mlx4",
                             "golden/models/tiny-deepseekv3-bf16", "golden/models/tiny-deepseekv3-mlx4"};

struct MoeLayout {
  const char* name;
  int np;
  std::vector<std::string> args;
};

class MoeGolden : public ::testing::TestWithParam<std::tuple<MoeLayout, const char*>> {};

TEST_P(MoeGolden, MatchesGoldens) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): MoE goldens not run";
  // Not a structured binding: clang before 16 cannot capture one in the lambda below.
  const auto& layout = std::get<0>(GetParam());
  const auto& split = std::get<1>(GetParam());
  for (const char* name : kMoeGoldens) {
    SCOPED_TRACE(std::string(layout.name) + " --moe-split " + split + " on " + name);
    std::vector<std::string> args = layout.args;
    args.insert(args.end(), {"--moe-split", split});
    test::check_golden(test::shared_dir() + "/" + name,
                       [&](const std::vector<std::string>& a) { return test::run_mpi(layout.np, a); }, args);
  }
}

const MoeLayout kMoeLayouts[] = {
    {"tp1", 1, {"--tp", "1"}},
    {"tp2", 2, {"--tp", "2"}},
    {"tp3", 3, {"--tp", "3"}},  // 8 experts: 3,3,2; Mixtral's 4: 2,1,1
    {"tp4", 4, {"--tp", "4"}},
    {"pp2", 2, {"--pp", "2"}},
    {"tp2_pp2", 4, {"--tp", "2", "--pp", "2"}},
    {"dp2", 2, {"--tp", "1", "--pp", "1"}},
    {"tp2_continuous_batching", 2, {"--tp", "2", "--max-batch", "3", "--max-batch-tokens", "7", "--prefill-chunk", "3"}},
};

INSTANTIATE_TEST_SUITE_P(Layouts, MoeGolden,
                         ::testing::Combine(::testing::ValuesIn(kMoeLayouts), ::testing::Values("experts", "tensor")),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" + std::get<1>(info.param);
                         });

// The golden prompts among 12 other requests, all in flight together and routed to the same experts: each golden
// request's tokens are still its golden tokens.
TEST(MoeBatch, TokensDoNotDependOnTheOtherRequests) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent";
  const std::string model = test::shared_dir() + "/golden/models/tiny-qwen3moe-bf16";
  const auto expected = test::read_jsonl(model + "/expected.jsonl");
  test::TempDir tmp;
  std::string prompts;
  std::mt19937 rng(11);
  for (size_t i = 0; i < 16; ++i) {
    nlohmann::json req;
    if (i % 4 == 1 && i / 4 < expected.size()) {
      const auto& e = expected[i / 4];
      req = {{"id", "g" + std::to_string(i / 4)}, {"prompt_ids", e["prompt_ids"]},
             {"max_tokens", std::max<size_t>(1, e["greedy"].size())}};
    } else {
      std::vector<int> ids = {1};
      for (unsigned k = 0; k < 3 + rng() % 30; ++k) ids.push_back(3 + int(rng() % 500));
      req = {{"id", "x" + std::to_string(i)}, {"prompt_ids", ids}, {"max_tokens", 20}};
    }
    prompts += req.dump() + "\n";
  }
  test::write_file(tmp.file("p.jsonl"), prompts);
  for (const char* split : {"experts", "tensor"}) {
    const auto r = test::run_mpi(2, {"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                                     tmp.file("o.jsonl"), "--tp", "2", "--moe-split", split, "--max-batch", "16"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int checked = 0;
    for (const auto& line : test::read_jsonl(tmp.file("o.jsonl"))) {
      const std::string id = line["id"];
      if (id[0] != 'g') continue;
      const auto& want = expected[size_t(std::stoi(id.substr(1)))]["greedy"];
      EXPECT_EQ(line["token_ids"], want) << split << " " << id;
      ++checked;
    }
    EXPECT_EQ(checked, 4) << split;
  }
}

class MoeModel : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tmp_.file("moe");
    make({"--preset", "tiny-moe"});
    test::write_file(tmp_.file("p.jsonl"), "{\"id\": \"a\", \"prompt_ids\": [1, 40, 7, 99]}\n"
                                           "{\"id\": \"b\", \"prompt_ids\": [1, 5]}\n");
  }
  void make(std::vector<std::string> args) {
    std::filesystem::remove_all(model_);
    args.insert(args.begin(), {test::make_model_binary(), "--out", model_});
    ASSERT_EQ(test::run_command(args).exit_code, 0);
  }
  test::RunResult generate(int np, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"generate", "--model", model_, "--prompts", tmp_.file("p.jsonl"), "--output",
                                     tmp_.file("o.jsonl"), "--max-tokens", "6"};
    args.insert(args.end(), extra.begin(), extra.end());
    return np == 1 ? test::run_meshlm(args) : test::run_mpi(np, args);
  }
  void edit_config(const std::string& key, const nlohmann::json& value) {
    auto c = nlohmann::json::parse(test::read_file(model_ + "/config.json"));
    c[key] = value;
    test::write_file(model_ + "/config.json", c.dump());
  }
  static void expect_error(const test::RunResult& r, const std::vector<std::string>& fragments) {
    EXPECT_NE(r.exit_code, 0) << r.err;
    EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;
    for (auto& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "missing '" << f << "' in: " << r.err;
  }
  test::TempDir tmp_;
  std::string model_;
};

TEST_F(MoeModel, ExpertLoadInTheSummaryAndMetrics) {
  const auto r = generate(2, {"--tp", "2", "--moe-split", "experts", "--metrics-json", tmp_.file("m.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("expert load"), std::string::npos) << r.err;
  const auto m = nlohmann::json::parse(test::read_file(tmp_.file("m.json")));
  // 2 layers x top 2 x the tokens run: 4 + 2 prompt tokens and 5 more fed per request.
  const double want_rows = 2 * 2 * (6 + 2 * 5);
  double rows = 0;
  for (const auto& rank : m["ranks"]) {
    const auto per_expert = rank["expert_rows"].get<std::vector<double>>();
    ASSERT_EQ(per_expert.size(), 6u);
    const int t = rank["tp"];
    for (size_t e = 0; e < 6; ++e) {  // experts [0,3) on tp 0, [3,6) on tp 1
      if ((e < 3) != (t == 0)) {
        EXPECT_EQ(per_expert[e], 0) << "rank " << t << " ran expert " << e;
      }
    }
    rows += std::accumulate(per_expert.begin(), per_expert.end(), 0.0);
  }
  EXPECT_EQ(rows, want_rows);
  EXPECT_GE(m["expert_load"]["busiest_rank_share"].get<double>(), 0.5);
  EXPECT_EQ(m["expert_load"]["moe_split"], "experts");
}

TEST_F(MoeModel, InfoCountsActiveParametersAndBytesPerRank) {
  const auto r = test::run_meshlm({"info", "--model", model_, "--tp", "2", "--moe-split", "experts"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("experts       6 per layer, top 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("active"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("experts [0,3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("experts [3,6)"), std::string::npos) << r.out;
  // Experts are quantized at load like dense layers: q8_0 holds fewer bytes than bf16, and generation runs.
  auto mb = [](const std::string& out) {  // "rank 0 ...: 0.30 MB"
    const std::string line = out.substr(out.rfind("rank 0"));
    return std::stod(line.substr(line.find(": ") + 2));
  };
  const auto q = test::run_meshlm({"info", "--model", model_, "--weight-dtype", "q8_0"});
  const auto b = test::run_meshlm({"info", "--model", model_});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_LT(mb(q.out), mb(b.out)) << q.out << b.out;
  const auto g = generate(1, {"--weight-dtype", "q8_0"});
  EXPECT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.err.find("quantized to Q8_0"), std::string::npos) << g.err;
}

TEST_F(MoeModel, BadCheckpointsSayWhatIsWrong) {
  edit_config("num_experts_per_tok", 7);
  expect_error(generate(1), {"config.json", "num_experts_per_tok 7", "6 experts"});
  edit_config("num_experts_per_tok", 2);
  edit_config("mlp_only_layers", {5});
  expect_error(generate(1), {"config.json", "mlp_only_layers", "[0, 2)"});
  edit_config("mlp_only_layers", nlohmann::json::array());
  edit_config("moe_intermediate_size", 16);
  expect_error(generate(1), {"model.layers.0.mlp.experts.0.gate_proj.weight", "expected shape [16, 64]", "[32, 64]"});
  edit_config("moe_intermediate_size", 32);
  ASSERT_EQ(generate(1).exit_code, 0);
  // A missing expert: rename one in the header (same length).
  const std::string path = model_ + "/model.safetensors";
  std::string bytes = test::read_file(path);
  const size_t at = bytes.find("experts.4.up_proj");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 17, "experts.4.up_prOj");
  test::write_file(path, bytes);
  expect_error(generate(1), {"model.layers.", "experts.4.up_proj.weight", "missing"});
  expect_error(generate(2, {"--tp", "2", "--moe-split", "experts"}), {"experts.4.up_proj.weight", "missing"});
}

TEST_F(MoeModel, LayoutErrors) {
  expect_error(generate(1, {"--moe-split", "rows"}), {"--moe-split must be experts or tensor"});
  make({"--preset", "tiny-moe", "--experts", "2", "--top-k", "1"});
  expect_error(generate(3, {"--tp", "3", "--moe-split", "experts"}), {"--tp 3", "2 experts"});
  EXPECT_EQ(generate(3, {"--tp", "3", "--moe-split", "tensor"}).exit_code, 0);
}

}  // namespace
}  // namespace meshlm
