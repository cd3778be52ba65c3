// The fused affine kernel for x86-64: AVX-512 (16 lanes) and AVX2 + FMA + F16C (8 lanes), 4- and 8-bit weights.
// Each region is compiled for its own instruction set; affine.cpp calls a region only when the CPU has it.
#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/affine.h"
#include "kernels/matmul.h"
#include "kernels/simd_x86.h"

namespace meshlm {

MESHLM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
namespace affine_avx512 {
#include "kernels/simd_avx512_ops.h"
inline __m512i load_bytes(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m512i high4(__m512i v) { return _mm512_srli_epi32(v, 4); }
inline V to_f32(__m512i v) { return _mm512_cvtepi32_ps(v); }
struct Lut {
  V table;  // scale·q + bias for q = 0..15
};
inline Lut make_lut(float scale, float bias) {
  const V q = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return {_mm512_fmadd_ps(q, _mm512_set1_ps(scale), _mm512_set1_ps(bias))};
}
inline V lookup(const Lut& lut, __m512i v) { return _mm512_permutexvar_ps(v, lut.table); }  // uses v's low 4 bits
#include "kernels/affine_impl.h"
}  // namespace affine_avx512

void affine_rows_avx512(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                        float* y) {
  affine_avx512::rows(x, n, w, xsum, r0, r1, y);
}
MESHLM_TARGET_END

MESHLM_TARGET_BEGIN("avx2,fma,f16c")
namespace affine_avx2 {
#include "kernels/simd_avx2_ops.h"
inline __m256i load_bytes(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i high4(__m256i v) { return _mm256_srli_epi32(v, 4); }
inline V to_f32(__m256i v) { return _mm256_cvtepi32_ps(v); }
inline __m256i low4(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi32(15)); }
#include "kernels/affine_computed_lut.h"
#include "kernels/affine_impl.h"
}  // namespace affine_avx2

void affine_rows_avx2(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                      float* y) {
  affine_avx2::rows(x, n, w, xsum, r0, r1, y);
}
MESHLM_TARGET_END

}  // namespace meshlm
#endif
