// The fp32 vector operations the x86 kernels' AVX-512 regions share. Included (no include guard, on purpose) inside
// each kernel's own namespace, in a region compiled with the AVX-512 target.
using V = __m512;
constexpr int kLanes = 16;
inline V zero() { return _mm512_setzero_ps(); }
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline float sum(V v) { return _mm512_reduce_add_ps(v); }
inline V broadcast(float f) { return _mm512_set1_ps(f); }
inline V load_f32(const float* p) { return _mm512_loadu_ps(p); }
