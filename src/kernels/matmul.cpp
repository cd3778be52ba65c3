#include "kernels/matmul.h"

#include <cblas.h>

#include "core/thread_pool.h"
#include "kernels/matvec.h"
#include "kernels/affine_digits.h"
#include "kernels/affine_int8.h"
#include "kernels/qgemm.h"

#include <algorithm>
#include <vector>

namespace meshlm {

namespace {
ProgressHook progress_hook = nullptr;
void* progress_context = nullptr;
void progress() {
  if (progress_hook) progress_hook(progress_context);
}
}  // namespace

ProgressHook matmul_progress(void** context) {
  *context = progress_context;
  return progress_hook;
}

void set_matmul_progress(ProgressHook hook, void* context) {
  progress_hook = hook;
  progress_context = context;
}

namespace {
Isa active_isa = best_isa();

// Rows [r0, r1) of y by one OpenBLAS sgemm: f32 weights directly, 16-bit ones first converted into a per-thread fp32
// scratch (the caller keeps r1 - r0 to a panel of a few MiB).
void sgemm_rows(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  const float* rows = static_cast<const float*>(w.data) + r0 * w.cols;
  thread_local std::vector<float> scratch;  // (r1 - r0, cols) fp32
  if (is_quantized(w.dtype)) {
    scratch.resize(size_t((r1 - r0) * w.cols));
    dequantize_panel_rows(w, r0, r1, scratch.data());
    rows = scratch.data();
  } else if (w.dtype == DType::kAffine) {
    scratch.resize(size_t((r1 - r0) * w.cols));
    affine_dequant_rows(w, r0, r1, scratch.data());
    rows = scratch.data();
  } else if (w.dtype != DType::kF32) {
    scratch.resize(size_t((r1 - r0) * w.cols));
    to_f32(static_cast<const uint8_t*>(w.data) + size_t(r0) * row_bytes(w.dtype, w.cols), w.dtype, scratch.data(),
           size_t((r1 - r0) * w.cols));
    rows = scratch.data();
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(r1 - r0), int(w.cols), 1.0f, x, int(w.cols), rows,
              int(w.cols), 0.0f, y + r0, int(w.rows));
}
}  // namespace

void set_matmul_threads(int threads) {
  set_kernel_threads(threads);
  openblas_set_num_threads(1);
}

void set_matmul_isa(Isa isa) { active_isa = isa; }
Isa matmul_isa() { return active_isa; }

namespace {
Compute compute = Compute::kExact;
}  // namespace

QIsa matmul_qisa() {
  switch (active_isa) {
    case Isa::kAvx512:
    case Isa::kAvx512Bf16: return qisa_supported(QIsa::kAvx512Vnni) ? QIsa::kAvx512Vnni : QIsa::kAvx2;
    case Isa::kAvx2: return QIsa::kAvx2;
    case Isa::kNeon: return qisa_supported(QIsa::kNeonDot) ? QIsa::kNeonDot : QIsa::kPortable;
    default: return QIsa::kPortable;
  }
}

void set_compute(Compute mode) { compute = mode; }
Compute compute_mode() { return compute; }

#if defined(__aarch64__) && defined(MESHLM_NEON_BF16)
bool neon_bf16_supported();  // bf16dot_arm.cpp
#endif

bool bf16_dot_active() {
#if defined(__x86_64__)
  static const bool has_bf16dot = isa_supported(Isa::kAvx512Bf16);
  return has_bf16dot && (active_isa == Isa::kAvx512 || active_isa == Isa::kAvx512Bf16);
#elif defined(__aarch64__) && defined(MESHLM_NEON_BF16)
  static const bool has_bf16dot = neon_bf16_supported();
  return has_bf16dot && active_isa == Isa::kNeon;
#else
  return false;
#endif
}

namespace {
// bf16_gemm_rows where this build has it (x86-64; 64-bit Arm compiled with the BF16 extension): bf16_dot_active()
// says whether to call it.
void bf16_rows(const float* x, const uint16_t* xh, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y) {
#if defined(__x86_64__) || (defined(__aarch64__) && defined(MESHLM_NEON_BF16))
  bf16_gemm_rows(x, xh, n, w, r0, r1, y);
#else
  (void)x, (void)xh, (void)n, (void)w, (void)r0, (void)r1, (void)y;
#endif
}

// matmul over `parts` members of the kernel pool (1: on the calling thread, which may be a pool member itself).
void matmul_parts(const float* x, int64_t n, const WeightView& w, float* y, bool serial) {
  if (n == 0 || w.rows == 0) return;
  ThreadPool& pool = kernel_pool();
  const int parts = serial ? 1
                           : std::min(int(std::min<int64_t>(pool.size(), std::max<int64_t>(1, w.rows / 64))),
                                      pool.members(double(n) * double(w.rows) * double(w.cols)));
  const bool quantized = is_quantized(w.dtype), affine = w.dtype == DType::kAffine;
  const bool skinny = n <= (w.dtype == DType::kF32 ? kSkinnyRowsF32
                            : quantized || affine  ? kSkinnyRowsQ
                                                   : kSkinnyRows16);
  // q8_0 / q4_0: int8 activations at decode, and at every n in fast mode (exact prefill: sgemm on the weights).
  const bool int8 = quantized && (skinny || compute == Compute::kFast);
  // MLX 4/8-bit weights as panels (loaded so in fast mode), or stored rows in fast mode from kAffineInt8MinN rows
  // of x (repacked per call): int8 activations too (kernels/affine_int8.h). Exact mode: panels (loaded so where the
  // CPU sums int8 digits in int32) meet x as three int8 digits at decode (kernels/affine_digits.h), sgemm beyond.
  const bool fast = compute == Compute::kFast;
  const bool affine_int8 = affine && fast && (w.affine.panels || (n >= kAffineInt8MinN && affine_int8_ok(w)));
  const bool affine_digits = affine && !fast && skinny && w.affine.panels && affine_exact_ok(w);
  thread_local QuantizedX xq;              // x in int8 blocks (or digits: 3 rows per row of x)
  thread_local std::vector<float> xsum;    // (n, groups) x summed per group, for affine weights
  thread_local std::vector<float> xpairs;  // x rearranged for 4-bit affine kernels
  thread_local std::vector<float> ydigits;  // (3 n, rows) y of each digit row (affine_digits)
  if (int8 || affine_int8 || affine_digits) {  // rows of x shared by the members (a prefill's x is a few MiB)
    QuantizedX& out = xq;  // this thread's buffer: inside the members, the name xq would be theirs
    const float* xs = affine_int8 || affine_digits ? affine_int8_prepared(x, n, w, xpairs) : x;
    const int offset = affine_int8 ? kAffineXOffset : weight_offset(w.dtype);
    quantize_x_shape(affine_digits ? kXDigits * n : n, w.cols, out);
    const int q_parts = n >= 16 ? parts : 1;
    pool.run(q_parts, [&](int t) {
      const Share s = share_of(n, q_parts, t);
      if (affine_digits) quantize_x_digits(xs, w.cols, w.affine.group, s.begin, s.end, out);
      else quantize_x_rows(xs, w.cols, offset, s.begin, s.end, out);
    });
  }
  if (affine_digits) ydigits.resize(size_t(kXDigits * n * w.rows));
  float* y_digits = ydigits.data();
  // The fp32 kernels (affine.h) on stored rows; panels beyond affine_int8 / affine_digits take sgemm.
  const bool affine_fp32 = affine && skinny && !affine_int8 && !affine_digits && !w.affine.panels;
  if (affine_fp32) affine_xsums(x, n, w, xsum);
  const float* x_in = x;
  if (affine_fp32 && affine_pairs_x(w)) pair_x(x, n, w.cols, xpairs), x_in = xpairs.data();
  const QIsa qisa = matmul_qisa();
  // bf16 weights in fast mode: x rounded to bf16 once here, then vdpbf16ps / bfdot at every n.
  const bool bf16 = compute == Compute::kFast && w.dtype == DType::kBF16 && bf16_dot_active();
  thread_local std::vector<uint16_t> xh;  // (n, cols) bf16(x)
  if (bf16) xh.resize(size_t(n * w.cols)), f32_to_bf16(x, xh.data(), xh.size());
  const uint16_t* x_bf16 = xh.data();
  // Each member takes a contiguous share of the weight rows, in panels: about 1 MiB of weights for the skinny
  // kernels, 8 MiB as fp32 for sgemm (wide enough that repacking x for each call stays cheap). Between panels
  // member 0 lets MPI progress.
  const bool streamed = (skinny && !(affine && w.affine.panels)) || int8 || bf16 || affine_int8 || affine_digits;
  const int64_t panel_bytes = streamed ? int64_t(1) << 20 : int64_t(8) << 20;
  const int64_t bytes_per_row = streamed ? int64_t(w.bytes_per_row()) : w.cols * int64_t(sizeof(float));
  const int64_t panel = std::max<int64_t>(64, panel_bytes / std::max<int64_t>(1, bytes_per_row)) / 16 * 16;
  const QuantizedX& x_blocks = xq;  // the caller's thread_local buffers, read by every member
  // bf16 weights in the skinny kernels read x paired once here, not per panel.
  const bool pairs = skinny && !bf16 && w.dtype == DType::kBF16 && active_isa != Isa::kAvx512Bf16;
  if (pairs) pair_x(x, n, w.cols, xpairs);
  const float* x_pairs = pairs ? xpairs.data() : nullptr;
  const float* x_sums = xsum.data();
  pool.run(parts, [&](int t) {
    const Share share = share_of(w.rows, parts, t, 16);
    for (int64_t p0 = share.begin; p0 < share.end; p0 += panel) {
      const int64_t p1 = std::min(share.end, p0 + panel);
      if (affine_fp32) affine_rows(x_in, n, w, x_sums, p0, p1, y);
      else if (int8) qgemm_rows(qisa, x_blocks, w, p0, p1, y);
      else if (affine_int8) affine_int8_rows(x_blocks, w, p0, p1, y);
      else if (affine_digits) affine_digit_rows(x_blocks, w, p0, p1, y_digits, y);
      else if (bf16) bf16_rows(x, x_bf16, n, w, p0, p1, y);
      else if (skinny && !affine) matvec_rows(active_isa, x, n, w, p0, p1, y, x_pairs);
      else sgemm_rows(x, n, w, p0, p1, y);
      if (t == 0 && !serial) progress();
    }
  });
}
}  // namespace

void matmul(const float* x, int64_t n, const WeightView& w, float* y) { matmul_parts(x, n, w, y, false); }
void matmul_serial(const float* x, int64_t n, const WeightView& w, float* y) { matmul_parts(x, n, w, y, true); }

void weight_row(const WeightView& w, int64_t r, float* out) {
  if (w.dtype == DType::kAffine) return affine_dequant_rows(w, r, r + 1, out);
  if (is_quantized(w.dtype)) return dequantize_panel_rows(w, r, r + 1, out);
  to_f32(static_cast<const uint8_t*>(w.data) + size_t(r) * w.bytes_per_row(), w.dtype, out, size_t(w.cols));
}

void matmul_naive(const float* x, int64_t n, const WeightView& w, float* y) {
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    weight_row(w, r, row.data());
    for (int64_t i = 0; i < n; ++i) {
      double acc = 0;
      for (int64_t k = 0; k < w.cols; ++k) acc += double(x[i * w.cols + k]) * row[size_t(k)];
      y[i * w.rows + r] = float(acc);
    }
  }
}

}  // namespace meshlm
