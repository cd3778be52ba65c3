// Tokenizer pieces the goldens do not pin down alone: lossy UTF-8, byte fallback across tokens, added tokens.
#include <gtest/gtest.h>

#include "core/check.h"
#include "test_support.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace meshlm {
namespace {

TEST(Utf8, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(utf8_lossy("abc"), "abc");
  EXPECT_EQ(utf8_lossy("a\xE6\x97"), "a\xEF\xBF\xBD");            // truncated 3-byte sequence: one U+FFFD
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // two invalid bytes: two
  EXPECT_EQ(utf8_lossy("\xE6\x97\xA5"), "\xE6\x97\xA5");
  EXPECT_EQ(utf8_invalid_at("ok\xC0\x80"), 2u);  // overlong
  EXPECT_EQ(utf8_invalid_at("\xED\xA0\x80"), 0u);  // surrogate
}

TEST(AddedTokens, LeftmostLongestWithStrip) {
  AddedToken a{10, "<|a|>", true, false, true, false, false}, ab{11, "<|a|>b", true, false, false, false, false};
  AddedToken l{12, "<L>", true, true, false, false, false};
  const auto segs = split_added_tokens("x <|a|>b  <|a|>  y <L>", {&a, &ab, &l});
  ASSERT_EQ(segs.size(), 6u);
  EXPECT_EQ(segs[0].text, "x ");
  EXPECT_EQ(segs[1].id, 11);  // the longer token wins at the same start
  EXPECT_EQ(segs[2].text, "  ");
  EXPECT_EQ(segs[3].id, 10);
  EXPECT_EQ(segs[3].text, "<|a|>  ");  // rstrip takes the following spaces
  EXPECT_EQ(segs[4].text, "y");        // lstrip of <L> takes the space before it
  EXPECT_EQ(segs[5].text, " <L>");
}

TEST(Normalizer, UnicodeFormsLowercaseAndSequence) {
  const Normalizer nfc(nlohmann::json::parse(R"({"type": "NFC"})"));
  EXPECT_EQ(nfc.apply("e\xCC\x81"), "\xC3\xA9");  // e + combining acute -> é
  const Normalizer nfkc(nlohmann::json::parse(R"({"type": "NFKC"})"));
  EXPECT_EQ(nfkc.apply("\xEF\xAC\x81"), "fi");  // the ﬁ ligature
  const Normalizer seq(nlohmann::json::parse(
      R"({"type": "Sequence", "normalizers": [{"type": "Lowercase"}, {"type": "Strip", "strip_left": true, "strip_right": true},
          {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": "_"}]})"));
  EXPECT_EQ(seq.apply("  Hello   BIG World "), "hello_big_world");
  EXPECT_THROW(Normalizer(nlohmann::json::parse(R"({"type": "BertNormalizer"})")), Error);
}

// The example from the tokenizers docs for each SplitDelimiterBehavior.
TEST(PreTokenizer, SplitBehaviors) {
  const Regex dash("-");
  const auto texts = [&](SplitBehavior b, bool invert = false) {
    std::vector<std::string> out;
    for (auto& p : split_piece({"the-final--countdown", true}, dash, b, invert)) out.push_back(p.text);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(texts(SplitBehavior::kRemoved), (V{"the", "final", "countdown"}));
  EXPECT_EQ(texts(SplitBehavior::kIsolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(texts(SplitBehavior::kMergedWithPrevious), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(texts(SplitBehavior::kMergedWithNext), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(texts(SplitBehavior::kContiguous), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(texts(SplitBehavior::kRemoved, true), (V{"-", "-", "-"}));
  const auto pieces = split_piece({"a-b", true}, dash, SplitBehavior::kIsolated, false);
  EXPECT_TRUE(pieces[0].at_start);
  EXPECT_FALSE(pieces[2].at_start);
}

class SharedTokenizer : public ::testing::Test {
 protected:
  std::unique_ptr<Tokenizer> load(const std::string& name) {
    const std::string shared = test::shared_dir();
    if (shared.empty()) return nullptr;
    return Tokenizer::load(shared + "/tokenizers/" + name);
  }
};

TEST_F(SharedTokenizer, PartialUtf8AcrossTokensDecodesWhole) {
  auto llama = load("llama2");
  auto gpt2 = load("gpt2");
  if (!llama || !gpt2) GTEST_SKIP() << "../shared is absent";
  for (Tokenizer* t : {llama.get(), gpt2.get()}) {
    const std::string text = "emoji \xF0\x9F\xA6\x99 and \xE6\x97\xA5\xE6\x9C\xAC";
    const auto ids = t->encode(text, false);
    EXPECT_EQ(t->decode(ids), text);
    // The first half of a split character alone decodes lossily, never to garbage bytes.
    std::vector<int> prefix(ids.begin(), ids.end() - 1);
    EXPECT_EQ(utf8_invalid_at(t->decode(prefix)), std::string::npos);
  }
  EXPECT_THROW(llama->encode("bad \xFF byte"), Error);
}

TEST_F(SharedTokenizer, SpecialTokensMatchInTextAndAreSkippedOnDecode) {
  auto smol = load("smollm2");
  if (!smol) GTEST_SKIP() << "../shared is absent";
  const auto ids = smol->encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(ids.front(), smol->token_to_id("<|im_start|>"));
  EXPECT_EQ(ids.back(), smol->token_to_id("<|im_end|>"));
  EXPECT_EQ(smol->decode(ids), "user\nhi");
  EXPECT_EQ(smol->decode(ids, false), "<|im_start|>user\nhi<|im_end|>");
}

}  // namespace
}  // namespace meshlm
