// The int8 panel kernels for 64-bit Arm with the dot-product extension (Armv8.2 dotprod: every Apple M-series chip,
// Graviton 2+, Ampere, Cortex-A76+). CMake compiles this file for armv8.2-a+dotprod where the compiler takes that
// flag (MESHLM_NEON_DOT); qgemm.cpp calls it only when the CPU reports the extension.
#if defined(__aarch64__) && defined(MESHLM_NEON_DOT)
#include <arm_neon.h>

#include <utility>

#include "kernels/affine.h"
#include "kernels/matmul.h"
#include "kernels/qgemm.h"
#include "kernels/qgemm_tiles.h"

namespace meshlm {
namespace qgemm_neon {
#include "kernels/qgemm_neon_impl.h"
}  // namespace qgemm_neon

void qgemm_rows_neon_dot(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  qgemm_neon::rows(x, w, r0, r1, y);
}

void qgemm_affine_neon_dot(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  qgemm_neon::affine_rows(x, w, r0, r1, y, ldy);
}

}  // namespace meshlm
#endif
