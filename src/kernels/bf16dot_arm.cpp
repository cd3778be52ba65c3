// --compute fast for bf16 weights on 64-bit Arm with the BF16 extension (Armv8.6, optional from 8.2: Apple M2 on,
// Graviton 3 on, Neoverse V1/V2/N2). CMake compiles this file for armv8.2-a+bf16 where the compiler takes that
// flag (MESHLM_NEON_BF16); matmul calls it only when the CPU reports the extension (bf16_dot_active).
#if defined(__aarch64__) && defined(MESHLM_NEON_BF16)
#include <arm_neon.h>

#include <algorithm>

#include "core/dtype.h"
#include "kernels/matvec.h"

#if defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace meshlm {
namespace bf16_neon {
using bf16x8 = bfloat16x8_t;
inline bf16x8 load_bf16(const uint16_t* p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }
inline float32x4_t bf16_dot(float32x4_t acc, bf16x8 a, bf16x8 b) { return vbfdotq_f32(acc, a, b); }
#include "kernels/bf16dot_neon_impl.h"
}  // namespace bf16_neon

bool neon_bf16_supported() {
#if defined(__linux__) && defined(HWCAP2_BF16)
  return (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0;
#elif defined(__APPLE__)
  int has = 0;
  size_t size = sizeof has;
  return sysctlbyname("hw.optional.arm.FEAT_BF16", &has, &size, nullptr, 0) == 0 && has != 0;
#else
  return false;
#endif
}

void bf16_gemm_rows(const float* x, const uint16_t* xh, int64_t n, const WeightView& w, int64_t r0, int64_t r1,
                    float* y) {
  bf16_neon::gemm_rows(x, xh, n, w, r0, r1, y);
}

}  // namespace meshlm
#endif
