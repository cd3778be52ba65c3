// The skinny matmul for 64-bit Arm (NEON, 4 lanes; every AArch64 CPU has it, with fp16 conversion).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>

#include "core/dtype.h"
#include "kernels/matvec.h"

namespace meshlm {
namespace neon {
using V = float32x4_t;
constexpr int kLanes = 4, kRows = 4, kPrefetch = 0;
inline V zero() { return vdupq_n_f32(0.0f); }
inline V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
inline float sum(V v) { return vaddvq_f32(v); }
inline V load_f32(const float* p) { return vld1q_f32(p); }
inline V load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
inline V load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
#include "kernels/matvec_impl.h"
}  // namespace neon

void matvec_rows_neon(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  neon::rows(x, n, w, r0, r1, y);
}
float read_sum_neon(const float* p, int64_t n) { return neon::read_sum(p, n); }

}  // namespace meshlm
#endif
