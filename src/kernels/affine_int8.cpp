#include "kernels/affine_int8.h"

#include <algorithm>

#include "kernels/affine.h"
#include "kernels/matvec.h"
#include "kernels/qgemm.h"
#include "kernels/qpanel.h"

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace meshlm {
namespace {
constexpr int kLanes = 16;
constexpr int kChunk = 128;     // values in 64 packed bytes
constexpr int kLaneValues = 8;  // values in one 32-bit lane
}  // namespace

bool affine_int8_ok(const WeightView& w) {
  const AffineView& a = w.affine;
  if (w.dtype != DType::kAffine || a.bits != 4 || a.phase != 0) return false;
  if (!(a.group == 32 || a.group == 64 || a.group == 128) || w.cols % kChunk != 0) return false;
  const Isa isa = matmul_isa();
  return (isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16) && qisa_supported(QIsa::kAvx512Vnni);
}

void affine_int8_x(const float* x, int64_t n, const WeightView& w, AffineQX& out) {
  const AffineView& a = w.affine;
  out.n = n, out.chunks = w.cols / kChunk, out.groups = a.groups;
  out.q.resize(size_t(n * w.cols));
  out.lane_d.resize(size_t(n * out.chunks * kLanes));
  out.xsum.resize(size_t(n * a.groups));
  thread_local QuantizedX blocks;  // x in natural order, as the q8_0 panels' kernels take it
  quantize_x(x, n, w.cols, 0, blocks);
  for (int64_t i = 0; i < n; ++i) {
    const int8_t* q = blocks.q.data() + i * w.cols;
    for (int64_t c = 0; c < out.chunks; ++c) {
      int8_t* dst = out.q.data() + (i * out.chunks + c) * kChunk;
      const int8_t* src = q + c * kChunk;
      // Lane L holds values 8L..8L+7: its low nibbles the even ones, its high nibbles the odd ones.
      for (int L = 0; L < kLanes; ++L)
        for (int t = 0; t < 4; ++t) dst[4 * L + t] = src[8 * L + 2 * t], dst[64 + 4 * L + t] = src[8 * L + 2 * t + 1];
      for (int L = 0; L < kLanes; ++L)
        out.lane_d[size_t((i * out.chunks + c) * kLanes + L)] =
            blocks.d[size_t(i * blocks.blocks + (c * kChunk + L * kLaneValues) / 32)];
    }
    for (int64_t g = 0; g < a.groups; ++g) {
      float s = 0;
      for (int64_t k = g * a.group; k < (g + 1) * a.group; ++k) s += x[i * w.cols + k];
      out.xsum[size_t(i * a.groups + g)] = s;
    }
  }
}

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,fma")
namespace {
// One weight row against NB rows of x: per chunk one 64-byte load, 2 NB vpdpbusd (low and high nibbles), and each
// lane's sum scaled by its group's scale (gs, permuted to the lanes by idx) and its block's scale.
template <int NB>
void row_tile(const uint8_t* row, const float* gs, const float* gb, const AffineQX& x, int64_t i0, __m512i idx,
              int group, float* y, int64_t ldy) {
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  __m512 acc[NB];
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t c = 0; c < x.chunks; ++c) {
    const __m512i w = _mm512_loadu_si512(row + c * 64);
    const __m512 s = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(gs + c * kChunk / group));
    const __m512i lo = _mm512_and_si512(w, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nibble);
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      const int64_t at = (i0 + i) * x.chunks + c;
      const int8_t* q = x.q.data() + at * kChunk;
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(q)),
                                              hi, _mm512_loadu_si512(q + 64));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(s, _mm512_loadu_ps(&x.lane_d[size_t(at * kLanes)])),
                               acc[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i) {  // + Σ_g bias_g Σx_g
    const float* xs = x.xsum.data() + (i0 + i) * x.groups;
    __m512 b = _mm512_setzero_ps();
    for (int64_t g = 0; g < x.groups; g += kLanes) {
      const __mmask16 m = x.groups - g >= kLanes ? __mmask16(0xffff) : __mmask16((1u << (x.groups - g)) - 1);
      b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, gb + g), _mm512_maskz_loadu_ps(m, xs + g), b);
    }
    y[(i0 + i) * ldy] = _mm512_reduce_add_ps(acc[i]) + _mm512_reduce_add_ps(b);
  }
}

void rows_vnni(const AffineQX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  constexpr int kMaxNB = 8;
  const AffineView& a = w.affine;
  alignas(64) int32_t lanes[kLanes];
  for (int L = 0; L < kLanes; ++L) lanes[L] = L * kLaneValues / a.group;  // group of lane L in its chunk
  const __m512i idx = _mm512_load_si512(lanes);
  // Rows in tiles that stay in cache while every group of x rows passes; their scales and biases as fp32 (+ 16
  // floats of slack: a chunk's scales are read 16 at a time).
  const int64_t tile = x.n <= kMaxNB ? r1 - r0 : std::max<int64_t>(1, int64_t((64 << 10) / a.row_bytes));
  const int64_t stride = a.groups + kLanes;
  thread_local std::vector<float> gs, gb;  // (tile, stride)
  gs.assign(size_t(std::min(tile, r1 - r0) * stride), 0.0f);
  gb.assign(gs.size(), 0.0f);
  for (int64_t t0 = r0; t0 < r1; t0 += tile) {
    const int64_t t1 = std::min(r1, t0 + tile);
    for (int64_t r = t0; r < t1; ++r)
      for (int64_t g = 0; g < a.groups; ++g) {
        gs[size_t((r - t0) * stride + g)] = affine_param(a, a.scales, r * a.groups + g);
        gb[size_t((r - t0) * stride + g)] = affine_param(a, a.biases, r * a.groups + g);
      }
    for (int64_t i0 = 0; i0 < x.n; i0 += kMaxNB) {
      const int nb = int(std::min<int64_t>(kMaxNB, x.n - i0));
      for (int64_t r = t0; r < t1; ++r) {
        const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
        const float *s = &gs[size_t((r - t0) * stride)], *b = &gb[size_t((r - t0) * stride)];
        float* yr = y + r;
        switch (nb) {
          case 1: row_tile<1>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
          case 2: row_tile<2>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
          case 3: row_tile<3>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
          case 4: row_tile<4>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
          case 5: row_tile<5>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
          case 6: row_tile<6>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
          case 7: row_tile<7>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
          default: row_tile<8>(row, s, b, x, i0, idx, a.group, yr, w.rows); break;
        }
      }
    }
  }
}
}  // namespace
#pragma GCC pop_options
#endif

void affine_int8_rows(const AffineQX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (x.n <= 0 || r1 <= r0) return;
#if defined(__x86_64__)
  rows_vnni(x, w, r0, r1, y);
#endif
}

}  // namespace meshlm
