#include "kernels/qmatvec.h"

#include <algorithm>

#include "core/dtype.h"

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace meshlm {
namespace {

// The 32 weights of block b of a row as int8 (q4_0: nibbles minus 8), portable.
inline void unpack(const uint8_t* row, DType dt, int64_t b, int8_t* q) {
  if (dt == DType::kQ8_0) {
    std::copy_n(reinterpret_cast<const BlockQ8_0*>(row)[b].q, kQBlock, q);
    return;
  }
  const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
  for (int j = 0; j < 16; ++j) {
    q[j] = int8_t((blk.q[j] & 0x0f) - 8);
    q[j + 16] = int8_t((blk.q[j] >> 4) - 8);
  }
}

inline float scale(const uint8_t* row, DType dt, int64_t b) {
  return f16_to_f32(dt == DType::kQ8_0 ? reinterpret_cast<const BlockQ8_0*>(row)[b].d
                                       : reinterpret_cast<const BlockQ4_0*>(row)[b].d);
}

void rows_portable(const BlockQ8_0* xq, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  const int64_t blocks = w.cols / kQBlock;
  const size_t rb = row_bytes(w.dtype, w.cols);
  int8_t q[kQBlock];
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * rb;
    for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      unpack(row, w.dtype, b, q);
      const float dw = scale(row, w.dtype, b);
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ8_0& xb = xq[i * blocks + b];
        int32_t dot = 0;
        for (int j = 0; j < kQBlock; ++j) dot += int32_t(q[j]) * int32_t(xb.q[j]);
        y[i * w.rows + r] += dw * f16_to_f32(xb.d) * float(dot);
      }
    }
  }
}

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
// 32 int8 weights of block b, as one register.
inline __m256i load_block(const uint8_t* row, DType dt, int64_t b) {
  if (dt == DType::kQ8_0)
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ8_0*>(row)[b].q));
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const BlockQ4_0*>(row)[b].q));
  const __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0f)), hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f));
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

// Σ_j a[j] b[j] of 32 int8 pairs as 8 int32 lanes in float: |a| * sign(b, a) through the unsigned x signed multiply.
inline __m256 dot_block(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A block's f16 scale by the F16C instruction (dtype.h's portable conversion is far slower, once per 32 weights).
template <DType D>
inline float scale_f16c(const uint8_t* row, int64_t b) {
  if constexpr (D == DType::kQ8_0) return _cvtsh_ss(reinterpret_cast<const BlockQ8_0*>(row)[b].d);
  else return _cvtsh_ss(reinterpret_cast<const BlockQ4_0*>(row)[b].d);
}

// R weight rows (rb bytes apart) against NB rows of x: R * NB accumulators, and R independent streams of weights.
template <DType D, int R, int NB>
void rows_block_avx2(const BlockQ8_0* xq, const float* xd, int64_t blocks, const uint8_t* row, size_t rb, float* y,
                     int64_t ldy) {
  constexpr size_t kBlockBytes = D == DType::kQ8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
  __m256 acc[R][NB];  // kept in registers: every loop over r and i below is unrolled
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) acc[r][i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* rr = row + size_t(r) * rb;
      __builtin_prefetch(rr + size_t(b) * kBlockBytes + 1024);
      const __m256i wq = load_block(rr, D, b);
      const float dw = scale_f16c<D>(rr, b);
#pragma GCC unroll 4
      for (int i = 0; i < NB; ++i) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i * blocks + b].q));
        acc[r][i] = _mm256_fmadd_ps(dot_block(wq, xv), _mm256_set1_ps(dw * xd[i * blocks + b]), acc[r][i]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) y[i * ldy + r] = hsum(acc[r][i]);
}

template <DType D, int NB>
void row_range_avx2(const BlockQ8_0* xq, const float* xd, int64_t blocks, const uint8_t* base, size_t rb, int64_t r0,
                    int64_t r1, float* y, int64_t ldy) {
  constexpr int R = (D == DType::kQ8_0 && NB <= 2) ? 4 : 1;  // rows at once: 4 streams for q8_0 decode
  int64_t r = r0;
  for (; r + R <= r1; r += R) rows_block_avx2<D, R, NB>(xq, xd, blocks, base + size_t(r) * rb, rb, y + r, ldy);
  for (; r < r1; ++r) rows_block_avx2<D, 1, NB>(xq, xd, blocks, base + size_t(r) * rb, rb, y + r, ldy);
}

template <DType D>
void rows_avx2_of(const BlockQ8_0* xq, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  const int64_t blocks = w.cols / kQBlock;
  const size_t rb = row_bytes(w.dtype, w.cols);
  thread_local std::vector<float> xd;  // (n * blocks) x's block scales as fp32, converted once per call
  xd.resize(size_t(n * blocks));
  for (size_t k = 0; k < xd.size(); ++k) xd[k] = _cvtsh_ss(xq[k].d);
  const auto* base = static_cast<const uint8_t*>(w.data);
  // Tiles of rows that stay in cache while every block of 4 x rows passes over them (one tile at decode).
  const int64_t tile = n <= 4 ? r1 - r0 : std::max<int64_t>(4, int64_t((96 << 10) / rb) / 4 * 4);
  for (int64_t t0 = r0; t0 < r1; t0 += tile) {
    const int64_t t1 = std::min(r1, t0 + tile);
    for (int64_t i = 0; i < n; i += 4) {
      const BlockQ8_0* xi = xq + i * blocks;
      const float* di = xd.data() + i * blocks;
      float* yi = y + i * w.rows;
      switch (std::min<int64_t>(4, n - i)) {
        case 1: row_range_avx2<D, 1>(xi, di, blocks, base, rb, t0, t1, yi, w.rows); break;
        case 2: row_range_avx2<D, 2>(xi, di, blocks, base, rb, t0, t1, yi, w.rows); break;
        case 3: row_range_avx2<D, 3>(xi, di, blocks, base, rb, t0, t1, yi, w.rows); break;
        default: row_range_avx2<D, 4>(xi, di, blocks, base, rb, t0, t1, yi, w.rows); break;
      }
    }
  }
}

void rows_avx2(const BlockQ8_0* xq, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (w.dtype == DType::kQ8_0) rows_avx2_of<DType::kQ8_0>(xq, n, w, r0, r1, y);
  else rows_avx2_of<DType::kQ4_0>(xq, n, w, r0, r1, y);
}
#pragma GCC pop_options
#endif

}  // namespace

void quantize_rows_q8_0(const float* x, int64_t n, int64_t cols, std::vector<BlockQ8_0>& out) {
  out.resize(size_t(n * cols / kQBlock));
  quantize_q8_0(x, n * cols, out.data());  // rows are whole blocks, so the rows quantize as one run
}

void qmatvec_rows(bool avx2, const BlockQ8_0* xq, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (n <= 0 || r1 <= r0) return;
#if defined(__x86_64__)
  if (avx2) return rows_avx2(xq, n, w, r0, r1, y);
#endif
  rows_portable(xq, n, w, r0, r1, y);
}

}  // namespace meshlm
