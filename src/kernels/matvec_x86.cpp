// The skinny matmul for x86-64: AVX-512 (16 lanes) and AVX2 + FMA + F16C (8 lanes). Each region is compiled for its
// own instruction set; matvec.cpp calls a region only when the CPU has it.
#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics start from _mm256_undefined_*(), which its own flow analysis then reports.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "kernels/matvec.h"
#include "kernels/simd_x86.h"

namespace meshlm {

MESHLM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
namespace avx512 {
#include "kernels/simd_avx512_ops.h"
constexpr int kRows = 8, kPrefetch = 2048;
#include "kernels/matvec_impl.h"
}  // namespace avx512

void matvec_rows_avx512(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                        const float* paired) {
  avx512::rows(x, n, w, r0, r1, y, paired);
}
float read_sum_avx512(const float* p, int64_t n) { return avx512::read_sum(p, n); }
MESHLM_TARGET_END

MESHLM_TARGET_BEGIN("avx2,fma,f16c")
namespace avx2 {
#include "kernels/simd_avx2_ops.h"
constexpr int kRows = 2, kPrefetch = 1024;
#include "kernels/matvec_impl.h"
}  // namespace avx2

void matvec_rows_avx2(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                        const float* paired) {
  avx2::rows(x, n, w, r0, r1, y, paired);
}
float read_sum_avx2(const float* p, int64_t n) { return avx2::read_sum(p, n); }
MESHLM_TARGET_END

}  // namespace meshlm
#endif
