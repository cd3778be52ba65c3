// --weight-dtype q8_0 / q4_0 and --compute fast against the goldens, teacher-forced: for every step of every golden
// continuation, the prompt plus the golden tokens so far must make the model pick the golden next token. Prints
// the agreement per weight type and compute mode. The floors sit below what these models measure: the small
// random models have narrow top-2 margins (the goldens are cut only where the margin falls under 1e-3), so a
// rounding that a trained model shrugs off flips some of their tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "golden_check.h"
#include "h5_read.h"
#include "kernels/matvec.h"

namespace meshlm {
namespace {

struct Agreement {
  size_t agree = 0, total = 0;
};

Agreement agreement(const std::string& model, const std::string& weight_dtype, const std::string& compute) {
  test::TempDir tmp;
  std::string prompts;
  std::vector<int> want;
  for (const auto& e : test::read_jsonl(model + "/expected.jsonl")) {
    std::vector<int> prefix = e["prompt_ids"].get<std::vector<int>>();
    for (int next : e["greedy"].get<std::vector<int>>()) {
      prompts += nlohmann::json({{"id", std::to_string(want.size())}, {"prompt_ids", prefix}, {"max_tokens", 1}}).dump() + "\n";
      want.push_back(next);
      prefix.push_back(next);
    }
  }
  test::write_file(tmp.file("p.jsonl"), prompts);
  const auto r = test::run_meshlm({"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                                   tmp.file("o.jsonl"), "--output-order", "input", "--weight-dtype", weight_dtype,
                                   "--compute", compute, "--max-batch", "32"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto out = test::read_jsonl(tmp.file("o.jsonl"));
  Agreement a;
  for (size_t i = 0; i < out.size() && i < want.size(); ++i) a.agree += out[i]["token_ids"][0] == want[i];
  a.total = want.size();
  return a;
}

// bf16 or f16 matrices (fast mode takes f16 ones as bf16).
bool has_16bit_weights(const std::string& model) {
  return test::read_file(model + "/config.json").find("float16\"") != std::string::npos &&
         std::filesystem::path(model).filename().string().find("mlx") == std::string::npos;
}

bool is_mlx(const std::string& model) {
  return std::filesystem::path(model).filename().string().find("mlx") != std::string::npos;
}

// Agreement over the goldens of the supported models (test_e2e_golden lists them); `only` picks some of them.
double measure(const std::string& dtype, const std::string& compute, bool (*only)(const std::string&) = nullptr) {
  const std::string shared = test::shared_dir();
  Agreement all;
  for (const std::string& rel : test::golden_model_names()) {
    const std::string m = shared + "/" + rel;
    if (only && !only(m)) continue;
    const Agreement a = agreement(m, dtype, compute);
    std::printf("[ %s %s ] %s: %zu/%zu\n", dtype.c_str(), compute.c_str(), std::filesystem::path(m).filename().c_str(),
                a.agree, a.total);
    all.agree += a.agree, all.total += a.total;
  }
  const double share = double(all.agree) / double(all.total);
  std::printf("[ %s %s ] top-1 agreement %.2f%% (%zu/%zu)\n", dtype.c_str(), compute.c_str(), 100 * share, all.agree,
              all.total);
  return share;
}

TEST(QuantAccuracy, TopOneAgreementWithTheGoldens) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared not found";
  EXPECT_EQ(measure("stored", "exact"), 1.0) << "exact mode must reproduce the goldens";
  EXPECT_GE(measure("stored", "fast", has_16bit_weights), 0.99) << "bf16 and f16 weights, bf16 activations";
  EXPECT_GE(measure("stored", "fast", is_mlx), 0.97) << "MLX weights, int8 activations";
  for (const auto& [dtype, floor] : {std::pair{"q8_0", 0.97}, {"q4_0", 0.75}})
    for (const char* compute : {"exact", "fast"}) EXPECT_GE(measure(dtype, compute), floor) << dtype << " " << compute;
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
    if (rounded && isa_supported(Isa::kAvx512Bf16)) {
      EXPECT_GT(max_diff, 0.0f) << model;
    } else if (!rounded) {
      EXPECT_EQ(max_diff, 0.0f) << model;
    }
    EXPECT_LT(max_diff, 0.05f * max_abs) << model;
  }
}

}  // namespace
}  // namespace meshlm
