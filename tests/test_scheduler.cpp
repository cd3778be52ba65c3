// The continuous-batching scheduler (Engine) against a stand-in model: admission, chunked prefill mixed with decode
// tokens, the step-token budget, paged KV blocks, prefix reuse, preemption, micro-batches in flight together, and
// outputs that do not depend on any of these settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "model/kv_cache.h"
#include "model/parallel_layout.h"
#include "runtime/engine.h"

namespace meshlm {
namespace {

// A model stand-in with a paged "KV cache": each block holds the tokens written at its positions, and the next
// token is a hash of the tokens read back through the sequence's block table, so a sequence's continuation depends
// on every token the engine fed it, in order, and on nothing else; a block table pointing at the wrong block (a bad
// prefix reuse, a block freed while still in use) changes the output. It records every step.
class FakeModel : public StepRunner {
 public:
  FakeModel(int micro_batches, int64_t max_step, int64_t ctx, int64_t blocks)
      : micro_batches_(micro_batches), max_step_(max_step), ctx_(ctx),
        cache_(size_t(blocks), std::vector<int>(size_t(kB), -1)), results_(size_t(micro_batches)),
        pending_(size_t(micro_batches), false) {}

  struct Step {
    int mb;
    StepBatch batch;
    size_t done_before;  // requests finished when the step was submitted
  };
  std::vector<Step> steps;
  int max_in_flight = 0;
  int64_t fed = 0;   // tokens fed over the run
  size_t done = 0;   // kept up to date by the test's on_done

  int micro_batches() const override { return micro_batches_; }
  int64_t max_step_tokens() const override { return max_step_; }
  int64_t max_ctx() const override { return ctx_; }
  int vocab_size() const override { return kVocab; }
  int64_t kv_blocks() const override { return int64_t(cache_.size()); }

  void submit(int mb, const StepBatch& b) override {
    EXPECT_FALSE(pending_[size_t(mb)]) << "micro-batch " << mb << " submitted twice";
    EXPECT_LE(b.size(), max_step_);
    steps.push_back({mb, b, done});
    fed += b.size();
    for (int64_t i = 0; i < b.size(); ++i) {
      const int pos = b.positions[size_t(i)];
      EXPECT_LT(pos / kB, b.table_size(b.seqs[size_t(i)])) << "position past its block table";
      cache_.at(size_t(b.table(b.seqs[size_t(i)])[pos / kB])).at(size_t(pos % kB)) = b.tokens[size_t(i)];
    }
    StepResult& r = results_[size_t(mb)];
    r = StepResult();
    for (size_t row = 0; row < b.logit_rows.size(); ++row) {
      const int i = b.logit_rows[row], seq = b.seqs[size_t(i)];
      uint64_t h = 1469598103934665603ull;
      for (int p = 0; p <= b.positions[size_t(i)]; ++p) {
        const int t = cache_[size_t(b.table(seq)[p / kB])][size_t(p % kB)];
        EXPECT_GE(t, 0) << "position " << p << " read before it was written";
        h = (h ^ uint64_t(t)) * 1099511628211ull;
      }
      h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ull;  // mix the high bits down
      r.tokens.push_back(int((h ^ (h >> 29)) % kVocab));
      r.rng_states.push_back(b.rows[row].rng_state);
    }
    pending_[size_t(mb)] = true;
    max_in_flight = std::max(max_in_flight, int(std::count(pending_.begin(), pending_.end(), true)));
  }

  const StepResult& wait(int mb) override {
    EXPECT_TRUE(pending_[size_t(mb)]);
    pending_[size_t(mb)] = false;
    return results_[size_t(mb)];
  }

  static constexpr int kVocab = 50, kEos = 7;
  static constexpr int64_t kB = KVCache::kBlockTokens;

