// y = x · Wᵀ with fp32 activations and W kept in its stored dtype (f32, f16 or bf16).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/affine.h"

namespace meshlm {

// A weight matrix as Hugging Face stores it: (rows = out_features, cols = in_features), row-major; or quantized at
// load into q8_0 / q4_0 blocks along each row (core/quant.h) and repacked into panels of 16 interleaved rows
// (kernels/qpanel.h), multiplied by int8 dot products (kernels/qgemm.h). Or MLX affine-quantized as stored (dtype
// kAffine, `affine` says how: kernels/affine.h).
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;
  AffineView affine = {};
  int64_t row0 = 0;  // q8_0 / q4_0 / affine panels: the lane of row 0 in the first panel at `data` (a slice may
                     // start mid-panel)

  size_t bytes_per_row() const { return dtype == DType::kAffine ? affine.row_bytes : row_bytes(dtype, cols); }
  // Rows [r0, r1) (whole rows of any dtype, quantized blocks included).
  WeightView row_slice(int64_t r0, int64_t r1) const {
    WeightView v = *this;
    v.rows = r1 - r0;
    if (is_quantized(dtype) || (dtype == DType::kAffine && affine.panels)) {  // whole panels in, then a lane
      const size_t panel = dtype == DType::kAffine ? affine_panel_bytes(affine) : bytes_per_row() * 16;
      v.data = static_cast<const uint8_t*>(data) + size_t((row0 + r0) / 16) * panel;
      v.row0 = (row0 + r0) % 16;
      return v;
    }
    v.data = static_cast<const uint8_t*>(data) + size_t(r0) * bytes_per_row();
    if (dtype == DType::kAffine) {
      const size_t skip = size_t(r0 * affine.groups) * dtype_size(affine.param_dtype);
      v.affine.scales = static_cast<const uint8_t*>(affine.scales) + skip;
      v.affine.biases = static_cast<const uint8_t*>(affine.biases) + skip;
    }
    return v;
  }
};

// Row r of w as fp32 (out: w.cols), whatever its dtype: the embedding lookup.
void weight_row(const WeightView& w, int64_t r, float* out);

// y (n, w.rows) = x (n, w.cols) · wᵀ, split by weight rows over kernel_pool()'s threads. Up to kSkinnyRows* rows
// of x (decode) go through our SIMD kernels (matvec.h), which convert 16-bit weights in registers; more rows go to
// OpenBLAS sgemm (single-threaded per member), 16-bit weights converted a panel at a time into a per-thread
// scratch of at most 8 MiB, so no fp32 copy of a whole matrix is ever held. Both sum in fp32.
void matmul(const float* x, int64_t n, const WeightView& w, float* y);
// The same on the calling thread alone, for callers that deal many small products over kernel_pool() themselves
// (MLA's per-head projections); it may run inside a pool member.
void matmul_serial(const float* x, int64_t n, const WeightView& w, float* y);
// Rows of x up to which the SIMD kernels beat (convert +) sgemm, by weight dtype (bench/bench_matmul: batch/skinny_*
// against batch/matmul_* and the sgemm reference).
constexpr int64_t kSkinnyRowsF32 = 32, kSkinnyRows16 = 64, kSkinnyRowsQ = 32;

// Kernel threads for this process (kernel_pool's size). OpenBLAS then runs single-threaded inside each member.
void set_matmul_threads(int threads);

// How matmul may round activations. kExact: fp32 activations (q8_0 / q4_0 weights: int8 ones at decode, as
// always). kFast: lower precision where the weights allow a faster product: bf16 activations for bf16 weights
// (vdpbf16ps, Arm's bfdot), int8 ones for q8_0 / q4_0 weights and MLX 4/8-bit weights (vpdpbusd, sdot).
enum class Compute { kExact, kFast };
void set_compute(Compute mode);
Compute compute_mode();
// Whether fast mode multiplies bf16 weights by bf16 activations here (AVX512_BF16 under an AVX-512 matmul_isa(), or
// Arm's BF16 extension under kNeon): then fast mode also loads f16 weights as bf16 (load_weights' quantize_to kBF16).
bool bf16_dot_active();

// The instruction set of the skinny kernels: the best this CPU has, unless set (benchmarks and tests compare them).
enum class Isa;
void set_matmul_isa(Isa isa);
Isa matmul_isa();
// The int8 kernels' instruction set under matmul_isa() (AVX-512 without VNNI: AVX2; NEON without dotprod: portable).
enum class QIsa;
QIsa matmul_qisa();

// A function matmul calls between blocks of weight rows (null: none). The pipeline uses it to let MPI move
// activations already in flight while a stage computes: Open MPI progresses non-blocking sends only inside MPI calls.
using ProgressHook = void (*)(void* context);
void set_matmul_progress(ProgressHook hook, void* context);
// The hook in place (to chain onto it, and put it back).
ProgressHook matmul_progress(void** context);

// Same contract, by plain loops (double accumulation). Used by tests as the reference.
void matmul_naive(const float* x, int64_t n, const WeightView& w, float* y);

}  // namespace meshlm
