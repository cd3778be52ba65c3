// The fp32 vector operations the x86 kernels' AVX2 regions share. Included (no include guard, on purpose) inside each
// kernel's own namespace, in a region compiled with the AVX2 + FMA target (kernels/simd_x86.h first).
using V = __m256;
constexpr int kLanes = 8;
inline V zero() { return _mm256_setzero_ps(); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline float sum(V v) { return hsum256(v); }
inline V broadcast(float f) { return _mm256_set1_ps(f); }
inline V load_f32(const float* p) { return _mm256_loadu_ps(p); }
