// The int8 panel kernels for NEON with the dot-product extension (sdot: four int8 products summed into each 32-bit
// lane), for q8_0 / q4_0 panels (kernels/qpanel.h) and MLX affine panels (kernels/affine_int8.h). Included (no
// include guard, on purpose) inside a namespace after <arm_neon.h> (qgemm_arm.cpp) or SIMDe's emulation of it
// (tests/test_neon_emulated.cpp), and after kernels/qgemm_tiles.h and kernels/affine.h; defines rows(x, w, r0, r1,
// y) with qgemm_rows' contract, and affine_rows(x, w, r0, r1, y, ldy) for affine_int8_rows.
// A panel's 16 lanes are four int32x4 quads of 4 rows. The stored unsigned weights are made signed again (q8_0:
// u ^ 0x80, q4_0: nibble - 8), so x needs no correction term, and one sdot multiplies 4 rows' 4 bytes by the 4
// bytes of x in one lane of a register (vdotq_laneq_s32). Up to 2 rows of x per tile: 2 x 4 integer and 2 x 4 fp32
// accumulators, with the weights and x, fit the 32 registers.

// f(std::integral_constant<int, L>) for L in [0, N): lanes must be compile-time constants.
template <int N, typename F, int... L>
inline void each_lane(F&& f, std::integer_sequence<int, L...>) {
  (f(std::integral_constant<int, L>{}), ...);
}
template <int N, typename F>
inline void each_lane(F&& f) {
  each_lane<N>(f, std::make_integer_sequence<int, N>{});
}

// One 32-column block of a panel's values at q (4 bits: 256 bytes, 8 bits: 512) against x's block at xb (row i at
// xb + i * xstride), added into dot[i][j] (lanes 4j..4j+3). 4-bit values are made signed by subtracting NibbleBias
// (q4_0: 8; MLX: 0, as 0..15 are signed bytes already), 8-bit ones by u ^ 0x80.
template <bool Q4, int NB, int NibbleBias>
inline void block_dots(const uint8_t* q, const int8_t* xb, int64_t xstride, int32x4_t (&dot)[NB][4]) {
  int8x16_t xlo[NB], xhi[NB];  // columns 0..15 and 16..31 of the block
  for (int i = 0; i < NB; ++i) xlo[i] = vld1q_s8(xb + i * xstride), xhi[i] = vld1q_s8(xb + i * xstride + 16);
  if constexpr (Q4) {  // chunk c: low nibbles are columns 4c..4c+3, high ones 16+4c..
    const auto signed_nibbles = [](uint8x16_t v) {
      const int8x16_t s = vreinterpretq_s8_u8(v);
      return NibbleBias ? vsubq_s8(s, vdupq_n_s8(NibbleBias)) : s;
    };
    each_lane<4>([&](auto c) {
      for (int j = 0; j < 4; ++j) {
        const uint8x16_t v = vld1q_u8(q + c * 64 + j * 16);
        const int8x16_t lo = signed_nibbles(vandq_u8(v, vdupq_n_u8(0x0f))), hi = signed_nibbles(vshrq_n_u8(v, 4));
        for (int i = 0; i < NB; ++i) {
          dot[i][j] = vdotq_laneq_s32(dot[i][j], lo, xlo[i], decltype(c)::value);
          dot[i][j] = vdotq_laneq_s32(dot[i][j], hi, xhi[i], decltype(c)::value);
        }
      }
    });
  } else {  // group g: columns 4g..4g+3
    each_lane<8>([&](auto g) {
      constexpr int G = decltype(g)::value;
      for (int j = 0; j < 4; ++j) {
        const int8x16_t w = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(q + G * 64 + j * 16), vdupq_n_u8(0x80)));
        for (int i = 0; i < NB; ++i) dot[i][j] = vdotq_laneq_s32(dot[i][j], w, G < 4 ? xlo[i] : xhi[i], G % 4);
      }
    });
  }
}

template <bool Q4, int NB>
void tile_neon(const uint8_t* panel, size_t, int64_t blocks, const QuantizedX& x, int64_t i0,
               const qtiles::AffineFormat&, float* out) {
  constexpr size_t bb = Q4 ? 288 : 544;
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;
  float32x4_t acc[NB][4];
  for (int i = 0; i < NB; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk = panel + size_t(b) * bb;
    int32x4_t dot[NB][4];
    for (int i = 0; i < NB; ++i)
      for (int j = 0; j < 4; ++j) dot[i][j] = vdupq_n_s32(0);
    block_dots<Q4, NB, 8>(blk + 32, xq + b * kQBlock, blocks * kQBlock, dot);
    const uint16x8_t h0 = vld1q_u16(reinterpret_cast<const uint16_t*>(blk));
    const uint16x8_t h1 = vld1q_u16(reinterpret_cast<const uint16_t*>(blk) + 8);
    const float32x4_t dw[4] = {vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h0))),
                               vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h0))),
                               vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h1))),
                               vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h1)))};
    for (int i = 0; i < NB; ++i)
      for (int j = 0; j < 4; ++j)
        acc[i][j] = vfmaq_f32(acc[i][j], vcvtq_f32_s32(dot[i][j]), vmulq_n_f32(dw[j], xd[i * blocks + b]));
  }
  for (int i = 0; i < NB; ++i)
    for (int j = 0; j < 4; ++j) vst1q_f32(out + i * kPanelRows + j * 4, acc[i][j]);
}

