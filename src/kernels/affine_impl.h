// The fused affine kernel's loop nest for 4- and 8-bit weights, written once over a vector type. Included (no include
// guard, on purpose) inside a namespace per instruction set that first defines:
//   V, kLanes              the fp32 vector type and its width
//   zero(), add(a, b), fma(a, b, c), sum(v), broadcast(f), load_f32(const float*), store_f32(float*, v)
//   load_bf16(const uint16_t*), load_f16(const uint16_t*)   kLanes 16-bit values as fp32
//   load_bytes(const uint8_t*)  kLanes bytes widened to 32-bit lanes; high4(v): each lane shifted right by 4
//   to_f32(v)              a lane as fp32
//   Lut, make_lut(scale, bias), lookup(lut, v)  a group's dequantized value scale·q + bias of each lane's low nibble q
// and defines rows(x, n, w, xsum, r0, r1, y) for slices whose groups are whole (phase 0, cols a multiple of group).
// One chain of dependent FMAs is bound by their latency, so each x row keeps several independent partial sums (fewer
// when NB rows already give the core enough chains).
//
// 4 bits: each group's 16 possible values go through one table, so a weight costs a lookup and an FMA (no per-group
// sums). 16 bytes hold 32 values, the even ones in the low nibbles and the odd ones in the high, and x comes
// rearranged per 32 columns into its 16 evens, then its 16 odds (pair_x), so that one widening of bytes serves
// two vectors of weights.
// Each group prefetches the bytes kPrefetch ahead of it: the hardware's stream prefetchers stop at 4 KiB pages, and
// rows are streamed one after another (bench_matmul decode_affine at 2 threads: +30% for 4 bits against none).
constexpr uint64_t kPrefetch = 4096;

// A row's scales and biases as fp32, a chunk of groups at a time: the whole row for F32 (used where they are),
// kParamChunk groups for 16-bit ones (converted into s_buf / b_buf). Sets scales / biases so that [g - g0] is group g's.
constexpr int64_t kParamChunk = 256;
inline int64_t param_chunk(const AffineView& a) { return a.param_dtype == DType::kF32 ? a.groups : kParamChunk; }
inline void params_f32(const uint16_t* h, bool bf16, int64_t n, float* out) {
  int64_t i = 0;
  if (bf16)
    for (; i + kLanes <= n; i += kLanes) store_f32(out + i, load_bf16(h + i));
  else
    for (; i + kLanes <= n; i += kLanes) store_f32(out + i, load_f16(h + i));
  for (; i < n; ++i) out[i] = bf16 ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
}
inline void row_params(const AffineView& a, int64_t r, int64_t g0, int64_t g1, float* s_buf, float* b_buf,
                       const float*& scales, const float*& biases) {
  const int64_t i0 = r * a.groups + g0;
  if (a.param_dtype == DType::kF32) {
    scales = static_cast<const float*>(a.scales) + i0, biases = static_cast<const float*>(a.biases) + i0;
    return;
  }
  const bool bf16 = a.param_dtype == DType::kBF16;
  params_f32(static_cast<const uint16_t*>(a.scales) + i0, bf16, g1 - g0, s_buf);
  params_f32(static_cast<const uint16_t*>(a.biases) + i0, bf16, g1 - g0, b_buf);
  scales = s_buf, biases = b_buf;
}

template <int NB>
inline void row_block4(const float* x, const WeightView& w, int64_t r, float* y) {
  constexpr int C = NB == 1 ? 2 : 1;  // 32-column steps per round: 2·C chains per x row
  const AffineView& a = w.affine;
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
  V dot[NB][2 * C];
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i)
#pragma GCC unroll 4
    for (int c = 0; c < 2 * C; ++c) dot[i][c] = zero();
  const uint64_t group = uint64_t(a.group);
  // Columns [k, k + 32) of a group into chains c (the evens) and c + 1 (the odds).
  auto step = [&](const Lut& lut, uint64_t k, int c) __attribute__((always_inline)) {
#pragma GCC unroll 2
    for (int h = 0; h < 16; h += kLanes) {
      const auto bytes = load_bytes(row + (k >> 1) + h);
      const V even = lookup(lut, bytes), odd = lookup(lut, high4(bytes));
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) {
        dot[i][c] = fma(even, load_f32(x + i * w.cols + k + h), dot[i][c]);
        dot[i][c + 1] = fma(odd, load_f32(x + i * w.cols + k + 16 + h), dot[i][c + 1]);
      }
    }
  };
  float s_buf[kParamChunk], b_buf[kParamChunk];
  for (int64_t g0 = 0, chunk = param_chunk(a); g0 < a.groups; g0 += chunk) {
    const int64_t g1 = std::min(a.groups, g0 + chunk);
    const float *scales, *biases;
    row_params(a, r, g0, g1, s_buf, b_buf, scales, biases);
    for (int64_t g = g0; g < g1; ++g) {
      const Lut lut = make_lut(scales[g - g0], biases[g - g0]);
      const uint64_t k0 = uint64_t(g) * group, k1 = k0 + group;
      __builtin_prefetch(row + (k0 >> 1) + kPrefetch);
      uint64_t k = k0;
      for (; k + 32 * C <= k1; k += 32 * C)
#pragma GCC unroll 2
        for (int u = 0; u < C; ++u) step(lut, k + 32 * u, 2 * u);
      if (k < k1) step(lut, k, 0);  // a group shorter than a round (32 columns)
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i) {
    V d = dot[i][0];
#pragma GCC unroll 4
    for (int c = 1; c < 2 * C; ++c) d = add(d, dot[i][c]);
    y[i * w.rows + r] = sum(d);
  }
}

