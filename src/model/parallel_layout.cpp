#include "model/parallel_layout.h"

#include "core/check.h"

namespace meshlm {

Range even_split(int64_t n, int64_t parts, int64_t index) {
  MESH_CHECK(parts > 0 && 0 <= index && index < parts, "even_split: bad part ", index, " of ", parts);
  const int64_t base = n / parts, extra = n % parts;
  const int64_t begin = index * base + (index < extra ? index : extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

ParallelLayout ParallelLayout::single(const ModelConfig& c) {
  ParallelLayout l;
  l.q_heads = {0, c.n_heads};
  l.kv_heads = {0, c.n_kv_heads};
  l.hidden = {0, c.hidden_dim};
  l.vocab = {0, c.vocab_size};
  l.layers = {0, c.n_layers};
  return l;
}

}  // namespace meshlm
