// --weight-dtype q8_0 / q4_0 and --compute fast against the goldens, teacher-forced: for every step of every golden
// continuation, the prompt plus the golden tokens so far must make the model pick the golden next token. Prints
// the agreement per weight type and compute mode, and fast mode's agreement with exact mode on the same weights
// (what int8 or bf16 activations alone cost). The floors sit about a point below what these models measure
// (2026-12: q8_0 98.90% exact, 98.04% fast, fast = exact 98.82%; q4_0 83.19 / 83.03 / 98.19%): the small random
// models have narrow top-2 margins (the goldens are cut only where the margin falls under 1e-3), so a rounding that
// a trained model shrugs off flips some of their tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "golden_check.h"
#include "h5_read.h"
#include "kernels/matvec.h"

namespace meshlm {
namespace {

// Top-1 picks at every teacher-forced position of a model's goldens: `want` the golden token, `got` meshlm's.
struct Picks {
  std::vector<int> got, want;
};

Picks picks(const std::string& model, const std::string& weight_dtype, const std::string& compute) {
  test::TempDir tmp;
  std::string prompts;
  Picks p;
  for (const auto& e : test::read_jsonl(model + "/expected.jsonl")) {
    std::vector<int> prefix = e["prompt_ids"].get<std::vector<int>>();
    for (int next : e["greedy"].get<std::vector<int>>()) {
      const nlohmann::json line = {{"id", std::to_string(p.want.size())}, {"prompt_ids", prefix}, {"max_tokens", 1}};
      prompts += line.dump() + "\n";
      p.want.push_back(next);
      prefix.push_back(next);
    }
  }
  test::write_file(tmp.file("p.jsonl"), prompts);
  const auto r = test::run_meshlm({"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                                   tmp.file("o.jsonl"), "--output-order", "input", "--weight-dtype", weight_dtype,
                                   "--compute", compute, "--max-batch", "32"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const auto& line : test::read_jsonl(tmp.file("o.jsonl"))) p.got.push_back(line["token_ids"][0].get<int>());
  EXPECT_EQ(p.got.size(), p.want.size()) << model;
  p.got.resize(p.want.size(), -1);
  return p;
}

struct Tally {
  size_t agree = 0, total = 0;
  void add(const std::vector<int>& a, const std::vector<int>& b) {
    for (size_t i = 0; i < a.size(); ++i) agree += a[i] == b[i];
    total += a.size();
  }
  double share() const { return total ? double(agree) / double(total) : 0; }
};

void print(const std::string& what, const Tally& t) {
  std::printf("[ %s ] top-1 agreement %.2f%% (%zu/%zu)\n", what.c_str(), 100 * t.share(), t.agree, t.total);
}

// bf16 or f16 matrices (fast mode takes f16 ones as bf16).
bool has_16bit_weights(const std::string& model) {
  return test::read_file(model + "/config.json").find("float16\"") != std::string::npos &&
         std::filesystem::path(model).filename().string().find("mlx") == std::string::npos;
}

bool is_mlx(const std::string& model) {
  return std::filesystem::path(model).filename().string().find("mlx") != std::string::npos;
}

// Exact and fast mode on the same weights: each against the goldens, and fast against exact, which is what the
// compute mode alone costs.
struct Agreement {
  Tally exact, fast, fast_vs_exact;
  void add(const Agreement& o) {
    for (auto [sum, one] : {std::pair{&exact, &o.exact}, {&fast, &o.fast}, {&fast_vs_exact, &o.fast_vs_exact}})
      sum->agree += one->agree, sum->total += one->total;
  }
};
using PerModel = std::vector<std::pair<std::string, Agreement>>;

// Over the goldens of the supported models (test_e2e_golden lists them), weights in `dtype`.
PerModel measure(const std::string& dtype) {
  PerModel out;
  for (const std::string& rel : test::golden_model_names()) {
    const std::string m = test::shared_dir() + "/" + rel;
    const Picks exact = picks(m, dtype, "exact"), fast = picks(m, dtype, "fast");
    Agreement a;
    a.exact.add(exact.got, exact.want), a.fast.add(fast.got, fast.want), a.fast_vs_exact.add(fast.got, exact.got);
    std::printf("[ %s ] %s: exact %zu/%zu, fast %zu/%zu, fast = exact %zu/%zu\n", dtype.c_str(),
                std::filesystem::path(m).filename().c_str(), a.exact.agree, a.exact.total, a.fast.agree, a.fast.total,
                a.fast_vs_exact.agree, a.fast_vs_exact.total);
    out.emplace_back(m, a);
  }
  return out;
}

// The models' sum (those `only` picks), printed under `what`.
Agreement total(const PerModel& per_model, const std::string& what, bool (*only)(const std::string&) = nullptr) {
  Agreement all;
  for (const auto& [model, a] : per_model)
    if (!only || only(model)) all.add(a);
  print(what + " exact", all.exact), print(what + " fast", all.fast), print(what + " fast = exact", all.fast_vs_exact);
  return all;
}

TEST(QuantAccuracy, TopOneAgreementWithTheGoldens) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared not found";
  const PerModel stored = measure("stored");
  EXPECT_EQ(total(stored, "stored").exact.share(), 1.0) << "exact mode must reproduce the goldens";
  EXPECT_GE(total(stored, "16-bit", has_16bit_weights).fast.share(), 0.99) << "bf16 and f16 weights, bf16 activations";
  EXPECT_GE(total(stored, "MLX", is_mlx).fast.share(), 0.97) << "MLX weights, int8 activations";
  const Agreement q8 = total(measure("q8_0"), "q8_0"), q4 = total(measure("q4_0"), "q4_0");
  for (const auto& [name, a, floor, vs_exact] : {std::tuple{"q8_0", q8, 0.97, 0.975}, {"q4_0", q4, 0.75, 0.97}}) {
    EXPECT_GE(a.exact.share(), floor) << name << " exact";
    EXPECT_GE(a.fast.share(), floor) << name << " fast";
    EXPECT_GE(a.fast_vs_exact.share(), vs_exact) << name << " fast against exact";
  }
}

// The fast path is taken end to end: on a bf16 model, fast mode's first-step logits differ from exact mode's (x
// rounded to bf16) by far less than a logit's spread, and on an f16 one (its weights rounded to bf16 too); on an f32
// model they are the same bits.
TEST(QuantAccuracy, FastModeRoundsOnlyWhereTheWeightsAllow) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared not found";
  for (const auto& [model, rounded] : {std::pair{"golden/models/tiny-llama3-bf16", true},
                                       {"golden/models/tiny-mistral-f16", true},
                                       {"golden/models/tiny-qwen2-f32", false}}) {
    test::TempDir tmp;
    const auto e = test::read_jsonl(test::shared_dir() + "/" + model + "/expected.jsonl").at(0);
    test::write_file(tmp.file("p.jsonl"), nlohmann::json({{"id", "a"}, {"prompt_ids", e["prompt_ids"]},
                                                          {"max_tokens", 1}}).dump() + "\n");
    std::vector<float> logits[2];
    for (int fast = 0; fast < 2; ++fast) {
      const auto r = test::run_meshlm({"generate", "--model", test::shared_dir() + "/" + model, "--prompts",
                                       tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"), "--dump-logits",
                                       tmp.file(std::to_string(fast) + ".h5"), "--compute", fast ? "fast" : "exact"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      logits[fast] = test::read_h5_floats(tmp.file(std::to_string(fast) + ".h5"), "/logits/a");
    }
    ASSERT_EQ(logits[0].size(), logits[1].size());
    ASSERT_FALSE(logits[0].empty());
    float max_abs = 0, max_diff = 0;
    for (size_t k = 0; k < logits[0].size(); ++k)
      max_abs = std::max(max_abs, std::fabs(logits[0][k])), max_diff = std::max(max_diff, std::fabs(logits[0][k] - logits[1][k]));
    std::printf("[ fast ] %s: max |fast - exact| %.3g (max |logit| %.3g)\n", model, max_diff, max_abs);
    if (rounded && bf16_dot_active()) {
      EXPECT_GT(max_diff, 0.0f) << model;
    } else if (!rounded) {
      EXPECT_EQ(max_diff, 0.0f) << model;
    }
    EXPECT_LT(max_diff, 0.05f * max_abs) << model;
  }
}

}  // namespace
}  // namespace meshlm
