// RoPE inverse frequencies (with linear, Llama-3 or YaRN scaling) and per-position cos/sin, computed in double.
// The rotated dims are head_dim, or for MLA (DeepSeek-V3) only qk_rope_head_dim.
#pragma once
#include <vector>

#include "io/hf_config.h"

namespace meshlm {

class Rope {
 public:
  explicit Rope(const ModelConfig& c);
  int half() const { return int(inv_freq_.size()); }
  // cos, sin: (rotated dims / 2) for `pos`, times the YaRN attention factor.
  void angles(int pos, float* cos, float* sin) const;
  double inv_freq(int i) const { return inv_freq_[size_t(i)]; }
  double attention_factor() const { return attention_factor_; }

 private:
  std::vector<double> inv_freq_;  // (rotated dims / 2)
  double attention_factor_ = 1.0;
};

// YaRN's get_mscale: 0.1·m·ln(factor) + 1, or 1 when factor <= 1.
double yarn_mscale(double factor, double m = 1.0);

}  // namespace meshlm
