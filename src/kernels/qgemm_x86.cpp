// The int8 panel kernels for x86-64 (kernels/qgemm.h). A tile is P panels (16 weight rows each) against NB rows
// of x: P * NB integer accumulators per block, folded into P * NB fp32 ones with the two block scales. AVX-512
// VNNI multiplies the unsigned stored weights by the signed activations (vpdpbusd), the block's correction
// -offset * Σq starting each integer sum; AVX2 turns the weights back to signed and uses maddubs on |w| and
// sign(x, w). Each region is compiled for its own instruction set; qgemm.cpp calls one only when the CPU has it.
#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/qgemm.h"
#include "kernels/qgemm_tiles.h"

namespace meshlm {
namespace {

// The panels' block formats: q8_0 / q4_0 (kernels/qpanel.h) and MLX affine 8 / 4 bits (kernels/affine_int8.h).
enum class Kind { kQ8, kQ4, kA8, kA4 };
constexpr bool nibbles(Kind k) { return k == Kind::kQ4 || k == Kind::kA4; }
constexpr bool affine(Kind k) { return k == Kind::kA8 || k == Kind::kA4; }
constexpr size_t header_bytes(Kind k) { return affine(k) ? 128 : 32; }
constexpr size_t block_bytes(Kind k) { return header_bytes(k) + (nibbles(k) ? 256 : 512); }
using namespace qtiles;
constexpr size_t kPrefetchAhead = 2048;  // bench_matmul decode/q4_0/n:1, 1 thread: +17% (1024..8192 all help)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
// Affine kinds: each integer sum starts at 0 and becomes d_x (scale Σq·u + bias Σq), x quantized with offset -1.
template <Kind K, int P, int NB>
void tile_vnni(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0, float* out) {
  constexpr size_t bb = block_bytes(K), head = header_bytes(K);
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;
  const int32_t* xc = x.corr.data() + i0 * blocks;
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  __m512 acc[P][NB];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) acc[p][i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk[P];
    __m512i dot[P][NB];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) blk[p] = panel + size_t(p) * pb + size_t(b) * bb;
    if constexpr (NB <= 2) {  // decode streams P panels: fetch each a page ahead (prefetchers stop at pages)
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
        for (size_t line = 0; line < bb; line += 64) __builtin_prefetch(blk[p] + kPrefetchAhead + line);
    }
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      const __m512i c = affine(K) ? _mm512_setzero_si512() : _mm512_set1_epi32(xc[i * blocks + b]);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) dot[p][i] = c;
    }
    const int8_t* xb = xq + b * kQBlock;  // row i at xb + i * blocks * 32
    if constexpr (nibbles(K)) {
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
          const __m512i v = _mm512_loadu_si512(blk[p] + head + c * 64);
          const __m512i lo = _mm512_and_si512(v, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
#pragma GCC unroll 8
          for (int i = 0; i < NB; ++i) {
            const int8_t* xi = xb + i * blocks * kQBlock;
            dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], lo, _mm512_set1_epi32(load32(xi + 4 * c)));
            dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], hi, _mm512_set1_epi32(load32(xi + 16 + 4 * c)));
          }
        }
      }
    } else {
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
          const __m512i v = _mm512_loadu_si512(blk[p] + head + g * 64);
#pragma GCC unroll 8
          for (int i = 0; i < NB; ++i)
            dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], v, _mm512_set1_epi32(load32(xb + i * blocks * kQBlock + 4 * g)));
        }
      }
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      if constexpr (affine(K)) {
        const __m512 scale = _mm512_loadu_ps(blk[p]), bias = _mm512_loadu_ps(blk[p] + 64);
#pragma GCC unroll 8
        for (int i = 0; i < NB; ++i) {
          const __m512 sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[p][i]), scale,
                                             _mm512_mul_ps(bias, _mm512_set1_ps(float(xc[i * blocks + b]))));
          acc[p][i] = _mm512_fmadd_ps(sum, _mm512_set1_ps(xd[i * blocks + b]), acc[p][i]);
        }
      } else {
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[p])));
#pragma GCC unroll 8
        for (int i = 0; i < NB; ++i)
          acc[p][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[p][i]),
                                      _mm512_mul_ps(dw, _mm512_set1_ps(xd[i * blocks + b])), acc[p][i]);
      }
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) _mm512_storeu_ps(out + (p * NB + i) * kPanelRows, acc[p][i]);
}

