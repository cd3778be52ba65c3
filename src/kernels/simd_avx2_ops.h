// The fp32 vector operations (and 16-bit loads) the x86 kernels' AVX2 regions share. Included (no include guard, on
// purpose) inside each kernel's own namespace, in a region compiled with the AVX2 + FMA + F16C target
// (kernels/simd_x86.h first).
using V = __m256;
constexpr int kLanes = 8;
inline V zero() { return _mm256_setzero_ps(); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline float sum(V v) { return hsum256(v); }
inline V broadcast(float f) { return _mm256_set1_ps(f); }
inline V load_f32(const float* p) { return _mm256_loadu_ps(p); }
inline void store_f32(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V load_bf16(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
inline V load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
// 2 kLanes bf16 values as fp32 with no shuffle: the low halves of the 32-bit words (the even values), the high halves.
inline void load_bf16_pairs(const uint16_t* p, V& even, V& odd) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(int(0xffff0000u))));
}
