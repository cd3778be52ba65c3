#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace meshlm {

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Rng::uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }

// The largest value by 16 independent running maxima (which the compiler keeps in one vector register: a greedy
// step scans the whole vocabulary, 128K logits for Llama 3), then the first index holding it. A NaN is never the
// largest; a row of NaNs gives 0.
int argmax(const float* logits, int n) {
  constexpr int kLanes = 16;
  float lane[kLanes];
  for (float& v : lane) v = -INFINITY;
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] = logits[i + j] > lane[j] ? logits[i + j] : lane[j];
  float top = -INFINITY;
  for (float v : lane) top = v > top ? v : top;
  for (; i < n; ++i) top = logits[i] > top ? logits[i] : top;
  for (int k = 0; k < n; ++k)
    if (logits[k] == top) return k;
  return 0;
}

int sample(const float* logits, int n, const SamplingParams& p, Rng& rng, SampleScratch& scratch) {
  std::vector<int>& order = scratch.order;
  std::vector<double>& prob = scratch.prob;
  if (p.temperature <= 0.0) return argmax(logits, n);
  // Candidates by descending logit (ties: lower id first), cut by top-k.
  order.resize(size_t(n));
  std::iota(order.begin(), order.end(), 0);
  const auto by_logit = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t keep = (p.top_k > 0 && p.top_k < n) ? size_t(p.top_k) : size_t(n);
  std::partial_sort(order.begin(), order.begin() + long(keep), order.end(), by_logit);
  order.resize(keep);
  // Softmax of logits / temperature over the kept candidates.
  prob.resize(keep);
  const double top = logits[order[0]] / p.temperature;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp(logits[order[i]] / p.temperature - top);
  for (double& q : prob) q /= sum;
  // top-p: the smallest prefix whose mass reaches p.
  if (p.top_p < 1.0) {
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += prob[i];
      if (cum >= p.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
  }
  // min-p: drop candidates below min_p times the most likely one.
  if (p.min_p > 0.0) {
    size_t cut = 1;
    while (cut < keep && prob[cut] >= p.min_p * prob[0]) ++cut;
    keep = cut;
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += prob[i];
  double u = rng.uniform() * mass;
  for (size_t i = 0; i < keep; ++i) {
    u -= prob[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace meshlm
