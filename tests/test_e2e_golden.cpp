// End to end: `meshlm generate` on every expected.jsonl line of the shared golden models.
// Greedy ids must match exactly; first-step logits within 1e-3 * max(1, max|logit|).
// Run with batch size 1 (one request at a time) and with all requests batched together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "golden_check.h"

namespace meshlm {
namespace {
namespace fs = std::filesystem;

class GoldenModel : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenModel, OneRequestAtATime) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): golden models not run";
  test::check_golden(test::shared_dir() + "/" + GetParam(), test::run_meshlm, {"--batch-size", "1"});
}

TEST_P(GoldenModel, AllRequestsBatched) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): golden models not run";
  test::check_golden(test::shared_dir() + "/" + GetParam(), test::run_meshlm, {"--batch-size", "8"});
}

// Continuous batching with long prompts cut into 3-token chunks, 8 tokens a step, mixed with other requests' decodes.
TEST_P(GoldenModel, ChunkedPrefillInSmallSteps) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): golden models not run";
  test::check_golden(test::shared_dir() + "/" + GetParam(), test::run_meshlm,
                     {"--max-batch", "3", "--max-batch-tokens", "8", "--prefill-chunk", "3"});
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenModel,
                         ::testing::ValuesIn(test::golden_model_names()),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).filename().string();
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Every golden model directory in ../shared is in the list above (so a new one is not silently skipped).
TEST(GoldenModel, ListCoversSharedModels) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent";
  for (const std::string& m : test::golden_models()) {
    const std::string rel = fs::relative(m, test::shared_dir()).string();
    const std::vector<std::string>& listed = test::golden_model_names();
    EXPECT_TRUE(std::find(listed.begin(), listed.end(), rel) != listed.end()) << rel << " is not tested";
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
