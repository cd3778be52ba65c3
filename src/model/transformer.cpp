#include "model/transformer.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "kernels/vexp.h"

namespace meshlm {

Transformer::Transformer(const ModelConfig& config, ModelWeights weights, const ParallelLayout& layout, Group* tp,
                         int64_t max_rows, int64_t kv_blocks, int64_t max_ctx, int64_t max_step_tokens)
    : config_(config), weights_(std::move(weights)), layout_(layout), tp_(tp && tp->size() > 1 ? tp : nullptr),
      row_parallel_(tp_, TpComm{}), rope_(config), max_step_tokens_(max_step_tokens), max_ctx_(max_ctx),
      max_rows_(max_rows) {
  n_heads_local_ = layout.q_heads.size();
  n_kv_heads_local_ = layout.kv_heads.size();
  hidden_local_ = layout.hidden.size();
  const int64_t T = max_step_tokens, hd = config.head_dim, dim = config.dim;
  cache_ = KVCache(layout.layers.size(), kv_blocks, config.cache_row(n_kv_heads_local_), config.cache_planes());
  x_.resize(size_t(T * dim));
  xb_.resize(size_t(T * dim));
  if (config.mla.on()) {
    mla_ = MlaAttention(config, n_heads_local_, T);
    att_.resize(size_t(T * n_heads_local_ * config.mla.v));
  } else {
    q_.resize(size_t(T * n_heads_local_ * hd));
    k_.resize(size_t(T * n_kv_heads_local_ * hd));
    v_.resize(k_.size());
    att_.resize(q_.size());
  }
  bool dense_mlp = false;  // MoE models may have no dense MLP layer on this rank: then no buffers for one
  for (int64_t l = layout.layers.begin; l < layout.layers.end; ++l) dense_mlp |= !config.moe_layer(l);
  if (dense_mlp) gate_.resize(size_t(T * hidden_local_));
  up_.resize(gate_.size());
  if (config.is_moe()) {
    moe_ = MoeMlp(config, layout, T);
    moe_out_.resize(size_t(T * dim));
  }
  cos_.resize(size_t(T * rope_.half()));
  sin_.resize(cos_.size());
  scores_.resize(size_t(max_ctx));
  if (layout.last_stage()) {
    head_in_.resize(size_t(max_rows * dim));
    logits_.resize(size_t(max_rows * layout.vocab.size()));
  }
}

void Transformer::embed(const StepBatch& batch) {
  const int64_t n = batch.size(), dim = config_.dim;
  MESH_CHECK(n <= max_step_tokens_, "step of ", n, " tokens exceeds the ", max_step_tokens_, "-token capacity");
  // Each tensor rank holds the rows of its vocab slice; other tokens get zeros, and the sum over ranks is exact.
  const WeightView emb = weights_.embed_tokens.view();
  for (int64_t i = 0; i < n; ++i) {
    const int tok = batch.tokens[size_t(i)];
    MESH_CHECK(tok >= 0 && tok < config_.vocab_size, "token id ", tok, " is outside the vocabulary (",
               config_.vocab_size, ")");
    float* xi = &x_[size_t(i * dim)];
    if (layout_.vocab.contains(tok))
      weight_row(emb, tok - layout_.vocab.begin, xi);
    else
      std::fill(xi, xi + dim, 0.0f);
  }
  if (tp_) tp_->allreduce_sum(x_.data(), n * dim);
}

void Transformer::check_batch(const StepBatch& batch) const {
  const int64_t n = batch.size(), n_seqs = batch.n_seqs(), B = KVCache::kBlockTokens;
  MESH_CHECK(n <= max_step_tokens_, "step of ", n, " tokens exceeds the ", max_step_tokens_, "-token capacity");
  MESH_CHECK(int64_t(batch.logit_rows.size()) <= max_rows_, "more logit rows than sequences in flight");
  MESH_CHECK(!batch.tables.empty() && batch.tables.front() == 0 && batch.tables.back() >= 0 &&
                 size_t(batch.tables.back()) == batch.blocks.size(),
             "malformed block tables");
  for (int64_t j = 0; j < n_seqs; ++j)
    MESH_CHECK(batch.tables[size_t(j)] <= batch.tables[size_t(j + 1)], "malformed block tables");
  for (int block : batch.blocks)
    MESH_CHECK(block >= 0 && block < cache_.n_blocks(), "KV block ", block, " is outside the ", cache_.n_blocks(),
               " blocks");
  for (int64_t i = 0; i < n; ++i) {
    const int pos = batch.positions[size_t(i)], seq = batch.seqs[size_t(i)];
    MESH_CHECK(pos >= 0 && pos < max_ctx_, "position ", pos, " exceeds the context of ", max_ctx_);
    MESH_CHECK(seq >= 0 && seq < n_seqs, "sequence ", seq, " is outside the step's ", n_seqs, " block tables");
    MESH_CHECK(pos < batch.table_size(seq) * B, "position ", pos, " is past its sequence's ", batch.table_size(seq),
               " KV blocks");
  }
}

void Transformer::run_layers(const StepBatch& batch) {
  const int64_t n = batch.size(), half = rope_.half();
  check_batch(batch);
  for (int64_t i = 0; i < n; ++i)
    rope_.angles(batch.positions[size_t(i)], &cos_[size_t(i * half)], &sin_[size_t(i * half)]);
  for (int64_t l = 0; l < layout_.layers.size(); ++l) {
    attention_block(l, batch);
    mlp_block(l, n);
  }
}

const float* Transformer::head(const StepBatch& batch) {
  MESH_CHECK(layout_.last_stage(), "head() runs on the last pipeline stage only");
  const int64_t dim = config_.dim, m = int64_t(batch.logit_rows.size());
  for (int64_t r = 0; r < m; ++r)
    rmsnorm(&x_[size_t(batch.logit_rows[size_t(r)] * dim)], weights_.norm.data(), &head_in_[size_t(r * dim)], 1,
            dim, float(config_.norm_eps));
  matmul(head_in_.data(), m, weights_.head().view(), logits_.data());  // (m, vocab_local), split by vocab
  return logits_.data();
}

void Transformer::attention_block(int64_t l, const StepBatch& batch) {
  const LayerWeights& L = weights_.layers[size_t(l)];
  const int64_t n = batch.size(), dim = config_.dim, hd = config_.head_dim, half = hd / 2;
  const int64_t q_dim = n_heads_local_ * hd, kv_dim = n_kv_heads_local_ * hd;
  const float eps = float(config_.norm_eps);

  rmsnorm(x_.data(), L.input_layernorm.data(), xb_.data(), n, dim, eps);
  if (config_.mla.on()) {
    mla_.forward(L, cache_, l, batch, xb_.data(), cos_.data(), sin_.data(), att_.data());  // (n, heads_local · v)
    row_parallel_.run(att_.data(), n, L.o_proj.view(), xb_.data());  // (n, dim), summed over the heads of all ranks
    add_inplace(x_.data(), xb_.data(), n * dim);
    return;
  }
  matmul(xb_.data(), n, L.q_proj.view(), q_.data());  // (n, q_dim), this rank's heads
  matmul(xb_.data(), n, L.k_proj.view(), k_.data());  // (n, kv_dim)
  matmul(xb_.data(), n, L.v_proj.view(), v_.data());  // (n, kv_dim)
  if (!L.q_bias.empty()) {
    add_bias(q_.data(), L.q_bias.data(), n, q_dim);
    add_bias(k_.data(), L.k_bias.data(), n, kv_dim);
    add_bias(v_.data(), L.v_bias.data(), n, kv_dim);
  }
  if (!L.q_norm.empty()) {  // Qwen3: RMSNorm over each head before RoPE
    rmsnorm(q_.data(), L.q_norm.data(), q_.data(), n * n_heads_local_, hd, eps);
    rmsnorm(k_.data(), L.k_norm.data(), k_.data(), n * n_kv_heads_local_, hd, eps);
  }
  const int64_t B = KVCache::kBlockTokens;
  for (int64_t i = 0; i < n; ++i) {
    rope_rotate_half(&q_[size_t(i * q_dim)], n_heads_local_, hd, &cos_[size_t(i * half)], &sin_[size_t(i * half)]);
    rope_rotate_half(&k_[size_t(i * kv_dim)], n_kv_heads_local_, hd, &cos_[size_t(i * half)], &sin_[size_t(i * half)]);
    const int pos = batch.positions[size_t(i)];
    const int block = batch.table(batch.seqs[size_t(i)])[pos / B];
    const int64_t row = (pos % B) * kv_dim;
    std::memcpy(cache_.k(l, block) + row, &k_[size_t(i * kv_dim)], size_t(kv_dim) * sizeof(float));
    std::memcpy(cache_.v(l, block) + row, &v_[size_t(i * kv_dim)], size_t(kv_dim) * sizeof(float));
  }
  const AttentionShape shape{n_heads_local_, n_kv_heads_local_, hd, config_.n_heads / config_.n_kv_heads,
                             layout_.q_heads.begin, layout_.kv_heads.begin};
  const auto rows_of = [&](int seq) {  // the sequence's keys and values in this layer
    return KvRows{cache_.k_layer(l), cache_.v_layer(l), batch.table(seq), B, kv_dim};
  };
  // Runs of consecutive positions of one sequence (prefill chunks) go through attend_run with their heads shared by
  // the kernel threads; the other tokens (decode) are dealt round-robin, each with its own scores row.
  ThreadPool& pool = kernel_pool();
  const int64_t window = config_.sliding_window;
  if (scores_.size() < size_t(pool.size() * max_ctx_)) scores_.resize(size_t(pool.size() * max_ctx_));
  if (run_scratch_.size() < size_t(pool.size())) run_scratch_.resize(size_t(pool.size()));
  runs_.clear();
  singles_.clear();
  for (int64_t i = 0, j; i < n; i = j) {
    j = batch.run_end(i);
    if (j - i >= kMinRun) runs_.push_back({i, j});
    else for (int64_t k = i; k < j; ++k) singles_.push_back(k);
  }
  double work = 0;  // multiply-adds: q·k and p·v over each token's keys
  for (int64_t i = 0; i < n; ++i) work += 2.0 * double(batch.positions[size_t(i)] + 1) * double(q_dim);
  const int parts = pool.members(work);
  pool.run(parts, [&](int member) {
    const Range heads = even_split(n_heads_local_, parts, member);
    for (const Range& r : runs_)
      if (heads.size() > 0)
        attend_run(&q_[size_t(r.begin * q_dim)], r.size(), batch.positions[size_t(r.begin)], window,
                   rows_of(batch.seqs[size_t(r.begin)]), shape, heads.begin, heads.end, run_scratch_[size_t(member)],
                   &att_[size_t(r.begin * q_dim)]);
    for (size_t k = size_t(member); k < singles_.size(); k += size_t(parts)) {
      const int64_t i = singles_[k];
      const int pos = batch.positions[size_t(i)];
      const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
      attend(&q_[size_t(i * q_dim)], rows_of(batch.seqs[size_t(i)]), first, pos, shape,
             scores_.data() + member * max_ctx_, &att_[size_t(i * q_dim)]);
    }
  });
  row_parallel_.run(att_.data(), n, L.o_proj.view(), xb_.data());  // (n, dim), summed over the heads of all ranks
  if (!L.o_bias.empty()) add_bias(xb_.data(), L.o_bias.data(), n, dim);
  add_inplace(x_.data(), xb_.data(), n * dim);
}

void Transformer::mlp_block(int64_t l, int64_t n) {
  const LayerWeights& L = weights_.layers[size_t(l)];
  const int64_t dim = config_.dim;
  rmsnorm(x_.data(), L.post_attention_layernorm.data(), xb_.data(), n, dim, float(config_.norm_eps));
  if (L.is_moe()) {
    moe_.forward(L.moe, xb_.data(), n, row_parallel_, moe_out_.data());  // (n, dim), summed over the tensor group
    add_inplace(x_.data(), moe_out_.data(), n * dim);
    return;
  }
  matmul(xb_.data(), n, L.mlp.gate.view(), gate_.data());  // (n, hidden_local)
  matmul(xb_.data(), n, L.mlp.up.view(), up_.data());      // (n, hidden_local)
  if (!L.gate_bias.empty()) {
    add_bias(gate_.data(), L.gate_bias.data(), n, hidden_local_);
    add_bias(up_.data(), L.up_bias.data(), n, hidden_local_);
  }
  silu_mul(gate_.data(), up_.data(), n * hidden_local_);
  row_parallel_.run(gate_.data(), n, L.mlp.down.view(), xb_.data());  // (n, dim), summed over the hidden slices
  if (!L.down_bias.empty()) add_bias(xb_.data(), L.down_bias.data(), n, dim);
  add_inplace(x_.data(), xb_.data(), n * dim);
}

}  // namespace meshlm