// 8 bits: per group, Σq·x in C chains, scaled into the row's accumulators (groups alternate between two); the biases'
// Σ bias·Σx is a scalar.
template <int NB>
inline void row_block8(const float* x, const WeightView& w, const float* xsum, int64_t r, float* y) {
  constexpr int C = NB == 1 ? 4 : 2;  // chains per x row
  const AffineView& a = w.affine;
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + size_t(r) * a.row_bytes;
  V acc0[NB], acc1[NB];
  float bias_sum[NB];
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i) acc0[i] = acc1[i] = zero(), bias_sum[i] = 0.0f;
  const uint64_t group = uint64_t(a.group);
  float s_buf[kParamChunk], b_buf[kParamChunk];
  const float *scales, *biases;  // of the current chunk of groups, from group g0
  int64_t g0 = 0;
  auto group_into = [&](int64_t g, V(&acc)[NB]) __attribute__((always_inline)) {
    V dot[NB][C];
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) dot[i][c] = zero();
    const uint64_t k0 = uint64_t(g) * group, k1 = k0 + group;
    __builtin_prefetch(row + k0 + kPrefetch);
    uint64_t k = k0;
    for (; k + C * kLanes <= k1; k += C * kLanes)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const V wv = to_f32(load_bytes(row + k + c * kLanes));
#pragma GCC unroll 8
        for (int i = 0; i < NB; ++i) dot[i][c] = fma(wv, load_f32(x + i * w.cols + k + c * kLanes), dot[i][c]);
      }
    for (; k < k1; k += kLanes) {  // a group shorter than a round
      const V wv = to_f32(load_bytes(row + k));
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) dot[i][0] = fma(wv, load_f32(x + i * w.cols + k), dot[i][0]);
    }
    const V s = broadcast(scales[g - g0]);
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      V d = dot[i][0];
#pragma GCC unroll 4
      for (int c = 1; c < C; ++c) d = add(d, dot[i][c]);
      acc[i] = fma(d, s, acc[i]);
      bias_sum[i] += biases[g - g0] * xsum[i * a.groups + g];
    }
  };
  for (int64_t chunk = param_chunk(a); g0 < a.groups; g0 += chunk) {
    const int64_t g1 = std::min(a.groups, g0 + chunk);
    row_params(a, r, g0, g1, s_buf, b_buf, scales, biases);
    int64_t g = g0;
    for (; g + 1 < g1; g += 2) group_into(g, acc0), group_into(g + 1, acc1);
    if (g < g1) group_into(g, acc0);
  }
#pragma GCC unroll 8
  for (int i = 0; i < NB; ++i) y[i * w.rows + r] = sum(add(acc0[i], acc1[i])) + bias_sum[i];
}

template <int Bits, int NB>
inline void row_block(const float* x, const WeightView& w, const float* xsum, int64_t r, float* y) {
  if constexpr (Bits == 4) row_block4<NB>(x, w, r, y);
  else row_block8<NB>(x, w, xsum, r, y);
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

// x: as affine_rows takes it (4 bits: rearranged by pair_x).
inline void rows(const float* x, int64_t n, const WeightView& w, const float* xsum, int64_t r0, int64_t r1, float* y) {
  if (w.affine.bits == 4) rows_bits<4>(x, n, w, xsum, r0, r1, y);
  else rows_bits<8>(x, n, w, xsum, r0, r1, y);
}
