#include "kernels/qgemm.h"

#include <algorithm>

#include "core/cpu_x86.h"

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace meshlm {

void qgemm_rows_avx2(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);
void qgemm_rows_vnni(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);
void qgemm_rows_neon_dot(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);

bool qisa_supported(QIsa isa) {
  switch (isa) {
    case QIsa::kPortable: return true;
#if defined(__x86_64__)
    case QIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case QIsa::kAvx512Vnni:
      return qisa_supported(QIsa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__) && defined(MESHLM_NEON_DOT)
    case QIsa::kNeonDot:
#if defined(__APPLE__)
      return true;  // every Apple arm64 chip (M1 on) has it
#elif defined(__linux__)
      return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
      return false;
#endif
#endif
    default: return false;
  }
}

QIsa best_qisa() {
  static const QIsa best = [] {
    for (QIsa isa : {QIsa::kAvx512Vnni, QIsa::kAvx2, QIsa::kNeonDot})
      if (qisa_supported(isa)) return isa;
    return QIsa::kPortable;
  }();
  return best;
}

const char* qisa_name(QIsa isa) {
  switch (isa) {
    case QIsa::kAvx2: return "avx2";
    case QIsa::kAvx512Vnni: return "avx512vnni";
    case QIsa::kNeonDot: return "neondot";
    default: return "portable";
  }
}

namespace {
void rows_portable(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  const int64_t blocks = w.cols / kQBlock;
  const size_t bb = panel_block_bytes(w.dtype), pb = panel_bytes(w.dtype, w.cols);
  const int offset = weight_offset(w.dtype);
  int32_t w_int[kQBlock];
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t lane = w.row0 + r;
    const uint8_t* panel = static_cast<const uint8_t*>(w.data) + size_t(lane / kPanelRows) * pb;
    for (int64_t i = 0; i < x.n; ++i) y[i * w.rows + r] = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = panel + size_t(b) * bb;
      const float dw = panel_scale(block, lane % kPanelRows);
      for (int k = 0; k < kQBlock; ++k) w_int[k] = panel_quant(w.dtype, block, lane % kPanelRows, k) - offset;
      for (int64_t i = 0; i < x.n; ++i) {
        const int8_t* q = x.q.data() + (i * blocks + b) * kQBlock;
        int32_t dot = 0;
        for (int k = 0; k < kQBlock; ++k) dot += w_int[k] * int32_t(q[k]);
        y[i * w.rows + r] += dw * x.d[size_t(i * blocks + b)] * float(dot);
      }
    }
  }
}
}  // namespace

void qgemm_rows(QIsa isa, const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (x.n <= 0 || r1 <= r0) return;
#if defined(__x86_64__)
  if (isa == QIsa::kAvx512Vnni) return qgemm_rows_vnni(x, w, r0, r1, y);
  if (isa == QIsa::kAvx2) return qgemm_rows_avx2(x, w, r0, r1, y);
#endif
#if defined(__aarch64__) && defined(MESHLM_NEON_DOT)
  if (isa == QIsa::kNeonDot) return qgemm_rows_neon_dot(x, w, r0, r1, y);
#endif
  rows_portable(x, w, r0, r1, y);
}

}  // namespace meshlm