 private:
  int micro_batches_;
  int64_t max_step_, ctx_;
  std::vector<std::vector<int>> cache_;  // (blocks, kB) token written at each position, -1: none yet
  std::vector<StepResult> results_;
  std::vector<bool> pending_;
};

std::vector<Request> make_requests(int n, int longest_prompt, int longest_output, unsigned seed = 5) {
  std::mt19937 rng(seed);
  std::vector<Request> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Request& r = out[size_t(i)];
    r.id = "r" + std::to_string(i);
    r.prompt.resize(size_t(1 + int(rng() % unsigned(longest_prompt))));
    for (int& t : r.prompt) t = int(8 + rng() % 40);
    r.max_tokens = 1 + int(rng() % unsigned(longest_output));
  }
  return out;
}

struct Options {
  int micro_batches = 1, batch = 4;
  int64_t max_step = 1000, chunk = 0, ctx = 1000;
  int64_t blocks = 0;  // 0: room for every sequence in flight at full context
  bool prefix_cache = true;
};

// Runs the engine; returns each request's completion by index.
std::map<size_t, Completion> run(const std::vector<Request>& requests, const Options& o, FakeModel* model = nullptr,
                                 EngineStats* stats = nullptr) {
  const int64_t blocks = o.blocks > 0 ? o.blocks : o.batch * KVCache::blocks_for(o.ctx);
  FakeModel own(o.micro_batches, o.max_step, o.ctx, blocks);
  FakeModel& m = model ? *model : own;
  EngineOptions e;
  e.batch_size = o.batch;
  e.prefill_chunk = o.chunk;
  e.prefix_cache = o.prefix_cache;
  Engine engine(m, nullptr, {FakeModel::kEos}, e);
  std::map<size_t, Completion> out;
  engine.run(requests, [&](size_t i, Completion&& c) {
    EXPECT_TRUE(out.emplace(i, std::move(c)).second) << "request " << i << " finished twice";
    ++m.done;
  });
  EXPECT_EQ(out.size(), requests.size());
  if (stats) *stats = engine.stats();
  return out;
}

TEST(Scheduler, OutputsDoNotDependOnBatchingChunkingOrMicroBatches) {
  const auto requests = make_requests(25, 20, 30);
  const auto one = run(requests, {1, 1});
  int stopped = 0;
  for (const auto& [i, c] : one) {
    EXPECT_LE(int(c.token_ids.size()), requests[i].max_tokens);
    if (c.finish_reason == "stop") {
      EXPECT_EQ(c.token_ids.back(), FakeModel::kEos);
      ++stopped;
    } else {
      EXPECT_EQ(int(c.token_ids.size()), requests[i].max_tokens);
    }
  }
  EXPECT_GT(stopped, 0) << "some requests should end on eos";
  const std::vector<Options> settings = {{1, 4}, {1, 7, 8, 3}, {2, 6, 10, 4}, {3, 9, 9, 0}, {1, 25, 25, 2}};
  for (const Options& o : settings) {
    const auto got = run(requests, o);
    for (const auto& [i, c] : one) {
      EXPECT_EQ(got.at(i).token_ids, c.token_ids) << "request " << i << " at batch " << o.batch;
      EXPECT_EQ(got.at(i).finish_reason, c.finish_reason);
    }
  }
}

TEST(Scheduler, AFinishedSequenceIsReplacedInTheNextStep) {
  const auto requests = make_requests(30, 6, 12);
  FakeModel m(1, 1000, 1000, 4 * KVCache::blocks_for(1000));
  run(requests, {1, 4}, &m);
  // With no token budget to stop it, every step carries every running sequence, and no room idles while a
  // request waits: the step after a request finishes already holds its successor.
  for (const auto& s : m.steps) EXPECT_EQ(s.batch.n_seqs(), std::min<int64_t>(4, int64_t(requests.size() - s.done_before)));
}

TEST(Scheduler, PrefillInChunksMixedWithDecodeTokens) {
  std::vector<Request> requests(2);
  requests[0].prompt = {10, 11};
  requests[0].max_tokens = 10;
  requests[1].prompt = {20, 21, 22, 23, 24, 25, 26, 27, 28, 29};
  requests[1].max_tokens = 10;
  FakeModel m(1, 1000, 1000, 2 * KVCache::blocks_for(1000));
  run(requests, {1, 2, 1000, 3}, &m);
  ASSERT_GE(m.steps.size(), 5u);
  // Step 1: a's whole prompt (2 tokens, within the chunk) and b's first chunk; only a wants logits.
  const StepBatch& s1 = m.steps[0].batch;
  EXPECT_EQ(s1.tokens, (std::vector<int>{10, 11, 20, 21, 22}));
  EXPECT_EQ(s1.positions, (std::vector<int>{0, 1, 0, 1, 2}));
  EXPECT_EQ(s1.logit_rows, std::vector<int>{1});
  // Steps 2-4: a's decode token first, then b's next chunk (3, 3, then the last token, which wants logits).
  for (size_t k = 1; k <= 3; ++k) {
    const StepBatch& s = m.steps[k].batch;
    const int64_t chunk = k < 3 ? 3 : 1;
    ASSERT_EQ(s.size(), 1 + chunk) << "step " << k + 1;
    EXPECT_EQ(s.positions[0], int(1 + k)) << "a decodes first";
    EXPECT_EQ(s.positions[1], int(3 * k)) << "b's chunk follows";
    EXPECT_EQ(s.logit_rows.size(), k < 3 ? 1u : 2u);
  }
  EXPECT_EQ(m.steps[3].batch.tokens.back(), 29);
  EXPECT_EQ(m.steps[4].batch.size(), 2) << "then both decode";
}

TEST(Scheduler, StepsStayWithinTheTokenBudgetAndDecodeFirst) {
  const auto requests = make_requests(12, 30, 20);
  FakeModel m(1, 6, 1000, 3 * KVCache::blocks_for(1000));
  run(requests, {1, 3, 6, 0}, &m);
  bool full = false;
  for (const auto& s : m.steps) {
    EXPECT_LE(s.batch.size(), 6);
    full = full || s.batch.size() == 6;
    // Decode tokens (a single token that wants logits, at a position past the prompt) come before prefill tokens.
    std::map<int, int> per_seq;
    for (int seq : s.batch.seqs) ++per_seq[seq];
    bool prefill_seen = false;
    for (int64_t i = 0; i < s.batch.size(); ++i) {
      const bool single = per_seq[s.batch.seqs[size_t(i)]] == 1;
      const bool wants = std::count(s.batch.logit_rows.begin(), s.batch.logit_rows.end(), int(i)) > 0;
      if (!(single && wants)) prefill_seen = true;
      else if (prefill_seen && s.batch.positions[size_t(i)] > 0) ADD_FAILURE() << "a decode token after prefill";
    }
  }
  EXPECT_TRUE(full) << "long prompts should fill the budget";
}

TEST(Scheduler, MicroBatchesKeepTheirShareAndRunTogether) {
  const auto requests = make_requests(20, 8, 10);
  FakeModel m(2, 1000, 1000, 5 * KVCache::blocks_for(1000));
  run(requests, {2, 5}, &m);
  EXPECT_EQ(m.max_in_flight, 2);
  for (const auto& s : m.steps) EXPECT_LE(s.batch.n_seqs(), even_split(5, 2, s.mb).size()) << "mb " << s.mb;
}

TEST(Scheduler, ContextLimitEndsWithLength) {
  std::vector<Request> requests(1);
  requests[0].prompt = std::vector<int>(10, 9);
  requests[0].max_tokens = 50;
  FakeModel m(1, 1000, 12, 1);
  const auto out = run(requests, {1, 1, 1000, 0, 12}, &m);
  EXPECT_EQ(out.at(0).finish_reason, "length");
  EXPECT_EQ(out.at(0).token_ids.size(), 2u) << "positions 0..11 hold the 10 prompt tokens and 2 generated";
  EXPECT_NE(out.at(0).token_ids[0], FakeModel::kEos);
}


// Requests in groups that share a long prefix (several blocks and a partial one), each with its own question.
std::vector<Request> shared_prefix_requests(int groups, int per_group, int prefix_len, unsigned seed = 9) {
  std::mt19937 rng(seed);
  std::vector<Request> out;
  for (int g = 0; g < groups; ++g) {
    std::vector<int> prefix(static_cast<size_t>(prefix_len));
    for (int& t : prefix) t = int(8 + rng() % 40);
    for (int i = 0; i < per_group; ++i) {
      Request r;
      r.prompt = prefix;
      for (unsigned k = 0, n = 1 + rng() % 20; k < n; ++k) r.prompt.push_back(int(8 + rng() % 40));
      r.max_tokens = 1 + int(rng() % 20);
      out.push_back(r);
    }
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

void expect_same(const std::map<size_t, Completion>& a, const std::map<size_t, Completion>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [i, c] : a) {
    EXPECT_EQ(b.at(i).token_ids, c.token_ids) << what << ": request " << i;
    EXPECT_EQ(b.at(i).finish_reason, c.finish_reason) << what << ": request " << i;
  }
}

TEST(Scheduler, SharedPrefixesAreComputedOnceAndGiveTheSameTokens) {
  const auto requests = shared_prefix_requests(3, 12, 75);  // 36 requests, 4 full blocks of shared prefix each
  int64_t prompt_total = 0;
  for (const Request& r : requests) prompt_total += int64_t(r.prompt.size());
  EngineStats off, on;
  const auto plain = run(requests, {1, 6, 64, 0, 200, 0, false}, nullptr, &off);
  EXPECT_EQ(off.reused_tokens, 0);
  EXPECT_EQ(off.prompt_tokens, prompt_total);
  for (const Options& o : {Options{1, 6, 64, 0, 200}, Options{2, 8, 40, 16, 200}, Options{1, 3, 1000, 5, 200}}) {
    const auto cached = run(requests, o, nullptr, &on);
    expect_same(plain, cached, "prefix cache on");
    // Each group's 4 full prefix blocks are computed once: every other request of the group reuses 64 positions.
    EXPECT_EQ(on.reused_tokens, 3 * 11 * 64) << "batch " << o.batch;
    EXPECT_EQ(on.prompt_tokens + on.reused_tokens, prompt_total);
  }
}

TEST(Scheduler, APrefixDifferingInOneTokenIsNotReused) {
  std::vector<Request> requests(3);
  for (int i = 0; i < 48; ++i) requests[0].prompt.push_back(10 + i % 30);
  requests[1].prompt = requests[0].prompt;
  requests[1].prompt[40] = 9;  // third block differs: the first two are reused, the third is not
  requests[2].prompt = requests[0].prompt;
  requests[2].prompt[0] = 9;  // first token differs: nothing is reused
  for (Request& r : requests) r.max_tokens = 3;
  EngineStats stats;
  const auto cached = run(requests, {1, 1}, nullptr, &stats);
  EXPECT_EQ(stats.reused_tokens, 32);
  expect_same(run(requests, {1, 1, 1000, 0, 1000, 0, false}), cached, "one token apart");
}

TEST(Scheduler, ASharerWaitsForThePrefixInFlightInsteadOfComputingItAgain) {
  // Two requests with one 64-token prefix, room for both at once, prefill in chunks of 16: the second is admitted
  // only when the first has computed the prefix, and then prefills only its own tokens.
  std::vector<Request> requests(2);
  for (int i = 0; i < 64; ++i) requests[0].prompt.push_back(10 + i % 37);
  requests[1].prompt = requests[0].prompt;
  requests[0].prompt.push_back(11);
  requests[1].prompt.push_back(12);
  for (Request& r : requests) r.max_tokens = 4;
  FakeModel m(1, 1000, 1000, 2 * KVCache::blocks_for(1000));
  EngineStats stats;
  run(requests, {1, 2, 1000, 16}, &m, &stats);
  EXPECT_EQ(stats.reused_tokens, 64);
  EXPECT_EQ(stats.prompt_tokens, 66);
  EXPECT_EQ(m.steps[0].batch.n_seqs(), 1) << "the sharer is held back while the prefix is computed";
}

TEST(Scheduler, PreemptionWhenBlocksRunOutRecomputesTheSameTokens) {
  const auto requests = make_requests(30, 40, 60, 11);
  const auto roomy = run(requests, {1, 8, 1000, 0, 100, 0, false});
  for (bool prefix : {false, true})
    for (const Options& o : {Options{1, 8, 1000, 0, 100, 7, prefix}, Options{2, 8, 24, 8, 100, 9, prefix},
                             Options{3, 6, 1000, 0, 100, 8, prefix}}) {
      FakeModel m(o.micro_batches, o.max_step, o.ctx, o.blocks);
      EngineStats stats;
      const auto tight = run(requests, o, &m, &stats);
      expect_same(roomy, tight, prefix ? "preempted, prefix cache" : "preempted");
      EXPECT_GT(stats.preemptions, 0) << o.blocks << " blocks for 8 sequences should force preemption";
      EXPECT_LE(stats.kv_blocks_peak, o.blocks);
    }
}

TEST(Scheduler, ShortSequencesShareTheBlocksThatFixedSlotsWouldReserve) {
  // 32 requests of ~20 positions with a context of 1000: fixed slots of 1000 positions in 126 blocks' memory would
  // hold 2 sequences; the paged cache runs all 32 at once.
  std::vector<Request> requests = make_requests(32, 10, 10, 13);
  FakeModel m(1, 1000, 1000, 126);
  run(requests, {1, 32, 1000, 0, 1000, 126}, &m);
  int64_t most = 0;
  for (const auto& s : m.steps) most = std::max(most, s.batch.n_seqs());
  EXPECT_EQ(most, 32);
}

}  // namespace
}  // namespace meshlm
