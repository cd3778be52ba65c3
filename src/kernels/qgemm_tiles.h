// How the int8 panel kernels are driven, whatever the instruction set (qgemm_x86.cpp, qgemm_arm.cpp): a tile
// function multiplies P panels (16 weight rows each) by NB rows of x, and drive() walks the panels of a row range in
// cache-sized tiles, every group of x rows over each tile, and copies out the lanes that are rows of the range.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/qpanel.h"

namespace meshlm {
namespace qtiles {

// MLX affine panels (kernels/affine_int8.h): 32-column blocks per group, and the dtype of its scales and biases.
struct AffineFormat {
  int64_t group_blocks = 1;
  DType params = DType::kF32;
};

// out (P, NB, 16): lane l of panel p against x row i0 + i (f: affine panels only).
using TileFn = void (*)(const uint8_t* panel, size_t pb, int64_t blocks, const QuantizedX& x, int64_t i0,
                        const AffineFormat& f, float* out);
constexpr int kMaxNB = 6, kMaxP = 4;
struct Tiles {
  int max_nb;
  int panels[kMaxNB + 1];     // P for each NB (in cache-sized tiles)
  TileFn wide[kMaxNB + 1];    // P panels
  TileFn single[kMaxNB + 1];  // one panel (the last few)
};

// An affine group's bias multiplier for one row of x: Σ d Σu over its blocks [b0, b0 + n) (d, corr: the row's).
inline float group_xsum(const float* d, const int32_t* corr, int64_t b0, int64_t n) {
  float s = 0;
  for (int64_t k = b0; k < b0 + n; ++k) s += d[k] * float(corr[k]);
  return s;
}

inline int32_t load32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Panels at `base` (pb bytes each, the first lane at row -row0) covering rows [r0, r1), in tiles that stay in cache
// while every group of x rows passes over them; y[i * ldy + r].
inline void drive(const Tiles& t, const QuantizedX& x, const uint8_t* base, size_t pb, int64_t cols, int64_t row0,
                  int64_t r0, int64_t r1, float* y, int64_t ldy, const AffineFormat& f = {}) {
  const int64_t blocks = cols / kQBlock;
  const int64_t first = (row0 + r0) / kPanelRows, last = (row0 + r1 - 1) / kPanelRows + 1;
  // Up to max_nb rows of x (decode) stream the panels once, one panel at a time: P panels at once (P streams from
  // memory) kept 4-bit decode at 78-85% of the read bandwidth where one stream reads 97-107% (meshlm bench tg b1,
  // 1 thread: MLX 4-bit 90-97 -> 114 tok/s, q4_0 97-99 -> 120-128; 2 rows of x 1.2-1.3x). Larger batches pass
  // over tiles that stay in cache, where P panels per x load pay.
  const bool streaming = x.n <= t.max_nb;
  const int64_t tile = streaming ? last - first : std::max<int64_t>(kMaxP, int64_t((128 << 10) / pb));
  float out[kMaxP * kMaxNB * kPanelRows];
  for (int64_t t0 = first; t0 < last; t0 += tile) {
    const int64_t t1 = std::min(last, t0 + tile);
    for (int64_t i0 = 0; i0 < x.n; i0 += t.max_nb) {
      const int nb = int(std::min<int64_t>(t.max_nb, x.n - i0));
      for (int64_t p = t0; p < t1;) {
        const int np = !streaming && p + t.panels[nb] <= t1 ? t.panels[nb] : 1;
        (np == 1 ? t.single[nb] : t.wide[nb])(base + size_t(p) * pb, pb, blocks, x, i0, f, out);
        for (int pp = 0; pp < np; ++pp) {  // lanes that are rows of [r0, r1)
          const int64_t row_of_lane0 = (p + pp) * kPanelRows - row0;
          const int64_t lo = std::max<int64_t>(0, r0 - row_of_lane0), hi = std::min<int64_t>(16, r1 - row_of_lane0);
          for (int i = 0; i < nb; ++i)
            std::memcpy(y + (i0 + i) * ldy + row_of_lane0 + lo, out + (pp * nb + i) * kPanelRows + lo,
                        size_t(hi - lo) * sizeof(float));
        }
        p += np;
      }
    }
  }
}

}  // namespace qtiles
}  // namespace meshlm
