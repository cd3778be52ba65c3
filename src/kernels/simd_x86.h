// Small helpers shared by the x86 kernels' AVX2 regions.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

namespace meshlm {

// The sum of an AVX register's eight floats.
__attribute__((target("avx"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace meshlm
#endif
