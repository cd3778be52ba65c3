// The int8 panel kernels for x86-64 (kernels/qgemm.h). A tile is P panels (16 weight rows each) against NB rows
// of x: P * NB integer accumulators per block, folded into P * NB fp32 ones with the two block scales. AVX-512
// VNNI multiplies the unsigned stored weights by the signed activations (vpdpbusd), the block's correction
// -offset * Σq starting each integer sum; AVX2 turns the weights back to signed and uses maddubs on |w| and
// sign(x, w). Each region is compiled for its own instruction set; qgemm.cpp calls one only when the CPU has it.
#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/qgemm.h"
#include "kernels/qgemm_tiles.h"
#include "kernels/simd_x86.h"

namespace meshlm {
namespace {

// The q8_0 / q4_0 panels' block formats (kernels/qpanel.h); MLX affine panels (kernels/affine_int8.h) have theirs.
constexpr size_t kQ8Block = 544, kQ4Block = 288;
using namespace qtiles;

// Decode's software prefetch distance. bench_matmul, 1 thread, ms per GiB, 2048 -> 8192: exact MLX 4-bit (the digits)
// 47-53 -> 33-36, fast MLX 4-bit 35-36 -> 32-33, q4_0 33-34 -> 31-32 (2048 had gained 17% on q4_0 over none). The
// stalls sat on the loads of the weights, not on the dot products.
constexpr size_t kPrefetchAhead = 8192;

MESHLM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
// dot + the unsigned bytes of w times the 4 signed bytes at x, broadcast: as one instruction with the broadcast in its
// memory operand ({1to16}), which clang makes of the intrinsics and GCC 12 does not (it broadcasts into a register
// first: an instruction more per product in the decode tiles, whose panels use each broadcast once).
inline __m512i dpbusd_x4(__m512i dot, __m512i w, const int8_t* x) {
#if defined(__clang__) || !defined(__GNUC__)
  return _mm512_dpbusd_epi32(dot, w, _mm512_set1_epi32(load32(x)));
#else
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(dot) : "v"(w), "m"(*reinterpret_cast<const int8_t(*)[4]>(x)));
  return dot;
#endif
}

// One 32-column block of P panels into dot[p][i]: the values at q[p] (4 bits: 256 bytes, 8 bits: 512), x's block at
// xb (row i at xb + i * xstride).
template <bool Nibbles, int P, int NB>
inline void block_dots(const uint8_t* const (&q)[P], const int8_t* xb, int64_t xstride, __m512i (&dot)[P][NB]) {
  if constexpr (Nibbles) {
    const __m512i nibble = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) {
        const __m512i v = _mm512_loadu_si512(q[p] + c * 64);
        const __m512i lo = _mm512_and_si512(v, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
#pragma GCC unroll 8
        for (int i = 0; i < NB; ++i) {
          const int8_t* xi = xb + i * xstride;
          if constexpr (P == 1) {
            dot[p][i] = dpbusd_x4(dpbusd_x4(dot[p][i], lo, xi + 4 * c), hi, xi + 16 + 4 * c);
          } else {  // (a broadcast register serves the P panels)
            dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], lo, _mm512_set1_epi32(load32(xi + 4 * c)));
            dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], hi, _mm512_set1_epi32(load32(xi + 16 + 4 * c)));
          }
        }
      }
    }
  } else {
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) {
        const __m512i v = _mm512_loadu_si512(q[p] + g * 64);
#pragma GCC unroll 8
        for (int i = 0; i < NB; ++i)
          dot[p][i] = P == 1 ? dpbusd_x4(dot[p][i], v, xb + i * xstride + 4 * g)
                             : _mm512_dpbusd_epi32(dot[p][i], v, _mm512_set1_epi32(load32(xb + i * xstride + 4 * g)));
      }
    }
  }
}

// Decode streams the panels: each fetched a page ahead (the hardware's prefetchers stop at pages).
template <int P>
inline void prefetch_ahead(const uint8_t* const (&at)[P], size_t bytes) {
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
    for (size_t line = 0; line < bytes; line += 64) __builtin_prefetch(at[p] + kPrefetchAhead + line);
}

