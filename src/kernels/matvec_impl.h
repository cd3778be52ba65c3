// The skinny-matmul loop nest, written once over a vector type. Included (no include guard, on purpose) inside a
// namespace per instruction set that first defines:
//   V, kLanes            the fp32 vector type and its width
//   kRows                weight rows computed together (with up to 4 rows of x: kRows * 4 accumulators)
//   kPrefetch            bytes to prefetch ahead in each weight row (0: leave it to the hardware)
//   zero(), fma(a, b, c) = a * b + c, sum(v) horizontal add
//   load_f32(const float*), load_bf16(const uint16_t*), load_f16(const uint16_t*)   kLanes weights as fp32
//   load_bf16_pairs(const uint16_t*, V& even, V& odd)   2 kLanes bf16 weights as fp32, the even and the odd ones
// and defines rows(x, n, w, r0, r1, y, paired) with matvec_rows' contract, and read_sum(p, n) for the bandwidth probe.

template <DType D>
inline V load_w(const uint8_t* row, int64_t k) {
  if constexpr (D == DType::kF32) return load_f32(reinterpret_cast<const float*>(row) + k);
  else if constexpr (D == DType::kBF16) return load_bf16(reinterpret_cast<const uint16_t*>(row) + k);
  else return load_f16(reinterpret_cast<const uint16_t*>(row) + k);
}

template <DType D>
inline float scalar_w(const uint8_t* row, int64_t k) {
  if constexpr (D == DType::kF32) return reinterpret_cast<const float*>(row)[k];
  else if constexpr (D == DType::kBF16) return bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
  else return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
}

// R weight rows from `row` (row_bytes apart) against NB rows of x (cols apart); y rows are ldy apart.
template <DType D, int R, int NB>
inline void block(const float* x, int64_t cols, const uint8_t* row, size_t row_bytes, float* y, int64_t ldy) {
  V acc[R][NB];  // kept in registers: every loop over r and i below is unrolled
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) acc[r][i] = zero();
  const int64_t body = cols - cols % kLanes;
  for (int64_t k = 0; k < body; k += kLanes) {
    if constexpr (kPrefetch > 0)  // kPrefetch bytes ahead in each row: more lines in flight than the hardware asks for
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        __builtin_prefetch(row + size_t(r) * row_bytes + size_t(k) * (D == DType::kF32 ? 4 : 2) + kPrefetch);
    V xv[NB];
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) xv[i] = load_f32(x + i * cols + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V wv = load_w<D>(row + size_t(r) * row_bytes, k);
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) acc[r][i] = fma(wv, xv[i], acc[r][i]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < NB; ++i) {
      float s = sum(acc[r][i]);
      for (int64_t k = body; k < cols; ++k) s += scalar_w<D>(row + size_t(r) * row_bytes, k) * x[i * cols + k];
      y[i * ldy + r] = s;
    }
  }
}

// Where column k (a multiple of 2 kLanes) of x paired starts: its chunk's evens from there, the odds 16 further on.
inline const float* paired_at(const float* xp, int64_t k) { return xp + (k - k % 32) + (k % 32) / 2; }

// bf16 rows: one load of 2 kLanes weights split into its even and odd values by a shift and a mask (no widening
// shuffles), against x rearranged by pair_x (per 32 columns, 16 evens then 16 odds). Same products in fp32; the sums
// run in another order. bench_matmul decode/bf16, 1 thread: n = 1 +10% against the plain block (80% of read bw);
// n = 4 -12% (twice the registers per weight load), so batches take the plain block; batch 1 now takes row_alone.
template <int R, int NB>
inline void block_bf16(const float* x, const float* xp, int64_t cols, const uint8_t* row, size_t row_bytes, float* y,
                       int64_t ldy) {
  V acc[R][NB];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) acc[r][i] = zero();
  const int64_t body = cols - cols % 32;
  for (int64_t k = 0; k < body; k += 2 * kLanes) {
    if constexpr (kPrefetch > 0)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) __builtin_prefetch(row + size_t(r) * row_bytes + size_t(k) * 2 + kPrefetch);
    V xe[NB], xo[NB];
#pragma GCC unroll 8
    for (int i = 0; i < NB; ++i) {
      const float* at = paired_at(xp + i * cols, k);
      xe[i] = load_f32(at), xo[i] = load_f32(at + 16);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      V we, wo;
      load_bf16_pairs(reinterpret_cast<const uint16_t*>(row + size_t(r) * row_bytes) + k, we, wo);
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) acc[r][i] = fma(wo, xo[i], fma(we, xe[i], acc[r][i]));
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < NB; ++i) {
      float s = sum(acc[r][i]);
      for (int64_t k = body; k < cols; ++k) s += scalar_w<DType::kBF16>(row + size_t(r) * row_bytes, k) * x[i * cols + k];
      y[i * ldy + r] = s;
    }
  }
}

