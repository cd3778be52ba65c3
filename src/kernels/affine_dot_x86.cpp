// --compute fast for MLX affine 4- and 8-bit weights at decode (batches under kAffineInt8MinN): the stored rows,
// read once as they are, against x in int8 blocks of 32 (AVX-512 VNNI vpdpbusd: unsigned stored values times
// signed activations). No repacking: a 64-byte load is one chunk of a row,
//   8 bits: 64 columns, lane l (4 bytes) = columns 4l..4l+3, in x's block l / 8 of the chunk
//   4 bits: 128 columns; its low nibbles are the even columns, its high nibbles the odd ones, so lane l of either
//           half = 4 even (or odd) columns of x's block l / 4
// and x is laid out per chunk to match (4 bits: the chunk's 64 even columns, then its 64 odd ones). Each chunk adds
// Σ_lanes s(lane's group) · d(lane's block) · Σ q·u, where u is x's int8 value; the biases add Σ_g bias · Σ_g x̂,
// with x̂ = d u the rounded x (as the panels do, so that both paths compute the same formula).
// The chunk's integer sums go to fp32 at once (one convert, one multiply by the lanes' d, one FMA by the lanes'
// scales), so a 4-bit chunk costs ~10 instructions per 64 bytes against ~28 for the fp32 lookup kernel.
#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/affine.h"
#include "kernels/affine_int8.h"

namespace meshlm {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")
namespace {
constexpr int64_t kPrefetch = 4096;  // bytes ahead in the row stream (prefetchers stop at 4 KiB pages)

// 16 scales or biases of parameter dtype P from p[first], lanes outside m zero.
template <DType P>
inline __m512 load_params(const void* p, int64_t first, __mmask16 m) {
  if constexpr (P == DType::kF32) return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + first);
  const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + first);
  if constexpr (P == DType::kBF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

// Σ_g bias(r, g) · xsum[g].
template <DType P>
inline float bias_dot(const AffineView& a, int64_t r, const float* xsum) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t g = 0; g < a.groups; g += 16) {
    const __mmask16 m = __mmask16((1u << std::min<int64_t>(16, a.groups - g)) - 1);
    acc = _mm512_fmadd_ps(load_params<P>(a.biases, r * a.groups + g, m), _mm512_maskz_loadu_ps(m, xsum + g), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// Rows [r0, r1) of y against NB rows of x from row i0, two chunks a round: the round's scales come in one load,
// spread over each chunk's lanes by a permute.
template <int Bits, DType P, int NB>
void rows_nb(const AffineDotX& x, int64_t i0, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  const AffineView& a = w.affine;
  constexpr int64_t cc = affine_chunk_cols(Bits), lanes_per_block = Bits == 4 ? 4 : 8;
  const int64_t chunks = x.chunks, full = w.cols / cc;
  const int shift = __builtin_ctzll(uint64_t(a.group));  // a power of two (affine_dot_ok)
  const __mmask64 tail = w.cols % cc ? __mmask64((uint64_t(1) << ((w.cols % cc) * Bits / 8)) - 1) : 0;
  // Lane l of the round's chunk k: its group, counted from the round's first group.
  alignas(64) int32_t lane_group[2][16];
  for (int k = 0; k < 2; ++k)
    for (int l = 0; l < 16; ++l) lane_group[k][l] = int32_t((k * cc + (l / lanes_per_block) * kQBlock) >> shift);
  const __m512i spread[2] = {_mm512_load_si512(lane_group[0]), _mm512_load_si512(lane_group[1])};
  const __mmask16 round_groups = __mmask16((1u << (lane_group[1][15] + 1)) - 1);
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const int8_t* xq = x.q.data() + i0 * chunks * cc;
  const float* xd = x.lane_d.data() + i0 * chunks * 16;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
    __m512 acc[NB][2];
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    auto step = [&](int64_t c, int k, __m512 params) __attribute__((always_inline)) {
      __builtin_prefetch(row + c * 64 + kPrefetch);
      const __m512i wv = c < full ? _mm512_loadu_si512(row + c * 64) : _mm512_maskz_loadu_epi8(tail, row + c * 64);
      const __m512 s = _mm512_permutexvar_ps(spread[k], params);
      __m512i lo = wv, hi = wv;
      if constexpr (Bits == 4) lo = _mm512_and_si512(wv, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), nibble);
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) {
        const int8_t* xc = xq + (i * chunks + c) * cc;
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xc));
        if constexpr (Bits == 4) dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512(xc + 64));
        const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_loadu_ps(xd + (i * chunks + c) * 16));
        acc[i][k] = _mm512_fmadd_ps(t, s, acc[i][k]);
      }
    };
    for (int64_t c = 0; c < chunks; c += 2) {
      const int64_t g = (c * cc) >> shift, left = a.groups - g;  // the round's first group; the row's groups from it
      const bool both = c + 1 < chunks;
      __mmask16 m = both ? round_groups : __mmask16(round_groups & ((1u << (lane_group[0][15] + 1)) - 1));
      if (left < 16) m &= __mmask16((1u << left) - 1);  // a short last chunk: lanes past the row's columns read no scale
      const __m512 params = load_params<P>(a.scales, r * a.groups + g, m);
      step(c, 0, params);
      if (both) step(c + 1, 1, params);
    }
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i)
      y[(i0 + i) * w.rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1])) +
                                 bias_dot<P>(a, r, x.xsum.data() + (i0 + i) * x.groups);
  }
}

template <int Bits, DType P>
void rows_bits(const AffineDotX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  for (int64_t i = 0; i < x.n; i += 4) {
    switch (std::min<int64_t>(4, x.n - i)) {
      case 1: rows_nb<Bits, P, 1>(x, i, w, r0, r1, y); break;
      case 2: rows_nb<Bits, P, 2>(x, i, w, r0, r1, y); break;
      case 3: rows_nb<Bits, P, 3>(x, i, w, r0, r1, y); break;
      default: rows_nb<Bits, P, 4>(x, i, w, r0, r1, y); break;
    }
  }
}

template <int Bits>
void rows_params(const AffineDotX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  switch (w.affine.param_dtype) {
    case DType::kBF16: return rows_bits<Bits, DType::kBF16>(x, w, r0, r1, y);
    case DType::kF16: return rows_bits<Bits, DType::kF16>(x, w, r0, r1, y);
    default: return rows_bits<Bits, DType::kF32>(x, w, r0, r1, y);
  }
}
}  // namespace

void affine_dot_vnni(const AffineDotX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (w.affine.bits == 4) rows_params<4>(x, w, r0, r1, y);
  else rows_params<8>(x, w, r0, r1, y);
}
#pragma GCC pop_options

}  // namespace meshlm
#endif
