// Sampler: greedy, determinism per seed, and each filter's effect on which tokens can come out.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "runtime/sampler.h"

namespace meshlm {
namespace {

std::set<int> support(const std::vector<float>& logits, SamplingParams p, int draws = 4000) {
  Rng rng(p.seed);
  SampleScratch scratch;
  std::set<int> seen;
  for (int i = 0; i < draws; ++i) seen.insert(sample(logits.data(), int(logits.size()), p, rng, scratch));
  return seen;
}

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};  // probs at T=1: .06 .44 .16 .04 .30

TEST(Sampler, GreedyIsArgmaxWithLowestIndexOnTies) {
  EXPECT_EQ(argmax(kLogits.data(), 5), 1);
  const std::vector<float> tie = {0, 5, 5};
  EXPECT_EQ(argmax(tie.data(), 3), 1);
  SampleScratch s;
  Rng rng(1);
  EXPECT_EQ(sample(kLogits.data(), 5, SamplingParams{}, rng, s), 1);
}

// The vectorized scan against a plain loop, on lengths around its 16 lanes, with ties placed at every distance.
TEST(Sampler, ArgmaxMatchesAPlainScan) {
  Rng rng(3);
  for (int n : {1, 2, 15, 16, 17, 31, 33, 100, 128256}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = float(int(rng.uniform() * 50)) - 25;  // few distinct values: many ties
      int want = 0;
      for (int i = 1; i < n; ++i)
        if (v[size_t(i)] > v[size_t(want)]) want = i;
      ASSERT_EQ(argmax(v.data(), n), want) << "n=" << n << " trial " << trial;
    }
  }
  const std::vector<float> low = {-INFINITY, -INFINITY};
  EXPECT_EQ(argmax(low.data(), 2), 0);
}

TEST(Sampler, SameSeedSameStream) {
  SamplingParams p;
  p.temperature = 1.0;
  Rng a(42), b(42), c(43);
  SampleScratch s;
  std::vector<int> xa, xb, xc;
  for (int i = 0; i < 50; ++i) {
    xa.push_back(sample(kLogits.data(), 5, p, a, s));
    xb.push_back(sample(kLogits.data(), 5, p, b, s));
    xc.push_back(sample(kLogits.data(), 5, p, c, s));
  }
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa, xc);
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  SamplingParams p;
  p.temperature = 1.0;
  Rng rng(7);
  SampleScratch s;
  std::map<int, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[sample(kLogits.data(), 5, p, rng, s)];
  double z = 0;
  for (float l : kLogits) z += std::exp(l);
  for (int t = 0; t < 5; ++t) EXPECT_NEAR(count[t] / double(n), std::exp(kLogits[size_t(t)]) / z, 0.015) << t;
}

TEST(Sampler, FiltersRestrictTheSupport) {
  SamplingParams p;
  p.temperature = 1.0;
  p.top_k = 2;
  EXPECT_EQ(support(kLogits, p), (std::set<int>{1, 4}));
  p.top_k = 0;
  p.top_p = 0.5;  // .44 < .5, so the second (.30) is needed
  EXPECT_EQ(support(kLogits, p), (std::set<int>{1, 4}));
  p.top_p = 0.4;
  EXPECT_EQ(support(kLogits, p), (std::set<int>{1}));
  p.top_p = 1.0;
  p.min_p = 0.3;  // keep p >= .3 * .44 = .13
  EXPECT_EQ(support(kLogits, p), (std::set<int>{1, 2, 4}));
  p.min_p = 0;
  p.temperature = 1e-3;  // nearly greedy
  EXPECT_EQ(support(kLogits, p, 200), (std::set<int>{1}));
}

}  // namespace
}  // namespace meshlm