template <Kind K>
constexpr Tiles vnni_tiles() {
  return {6,
          {0, 4, 4, 2, 2, 2, 2},
          {nullptr, tile_vnni<K, 4, 1>, tile_vnni<K, 4, 2>, tile_vnni<K, 2, 3>, tile_vnni<K, 2, 4>, tile_vnni<K, 2, 5>,
           tile_vnni<K, 2, 6>},
          {nullptr, tile_vnni<K, 1, 1>, tile_vnni<K, 1, 2>, tile_vnni<K, 1, 3>, tile_vnni<K, 1, 4>, tile_vnni<K, 1, 5>,
           tile_vnni<K, 1, 6>}};
}
constexpr Tiles kVnniQ8 = vnni_tiles<Kind::kQ8>(), kVnniQ4 = vnni_tiles<Kind::kQ4>();
constexpr Tiles kVnniA8 = vnni_tiles<Kind::kA8>(), kVnniA4 = vnni_tiles<Kind::kA4>();
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
// One panel as two halves of 8 lanes; the weights made signed again, multiplied by maddubs(|w|, sign(x, w)).
template <bool Q4, int NB>
void tile_avx2(const uint8_t* panel, size_t, int64_t blocks, const QuantizedX& x, int64_t i0, float* out) {
  constexpr size_t bb = Q4 ? 288 : 544;
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;
  const __m256i nibble = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8), flip = _mm256_set1_epi8(char(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[2][NB];
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) acc[h][i] = _mm256_setzero_ps();
  auto step = [&](__m256i (&dot)[NB], __m256i ws, const int8_t* xb, int k) {
    const __m256i aw = _mm256_sign_epi8(ws, ws);
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) {
      const __m256i xv = _mm256_set1_epi32(load32(xb + i * blocks * kQBlock + k));
      dot[i] = _mm256_add_epi32(dot[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, ws)), ones));
    }
  };
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk = panel + size_t(b) * bb;
    const int8_t* xb = xq + b * kQBlock;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256i dot[NB];
#pragma GCC unroll 4
      for (int i = 0; i < NB; ++i) dot[i] = _mm256_setzero_si256();
      if constexpr (Q4) {
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + c * 64 + h * 32));
          step(dot, _mm256_sub_epi8(_mm256_and_si256(v, nibble), eight), xb, 4 * c);
          step(dot, _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), nibble), eight), xb, 16 + 4 * c);
        }
      } else {
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + g * 64 + h * 32));
          step(dot, _mm256_xor_si256(v, flip), xb, 4 * g);
        }
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + h * 16)));
#pragma GCC unroll 4
      for (int i = 0; i < NB; ++i)
        acc[h][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[i]), _mm256_mul_ps(dw, _mm256_set1_ps(xd[i * blocks + b])),
                                    acc[h][i]);
    }
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) _mm256_storeu_ps(out + i * kPanelRows + h * 8, acc[h][i]);
}

template <bool Q4>
constexpr Tiles avx2_tiles() {
  return {2, {0, 1, 1}, {nullptr, tile_avx2<Q4, 1>, tile_avx2<Q4, 2>}, {nullptr, tile_avx2<Q4, 1>, tile_avx2<Q4, 2>}};
}
constexpr Tiles kAvx2Q8 = avx2_tiles<false>(), kAvx2Q4 = avx2_tiles<true>();
#pragma GCC pop_options

}  // namespace

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")
// Blocks [b0, b1) of x into int8, as quantize_x_rows' portable loop does: the same amax, scale and inverse, products
// rounded half to even (vrndscaleps = nearbyint in the default rounding mode), so the same bits.
void quantize_x_blocks_avx512(const float* x, int64_t b0, int64_t b1, int offset, QuantizedX& out) {
  for (int64_t b = b0; b < b1; ++b) {
    const float* xb = x + b * kQBlock;
    const __m512 lo = _mm512_loadu_ps(xb), hi = _mm512_loadu_ps(xb + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    const __m512 scale = _mm512_set1_ps(id);
    const __m512i qlo = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(lo, scale), _MM_FROUND_TO_NEAREST_INT));
    const __m512i qhi = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(hi, scale), _MM_FROUND_TO_NEAREST_INT));
    int8_t* q = out.q.data() + b * kQBlock;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(qlo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(qhi));
    out.d[size_t(b)] = d;
    out.corr[size_t(b)] = -offset * _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi));
  }
}
#pragma GCC pop_options

void qgemm_rows_vnni(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  drive(w.dtype == DType::kQ8_0 ? kVnniQ8 : kVnniQ4, x, static_cast<const uint8_t*>(w.data),
        panel_bytes(w.dtype, w.cols), w.cols, w.row0, r0, r1, y, w.rows);
}
void qgemm_rows_avx2(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  drive(w.dtype == DType::kQ8_0 ? kAvx2Q8 : kAvx2Q4, x, static_cast<const uint8_t*>(w.data),
        panel_bytes(w.dtype, w.cols), w.cols, w.row0, r0, r1, y, w.rows);
}
void qgemm_affine_vnni(const QuantizedX& x, int bits, const uint8_t* panels, int64_t rows, int64_t cols, float* y,
                       int64_t ldy) {
  const Kind kind = bits == 4 ? Kind::kA4 : Kind::kA8;
  drive(bits == 4 ? kVnniA4 : kVnniA8, x, panels, size_t(cols / kQBlock) * block_bytes(kind), cols, 0, 0, rows, y, ldy);
}

}  // namespace meshlm
#endif