template <int P, int NB>
inline void store_tile(const __m512 (&acc)[P][NB], float* out) {
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) _mm512_storeu_ps(out + (p * NB + i) * kPanelRows, acc[p][i]);
}

// q8_0 / q4_0: each block's integer sum starts at the correction -offset Σq, and adds d_w d_x times it.
template <bool Q4, int P, int NB>
void tile_vnni(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0, const AffineFormat&,
               float* out) {
  constexpr size_t bb = Q4 ? kQ4Block : kQ8Block;
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;
  const int32_t* xc = x.corr.data() + i0 * blocks;
  __m512 acc[P][NB];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) acc[p][i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk[P];
    const uint8_t* q[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) blk[p] = panel + size_t(p) * pb + size_t(b) * bb, q[p] = blk[p] + 32;
    if constexpr (NB <= 2) prefetch_ahead<P>(blk, bb);
    __m512i dot[P][NB];
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      const __m512i c = _mm512_set1_epi32(xc[i * blocks + b]);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) dot[p][i] = c;
    }
    block_dots<Q4, P, NB>(q, xq + b * kQBlock, blocks * kQBlock, dot);
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[p])));
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i)
        acc[p][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[p][i]), _mm512_mul_ps(dw, _mm512_set1_ps(xd[i * blocks + b])),
                                    acc[p][i]);
    }
  }
  store_tile<P, NB>(acc, out);
}

// 16 scales or biases in dtype D as fp32.
template <DType D>
inline __m512 load_params(const uint8_t* p) {
  if constexpr (D == DType::kF32) return _mm512_loadu_ps(p);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (D == DType::kBF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

// MLX affine panels, x quantized with offset -1 (corr = Σu): per group, each block adds scale d_x Σ u q, and the
// group bias Σ_blocks d_x Σu.
template <bool Q4, int P, int NB, DType D>
void tile_affine(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0,
                 const AffineFormat& f, float* out) {
  constexpr size_t bb = Q4 ? 256 : 512;
  constexpr size_t head = 32 * (D == DType::kF32 ? 4 : 2);
  const size_t gb = head + size_t(f.group_blocks) * bb;
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;
  const int32_t* xc = x.corr.data() + i0 * blocks;
  __m512 acc[P][NB];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) acc[p][i] = _mm512_setzero_ps();
  for (int64_t b0 = 0, g = 0; b0 < blocks; b0 += f.group_blocks, ++g) {
    const uint8_t* grp[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) grp[p] = panel + size_t(p) * pb + size_t(g) * gb;
    if constexpr (NB <= 2) prefetch_ahead<P>(grp, gb);
    alignas(64) float scale[P][kPanelRows];  // through memory: the accumulators take the registers
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) _mm512_store_ps(scale[p], load_params<D>(grp[p]));
    for (int64_t k = 0; k < f.group_blocks; ++k) {
      const int64_t b = b0 + k;
      const uint8_t* q[P];
      __m512i dot[P][NB];
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) {
        q[p] = grp[p] + head + size_t(k) * bb;
#pragma GCC unroll 8
        for (int i = 0; i < NB; ++i) dot[p][i] = _mm512_setzero_si512();
      }
      block_dots<Q4, P, NB>(q, xq + b * kQBlock, blocks * kQBlock, dot);
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) {
        const __m512 d = _mm512_set1_ps(xd[i * blocks + b]);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p)
          acc[p][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[p][i]), _mm512_mul_ps(_mm512_load_ps(scale[p]), d),
                                      acc[p][i]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      const __m512 s = _mm512_set1_ps(group_xsum(xd + i * blocks, xc + i * blocks, b0, f.group_blocks));
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) acc[p][i] = _mm512_fmadd_ps(load_params<D>(grp[p] + head / 2), s, acc[p][i]);
    }
  }
  store_tile<P, NB>(acc, out);
}

