// A vectorizable exponential and the element-wise kernels on it. exp(x) = 2^k · e^r with k = round(x / ln 2) and
// r = x - k ln 2 (ln 2 in two parts, so r is exact to a few ulps), e^r by a degree-7 polynomial on
// [-ln 2 / 2, ln 2 / 2] (Cephes' expf coefficients), 2^k built in the exponent bits: relative error under 2e-7, no
// branches and no calls (x is clamped to [-87, 88] by integer mins on its bits: a float min would not vectorize
// without -ffinite-math-only), so the loops vectorize (built per instruction set by target_clones). Below -87 the
// result would be subnormal, and is taken at -87 instead (a softmax term under 2e-38 of a sum of at least 1; a SiLU
// of x under -87 is x·1e-38 instead of x·e^x: both 0 to the next op); above 88 it would overflow.
// Prefill attention spent ~10% of its time in scalar expf, SiLU another ~8%.
#include "kernels/vexp.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace meshlm {
namespace {
inline float vexp(float x) {
  // x at most 88 (as signed bits, floats of either sign keep their order against a positive one), then at least -87
  // (as unsigned bits, a negative float's magnitude orders them; 0 and up pass)
  x = std::bit_cast<float>(std::min(std::bit_cast<int32_t>(x), std::bit_cast<int32_t>(88.0f)));
  x = std::bit_cast<float>(std::min(std::bit_cast<uint32_t>(x), std::bit_cast<uint32_t>(-87.0f)));
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // rounded to an integer (1.5 * 2^23)
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>((int32_t(k) + 127) << 23);  // 2^k
}
}  // namespace

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
double exp_shifted(float* row, int64_t n, float shift) {
  for (int64_t j = 0; j < n; ++j) row[j] = vexp(row[j] - shift);
  constexpr int kLanes = 16;
  double lane[kLanes] = {};  // partial sums in double, one per lane (the order fixed, whatever the vector width)
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += double(row[j + l]);
  double sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += lane[l];
  for (; j < n; ++j) sum += double(row[j]);
  return sum;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void softmax_masked(float* row, int64_t n, int64_t lo, int64_t hi) {
  constexpr int kLanes = 16;
  float lane[kLanes];  // running maxima, one per lane
  std::fill(lane, lane + kLanes, -INFINITY);
  int64_t j = lo;
  for (; j + kLanes <= hi + 1; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] = lane[l] > row[j + l] ? lane[l] : row[j + l];
  float max_score = -INFINITY;
  for (int l = 0; l < kLanes; ++l) max_score = std::max(max_score, lane[l]);
  for (; j <= hi; ++j) max_score = std::max(max_score, row[j]);
  const float inv = float(1.0 / exp_shifted(row + lo, hi - lo + 1, max_score));
  for (j = lo; j <= hi; ++j) row[j] *= inv;
  std::fill(row, row + lo, 0.0f);
  std::fill(row + hi + 1, row + n, 0.0f);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + vexp(-gate[i])) * up[i];
}

}  // namespace meshlm
