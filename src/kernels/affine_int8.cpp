#include "kernels/affine_int8.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/affine.h"
#include "kernels/matvec.h"
#include "kernels/qgemm.h"

namespace meshlm {

#if defined(__x86_64__)
void qgemm_affine_vnni(const QuantizedX& x, int bits, const uint8_t* panels, int64_t rows, int64_t cols, float* y,
                       int64_t ldy);
void affine_dot_vnni(const AffineDotX& x, const WeightView& w, int64_t r0, int64_t r1, float* y);
#endif

bool affine_int8_ok(const WeightView& w) {
  const AffineView& a = w.affine;
  if (w.dtype != DType::kAffine || !(a.bits == 4 || a.bits == 8) || a.phase != 0) return false;
  if (a.group % kQBlock != 0 || w.cols % a.group != 0) return false;
  const Isa isa = matmul_isa();
  return (isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16) && qisa_supported(QIsa::kAvx512Vnni);
}

bool affine_dot_ok(const WeightView& w) {
  const int64_t chunk = affine_chunk_cols(w.affine.bits);
  const int64_t group = w.affine.group;
  return affine_int8_ok(w) && (group & (group - 1)) == 0 && (chunk % group == 0 || group % chunk == 0);
}

void affine_dot_prepare(const float* x, int64_t n, const WeightView& w, AffineDotX& out) {
  const AffineView& a = w.affine;
  const int64_t cc = affine_chunk_cols(a.bits), blocks = w.cols / kQBlock;
  out.n = n, out.chunks = (w.cols + cc - 1) / cc, out.groups = a.groups;
  QuantizedX& xr = out.rounded;
  quantize_x(x, n, w.cols, kAffineXOffset, xr);  // corr = Σu per block
  out.q.assign(size_t(n * out.chunks * cc), 0);
  out.lane_d.assign(size_t(n * out.chunks * 16), 0.0f);
  out.xsum.assign(size_t(n * a.groups), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const int8_t* u = xr.q.data() + i * w.cols;
    int8_t* q = out.q.data() + i * out.chunks * cc;
    if (a.bits == 8) {
      std::memcpy(q, u, size_t(w.cols));
    } else {  // per chunk: the even columns, then the odd ones (a short last chunk keeps the same places)
      for (int64_t k0 = 0; k0 < w.cols; k0 += cc) {
        const int64_t half = std::min(cc, w.cols - k0) / 2;
        for (int64_t j = 0; j < half; ++j) q[k0 + j] = u[k0 + 2 * j], q[k0 + cc / 2 + j] = u[k0 + 2 * j + 1];
      }
    }
    const float* d = xr.d.data() + i * blocks;
    float* ld = out.lane_d.data() + i * out.chunks * 16;
    const int64_t lanes_per_block = a.bits == 4 ? 4 : 8;
    for (int64_t b = 0; b < blocks; ++b)  // block b's lanes: the chunk's lanes are its blocks' in order
      std::fill_n(ld + b * lanes_per_block, lanes_per_block, d[b]);
    for (int64_t b = 0; b < blocks; ++b)
      out.xsum[size_t(i * a.groups + b * kQBlock / a.group)] += d[b] * float(xr.corr[size_t(i * blocks + b)]);
  }
}


const float* affine_int8_prepared(const float* x, int64_t n, const WeightView& w, std::vector<float>& xbuf) {
  if (w.affine.bits != 4) return x;
  pair_x(x, n, w.cols, xbuf);
  return xbuf.data();
}

namespace {
constexpr size_t kHeader = 2 * kPanelRows * sizeof(float);  // scales, biases
size_t block_bytes(int bits) { return kHeader + size_t(kPanelRows) * kQBlock * size_t(bits) / 8; }
}  // namespace

size_t affine_panel_bytes(const WeightView& w) { return size_t(w.cols / kQBlock) * block_bytes(w.affine.bits); }

void affine_to_panels(const WeightView& w, int64_t r0, int64_t r1, uint8_t* out) {
  const AffineView& a = w.affine;
  const int64_t blocks = w.cols / kQBlock, per_group = a.group / kQBlock;
  const int words = kQBlock * a.bits / 32;  // 32-bit words per row and block
  const size_t bb = block_bytes(a.bits), pb = affine_panel_bytes(w);
  std::vector<float> scales(size_t(a.groups)), biases(size_t(a.groups));
  for (int64_t p0 = r0; p0 < r1; p0 += kPanelRows) {
    uint8_t* panel = out + size_t((p0 - r0) / kPanelRows) * pb;
    for (int64_t l = 0; l < kPanelRows; ++l) {
      const int64_t r = p0 + l;
      if (r >= r1) {  // past the end: scale, bias and values 0
        for (int64_t b = 0; b < blocks; ++b) {
          uint8_t* blk = panel + size_t(b) * bb;
          for (int j : {0, int(kPanelRows)}) std::memset(blk + (j + l) * sizeof(float), 0, sizeof(float));
          for (int c = 0; c < words; ++c) std::memset(blk + kHeader + (c * kPanelRows + l) * 4, 0, 4);
        }
        continue;
      }
      for (int64_t g = 0; g < a.groups; ++g)
        scales[size_t(g)] = affine_param(a, a.scales, r * a.groups + g),
        biases[size_t(g)] = affine_param(a, a.biases, r * a.groups + g);
      const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
      for (int64_t b = 0; b < blocks; ++b) {
        uint8_t* blk = panel + size_t(b) * bb;
        std::memcpy(blk + l * sizeof(float), &scales[size_t(b / per_group)], sizeof(float));
        std::memcpy(blk + (kPanelRows + l) * sizeof(float), &biases[size_t(b / per_group)], sizeof(float));
        const uint8_t* src = row + b * words * 4;
        for (int c = 0; c < words; ++c) std::memcpy(blk + kHeader + (c * kPanelRows + l) * 4, src + 4 * c, 4);
      }
    }
  }
}

void affine_int8_rows(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (x.n <= 0 || r1 <= r0) return;
#if defined(__x86_64__)
  // A tile of panels that stays in L2 while every row of x passes over it.
  const size_t pb = affine_panel_bytes(w);
  const int64_t tile = std::max<int64_t>(1, int64_t((256 << 10) / pb)) * kPanelRows;
  thread_local std::vector<uint8_t> panels;  // (tile / 16) panels
  for (int64_t t0 = r0; t0 < r1; t0 += tile) {
    const int64_t t1 = std::min(r1, t0 + tile);
    panels.resize(size_t((t1 - t0 + kPanelRows - 1) / kPanelRows) * pb);
    affine_to_panels(w, t0, t1, panels.data());
    qgemm_affine_vnni(x, w.affine.bits, panels.data(), t1 - t0, w.cols, y + t0, w.rows);
  }
#else
  (void)w, (void)y;
#endif
}

void affine_dot_rows(const AffineDotX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  if (x.n <= 0 || r1 <= r0) return;
#if defined(__x86_64__)
  affine_dot_vnni(x, w, r0, r1, y);
#else
  (void)w, (void)y;
#endif
}

}  // namespace meshlm
