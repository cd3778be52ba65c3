// The shard arithmetic, without MPI: head splits (uneven, replicated kv), layer splits, rank placement, auto layout.
#include <gtest/gtest.h>

#include <numeric>

#include "core/check.h"
#include "model/parallel_layout.h"

namespace meshlm {
namespace {

std::vector<int64_t> q_sizes(int64_t heads, int64_t kv, int64_t T) {
  std::vector<int64_t> out;
  for (int64_t t = 0; t < T; ++t) out.push_back(split_heads(heads, kv, T, t).q_heads.size());
  return out;
}

TEST(SplitHeads, WholeGroupsWhenRanksFitKvHeads) {
  EXPECT_EQ(q_sizes(6, 6, 4), (std::vector<int64_t>{2, 2, 1, 1}));  // the example
  EXPECT_EQ(q_sizes(32, 8, 3), (std::vector<int64_t>{12, 12, 8}));  // 3, 3, 2 groups of 4
  const HeadSplit s = split_heads(32, 8, 3, 1);
  EXPECT_EQ(s.kv_heads.begin, 3);
  EXPECT_EQ(s.kv_heads.end, 6);
  EXPECT_EQ(s.q_heads.begin, 12);
  EXPECT_EQ(s.q_heads.end, 24);
}

TEST(SplitHeads, KvHeadsReplicatedBeyondTheirCount) {
  // 6 q heads, 2 kv heads (groups of 3) on 4 ranks: each kv head on 2 ranks, its q heads split 2,1.
  EXPECT_EQ(q_sizes(6, 2, 4), (std::vector<int64_t>{2, 1, 2, 1}));
  for (int t = 0; t < 4; ++t) {
    const HeadSplit s = split_heads(6, 2, 4, t);
    EXPECT_EQ(s.kv_heads.size(), 1);
    EXPECT_EQ(s.kv_heads.begin, t / 2);
    // every q head of the rank belongs to the rank's kv head
    EXPECT_EQ(s.q_heads.begin / 3, s.kv_heads.begin);
    EXPECT_EQ((s.q_heads.end - 1) / 3, s.kv_heads.begin);
  }
  EXPECT_EQ(q_sizes(8, 1, 8), (std::vector<int64_t>(8, 1)));  // multi-query, one head per rank
}

TEST(SplitHeads, EveryHeadExactlyOnceForEveryT) {
  for (int64_t kv : {1, 2, 3, 4, 6, 8}) {
    for (int64_t group : {1, 2, 3, 4}) {
      const int64_t heads = kv * group;
      for (int64_t T = 1; T <= heads; ++T) {
        int64_t next = 0;
        for (int64_t t = 0; t < T; ++t) {
          const HeadSplit s = split_heads(heads, kv, T, t);
          EXPECT_EQ(s.q_heads.begin, next) << heads << "/" << kv << " T=" << T << " t=" << t;
          EXPECT_GE(s.q_heads.size(), 1);
          EXPECT_LE(s.kv_heads.begin, s.q_heads.begin / group);
          EXPECT_GE(s.kv_heads.end, (s.q_heads.end - 1) / group + 1);
          next = s.q_heads.end;
        }
        EXPECT_EQ(next, heads);
      }
    }
  }
}

TEST(SplitHeads, RejectsMoreRanksThanHeads) {
  EXPECT_THROW(split_heads(4, 2, 5, 0), Error);
}

// Layers of equal cost: by stage weight (e.g. free memory), and balanced with a head worth `head` layers on the last.
std::vector<int64_t> layer_counts_weighted(int64_t n_layers, const std::vector<double>& weights) {
  return layer_counts_fit(std::vector<double>(size_t(n_layers), 1.0), weights, {});
}
std::vector<int64_t> layer_counts_balanced(int64_t n_layers, int64_t P, double head) {
  std::vector<double> extra(size_t(P), 0.0);
  extra.back() = head;
  return layer_counts_fit(std::vector<double>(size_t(n_layers), 1.0), std::vector<double>(size_t(P), 1.0), extra);
}

TEST(LayerCounts, EvenByHandAndByWeight) {
  EXPECT_EQ(layer_counts(32, 3, {}), (std::vector<int64_t>{11, 11, 10}));
  EXPECT_EQ(layer_counts(32, 3, {10, 12, 10}), (std::vector<int64_t>{10, 12, 10}));
  EXPECT_EQ(layer_counts_weighted(32, {1, 1, 2}), (std::vector<int64_t>{8, 8, 16}));
  // Balanced: the last stage also runs the head. No head: even. A head worth 4.3 layers (Llama-3.2-1B cut to 4
  // layers): 3 + 1, since 4.3 + 1 beats 4.3 + 2; 16 layers with that head over 2 stages: 10 | 6 + 4.3.
  EXPECT_EQ(layer_counts_balanced(8, 2, 0.0), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(layer_counts_balanced(4, 2, 4.3), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(layer_counts_balanced(16, 2, 4.3), (std::vector<int64_t>{10, 6}));
  EXPECT_EQ(layer_counts_balanced(16, 4, 4.3), (std::vector<int64_t>{5, 5, 5, 1}));
  EXPECT_EQ(layer_counts_balanced(32, 4, 1.0), (std::vector<int64_t>{8, 8, 8, 8}));  // ties: the even split
  EXPECT_EQ(layer_counts_balanced(5, 1, 9.0), (std::vector<int64_t>{5}));
  EXPECT_EQ(layer_counts_weighted(5, {100, 1}), (std::vector<int64_t>{4, 1}));  // every stage keeps a layer
  const auto w = layer_counts_weighted(33, {3.5, 1.25, 2});
  EXPECT_EQ(std::accumulate(w.begin(), w.end(), int64_t(0)), 33);
  EXPECT_EQ(parse_layer_split("10,12,10"), (std::vector<int64_t>{10, 12, 10}));
}

TEST(LayerCounts, BadSplitsSayWhy) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { layer_counts(32, 3, {10, 12}); }).find("has 2 stages but --pp is 3"), std::string::npos);
  EXPECT_NE(message([] { layer_counts(32, 2, {10, 12}); }).find("adds up to 22 layers but the model has 32"),
            std::string::npos);
  EXPECT_NE(message([] { layer_counts(32, 2, {0, 32}); }).find("at least one layer"), std::string::npos);
  EXPECT_NE(message([] { layer_counts(2, 3, {}); }).find("between 1 and the 2 layers"), std::string::npos);
  EXPECT_NE(message([] { parse_layer_split("10,,3"); }).find("expected layer counts"), std::string::npos);
  EXPECT_NE(message([] { parse_layer_split("a,b"); }).find("expected layer counts"), std::string::npos);
}

TEST(Placement, TensorFastestThenPipelineThenData) {
  // 8 ranks, tp 2, pp 2: the worked example in parallel_layout.h.
  const int want[8][3] = {{0, 0, 0}, {0, 0, 1}, {0, 1, 0}, {0, 1, 1}, {1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {1, 1, 1}};
  for (int r = 0; r < 8; ++r) {
    const Placement p = place(r, 2, 2);
    EXPECT_EQ(p.dp, want[r][0]);
    EXPECT_EQ(p.pp, want[r][1]);
    EXPECT_EQ(p.tp, want[r][2]);
    EXPECT_EQ(world_rank_of(p, 2, 2), r);
  }
}

TEST(ParallelLayout, MakeGivesEachRankItsSlices) {
  ModelConfig c;
  c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 8, c.hidden_dim = 14336, c.vocab_size = 128256, c.dim = 4096;
  const ParallelLayout l = ParallelLayout::make(c, 8, 7, 2, 2, {16, 16});
  EXPECT_EQ(l.dp_rank, 1);
  EXPECT_EQ(l.dp_size, 2);
  EXPECT_EQ(l.layers.begin, 16);
  EXPECT_EQ(l.layers.end, 32);
  EXPECT_EQ(l.q_heads.begin, 16);
  EXPECT_EQ(l.kv_heads.begin, 4);
  EXPECT_EQ(l.vocab.begin, 64128);
  EXPECT_EQ(l.hidden.size(), 7168);
  EXPECT_TRUE(l.last_stage());
  EXPECT_EQ(l.stage_root(1), 2);
}

TEST(CheckDegrees, ImpossibleLayoutsSayWhy) {
  ModelConfig c;
  c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.hidden_dim = 64, c.vocab_size = 512;
  auto message = [&](int world, int tp, int pp) {
    try {
      check_degrees(world, tp, pp, c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(3, 2, 1).find("must be a multiple of tp*pp = 2"), std::string::npos);
  EXPECT_NE(message(8, 8, 1).find("more than the model's 4 attention heads"), std::string::npos);
  EXPECT_NE(message(3, 1, 3).find("more than the model's 2 layers"), std::string::npos);
  EXPECT_EQ(message(4, 2, 2), "no error");
}

}  // namespace
}  // namespace meshlm
