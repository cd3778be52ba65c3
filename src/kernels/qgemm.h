// y = x · Wᵀ for q8_0 / q4_0 weights in 16-row panels (kernels/qpanel.h) and int8 activations (QuantizedX), at any
// number of activation rows: decode and prefill alike. Each 32-column block is an integer dot product scaled by the
// weight row's and the activation row's block scales, summed in fp32 (as llama.cpp does). Per instruction set:
// AVX-512 VNNI (vpdpbusd: 16 rows x 4 columns per instruction), AVX2 (maddubs), NEON dot products (sdot: 4 rows x
// 4 columns), and portable code.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/qpanel.h"

namespace meshlm {

enum class QIsa { kPortable, kAvx2, kAvx512Vnni, kNeonDot };

bool qisa_supported(QIsa isa);
QIsa best_qisa();                 // the widest this CPU has (checked once)
const char* qisa_name(QIsa isa);  // "portable", "avx2", "avx512vnni", "neondot"

// y[i * w.rows + r] = Σ_k w(r, k) d_i q_i(k) for i in [0, x.n), r in [r0, r1); x quantized with
// weight_offset(w.dtype). isa must be supported.
void qgemm_rows(QIsa isa, const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);

}  // namespace meshlm
