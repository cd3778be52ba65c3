// Next-token choice: greedy, or temperature / top-k / top-p / min-p sampling with a per-request RNG.
#pragma once
#include <cstdint>
#include <vector>

namespace meshlm {

struct SamplingParams {
  double temperature = 0.0;  // 0: greedy
  int top_k = 0;             // 0: off
  double top_p = 1.0;        // 1: off
  double min_p = 0.0;        // 0: off
  uint64_t seed = 0;
};

// splitmix64: small, fast, and the same stream on every platform and in every layout.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}
  uint64_t next();
  double uniform();  // [0, 1) with 53 random bits
  uint64_t state() const { return state_; }  // Rng(state()) continues the same stream

 private:
  uint64_t state_;
};

// Index of the largest logit; the lowest index wins a tie.
int argmax(const float* logits, int n);

// Buffers reused across sample() calls, so that sampling does not allocate per token.
struct SampleScratch {
  std::vector<int> order;    // candidate ids, most likely first
  std::vector<double> prob;  // their probabilities
};

// Samples one token id from logits (n). Filters apply in Hugging Face order: temperature, top-k, top-p, min-p,
// each on the distribution left by the one before.
int sample(const float* logits, int n, const SamplingParams& params, Rng& rng, SampleScratch& scratch);

}  // namespace meshlm