// Exact mode's digits of one row of x (kernels/affine_digits.h): rows i0, i0 + 1, i0 + 2 of x are its digits h, m
// and l, with block scales u 2^16, u 2^8 and u, u the same over each group. So the integer sums run over the whole
// group (each under 128 columns · 255 · 128 < 2^23) and combine once per group, where the general tile combines each
// block of each row: (h << 8) + m exactly in int32, then · 256 + l and · scale · u in fp32. The sum goes in out's
// row of h, zeros in the other two (add_digit_rows adds the three). One-panel tiles (decode) prefetch each block
// as it starts.
template <bool Q4, int P, DType D>
void tile_digits(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0,
                 const AffineFormat& f, float* out) {
  constexpr size_t bb = Q4 ? 256 : 512;
  constexpr size_t head = 32 * (D == DType::kF32 ? 4 : 2);
  const size_t gb = head + size_t(f.group_blocks) * bb;
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;  // digit t's block scales at xd + t * blocks
  const int32_t* xc = x.corr.data() + i0 * blocks;
  __m512 acc[P][3];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = acc[p][2] = _mm512_setzero_ps();
  for (int64_t b0 = 0, g = 0; b0 < blocks; b0 += f.group_blocks, ++g) {
    const uint8_t* grp[P];
    __m512i dot[P][3];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      grp[p] = panel + size_t(p) * pb + size_t(g) * gb;
      if constexpr (P == 1)  // (decode streams one panel; wider tiles sit in cache)
        for (size_t line = 0; line < head; line += 64) __builtin_prefetch(grp[p] + kPrefetchAhead + line);
      dot[p][0] = dot[p][1] = dot[p][2] = _mm512_setzero_si512();
    }
    for (int64_t k = 0; k < f.group_blocks; ++k) {
      const uint8_t* q[P];
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) {
        q[p] = grp[p] + head + size_t(k) * bb;
        if constexpr (P == 1)
#pragma GCC unroll 8
          for (size_t line = 0; line < bb; line += 64) __builtin_prefetch(q[p] + kPrefetchAhead + line);
      }
      block_dots<Q4, P, 3>(q, xq + (b0 + k) * kQBlock, blocks * kQBlock, dot);
    }
    const __m512 u = _mm512_set1_ps(xd[2 * blocks + b0]);
    float xsum = 0;  // Σx over the group (the biases' multiplier)
    for (int t = 0; t < 3; ++t) xsum += group_xsum(xd + t * blocks, xc + t * blocks, b0, f.group_blocks);
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      const __m512i hm = _mm512_add_epi32(_mm512_slli_epi32(dot[p][0], 8), dot[p][1]);
      const __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hm), _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(dot[p][2]));
      acc[p][0] = _mm512_fmadd_ps(v, _mm512_mul_ps(load_params<D>(grp[p]), u), acc[p][0]);
      acc[p][0] = _mm512_fmadd_ps(load_params<D>(grp[p] + head / 2), _mm512_set1_ps(xsum), acc[p][0]);
    }
  }
  store_tile<P, 3>(acc, out);
}

template <bool Q4, int P>
void tile_digits_any(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0,
                     const AffineFormat& f, float* out) {
  if (f.params == DType::kBF16) tile_digits<Q4, P, DType::kBF16>(panel, pb, blocks, x, i0, f, out);
  else if (f.params == DType::kF16) tile_digits<Q4, P, DType::kF16>(panel, pb, blocks, x, i0, f, out);
  else tile_digits<Q4, P, DType::kF32>(panel, pb, blocks, x, i0, f, out);
}

// One row of x as digits: 3 rows of x a tile, 4 panels a tile beyond decode.
template <bool Q4>
constexpr Tiles digit_tiles() {
  return {3,
          {0, 0, 0, 4},
          {nullptr, nullptr, nullptr, tile_digits_any<Q4, 4>},
          {nullptr, nullptr, nullptr, tile_digits_any<Q4, 1>}};
}
constexpr Tiles kDigits8 = digit_tiles<false>(), kDigits4 = digit_tiles<true>();

template <bool Affine, bool Q4, int P, int NB>
void tile(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0, const AffineFormat& f,
          float* out) {
  if constexpr (Affine) {  // the params' dtype a constant inside: MLX 8-bit prefill +5-12%
    if (f.params == DType::kBF16) tile_affine<Q4, P, NB, DType::kBF16>(panel, pb, blocks, x, i0, f, out);
    else if (f.params == DType::kF16) tile_affine<Q4, P, NB, DType::kF16>(panel, pb, blocks, x, i0, f, out);
    else tile_affine<Q4, P, NB, DType::kF32>(panel, pb, blocks, x, i0, f, out);
  } else tile_vnni<Q4, P, NB>(panel, pb, blocks, x, i0, f, out);
}

