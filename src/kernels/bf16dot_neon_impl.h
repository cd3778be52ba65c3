// --compute fast for bf16 weights on 64-bit Arm with the BF16 extension: bfdot sums two bf16 products into each
// fp32 lane, 8 weights per instruction where fp32 fmla takes 4, with the weights read as stored. Included (no
// include guard, on purpose) inside a namespace after <arm_neon.h> or SIMDe's emulation of it, and after the
// includer has defined
//   bf16x8                                 8 bf16 values in a register
//   bf16x8 load_bf16(const uint16_t* p)    8 of them from memory
//   float32x4_t bf16_dot(acc, a, b)        lane j: acc[j] + a[2j] b[2j] + a[2j+1] b[2j+1]   (vbfdotq_f32)
// bf16dot_arm.cpp defines them by the instructions, tests/test_neon_emulated.cpp by their arithmetic. Defines
// gemm_rows(x, xh, n, w, r0, r1, y) with bf16_gemm_rows' contract (kernels/matvec.h).

// Rows of x per block: R x NB accumulators, R weights and NB x vectors fit the 32 registers.
constexpr int kMaxNB = 4;

// R weight rows against NB rows of x: per pair a 4-lane partial sum, added across its lanes at the end; the columns
// past the last multiple of 8 take x unrounded.
template <int R, int NB>
inline void block(const float* x, const uint16_t* xh, int64_t cols, const uint8_t* row, size_t row_bytes, float* y,
                  int64_t ldy) {
  float32x4_t acc[R][NB];
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < NB; ++i) acc[r][i] = vdupq_n_f32(0);
  const int64_t body = cols - cols % 8;
  for (int64_t k = 0; k < body; k += 8) {
    bf16x8 xv[NB];
    for (int i = 0; i < NB; ++i) xv[i] = load_bf16(xh + i * cols + k);
    for (int r = 0; r < R; ++r) {
      const bf16x8 wv = load_bf16(reinterpret_cast<const uint16_t*>(row + size_t(r) * row_bytes) + k);
      for (int i = 0; i < NB; ++i) acc[r][i] = bf16_dot(acc[r][i], wv, xv[i]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const auto* w16 = reinterpret_cast<const uint16_t*>(row + size_t(r) * row_bytes);
    for (int i = 0; i < NB; ++i) {
      float s = vaddvq_f32(acc[r][i]);
      for (int64_t k = body; k < cols; ++k) s += bf16_to_f32(w16[k]) * x[i * cols + k];
      y[i * ldy + r] = s;
    }
  }
}

// Rows [r0, r1) against NB rows of x. One row of x (decode) takes 8 weight rows at a time: 8 independent sums in
// flight, as bfdot's latency needs.
template <int NB>
inline void row_range(const float* x, const uint16_t* xh, int64_t cols, const uint8_t* base, size_t row_bytes,
                      int64_t r0, int64_t r1, float* y, int64_t ldy) {
  constexpr int R = NB == 1 ? 8 : 4;
  int64_t r = r0;
  for (; r + R <= r1; r += R) block<R, NB>(x, xh, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
  for (; r < r1; ++r) block<1, NB>(x, xh, cols, base + size_t(r) * row_bytes, row_bytes, y + r, ldy);
}

// y[i * w.rows + r] for r in [r0, r1): more rows of x than a block takes go over tiles of weight rows that stay in
// L1 (64 KiB) while every group of kMaxNB rows of x passes over them.
inline void gemm_rows(const float* x, const uint16_t* xh, int64_t n, const WeightView& w, int64_t r0, int64_t r1,
                      float* y) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t bytes_per_row = row_bytes(DType::kBF16, w.cols);
  const int64_t tile = n <= kMaxNB ? r1 - r0 : std::max<int64_t>(4, int64_t((64 << 10) / bytes_per_row) / 4 * 4);
  for (int64_t t0 = r0; t0 < r1; t0 += tile) {
    const int64_t t1 = std::min(r1, t0 + tile);
    for (int64_t i = 0; i < n; i += kMaxNB) {
      const float* xi = x + i * w.cols;
      const uint16_t* xhi = xh + i * w.cols;
      float* yi = y + i * w.rows;
      switch (std::min<int64_t>(kMaxNB, n - i)) {
        case 1: row_range<1>(xi, xhi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows); break;
        case 2: row_range<2>(xi, xhi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows); break;
        case 3: row_range<3>(xi, xhi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows); break;
        default: row_range<4>(xi, xhi, w.cols, base, bytes_per_row, t0, t1, yi, w.rows); break;
      }
    }
  }
}
