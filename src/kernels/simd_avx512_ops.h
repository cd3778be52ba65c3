// The fp32 vector operations (and 16-bit loads) the x86 kernels' AVX-512 regions share. Included (no include guard, on purpose) inside
// each kernel's own namespace, in a region compiled with the AVX-512 target.
using V = __m512;
constexpr int kLanes = 16;
inline V zero() { return _mm512_setzero_ps(); }
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline float sum(V v) { return _mm512_reduce_add_ps(v); }
inline V broadcast(float f) { return _mm512_set1_ps(f); }
inline V load_f32(const float* p) { return _mm512_loadu_ps(p); }
inline void store_f32(float* p, V v) { _mm512_storeu_ps(p, v); }
inline V load_bf16(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
inline V load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
// 2 kLanes bf16 values as fp32 with no shuffle: the low halves of the 32-bit words (the even values), the high halves.
inline void load_bf16_pairs(const uint16_t* p, V& even, V& odd) {
  const __m512i v = _mm512_loadu_si512(p);
  even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u))));
}
