// The continuous-batching scheduler (Engine) against a stand-in model: admission into freed slots, chunked prefill
// mixed with decode tokens, the step-token budget, KV slot reuse, micro-batches in flight together, and outputs that
// do not depend on any of these settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "model/parallel_layout.h"
#include "runtime/engine.h"

namespace meshlm {
namespace {

// A model stand-in. Each slot's "KV cache" is the list of tokens fed to it, and the next token is a hash of that list,
// so a sequence's continuation depends on every token the engine fed it, in order, and on nothing else. It checks
// that a slot is filled contiguously (a new occupant starts at position 0) and records every step.
class FakeModel : public StepRunner {
 public:
  FakeModel(int micro_batches, int64_t max_step, int64_t ctx, int slots)
      : micro_batches_(micro_batches), max_step_(max_step), ctx_(ctx), cache_(size_t(slots)),
        results_(size_t(micro_batches)), pending_(size_t(micro_batches), false) {}

  struct Step {
    int mb;
    StepBatch batch;
    size_t done_before;  // requests finished when the step was submitted
  };
  std::vector<Step> steps;
  int max_in_flight = 0, reuses = 0;
  size_t done = 0;  // kept up to date by the test's on_done

  int micro_batches() const override { return micro_batches_; }
  int64_t max_step_tokens() const override { return max_step_; }
  int64_t max_ctx() const override { return ctx_; }
  int vocab_size() const override { return kVocab; }

  void submit(int mb, const StepBatch& b) override {
    EXPECT_FALSE(pending_[size_t(mb)]) << "micro-batch " << mb << " submitted twice";
    EXPECT_LE(b.size(), max_step_);
    steps.push_back({mb, b, done});
    for (int64_t i = 0; i < b.size(); ++i) {
      std::vector<int>& kv = cache_.at(size_t(b.slots[size_t(i)]));
      if (b.positions[size_t(i)] == 0 && !kv.empty()) {
        kv.clear();
        ++reuses;
      }
      EXPECT_EQ(b.positions[size_t(i)], int(kv.size())) << "slot " << b.slots[size_t(i)] << " not contiguous";
      kv.push_back(b.tokens[size_t(i)]);
    }
    StepResult& r = results_[size_t(mb)];
    r = StepResult();
    for (size_t row = 0; row < b.logit_rows.size(); ++row) {
      const std::vector<int>& kv = cache_[size_t(b.slots[size_t(b.logit_rows[row])])];
      uint64_t h = 1469598103934665603ull;
      for (int t : kv) h = (h ^ uint64_t(t)) * 1099511628211ull;
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

 private:
  int micro_batches_;
  int64_t max_step_, ctx_;
  std::vector<std::vector<int>> cache_;
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
};

// Runs the engine; returns each request's completion by index.
std::map<size_t, Completion> run(const std::vector<Request>& requests, const Options& o, FakeModel* model = nullptr) {
  FakeModel own(o.micro_batches, o.max_step, o.ctx, o.batch);
  FakeModel& m = model ? *model : own;
  EngineOptions e;
  e.batch_size = o.batch;
  e.prefill_chunk = o.chunk;
  Engine engine(m, nullptr, {FakeModel::kEos}, e);
  std::map<size_t, Completion> out;
  engine.run(requests, [&](size_t i, Completion&& c) {
    EXPECT_TRUE(out.emplace(i, std::move(c)).second) << "request " << i << " finished twice";
    ++m.done;
  });
  EXPECT_EQ(out.size(), requests.size());
  return out;
}

// Slots used by a step, each counted once.
std::set<int> slots_of(const StepBatch& b) { return std::set<int>(b.slots.begin(), b.slots.end()); }

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

TEST(Scheduler, AFreedSlotIsFilledInTheNextStep) {
  const auto requests = make_requests(30, 6, 12);
  FakeModel m(1, 1000, 1000, 4);
  run(requests, {1, 4}, &m);
  // With no token budget to stop it, every step carries every running sequence, and a slot never idles while a
  // request waits: the step after a request finishes already holds its successor.
  for (const auto& s : m.steps)
    EXPECT_EQ(slots_of(s.batch).size(), std::min<size_t>(4, requests.size() - s.done_before));
  EXPECT_GE(m.reuses, 26) << "30 requests through 4 slots reuse the slots 26 times";
}

TEST(Scheduler, PrefillInChunksMixedWithDecodeTokens) {
  std::vector<Request> requests(2);
  requests[0].prompt = {10, 11};
  requests[0].max_tokens = 10;
  requests[1].prompt = {20, 21, 22, 23, 24, 25, 26, 27, 28, 29};
  requests[1].max_tokens = 10;
  FakeModel m(1, 1000, 1000, 2);
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
  FakeModel m(1, 6, 1000, 3);
  run(requests, {1, 3, 6, 0}, &m);
  bool full = false;
  for (const auto& s : m.steps) {
    EXPECT_LE(s.batch.size(), 6);
    full = full || s.batch.size() == 6;
    // Decode tokens (a single token that wants logits, at a position past the prompt) come before prefill tokens.
    std::map<int, int> per_slot;
    for (int slot : s.batch.slots) ++per_slot[slot];
    bool prefill_seen = false;
    for (int64_t i = 0; i < s.batch.size(); ++i) {
      const bool single = per_slot[s.batch.slots[size_t(i)]] == 1;
      const bool wants = std::count(s.batch.logit_rows.begin(), s.batch.logit_rows.end(), int(i)) > 0;
      if (!(single && wants)) prefill_seen = true;
      else if (prefill_seen && s.batch.positions[size_t(i)] > 0) ADD_FAILURE() << "a decode token after prefill";
    }
  }
  EXPECT_TRUE(full) << "long prompts should fill the budget";
}

TEST(Scheduler, MicroBatchesKeepTheirOwnSlotsAndRunTogether) {
  const auto requests = make_requests(20, 8, 10);
  FakeModel m(2, 1000, 1000, 5);
  run(requests, {2, 5}, &m);
  EXPECT_EQ(m.max_in_flight, 2);
  for (const auto& s : m.steps) {
    const Range own = even_split(5, 2, s.mb);
    for (int slot : s.batch.slots) EXPECT_TRUE(slot >= own.begin && slot < own.end) << "mb " << s.mb << " slot " << slot;
  }
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

}  // namespace
}  // namespace meshlm
