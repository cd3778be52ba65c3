// The skinny matmul for bf16 weights by AVX512_BF16's dot-product instruction (vdpbf16ps): 32 weights per
// instruction, read as stored, with no conversion. The activations are split once per call into two bf16 parts,
// x = hi + lo (hi = bf16(x), lo = bf16(x - hi)), and each weight meets both: the products are exact in fp32 and
// x keeps 16 of its 24 significant bits, so sums differ from the fp32 kernel's by about 1e-5 relative, the size of
// the differences between summation orders. Other weight dtypes go to the AVX-512 kernel.
// --compute fast (bf16_gemm_rows) keeps only hi: x rounded to bf16 (8 significant bits), half the dot products,
// at any number of rows (prefill too).
#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "kernels/matvec.h"
#include "kernels/simd_x86.h"

namespace meshlm {

void matvec_rows_avx512(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                        const float* paired);

MESHLM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512bf16")
namespace {
constexpr int kRows = 4, kPrefetch = 1024;

// R weight rows against NB rows of x (hi and, when Split, lo parts, cols apart).
template <int R, int NB, bool Split>
void block(const float* x, const uint16_t* hi, const uint16_t* lo, int64_t cols, const uint8_t* row, size_t row_bytes,
           float* y, int64_t ldy) {
  __m512 acc[R][NB];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) acc[r][i] = _mm512_setzero_ps();
  const int64_t body = cols - cols % 32;
  for (int64_t k = 0; k < body; k += 32) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) __builtin_prefetch(row + size_t(r) * row_bytes + size_t(k) * 2 + kPrefetch);
    __m512bh xh[NB], xl[NB];
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      xh[i] = __m512bh(_mm512_loadu_si512(hi + i * cols + k));
      if constexpr (Split) xl[i] = __m512bh(_mm512_loadu_si512(lo + i * cols + k));
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = __m512bh(_mm512_loadu_si512(reinterpret_cast<const uint16_t*>(row + size_t(r) * row_bytes) + k));
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) {
        acc[r][i] = _mm512_dpbf16_ps(acc[r][i], wv, xh[i]);
        if constexpr (Split) acc[r][i] = _mm512_dpbf16_ps(acc[r][i], wv, xl[i]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < NB; ++i) {
      float s = _mm512_reduce_add_ps(acc[r][i]);
      const auto* w16 = reinterpret_cast<const uint16_t*>(row + size_t(r) * row_bytes);
      for (int64_t k = body; k < cols; ++k) s += bf16_to_f32(w16[k]) * x[i * cols + k];
      y[i * ldy + r] = s;
    }
}

// One weight row against NB rows of x, kChains sums per x row along it: decode reads the rows one after another, a
// single stream from memory (kRows rows at once read kRows streams). meshlm bench tg, 1 thread, interleaved: batch 1
// 90-93% -> 91-95% of the read bandwidth, batch 2 +12%.
template <int NB, bool Split>
void row_alone(const float* x, const uint16_t* hi, const uint16_t* lo, int64_t cols, const uint8_t* row, float* y,
               int64_t ldy) {
  constexpr int kChains = 4;
  const auto* w16 = reinterpret_cast<const uint16_t*>(row);
  __m512 acc[NB][kChains];
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i)
#pragma GCC unroll 4
    for (int c = 0; c < kChains; ++c) acc[i][c] = _mm512_setzero_ps();
  auto step = [&](int64_t k, int c) __attribute__((always_inline)) {
    const __m512bh wv = __m512bh(_mm512_loadu_si512(w16 + k));
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      acc[i][c] = _mm512_dpbf16_ps(acc[i][c], wv, __m512bh(_mm512_loadu_si512(hi + i * cols + k)));
      if constexpr (Split) acc[i][c] = _mm512_dpbf16_ps(acc[i][c], wv, __m512bh(_mm512_loadu_si512(lo + i * cols + k)));
    }
  };
  int64_t k = 0;
  for (; k + 32 * kChains <= cols; k += 32 * kChains) {
#pragma GCC unroll 4
    for (int c = 0; c < kChains; ++c) __builtin_prefetch(row + size_t(k + 32 * c) * 2 + kPrefetch), step(k + 32 * c, c);
  }
  for (; k + 32 <= cols; k += 32) step(k, 0);
  for (int i = 0; i < NB; ++i) {
    __m512 a = acc[i][0];
#pragma GCC unroll 4
    for (int c = 1; c < kChains; ++c) a = _mm512_add_ps(a, acc[i][c]);
    float s = _mm512_reduce_add_ps(a);
    for (int64_t j = k; j < cols; ++j) s += bf16_to_f32(w16[j]) * x[i * cols + j];
    y[i * ldy] = s;
  }
}

