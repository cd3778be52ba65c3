// y = x · Wᵀ with fp32 activations and W kept in its stored dtype (f32, f16 or bf16).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace meshlm {

// A weight matrix as Hugging Face stores it: (rows = out_features, cols = in_features), row-major.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;
};

// y (n, w.rows) = x (n, w.cols) · wᵀ. f32 weights go straight to OpenBLAS sgemm; f16/bf16 weights are
// converted a block of rows at a time into a small per-thread scratch, then sgemm, so no fp32 copy of the
// whole matrix is ever held.
void matmul(const float* x, int64_t n, const WeightView& w, float* y);

// A function matmul calls between blocks of weight rows (null: none). The pipeline uses it to let MPI move
// activations already in flight while a stage computes: Open MPI progresses non-blocking sends only inside MPI calls.
using ProgressHook = void (*)(void* context);
void set_matmul_progress(ProgressHook hook, void* context);

// Same contract, by plain loops (double accumulation). Used by tests as the reference.
void matmul_naive(const float* x, int64_t n, const WeightView& w, float* y);

}  // namespace meshlm
