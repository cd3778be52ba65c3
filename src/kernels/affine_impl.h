// The fused affine kernel's loop nest for 4- and 8-bit weights, written once over a vector type. Included (no include
// guard, on purpose) inside a namespace per instruction set that first defines:
//   V, kLanes              the fp32 vector type and its width
//   zero(), fma(a, b, c), sum(v), broadcast(f), load_f32(const float*)
//   load_bytes(const uint8_t*)  kLanes bytes widened to 32-bit lanes
//   low4(v), high4(v), to_f32(v)  a lane's low / high nibble, and a lane as fp32
// and defines rows(x, n, w, xsum, r0, r1, y) for slices whose groups are whole (phase 0, cols a multiple of group).
// Per x row, each group's Σq·x stays a vector that is scaled into the row's accumulator (no horizontal sum per
// group); the biases' Σ bias·Σx is a scalar. 4 bits: 16 bytes hold 32 values, the even ones in the low nibbles and
// the odd ones in the high, and x comes rearranged per 32 columns into its 16 evens, then its 16 odds
// (affine_pair_x), so that one widening of bytes serves two vectors of weights.

template <int Bits, int NB>
inline void row_block(const float* x, const WeightView& w, const float* xsum, int64_t r, float* y) {
  const AffineView& a = w.affine;
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
  const float* scales = a.scales + r * a.groups;
  const float* biases = a.biases + r * a.groups;
  V acc[NB];
  float bias_sum[NB];
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i) acc[i] = zero(), bias_sum[i] = 0.0f;
  for (int64_t g = 0; g < a.groups; ++g) {
    V dot[NB];
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) dot[i] = zero();
    const int64_t k0 = g * a.group;
    if constexpr (Bits == 4) {
      for (int64_t k = k0; k < k0 + a.group; k += 32) {
#pragma GCC unroll 2
        for (int h = 0; h < 16; h += kLanes) {
          const auto bytes = load_bytes(row + k / 2 + h);
          const V even = to_f32(low4(bytes)), odd = to_f32(high4(bytes));
#pragma GCC unroll 8
          for (int i = 0; i < NB; ++i) {
            dot[i] = fma(even, load_f32(x + i * w.cols + k + h), dot[i]);
            dot[i] = fma(odd, load_f32(x + i * w.cols + k + 16 + h), dot[i]);
          }
        }
      }
    } else {
      for (int64_t k = k0; k < k0 + a.group; k += kLanes) {
        const V wv = to_f32(load_bytes(row + k));
#pragma GCC unroll 8
        for (int i = 0; i < NB; ++i) dot[i] = fma(wv, load_f32(x + i * w.cols + k), dot[i]);
      }
    }
    const V s = broadcast(scales[g]);
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      acc[i] = fma(dot[i], s, acc[i]);
      bias_sum[i] += biases[g] * xsum[i * a.groups + g];
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i) y[i * w.rows + r] = sum(acc[i]) + bias_sum[i];
}

template <int Bits>
inline void rows_bits(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1,
                      float* y) {
  for (int64_t i = 0; i < n; i += 4) {
    const float* xi = x + i * w.cols;
    const float* si = xsum + i * w.affine.groups;
    float* yi = y + i * w.rows;
    for (int64_t r = r0; r < r1; ++r) {
      switch (std::min<int64_t>(4, n - i)) {
        case 1: row_block<Bits, 1>(xi, w, si, r, yi); break;
        case 2: row_block<Bits, 2>(xi, w, si, r, yi); break;
        case 3: row_block<Bits, 3>(xi, w, si, r, yi); break;
        default: row_block<Bits, 4>(xi, w, si, r, yi); break;
      }
    }
  }
}

// x: as affine_rows takes it (4 bits: rearranged by affine_pair_x).
inline void rows(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1, float* y) {
  if (w.affine.bits == 4) rows_bits<4>(x, n, w, xsum, r0, r1, y);
  else rows_bits<8>(x, n, w, xsum, r0, r1, y);
}
