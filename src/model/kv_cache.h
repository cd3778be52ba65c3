// Preallocated key/value cache: one fixed slot per active sequence, reused when a sequence finishes.
#pragma once
#include <cstdint>
#include <vector>

namespace meshlm {

class KVCache {
 public:
  KVCache() = default;
  // n_layers local layers, `slots` sequences, `max_ctx` positions, kv_dim = n_kv_heads_local * head_dim.
  KVCache(int64_t n_layers, int64_t slots, int64_t max_ctx, int64_t kv_dim)
      : slots_(slots), max_ctx_(max_ctx), kv_dim_(kv_dim),
        k_(size_t(n_layers * slots * max_ctx * kv_dim)), v_(k_.size()) {}

  // (max_ctx, kv_dim) rows of one sequence in one layer.
  float* k(int64_t layer, int64_t slot) { return k_.data() + offset(layer, slot); }
  float* v(int64_t layer, int64_t slot) { return v_.data() + offset(layer, slot); }
  int64_t slots() const { return slots_; }
  int64_t max_ctx() const { return max_ctx_; }
  uint64_t bytes() const { return 2 * k_.size() * sizeof(float); }

 private:
  size_t offset(int64_t layer, int64_t slot) const { return size_t((layer * slots_ + slot) * max_ctx_ * kv_dim_); }
  int64_t slots_ = 0, max_ctx_ = 0, kv_dim_ = 0;
  std::vector<float> k_, v_;  // (n_layers, slots, max_ctx, kv_dim)
};

}  // namespace meshlm
