// Skinny matmul for block-quantized weights (q8_0, q4_0): the rows of x are quantized to q8_0 blocks too, and each
// block pair is an int8 dot product scaled by both blocks' scales (as llama.cpp does). AVX2 where the CPU has it,
// portable code elsewhere.
#pragma once
#include <cstdint>
#include <vector>

#include "core/quant.h"
#include "kernels/matmul.h"

namespace meshlm {

// x (n, cols) into n * cols / 32 q8_0 blocks, row after row.
void quantize_rows_q8_0(const float* x, int64_t n, int64_t cols, std::vector<BlockQ8_0>& out);

// y[i * w.rows + r] = Σ_blocks d_w d_x Σ_j q_w[j] q_x[j] for i in [0, n), r in [r0, r1); w.dtype is kQ8_0 or kQ4_0.
void qmatvec_rows(bool avx2, const BlockQ8_0* xq, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y);

}  // namespace meshlm
