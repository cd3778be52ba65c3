// The portable skinny matmul and the choice among instruction sets. The x86 and Arm bodies are in
// matvec_x86.cpp and matvec_arm.cpp, built with their own target options.
#include "kernels/matvec.h"

#include <algorithm>
#include <vector>

#include "core/cpu_x86.h"
#include "core/dtype.h"

namespace meshlm {

const float kOnes[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// Defined in matvec_x86.cpp / matvec_arm.cpp when the target has them.
void matvec_rows_avx512(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                        const float* paired);
void matvec_rows_avx2(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                        const float* paired);
void matvec_rows_neon(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                        const float* paired);
float read_sum_avx512(const float* p, int64_t n);
float read_sum_avx2(const float* p, int64_t n);
void matvec_rows_avx512_bf16(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y);
float read_sum_neon(const float* p, int64_t n);

namespace portable {
// A "vector" of one lane: the loop nest then compiles to plain scalar code with several accumulators.
using V = float;
constexpr int kLanes = 1, kRows = 4, kPrefetch = 0;
inline V zero() { return 0.0f; }
inline V add(V a, V b) { return a + b; }
inline V fma(V a, V b, V c) { return a * b + c; }
inline float sum(V v) { return v; }
inline V load_f32(const float* p) { return *p; }
inline V load_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
inline V load_f16(const uint16_t* p) { return f16_to_f32(*p); }
inline void load_bf16_pairs(const uint16_t* p, V& even, V& odd) { even = bf16_to_f32(p[0]), odd = bf16_to_f32(p[1]); }
#include "kernels/matvec_impl.h"
}  // namespace portable

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return true;
#if defined(__x86_64__)
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
    case Isa::kAvx512Bf16: return isa_supported(Isa::kAvx512) && __builtin_cpu_supports("avx512bf16");
#endif
#if defined(__aarch64__)
    case Isa::kNeon: return true;
#endif
    default: return false;
  }
}

Isa best_isa() {
  static const Isa best = [] {
    for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kNeon})
      if (isa_supported(isa)) return isa;
    return Isa::kPortable;
  }();
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
    case Isa::kAvx512Bf16: return "avx512bf16";
    default: return "portable";
  }
}

void pair_x(const float* x, int64_t n, int64_t cols, std::vector<float>& xp) {
  xp.resize(size_t(n * cols));
  const int64_t body = cols - cols % 32;
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * cols;
    float* pi = xp.data() + i * cols;
    for (int64_t k = 0; k < body; k += 32)
      for (int j = 0; j < 16; ++j) pi[k + j] = xi[k + 2 * j], pi[k + 16 + j] = xi[k + 2 * j + 1];
    for (int64_t k = body; k < cols; ++k) pi[k] = xi[k];
  }
}

void matvec_rows(Isa isa, const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y,
                 const float* paired) {
  if (n <= 0 || r1 <= r0) return;
  thread_local std::vector<float> own;  // x paired here when the caller did not
  if (w.dtype == DType::kBF16 && isa != Isa::kAvx512Bf16 && !paired) pair_x(x, n, w.cols, own), paired = own.data();
  switch (isa) {
#if defined(__x86_64__)
    case Isa::kAvx512: return matvec_rows_avx512(x, n, w, r0, r1, y, paired);
    case Isa::kAvx512Bf16: return matvec_rows_avx512_bf16(x, n, w, r0, r1, y);
    case Isa::kAvx2: return matvec_rows_avx2(x, n, w, r0, r1, y, paired);
#endif
#if defined(__aarch64__)
    case Isa::kNeon: return matvec_rows_neon(x, n, w, r0, r1, y, paired);
#endif
    default: return portable::rows(x, n, w, r0, r1, y, paired);
  }
}

float read_sum(Isa isa, const float* p, int64_t n) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::kAvx512:
    case Isa::kAvx512Bf16: return read_sum_avx512(p, n);
    case Isa::kAvx2: return read_sum_avx2(p, n);
#endif
#if defined(__aarch64__)
    case Isa::kNeon: return read_sum_neon(p, n);
#endif
    default: return portable::read_sum(p, n);
  }
}

}  // namespace meshlm
