// The int8 panel kernel for NEON with the dot-product extension (sdot: four int8 products summed into each 32-bit
// lane), for q8_0 / q4_0 panels (kernels/qpanel.h). Included (no include guard, on purpose) inside a namespace after
// <arm_neon.h> (qgemm_arm.cpp) or SIMDe's emulation of it (tests/test_neon_emulated.cpp), and after
// kernels/qgemm_tiles.h; defines rows(x, w, r0, r1, y) with qgemm_rows' contract.
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
    int8x16_t xlo[NB], xhi[NB];  // columns 0..15 and 16..31 of the block
    for (int i = 0; i < NB; ++i) {
      for (int j = 0; j < 4; ++j) dot[i][j] = vdupq_n_s32(0);
      xlo[i] = vld1q_s8(xq + (i * blocks + b) * kQBlock);
      xhi[i] = vld1q_s8(xq + (i * blocks + b) * kQBlock + 16);
    }
    if constexpr (Q4) {  // chunk c: low nibbles are columns 4c..4c+3, high ones 16+4c..
      each_lane<4>([&](auto c) {
        for (int j = 0; j < 4; ++j) {
          const uint8x16_t v = vld1q_u8(blk + 32 + c * 64 + j * 16);
          const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
          const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
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
          const int8x16_t w = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(blk + 32 + G * 64 + j * 16), vdupq_n_u8(0x80)));
          for (int i = 0; i < NB; ++i) dot[i][j] = vdotq_laneq_s32(dot[i][j], w, G < 4 ? xlo[i] : xhi[i], G % 4);
        }
      });
    }
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

template <bool Q4>
constexpr qtiles::Tiles neon_tiles() {
  return {2, {0, 1, 1}, {nullptr, tile_neon<Q4, 1>, tile_neon<Q4, 2>}, {nullptr, tile_neon<Q4, 1>, tile_neon<Q4, 2>}};
}

inline void rows(const QuantizedX& x, const WeightView& w, int64_t r0, int64_t r1, float* y) {
  static constexpr qtiles::Tiles q8 = neon_tiles<false>(), q4 = neon_tiles<true>();
  qtiles::drive(w.dtype == DType::kQ8_0 ? q8 : q4, x, static_cast<const uint8_t*>(w.data),
                panel_bytes(w.dtype, w.cols), w.cols, w.row0, r0, r1, y, w.rows);
}
