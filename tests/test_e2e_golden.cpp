// End to end: `meshlm generate` on every expected.jsonl line of the shared golden models.
// Greedy ids must match exactly; first-step logits within 1e-3 * max(1, max|logit|).
// Run with batch size 1 (one request at a time) and with all requests batched together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "h5_read.h"
#include "test_support.h"

namespace meshlm {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> golden_models() {
  std::vector<std::string> out;
  const std::string shared = test::shared_dir();
  if (shared.empty()) return out;
  out.push_back(shared + "/models/stories260k");
  std::vector<std::string> golden;
  for (auto& e : fs::directory_iterator(shared + "/golden/models")) golden.push_back(e.path().string());
  std::sort(golden.begin(), golden.end());
  out.insert(out.end(), golden.begin(), golden.end());
  return out;
}

void check_model(const std::string& model, const std::string& batch_size) {
  const auto expected = test::read_jsonl(model + "/expected.jsonl");
  ASSERT_FALSE(expected.empty()) << model;
  test::TempDir tmp;
  std::string prompts;
  for (size_t i = 0; i < expected.size(); ++i) {
    nlohmann::json req = {{"id", "r" + std::to_string(i)}, {"prompt_ids", expected[i]["prompt_ids"]},
                          {"max_tokens", std::max<size_t>(1, expected[i]["greedy"].size())}};
    prompts += req.dump() + "\n";
  }
  test::write_file(tmp.file("p.jsonl"), prompts);
  const auto r = test::run_meshlm({"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                                   tmp.file("o.jsonl"), "--dump-logits", tmp.file("l.h5"), "--batch-size", batch_size});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = test::read_jsonl(tmp.file("o.jsonl"));
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string where = fs::path(model).filename().string() + " line " + std::to_string(i + 1);
    EXPECT_EQ(out[i]["id"], "r" + std::to_string(i)) << where;
    EXPECT_EQ(out[i]["prompt_tokens"], expected[i]["prompt_ids"].size()) << where;
    const auto want = expected[i]["greedy"].get<std::vector<int>>();
    auto got = out[i]["token_ids"].get<std::vector<int>>();
    got.resize(std::min(got.size(), want.size()));
    EXPECT_EQ(got, want) << where << ": greedy tokens differ";
    const auto ref = expected[i]["first_logits"].get<std::vector<float>>();
    const auto logits = test::read_h5_floats(tmp.file("l.h5"), "/logits/r" + std::to_string(i));
    ASSERT_EQ(logits.size(), ref.size()) << where;
    float max_abs = 0, max_err = 0;
    for (size_t k = 0; k < ref.size(); ++k) {
      max_abs = std::max(max_abs, std::fabs(ref[k]));
      max_err = std::max(max_err, std::fabs(ref[k] - logits[k]));
    }
    const float tol = 1e-3f * std::max(1.0f, max_abs);
    EXPECT_LE(max_err, tol) << where << ": first-step logits differ";
    std::printf("[ logits ] %s: max |error| %.3g = %.2g of the tolerance\n", where.c_str(), max_err, max_err / tol);
  }
}

class GoldenModel : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenModel, OneRequestAtATime) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): golden models not run";
  check_model(test::shared_dir() + "/" + GetParam(), "1");
}

TEST_P(GoldenModel, AllRequestsBatched) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): golden models not run";
  check_model(test::shared_dir() + "/" + GetParam(), "8");
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenModel,
                         ::testing::Values("models/stories260k", "golden/models/tiny-llama3-bf16",
                                           "golden/models/tiny-mistral-f16", "golden/models/tiny-qwen2-f32",
                                           "golden/models/tiny-qwen3-bf16"),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).filename().string();
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Every golden model directory in ../shared is in the list above (so a new one is not silently skipped).
TEST(GoldenModel, ListCoversSharedModels) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent";
  for (const std::string& m : golden_models()) {
    const std::string rel = fs::relative(m, test::shared_dir()).string();
    const std::vector<std::string> listed = {"models/stories260k", "golden/models/tiny-llama3-bf16",
                                             "golden/models/tiny-mistral-f16", "golden/models/tiny-qwen2-f32",
                                             "golden/models/tiny-qwen3-bf16"};
    EXPECT_NE(std::find(listed.begin(), listed.end(), rel), listed.end()) << rel << " is not tested";
  }
}

// Text prompts of the embedded model: the tokenizer gives the golden prompt ids, and generation the golden text.
TEST(GoldenModel, EmbeddedModelTextPrompts) {
  const std::string model = test::source_dir() + "/models/stories260k";
  const auto expected = test::read_jsonl(model + "/expected.jsonl");
  test::TempDir tmp;
  std::string prompts;
  size_t n = 0;
  for (auto& e : expected) {
    if (!e.contains("text")) continue;
    prompts += nlohmann::json({{"id", n++}, {"prompt", e["text"]}, {"max_tokens", e["greedy"].size()}}).dump() + "\n";
  }
  ASSERT_GT(n, 0u);
  test::write_file(tmp.file("p.jsonl"), prompts);
  const auto r = test::run_meshlm({"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = test::read_jsonl(tmp.file("o.jsonl"));
  size_t k = 0;
  for (auto& e : expected) {
    if (!e.contains("text")) continue;
    EXPECT_EQ(out[k]["prompt_tokens"], e["prompt_ids"].size());
    EXPECT_EQ(out[k]["token_ids"], e["greedy"]) << "text prompt " << e["text"];
    ++k;
  }
}

}  // namespace
}  // namespace meshlm
