// Element-wise kernels built on a vectorizable exponential (vexp.cpp): softmax rows and SiLU. Within 2e-7 relative
// of std::exp, without its calls, so each loop runs in vectors of the CPU's width.
#pragma once
#include <cstdint>

namespace meshlm {

// row[j] = exp(row[j] - shift) for j in [0, n), with shift at least every row[j] (the row's maximum); returns their
// sum, accumulated in double.
double exp_shifted(float* row, int64_t n, float shift);

// One row of scores (n columns) in place: softmax over columns [lo, hi], zero outside them (the causal and window
// mask). The sum is kept in double.
void softmax_masked(float* row, int64_t n, int64_t lo, int64_t hi);

// gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for n elements.
void silu_mul(float* gate, const float* up, int64_t n);

}  // namespace meshlm
