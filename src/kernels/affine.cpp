#include "kernels/affine.h"

#include <algorithm>
#include <cstring>

#include "kernels/affine_int8.h"
#include "kernels/matmul.h"
#include "kernels/matvec.h"

namespace meshlm {

#if defined(__x86_64__)
void affine_rows_avx512(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                        float* y);
void affine_rows_avx2(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                      float* y);
#elif defined(__aarch64__)
void affine_rows_neon(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                      float* y);
#endif

namespace {

// Slice columns [c0, c1) of group g: the group covers slice columns [g·group − phase, (g+1)·group − phase).
inline void group_cols(const AffineView& a, int64_t cols, int64_t g, int64_t& c0, int64_t& c1) {
  c0 = std::max<int64_t>(0, g * a.group - a.phase);
  c1 = std::min<int64_t>(cols, (g + 1) * a.group - a.phase);
}

// q (c1 - c0) = values [c0, c1) of a packed row, as floats.
inline void unpack(const uint8_t* row, int64_t c0, int64_t c1, int bits, float* q) {
  if (bits == 8) {
    for (int64_t c = c0; c < c1; ++c) q[c - c0] = float(row[c]);
  } else if (bits == 4) {
    for (int64_t c = c0; c < c1; ++c) q[c - c0] = float((row[c >> 1] >> ((c & 1) * 4)) & 15);
  } else {
    for (int64_t c = c0; c < c1; ++c) q[c - c0] = float(affine_value(row, c, bits));
  }
}

}  // namespace

void affine_repack(const uint8_t* src, uint64_t bit0, int64_t n, int bits, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t from = bit0 + uint64_t(i) * uint64_t(bits);
    const uint32_t two = uint32_t(src[from >> 3]) | (uint32_t(src[(from >> 3) + 1]) << 8);
    const uint32_t v = (two >> (from & 7)) & ((1u << bits) - 1);
    const uint64_t to = uint64_t(i) * uint64_t(bits);
    dst[to >> 3] |= uint8_t(v << (to & 7));
    if ((to & 7) + uint64_t(bits) > 8) dst[(to >> 3) + 1] |= uint8_t(v >> (8 - (to & 7)));
  }
}

void affine_dequant_rows(const WeightView& w, int64_t r0, int64_t r1, float* out) {
  const AffineView& a = w.affine;
  if (a.panels) return affine_panel_dequant_rows(w, r0, r1, out);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
    float* o = out + (r - r0) * w.cols;
    for (int64_t g = 0; g < a.groups; ++g) {
      int64_t c0, c1;
      group_cols(a, w.cols, g, c0, c1);
      const float s = affine_param(a, a.scales, r * a.groups + g), b = affine_param(a, a.biases, r * a.groups + g);
      unpack(row, c0, c1, a.bits, o + c0);
      for (int64_t c = c0; c < c1; ++c) o[c] = s * o[c] + b;
    }
  }
}

void affine_xsums(const float* x, int64_t n, const WeightView& w, std::vector<float>& xsum) {
  const AffineView& a = w.affine;
  xsum.assign(size_t(n * a.groups), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < a.groups; ++g) {
      int64_t c0, c1;
      group_cols(a, w.cols, g, c0, c1);
      float s = 0;
      for (int64_t c = c0; c < c1; ++c) s += x[i * w.cols + c];
      xsum[size_t(i * a.groups + g)] = s;
    }
}

namespace {
// The SIMD kernels take 4 and 8 bits when every group of the slice is whole (slices inside groups: portable).
bool simd_ok(const WeightView& w) {
  const AffineView& a = w.affine;
  const Isa isa = matmul_isa();
  if (!((a.bits == 4 || a.bits == 8) && a.phase == 0 && w.cols % a.group == 0)) return false;
#if defined(__x86_64__)
  return isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16 || isa == Isa::kAvx2;
#elif defined(__aarch64__)
  return isa == Isa::kNeon;
#else
  return false;
#endif
}
}  // namespace

bool affine_pairs_x(const WeightView& w) { return w.affine.bits == 4 && simd_ok(w); }

void affine_rows(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                 float* y) {
  const AffineView& a = w.affine;
#if defined(__x86_64__)
  if (simd_ok(w)) {
    const Isa isa = matmul_isa();
    if (isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16) return affine_rows_avx512(x, n, w, xsum, r0, r1, y);
    return affine_rows_avx2(x, n, w, xsum, r0, r1, y);
  }
#elif defined(__aarch64__)
  if (simd_ok(w)) return affine_rows_neon(x, n, w, xsum, r0, r1, y);
#endif
  float q[128];          // one group's values
  float acc[32];         // per x row (n <= kSkinnyRowsQ)
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
    std::fill(acc, acc + n, 0.0f);
    for (int64_t g = 0; g < a.groups; ++g) {
      int64_t c0, c1;
      group_cols(a, w.cols, g, c0, c1);
      unpack(row, c0, c1, a.bits, q);
      const float s = affine_param(a, a.scales, r * a.groups + g), b = affine_param(a, a.biases, r * a.groups + g);
      for (int64_t i = 0; i < n; ++i) {
        const float* xi = x + i * w.cols + c0;
        float dot = 0;
        for (int64_t c = 0; c < c1 - c0; ++c) dot += q[c] * xi[c];
        acc[i] += s * dot + b * xsum[i * a.groups + g];
      }
    }
    for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = acc[i];
  }
}

}  // namespace meshlm
