// Prefix reuse and the paged KV cache end to end (meshlm generate on a synthetic model): 50 requests sharing a
// 300-token prefix in five groups give the same tokens and first-step logits with and without the prefix cache, in
// one process and under tp2, pp2 and dp2, with chunked prefill, and with preemption forced by a tiny --kv-memory.
#include <gtest/gtest.h>

#include <random>

#include "equivalence.h"

namespace meshlm {
namespace {

constexpr int kVocab = 301, kLayers = 4, kKvDim = 32;  // 2 kv heads of 16
constexpr int64_t kBlockBytes = 2 * kLayers * 16 * kKvDim * 4;  // keys and values of one 16-position block, fp32

// Five groups of ten requests: a 300-token prefix per group, then a 5-20 token question; greedy, 60-99 tokens.
std::string shared_prefix_prompts() {
  std::mt19937 rng(17);
  std::vector<std::vector<int>> prefixes(5);
  for (auto& p : prefixes)
    for (int k = 0; k < 300; ++k) p.push_back(int(rng() % kVocab));
  std::string out;
  for (int i = 0; i < 50; ++i) {
    std::vector<int> ids = prefixes[size_t(i % 5)];
    for (unsigned k = 0, n = 5 + rng() % 16; k < n; ++k) ids.push_back(int(rng() % kVocab));
    out += nlohmann::json({{"id", "s" + std::to_string(i)}, {"prompt_ids", ids}, {"max_tokens", 60 + (i * 7) % 40}}).dump() + "\n";
  }
  return out;
}

int64_t metric(const test::JobRun& r, const char* name) { return r.metrics.value(name, int64_t(-1)); }

TEST(PrefixCache, SharedPrefixesGiveTheSameOutputsInEveryLayout) {
  test::Model m;
  test::TempDir tmp;
  test::make_model(m, {"--dim", "96", "--heads", "6", "--kv-heads", "2", "--layers", std::to_string(kLayers), "--hidden",
                       "160", "--vocab", std::to_string(kVocab), "--dtype", "f32"});
  test::write_file(tmp.file("p.jsonl"), shared_prefix_prompts());
  const test::JobRun ref = test::generate(m.path(), 1, {"--no-prefix-cache"}, tmp, "ref");
  ASSERT_EQ(ref.lines.size(), 50u);
  EXPECT_EQ(metric(ref, "prompt_tokens_reused"), 0);
  const int64_t prompt = metric(ref, "prompt_tokens_computed");
  // Per rank, blocks hold half the bytes under tp2 (one kv head) and pp2 (two layers): the same 40 blocks everywhere,
  // while one sequence of up to 419 positions needs 27, and six in flight up to 162 (or 18 shared + 6 x 9).
  const std::string tiny_whole = std::to_string(40 * kBlockBytes), tiny_half = std::to_string(40 * kBlockBytes / 2);
  const struct {
    const char* tag;
    int np;
    std::vector<std::string> flags;
    bool tiny;  // 40 blocks: with the prefix cache, six sharers outgrow them and some are preempted
  } runs[] = {
      {"one", 1, {}, false},
      {"one_chunked", 1, {"--prefill-chunk", "64"}, false},
      {"tp2_chunked", 2, {"--tp", "2", "--pp", "1", "--prefill-chunk", "48"}, false},
      {"pp2", 2, {"--tp", "1", "--pp", "2"}, false},
      {"dp2", 2, {"--tp", "1", "--pp", "1"}, false},
      {"one_tiny", 1, {"--kv-memory", tiny_whole}, true},
      {"tp2_tiny", 2, {"--tp", "2", "--pp", "1", "--kv-memory", tiny_half}, true},
      {"pp2_tiny_chunked", 2, {"--tp", "1", "--pp", "2", "--kv-memory", tiny_half, "--prefill-chunk", "32"}, true},
      {"dp2_tiny", 2, {"--tp", "1", "--pp", "1", "--kv-memory", tiny_whole}, true},
      {"tp2_tiny_no_cache", 2, {"--tp", "2", "--pp", "1", "--kv-memory", tiny_half, "--no-prefix-cache"}, true},
  };
  for (const auto& r : runs) {
    const test::JobRun got = test::generate(m.path(), r.np, r.flags, tmp, r.tag);
    test::expect_same(ref, got, tmp, r.tag);
    if (got.lines.empty()) continue;
    const bool cache = std::string(r.tag).find("no_cache") == std::string::npos;
    const int64_t reused = metric(got, "prompt_tokens_reused");
    if (cache) {
      // Every group's 18 full prefix blocks are computed at least once per replica; most sharers reuse all 288
      // (and a preempted sequence reuses them again when it is recomputed).
      EXPECT_GE(reused, 25 * 288) << r.tag;
      if (!r.tiny) EXPECT_LE(reused, 45 * 288) << r.tag;
    } else {
      EXPECT_EQ(reused, 0) << r.tag;
    }
    if (r.tiny) {
      EXPECT_EQ(got.metrics["kv_blocks"]["per_replica"].get<int64_t>(), 40) << r.tag;
      EXPECT_LE(got.metrics["kv_blocks"]["peak_used"].get<int64_t>(), 40) << r.tag;
      // Without the cache a sequence's own 20 prompt blocks leave no room for a second one to be admitted.
      if (cache) EXPECT_GT(metric(got, "preemptions"), 0) << r.tag << ": 40 blocks for 6 sequences should preempt";
    } else {
      EXPECT_EQ(metric(got, "preemptions"), 0) << r.tag;
      EXPECT_EQ(metric(got, "prompt_tokens_computed") + reused, prompt) << r.tag;
    }
  }
}

}  // namespace
}  // namespace meshlm