// P = 4 panels per tile for 1 or 2 rows of x, 2 for more (the accumulators stay in registers). Affine tiles take up
// to 4 rows of x: at 6 their group loop spilled accumulators (pp512, MLX 4-bit, 1 thread: 860 tok/s at 6, 836 at 5,
// 1064 at 4).
template <bool Affine, bool Q4>
constexpr Tiles vnni_tiles() {
  return {Affine ? 4 : 6,
          {0, 4, 4, 2, 2, 2, 2},
          {nullptr, tile<Affine, Q4, 4, 1>, tile<Affine, Q4, 4, 2>, tile<Affine, Q4, 2, 3>, tile<Affine, Q4, 2, 4>,
           tile<Affine, Q4, 2, 5>, tile<Affine, Q4, 2, 6>},
          {nullptr, tile<Affine, Q4, 1, 1>, tile<Affine, Q4, 1, 2>, tile<Affine, Q4, 1, 3>, tile<Affine, Q4, 1, 4>,
           tile<Affine, Q4, 1, 5>, tile<Affine, Q4, 1, 6>}};
}
constexpr Tiles kVnniQ8 = vnni_tiles<false, false>(), kVnniQ4 = vnni_tiles<false, true>();
constexpr Tiles kVnniA8 = vnni_tiles<true, false>(), kVnniA4 = vnni_tiles<true, true>();
MESHLM_TARGET_END

MESHLM_TARGET_BEGIN("avx2,fma,f16c")
template <int NB>
inline void store_halves(const __m256 (&acc)[2][NB], float* out) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) _mm256_storeu_ps(out + i * kPanelRows + h * 8, acc[h][i]);
}

// One panel as two halves of 8 lanes; the weights made signed again, multiplied by maddubs(|w|, sign(x, w)).
template <bool Q4, int NB>
void tile_avx2(const uint8_t* panel, size_t, int64_t blocks, const QuantizedX& x, int64_t i0, const AffineFormat&,
               float* out) {
  constexpr size_t bb = Q4 ? kQ4Block : kQ8Block;
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
  store_halves<NB>(acc, out);
}


// 8 scales or biases in dtype d as fp32.
inline __m256 load8_params(const uint8_t* p, DType d) {
  if (d == DType::kF32) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (d == DType::kBF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

// MLX affine panels as tile_affine reads them, a panel as two halves of 8 lanes. maddubs takes the stored unsigned
// values as they are for 4 bits (15 · 127 · 2 fits its 16-bit sums); 8 bits are made signed (q - 128, so that
// |q - 128| · 127 · 2 fits) and 128 Σu is added back.
template <bool Q4, int NB>
void tile_avx2_affine(const uint8_t* panel, size_t, int64_t blocks, const QuantizedX& x, int64_t i0,
                      const AffineFormat& f, float* out) {
  constexpr size_t bb = Q4 ? 256 : 512;
  const size_t ps = dtype_size(f.params), head = 32 * ps, gb = head + size_t(f.group_blocks) * bb;
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;
  const int32_t* xc = x.corr.data() + i0 * blocks;
  const __m256i nibble = _mm256_set1_epi8(0x0f), flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
  __m256 acc[2][NB];
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) acc[h][i] = _mm256_setzero_ps();
  auto step = [&](__m256i (&dot)[NB], __m256i w, const int8_t* xb, int k) {
    const __m256i aw = Q4 ? w : _mm256_sign_epi8(w, w);
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) {
      const __m256i xv = _mm256_set1_epi32(load32(xb + i * blocks * kQBlock + k));
      dot[i] = _mm256_add_epi32(dot[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, Q4 ? xv : _mm256_sign_epi8(xv, w)),
                                                          ones));
    }
  };
  for (int64_t b0 = 0, g = 0; b0 < blocks; b0 += f.group_blocks, ++g) {
    const uint8_t* grp = panel + size_t(g) * gb;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256 scale = load8_params(grp + size_t(h) * 8 * ps, f.params);
      for (int64_t k = 0; k < f.group_blocks; ++k) {
        const int64_t b = b0 + k;
        const uint8_t* blk = grp + head + size_t(k) * bb;
        const int8_t* xb = xq + b * kQBlock;
        __m256i dot[NB];
#pragma GCC unroll 4
        for (int i = 0; i < NB; ++i) dot[i] = Q4 ? _mm256_setzero_si256() : _mm256_set1_epi32(128 * xc[i * blocks + b]);
        if constexpr (Q4) {
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + c * 64 + h * 32));
            step(dot, _mm256_and_si256(v, nibble), xb, 4 * c);
            step(dot, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble), xb, 16 + 4 * c);
          }
        } else {
#pragma GCC unroll 8
          for (int c = 0; c < 8; ++c) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + c * 64 + h * 32));
            step(dot, _mm256_xor_si256(v, flip), xb, 4 * c);
          }
        }
