// Test data for MLX affine kernels: a plain bit packer and a random slice with its exact (double) weights.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/affine.h"
#include "kernels/affine_int8.h"
#include "kernels/matmul.h"

namespace meshlm {

// Plain packer: value i at bits [i·bits, (i+1)·bits), low bit first; 8 bytes of padding like Matrix.
inline std::vector<uint8_t> pack(const std::vector<uint32_t>& v, int bits, size_t bytes) {
  std::vector<uint8_t> out(bytes + 8, 0);
  for (size_t i = 0; i < v.size(); ++i)
    for (int b = 0; b < bits; ++b)
      if ((v[i] >> b) & 1) out[(i * size_t(bits) + size_t(b)) / 8] |= uint8_t(1u << ((i * size_t(bits) + size_t(b)) % 8));
  return out;
}

// A (rows, cols) slice starting `phase` columns into its first group, with random values, scales and biases.
struct Slice {
  int bits, group;
  int64_t rows, cols, phase, groups;
  std::vector<uint32_t> q;       // (rows, cols)
  std::vector<uint8_t> packed;   // rows of affine_row_bytes(cols, bits)
  DType params;                       // the dtype scales and biases are held in
  std::vector<float> scales, biases;  // (rows, groups), exactly representable in `params`
  std::vector<uint8_t> held_scales, held_biases;  // the same in `params`

  Slice(int bits_, int group_, int64_t rows_, int64_t cols_, int64_t phase_, uint32_t seed,
        DType params_ = DType::kF32)
      : bits(bits_), group(group_), rows(rows_), cols(cols_), phase(phase_), params(params_) {
    groups = (phase + cols + group - 1) / group;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    q.resize(size_t(rows * cols));
    for (auto& x : q) x = rng() & ((1u << bits) - 1);
    const size_t rb = affine_row_bytes(cols, bits);
    packed.assign(size_t(rows) * rb + 8, 0);
    for (int64_t r = 0; r < rows; ++r) {
      const auto one = pack({q.begin() + r * cols, q.begin() + (r + 1) * cols}, bits, rb);
      std::copy(one.begin(), one.begin() + long(rb), packed.begin() + long(size_t(r) * rb));
    }
    for (int64_t i = 0; i < rows * groups; ++i) scales.push_back(u(rng) / 8), biases.push_back(u(rng));
    for (auto [v, held] : {std::pair{&scales, &held_scales}, std::pair{&biases, &held_biases}}) {
      held->resize(v->size() * dtype_size(params));
      for (size_t i = 0; i < v->size(); ++i) {
        float& f = (*v)[i];
        if (params == DType::kF32) {
          std::memcpy(held->data() + 4 * i, &f, 4);
          continue;
        }
        const uint16_t h = params == DType::kBF16 ? f32_to_bf16(f) : f32_to_f16(f);
        f = params == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
        std::memcpy(held->data() + 2 * i, &h, 2);
      }
    }
  }
  WeightView view() const {
    WeightView w{packed.data(), DType::kAffine, rows, cols, {}};
    w.affine = {bits,       group, phase, groups, held_scales.data(), held_biases.data(), affine_row_bytes(cols, bits),
                params};
    return w;
  }
  double weight(int64_t r, int64_t c) const {
    const int64_t g = (phase + c) / group;
    return double(scales[size_t(r * groups + g)]) * q[size_t(r * cols + c)] + biases[size_t(r * groups + g)];
  }
};

// w's rows repacked as load_weights does (the buffer holds the panels).
inline WeightView panel_view(const WeightView& w, std::vector<uint8_t>& buf) {
  buf.assign(size_t((w.rows + kPanelRows - 1) / kPanelRows) * affine_panel_bytes(w.affine), 0xff);
  affine_to_panels(w, 0, w.rows, buf.data());
  return affine_panel_view(w, buf.data());
}

}  // namespace meshlm
