#include "kernels/affine_int8.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/affine.h"
#include "kernels/matvec.h"
#include "kernels/qgemm.h"

namespace meshlm {

#if defined(__x86_64__)
void qgemm_affine_x86(bool vnni, const QuantizedX& x, const WeightView& panels, int64_t r0, int64_t r1, float* y,
                      int64_t ldy, bool digits = false);
#elif defined(__aarch64__) && defined(MESHLM_NEON_DOT)
void qgemm_affine_neon_dot(const QuantizedX& x, const WeightView& panels, int64_t r0, int64_t r1, float* y,
                           int64_t ldy);
#endif

namespace {
// Rows [r0, r1) of a panel view into y[i * ldy + r], by the kernel of the instruction set in use (affine_int8_ok).
void panel_rows(const QuantizedX& x, const WeightView& panels, int64_t r0, int64_t r1, float* y, int64_t ldy) {
#if defined(__x86_64__)
  qgemm_affine_x86(matmul_qisa() == QIsa::kAvx512Vnni, x, panels, r0, r1, y, ldy);
#elif defined(__aarch64__) && defined(MESHLM_NEON_DOT)
  qgemm_affine_neon_dot(x, panels, r0, r1, y, ldy);
#else
  (void)x, (void)panels, (void)r0, (void)r1, (void)y, (void)ldy;
#endif
}
}  // namespace

bool affine_int8_ok(const WeightView& w) {
  const AffineView& a = w.affine;
  if (w.dtype != DType::kAffine || !(a.bits == 4 || a.bits == 8) || a.phase != 0) return false;
  if (!(a.group == 32 || a.group == 64 || a.group == 128) || w.cols % a.group != 0) return false;
  const QIsa isa = matmul_qisa();
  return isa == QIsa::kAvx512Vnni || isa == QIsa::kAvx2 || isa == QIsa::kNeonDot;
}

const float* affine_int8_prepared(const float* x, int64_t n, const WeightView& w, std::vector<float>& xbuf) {
  if (w.affine.bits != 4) return x;
  pair_x(x, n, w.cols, xbuf);
  return xbuf.data();
}

namespace {
// Within a group of a panel: its header (scales, then biases) and one block's values.
size_t header_bytes(const AffineView& a) { return 32 * dtype_size(a.param_dtype); }
size_t block_bytes(const AffineView& a) { return size_t(kPanelRows) * kQBlock * size_t(a.bits) / 8; }
size_t group_bytes(const AffineView& a) { return header_bytes(a) + size_t(a.group / kQBlock) * block_bytes(a); }
}  // namespace

void affine_to_panels(const WeightView& w, int64_t r0, int64_t r1, uint8_t* out) {
  const AffineView& a = w.affine;
  const int64_t per_group = a.group / kQBlock;
  const int words = kQBlock * a.bits / 32;  // 32-bit words per row and block
  const size_t ps = dtype_size(a.param_dtype), head = header_bytes(a), bb = block_bytes(a), gb = group_bytes(a);
  const size_t pb = affine_panel_bytes(a);
  for (int64_t p0 = r0; p0 < r1; p0 += kPanelRows) {
    uint8_t* panel = out + size_t((p0 - r0) / kPanelRows) * pb;
    for (int64_t l = 0; l < kPanelRows; ++l) {
      const int64_t r = p0 + l;
      const uint8_t* row = r < r1 ? static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes : nullptr;
      for (int64_t g = 0; g < a.groups; ++g) {
        uint8_t* grp = panel + size_t(g) * gb;
        const size_t at = size_t(r * a.groups + g) * ps;
        if (r < r1) {
          std::memcpy(grp + size_t(l) * ps, static_cast<const uint8_t*>(a.scales) + at, ps);
          std::memcpy(grp + size_t(kPanelRows + l) * ps, static_cast<const uint8_t*>(a.biases) + at, ps);
        } else {  // past the end: scale, bias and values 0
          std::memset(grp + size_t(l) * ps, 0, ps), std::memset(grp + size_t(kPanelRows + l) * ps, 0, ps);
        }
        for (int64_t k = 0; k < per_group; ++k) {
          uint8_t* blk = grp + head + size_t(k) * bb;
          for (int c = 0; c < words; ++c) {
            uint8_t* dst = blk + (c * kPanelRows + l) * 4;
            if (row) std::memcpy(dst, row + ((g * per_group + k) * words + c) * 4, 4);
            else std::memset(dst, 0, 4);
          }
        }
      }
    }
  }
}

WeightView affine_panel_view(const WeightView& w, const uint8_t* panels) {
  WeightView v = w;
  v.data = panels, v.row0 = 0;
  v.affine.panels = true, v.affine.scales = v.affine.biases = nullptr;
  return v;
}

void affine_panel_dequant_rows(const WeightView& w, int64_t r0, int64_t r1, float* out) {
  const AffineView& a = w.affine;
  const size_t ps = dtype_size(a.param_dtype), head = header_bytes(a), bb = block_bytes(a), gb = group_bytes(a);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t l = (w.row0 + r) % kPanelRows;
    const uint8_t* panel =
        static_cast<const uint8_t*>(w.data) + size_t((w.row0 + r) / kPanelRows) * affine_panel_bytes(a);
    float* o = out + (r - r0) * w.cols;
    for (int64_t g = 0; g < a.groups; ++g) {
      const uint8_t* grp = panel + size_t(g) * gb;
      const float s = affine_param(a, grp, l), b = affine_param(a, grp + kPanelRows * ps, l);  // lane l's
      for (int64_t k0 = 0; k0 < a.group; k0 += kQBlock) {  // (exact prefill dequantizes every weight this way)
        const uint8_t* lane = grp + head + size_t(k0 / kQBlock) * bb + size_t(l) * 4;  // its 4 bytes of each 64
        float* ob = o + g * a.group + k0;
        if (a.bits == 8) {  // byte t of chunk c: column 4c + t
          for (int c = 0; c < 8; ++c)
            for (int t = 0; t < 4; ++t) ob[4 * c + t] = s * float(lane[c * 64 + t]) + b;
        } else {  // word c: columns 8c..8c+7, two to a byte, the low nibble first
          for (int c = 0; c < 4; ++c)
            for (int t = 0; t < 4; ++t) {
              const int byte = lane[c * 64 + t];
              ob[8 * c + 2 * t] = s * float(byte & 15) + b, ob[8 * c + 2 * t + 1] = s * float(byte >> 4) + b;
            }
        }
      }
    }
  }
}

void affine_int8_rows(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (x.n <= 0 || r1 <= r0) return;
  if (w.affine.panels) return panel_rows(x, w, r0, r1, y, w.rows);
  // A tile of panels that stays in L2 while every row of x passes over it.
  const size_t pb = affine_panel_bytes(w.affine);
  const int64_t tile = std::max<int64_t>(1, int64_t((256 << 10) / pb)) * kPanelRows;
  thread_local std::vector<uint8_t> panels;  // (tile / 16) panels
  for (int64_t t0 = r0; t0 < r1; t0 += tile) {
    const int64_t t1 = std::min(r1, t0 + tile);
    panels.resize(size_t((t1 - t0 + kPanelRows - 1) / kPanelRows) * pb);
    affine_to_panels(w, t0, t1, panels.data());
    panel_rows(x, affine_panel_view(w.row_slice(t0, t1), panels.data()), 0, t1 - t0, y + t0, w.rows);
  }
}

}  // namespace meshlm
