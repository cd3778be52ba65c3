#include "kernels/affine_digits.h"

#include <cmath>
#include <limits>

#include "kernels/affine_int8.h"
#include "kernels/qgemm.h"

namespace meshlm {

#if defined(__x86_64__)
void qgemm_affine_x86(bool vnni, const QuantizedX& x, const WeightView& panels, int64_t r0, int64_t r1, float* y,
                      int64_t ldy, bool digits);
#endif

bool affine_exact_ok(const WeightView& w) {
  const QIsa isa = matmul_qisa();
  return affine_int8_ok(w) && (isa == QIsa::kAvx512Vnni || isa == QIsa::kNeonDot);
}

bool affine_panels_pay(const WeightView& w, Compute mode) {
  return mode == Compute::kFast ? affine_int8_ok(w) : affine_exact_ok(w);
}

namespace {
// D + kDigitBias is in [0, 2^24) for every D = round(x / u) of a block, so its three bytes less 128 are the digits.
constexpr int32_t kDigitBias = 0x808080;
constexpr double kLargestD = 0xffffff - kDigitBias;  // 8355711

// The exponent k of 1 / u = 2^k for columns whose largest |x| is amax (finite, > 0): amax 2^k in [2^22, 2^23), or
// half that where it would round past kLargestD.
int digit_exponent(float amax) {
  int e;
  std::frexp(amax, &e);  // amax in [2^(e-1), 2^e)
  int k = 23 - e;
  if (std::ldexp(double(amax), k) >= kLargestD + 0.5) --k;  // (half rounds to even: 8355712)
  return k;
}
}  // namespace

void quantize_x_digits(const float* x, int64_t cols, int64_t group, int64_t i0, int64_t i1, QuantizedX& out) {
  const int64_t blocks = cols / kQBlock;
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t c0 = 0; c0 < cols; c0 += group) {  // one unit per group, from its largest |x|
      const float* xg = x + i * cols + c0;
      float amax = 0;
      bool finite = true;
      for (int64_t j = 0; j < group; ++j) amax = std::fmax(amax, std::fabs(xg[j])), finite &= std::isfinite(xg[j]);
      const int k = finite && amax > 0 ? digit_exponent(amax) : 0;  // u = 2^-k
      const double inv = std::ldexp(1.0, k);  // exact: x 2^k has x's significand
      for (int64_t b = c0 / kQBlock; b < (c0 + group) / kQBlock; ++b) {
        const float* xb = x + i * cols + b * kQBlock;
        int32_t d[kQBlock];  // (32) D + kDigitBias
        for (int j = 0; j < kQBlock; ++j)
          d[j] = finite && amax > 0 ? int32_t(std::nearbyint(double(xb[j]) * inv)) + kDigitBias : kDigitBias;
        for (int64_t t = 0; t < kXDigits; ++t) {
          const int64_t row = kXDigits * i + t, at = row * blocks + b;
          const int shift = int(16 - 8 * t);
          int8_t* q = out.q.data() + at * kQBlock;
          int32_t sum = 0;
          for (int j = 0; j < kQBlock; ++j) sum += q[j] = int8_t(((d[j] >> shift) & 0xff) - 128);
          // NaN or inf in x: the digits 0 and the scales NaN, so y becomes NaN (fp32 gives inf or NaN). (Under
          // 2^-149, a subnormal group's lowest scales are 0: x keeps at least its top 16 bits.)
          out.d[size_t(at)] = finite ? float(std::ldexp(1.0, shift - k)) : std::numeric_limits<float>::quiet_NaN();
          out.corr[size_t(at)] = -kAffineXOffset * sum;
        }
      }
    }
}

void affine_digit_rows(const QuantizedX& digits, const WeightView& w, int64_t r0, int64_t r1, float* ydigits,
                       float* y) {
#if defined(__x86_64__)
  qgemm_affine_x86(true, digits, w, r0, r1, ydigits, w.rows, /*digits=*/true);
#else
  affine_int8_rows(digits, w, r0, r1, ydigits);
#endif
  add_digit_rows(ydigits, digits.n / kXDigits, w.rows, r0, r1, y);
}

void add_digit_rows(const float* digits, int64_t n, int64_t ld, int64_t r0, int64_t r1, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const float* h = digits + kXDigits * i * ld;
    const float *m = h + ld, *l = m + ld;
    for (int64_t r = r0; r < r1; ++r) y[i * ld + r] = (h[r] + m[r]) + l[r];
  }
}

}  // namespace meshlm
