#include "model/rope.h"

#include <cmath>

namespace meshlm {

Rope::Rope(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  inv_freq_.resize(size_t(half));
  for (int i = 0; i < half; ++i) inv_freq_[size_t(i)] = 1.0 / std::pow(c.rope_theta, double(2 * i) / c.head_dim);
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::kLinear) {
    for (double& f : inv_freq_) f /= s.factor;
  } else if (s.type == RopeScaling::Type::kLlama3) {
    // As transformers' _compute_llama3_parameters: long wavelengths are divided by `factor`, short ones kept,
    // and the band between is interpolated smoothly.
    const double old_len = s.original_max_position;
    const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    for (double& f : inv_freq_) {
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
  }
}

void Rope::angles(int pos, float* cos, float* sin) const {
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const double a = double(pos) * inv_freq_[i];
    cos[i] = float(std::cos(a));
    sin[i] = float(std::sin(a));
  }
}

}  // namespace meshlm
