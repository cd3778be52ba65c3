// The fused affine kernel for 64-bit Arm (NEON, 4 lanes), 4- and 8-bit weights; affine.cpp calls it when the
// running ISA is NEON.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernels/affine.h"
#include "kernels/matmul.h"

namespace meshlm {
namespace affine_neon {
#include "kernels/simd_neon_ops.h"
#include "kernels/affine_neon_ops.h"
#include "kernels/affine_impl.h"
}  // namespace affine_neon

void affine_rows_neon(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                      float* y) {
  affine_neon::rows(x, n, w, xsum, r0, r1, y);
}

}  // namespace meshlm
#endif