template <int NB, bool Split>
void row_range(const float* x, const uint16_t* hi, const uint16_t* lo, int64_t cols, const uint8_t* base,
               size_t row_bytes, int64_t r0, int64_t r1, float* y, int64_t ldy, bool alone) {
  int64_t r = r0;
  if (alone) {
    for (; r < r1; ++r) row_alone<NB, Split>(x, hi, lo, cols, base + size_t(r) * row_bytes, y + r, ldy);
    return;
  }
  for (; r + kRows <= r1; r += kRows)
    block<kRows, NB, Split>(x, hi, lo, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
  for (; r < r1; ++r) block<1, NB, Split>(x, hi, lo, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
}

// Rows [r0, r1) of y in tiles of weight rows that stay in cache while every group of NB x rows passes over them.
template <bool Split>
void tiled(const float* x, const uint16_t* hi, const uint16_t* lo, int64_t n, const WeightView& w, int64_t r0,
           int64_t r1, float* y) {
  constexpr int kMaxNB = Split ? 4 : 6;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t bytes_per_row = row_bytes(DType::kBF16, w.cols);
  const bool alone = n <= kMaxNB;  // streamed once: a row at a time
  const int64_t tile =
      n <= kMaxNB ? r1 - r0 : std::max<int64_t>(kRows, int64_t((96 << 10) / bytes_per_row) / kRows * kRows);
  for (int64_t t0 = r0; t0 < r1; t0 += tile) {
    const int64_t t1 = std::min(r1, t0 + tile);
    for (int64_t i = 0; i < n; i += kMaxNB) {
      const float* xi = x + i * w.cols;
      const uint16_t *hi_i = hi + i * w.cols, *lo_i = Split ? lo + i * w.cols : nullptr;
      float* yi = y + i * w.rows;
      switch (std::min<int64_t>(kMaxNB, n - i)) {
        case 1: row_range<1, Split>(xi, hi_i, lo_i, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, alone); break;
        case 2: row_range<2, Split>(xi, hi_i, lo_i, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, alone); break;
        case 3: row_range<3, Split>(xi, hi_i, lo_i, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, alone); break;
        case 4: row_range<4, Split>(xi, hi_i, lo_i, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, alone); break;
        case 5: row_range<Split ? 4 : 5, Split>(xi, hi_i, lo_i, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, alone); break;
        default: row_range<Split ? 4 : 6, Split>(xi, hi_i, lo_i, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, alone); break;
      }
    }
  }
}
}  // namespace

void matvec_rows_avx512_bf16(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (w.dtype != DType::kBF16) return matvec_rows_avx512(x, n, w, r0, r1, y, nullptr);
  thread_local std::vector<uint16_t> hi, lo;  // (n, cols) each, once per call and thread
  hi.resize(size_t(n * w.cols));
  lo.resize(hi.size());
  for (size_t k = 0; k < hi.size(); ++k) {
    hi[k] = f32_to_bf16(x[k]);
    lo[k] = f32_to_bf16(x[k] - bf16_to_f32(hi[k]));
  }
  tiled<true>(x, hi.data(), lo.data(), n, w, r0, r1, y);
}

void bf16_gemm_rows(const float* x, const uint16_t* xh, int64_t n, const WeightView& w, int64_t r0, int64_t r1,
                    float* y) {
  tiled<false>(x, xh, nullptr, n, w, r0, r1, y);
}
MESHLM_TARGET_END

}  // namespace meshlm
#endif