// One f16 or bf16 weight row against one row of x, kChains sums along it: a decode step at batch 1 reads the rows
// one after another, a single stream from memory, where kRows rows at once read kRows streams (meshlm bench tg b1,
// exact, interleaved: f16 25.1-25.8 -> 33.5 tok/s on one core, 75-78% -> 94-97% of the read bandwidth). bf16 gains
// as much only on line-aligned rows (core/aligned.h); 64-byte loads split into evens and odds (block_bf16) stream
// slower alone even then (74%). f32 rows read at the bandwidth already and keep kRows.
template <DType D>
inline void row_alone(const float* x, int64_t cols, const uint8_t* row, float* y) {
  constexpr int kChains = 4;
  V acc[kChains];
#pragma GCC unroll 4
  for (int c = 0; c < kChains; ++c) acc[c] = zero();
  const int64_t body = cols - cols % kLanes;
  int64_t k = 0;
  for (; k + kLanes * kChains <= body; k += kLanes * kChains)
#pragma GCC unroll 4
    for (int c = 0; c < kChains; ++c) {
      if constexpr (kPrefetch > 0) __builtin_prefetch(row + size_t(k + kLanes * c) * 2 + kPrefetch);
      acc[c] = fma(load_w<D>(row, k + kLanes * c), load_f32(x + k + kLanes * c), acc[c]);
    }
  for (; k < body; k += kLanes) acc[0] = fma(load_w<D>(row, k), load_f32(x + k), acc[0]);
  float s = sum(add(add(acc[0], acc[1]), add(acc[2], acc[3])));
  for (; k < cols; ++k) s += scalar_w<D>(row, k) * x[k];
  *y = s;
}

// Rows [r0, r1) against NB rows of x (bf16, one row of x: xp, x paired): kRows at a time, then one at a time; or,
// alone (16-bit weights at batch 1, the matrix streamed once), each row by itself.
template <DType D, int NB>
inline void row_range(const float* x, const float* xp, int64_t cols, const uint8_t* base, size_t row_bytes, int64_t r0,
                      int64_t r1, float* y, int64_t ldy, bool alone) {
  int64_t r = r0;
  if constexpr (NB == 1) {
    if (alone) {
      for (; r < r1; ++r) row_alone<D>(x, cols, base + size_t(r) * row_bytes, y + r);
      return;
    }
  }
  if constexpr (D == DType::kBF16 && NB == 1) {  // (more rows of x: the plain block, whose registers suffice)
    for (; r + kRows <= r1; r += kRows)
      block_bf16<kRows, NB>(x, xp, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
    for (; r < r1; ++r) block_bf16<1, NB>(x, xp, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
    return;
  }
  for (; r + kRows <= r1; r += kRows) block<D, kRows, NB>(x, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
  for (; r < r1; ++r) block<D, 1, NB>(x, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
}

template <DType D>
void rows_of(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y, const float* paired) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t bytes_per_row = row_bytes(D, w.cols);
  // Tiles of weight rows small enough to stay in cache while every block of 4 x rows passes over them.
  const int64_t tile =
      n <= 4 ? r1 - r0 : std::max<int64_t>(kRows, int64_t((96 << 10) / bytes_per_row) / kRows * kRows);
  const bool alone = (D == DType::kF16 || D == DType::kBF16) && n == 1;
  for (int64_t t0 = r0; t0 < r1; t0 += tile) {
    const int64_t t1 = std::min(r1, t0 + tile);
    for (int64_t i = 0; i < n; i += 4) {
      const float* xi = x + i * w.cols;
      const float* pi = D == DType::kBF16 ? paired + i * w.cols : nullptr;
      float* yi = y + i * w.rows;
      switch (std::min<int64_t>(4, n - i)) {
        case 1: row_range<D, 1>(xi, pi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, alone); break;
        case 2: row_range<D, 2>(xi, pi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, false); break;
        case 3: row_range<D, 3>(xi, pi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, false); break;
        default: row_range<D, 4>(xi, pi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows, false); break;
      }
    }
  }
}

// paired: x by pair_x (read for bf16 weights only).
inline void rows(const float* x, int64_t n, const WeightView& w, int64_t r0, int64_t r1, float* y, const float* paired) {
  switch (w.dtype) {
    case DType::kF32: return rows_of<DType::kF32>(x, n, w, r0, r1, y, paired);
    case DType::kBF16: return rows_of<DType::kBF16>(x, n, w, r0, r1, y, paired);
    case DType::kF16: return rows_of<DType::kF16>(x, n, w, r0, r1, y, paired);
    default: return;  // quantized weights go through qmatvec_rows
  }
}

// Sum of n floats, read with the widest loads and four independent accumulators: the memory-bandwidth probe.
inline float read_sum(const float* p, int64_t n) {
  V acc[4] = {zero(), zero(), zero(), zero()};
  const V one = load_f32(kOnes);
  const int64_t body = n - n % (4 * kLanes);
  for (int64_t k = 0; k < body; k += 4 * kLanes)
    for (int j = 0; j < 4; ++j) acc[j] = fma(load_f32(p + k + j * kLanes), one, acc[j]);
  float s = sum(acc[0]) + sum(acc[1]) + sum(acc[2]) + sum(acc[3]);
  for (int64_t k = body; k < n; ++k) s += p[k];
  return s;
}
