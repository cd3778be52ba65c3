// Small helpers shared by the x86 kernels' AVX2 regions.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

// A region of functions compiled for an instruction set (features: a target string such as "avx2,fma"): GCC's
// push_options / target pragmas, clang's attribute push (clang ignores GCC's target pragma).
#define MESHLM_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define MESHLM_TARGET_BEGIN(features) \
  MESHLM_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define MESHLM_TARGET_END MESHLM_PRAGMA(clang attribute pop)
#else
#define MESHLM_TARGET_BEGIN(features) MESHLM_PRAGMA(GCC push_options) MESHLM_PRAGMA(GCC target(features))
#define MESHLM_TARGET_END MESHLM_PRAGMA(GCC pop_options)
#endif

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