#pragma GCC unroll 4
        for (int i = 0; i < NB; ++i)
          acc[h][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[i]), _mm256_mul_ps(scale, _mm256_set1_ps(xd[i * blocks + b])),
                                      acc[h][i]);
      }
      const __m256 bias = load8_params(grp + size_t(16 + h * 8) * ps, f.params);
#pragma GCC unroll 4
      for (int i = 0; i < NB; ++i) {
        const float xsum = group_xsum(xd + i * blocks, xc + i * blocks, b0, f.group_blocks);
        acc[h][i] = _mm256_fmadd_ps(bias, _mm256_set1_ps(xsum), acc[h][i]);
      }
    }
  }
  store_halves<NB>(acc, out);
}

template <bool Affine, bool Q4, int NB>
void tile_avx2_any(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0,
                   const AffineFormat& f, float* out) {
  if constexpr (Affine) tile_avx2_affine<Q4, NB>(panel, pb, blocks, x, i0, f, out);
  else tile_avx2<Q4, NB>(panel, pb, blocks, x, i0, f, out);
}
template <bool Affine, bool Q4>
constexpr Tiles avx2_tiles() {
  return {2,
          {0, 1, 1},
          {nullptr, tile_avx2_any<Affine, Q4, 1>, tile_avx2_any<Affine, Q4, 2>},
          {nullptr, tile_avx2_any<Affine, Q4, 1>, tile_avx2_any<Affine, Q4, 2>}};
}
constexpr Tiles kAvx2Q8 = avx2_tiles<false, false>(), kAvx2Q4 = avx2_tiles<false, true>();
constexpr Tiles kAvx2A8 = avx2_tiles<true, false>(), kAvx2A4 = avx2_tiles<true, true>();
MESHLM_TARGET_END

}  // namespace

MESHLM_TARGET_BEGIN("avx512f,avx512bw,avx512vl")
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
MESHLM_TARGET_END

void qgemm_rows_vnni(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  drive(w.dtype == DType::kQ8_0 ? kVnniQ8 : kVnniQ4, x, static_cast<const uint8_t*>(w.data),
        panel_bytes(w.dtype, w.cols), w.cols, w.row0, r0, r1, y, w.rows);
}
void qgemm_rows_avx2(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  drive(w.dtype == DType::kQ8_0 ? kAvx2Q8 : kAvx2Q4, x, static_cast<const uint8_t*>(w.data),
        panel_bytes(w.dtype, w.cols), w.cols, w.row0, r0, r1, y, w.rows);
}
void qgemm_affine_x86(bool vnni, const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y,
                      int64_t ldy, bool digits) {
  const AffineView& a = w.affine;
  const Tiles& t = digits ? (a.bits == 4 ? kDigits4 : kDigits8)
                   : vnni ? (a.bits == 4 ? kVnniA4 : kVnniA8)
                          : (a.bits == 4 ? kAvx2A4 : kAvx2A8);
  drive(t, x, static_cast<const uint8_t*>(w.data), affine_panel_bytes(a), w.cols, w.row0, r0, r1, y, ldy,
        AffineFormat{a.group / kQBlock, a.param_dtype});
}

}  // namespace meshlm
#endif
