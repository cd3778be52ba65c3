// Every line of ../shared/golden/tokenizer/*.jsonl: text -> ids (with special tokens), ids -> decoded (skipping them).
#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {
namespace {
namespace fs = std::filesystem;

std::string tokenizer_dir(const std::string& shared, const std::string& name) {
  return name == "stories260k" ? shared + "/models/stories260k" : shared + "/tokenizers/" + name;
}

class TokenizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGolden, EveryLineMatches) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): tokenizer goldens not run";
  const std::string name = GetParam();
  auto tok = Tokenizer::load(tokenizer_dir(shared, name));
  const auto lines = test::read_jsonl(shared + "/golden/tokenizer/" + name + ".jsonl");
  ASSERT_GT(lines.size(), 0u);
  int bad_ids = 0, bad_text = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string text = lines[i]["text"];
    const auto want = lines[i]["ids"].get<std::vector<int>>();
    const auto got = tok->encode(text);
    if (got != want && bad_ids++ < 5) ADD_FAILURE() << name << " line " << i + 1 << ": ids differ for " << lines[i]["text"].dump();
    const std::string decoded = tok->decode(want);
    if (decoded != lines[i]["decoded"].get<std::string>() && bad_text++ < 5)
      ADD_FAILURE() << name << " line " << i + 1 << ": decoded " << nlohmann::json(decoded).dump() << " want "
                    << lines[i]["decoded"].dump();
  }
  EXPECT_EQ(bad_ids, 0);
  EXPECT_EQ(bad_text, 0);
}

INSTANTIATE_TEST_SUITE_P(Shared, TokenizerGolden,
                         ::testing::Values("stories260k", "llama2", "mistral", "phi3", "gpt2", "smollm2"));

}  // namespace
}  // namespace meshlm