// 4 lanes of an MLX panel's 16 scales or biases (quad j) as fp32.
inline float32x4_t load_params4(const uint8_t* p, DType d, int j) {
  if (d == DType::kF32) return vld1q_f32(reinterpret_cast<const float*>(p) + 4 * j);
  const uint16x4_t h = vld1_u16(reinterpret_cast<const uint16_t*>(p) + 4 * j);
  if (d == DType::kBF16) return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
  return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

// MLX affine panels (kernels/affine_int8.h), x quantized with offset -1 (corr = Σu): per group, each block adds
// scale d_x Σ u q, and the group bias Σ_blocks d_x Σu. 4-bit values (0..15) are signed bytes as they are; 8-bit
// ones are made signed (q ^ 0x80 = q - 128) and 128 Σu is added back.
template <bool Q4, int NB>
void tile_neon_affine(const uint8_t* panel, size_t, int64_t blocks, const QuantizedX& x, int64_t i0,
                      const qtiles::AffineFormat& f, float* out) {
  constexpr size_t bb = Q4 ? 256 : 512;
  const size_t ps = dtype_size(f.params), head = 32 * ps, gb = head + size_t(f.group_blocks) * bb;
  const int8_t* xq = x.q.data() + i0 * blocks * kQBlock;
  const float* xd = x.d.data() + i0 * blocks;
  const int32_t* xc = x.corr.data() + i0 * blocks;
  float32x4_t acc[NB][4];
  for (int i = 0; i < NB; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_f32(0.0f);
  for (int64_t b0 = 0, g = 0; b0 < blocks; b0 += f.group_blocks, ++g) {
    const uint8_t* grp = panel + size_t(g) * gb;
    float32x4_t scale[4];
    for (int j = 0; j < 4; ++j) scale[j] = load_params4(grp, f.params, j);
    for (int64_t k = 0; k < f.group_blocks; ++k) {
      const int64_t b = b0 + k;
      const uint8_t* blk = grp + head + size_t(k) * bb;
      int32x4_t dot[NB][4];  // (4 bits: x's block is its evens, then its odds, as the words hold them)
      for (int i = 0; i < NB; ++i)
        for (int j = 0; j < 4; ++j) dot[i][j] = vdupq_n_s32(Q4 ? 0 : 128 * xc[i * blocks + b]);
      block_dots<Q4, NB, 0>(blk, xq + b * kQBlock, blocks * kQBlock, dot);
      for (int i = 0; i < NB; ++i)
        for (int j = 0; j < 4; ++j)
          acc[i][j] = vfmaq_f32(acc[i][j], vcvtq_f32_s32(dot[i][j]), vmulq_n_f32(scale[j], xd[i * blocks + b]));
    }
    for (int i = 0; i < NB; ++i) {
      const float xsum = qtiles::group_xsum(xd + i * blocks, xc + i * blocks, b0, f.group_blocks);
      for (int j = 0; j < 4; ++j) acc[i][j] = vfmaq_n_f32(acc[i][j], load_params4(grp + 16 * ps, f.params, j), xsum);
    }
  }
  for (int i = 0; i < NB; ++i)
    for (int j = 0; j < 4; ++j) vst1q_f32(out + i * kPanelRows + j * 4, acc[i][j]);
}

template <bool Q4>
constexpr qtiles::Tiles neon_tiles() {
  return {2, {0, 1, 1}, {nullptr, tile_neon<Q4, 1>, tile_neon<Q4, 2>}, {nullptr, tile_neon<Q4, 1>, tile_neon<Q4, 2>}};
}

template <bool Q4>
constexpr qtiles::Tiles neon_affine_tiles() {
  return {2,
          {0, 1, 1},
          {nullptr, tile_neon_affine<Q4, 1>, tile_neon_affine<Q4, 2>},
          {nullptr, tile_neon_affine<Q4, 1>, tile_neon_affine<Q4, 2>}};
}

inline void rows(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  static constexpr qtiles::Tiles q8 = neon_tiles<false>(), q4 = neon_tiles<true>();
  qtiles::drive(w.dtype == DType::kQ8_0 ? q8 : q4, x, static_cast<const uint8_t*>(w.data),
                panel_bytes(w.dtype, w.cols), w.cols, w.row0, r0, r1, y, w.rows);
}

// Rows [r0, r1) of an MLX panel view (kernels/affine_int8.h): y[i * ldy + r].
inline void affine_rows(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  static constexpr qtiles::Tiles a8 = neon_affine_tiles<false>(), a4 = neon_affine_tiles<true>();
  const AffineView& a = w.affine;
  qtiles::drive(a.bits == 4 ? a4 : a8, x, static_cast<const uint8_t*>(w.data), affine_panel_bytes(a), w.cols, w.row0,
                r0, r1, y, ldy, qtiles::AffineFormat{a.group / kQBlock, a.param_dtype});
}
