// The skinny matmul for 64-bit Arm (NEON, 4 lanes; every AArch64 CPU has it, with fp16 conversion).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "kernels/matvec.h"

namespace meshlm {
namespace neon {
#include "kernels/simd_neon_ops.h"
constexpr int kRows = 4, kPrefetch = 0;
#include "kernels/matvec_impl.h"
}  // namespace neon

void matvec_rows_neon(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                        const float* paired) {
  neon::rows(x, n, w, r0, r1, y, paired);
}
float read_sum_neon(const float* p, int64_t n) { return neon::read_sum(p, n); }

}  // namespace meshlm
#endif
