#include "model/mla.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/mla_attention.h"
#include "kernels/ops.h"
#include "model/parallel_layout.h"

namespace meshlm {
namespace {
constexpr float kLatentEps = 1e-6f;  // q_a_layernorm and kv_a_layernorm, whatever rms_norm_eps says
constexpr int64_t kMinRun = 4;       // shorter runs of one sequence go token by token (all heads in one call)
}  // namespace

MlaMode parse_mla_mode(const std::string& text) {
  if (text == "absorb") return MlaMode::kAbsorb;
  if (text == "expand") return MlaMode::kExpand;
  if (text == "auto") return MlaMode::kAuto;
  fail("--mla-attention must be absorb, expand or auto, got '", text, "'");
}

MlaAttention::MlaAttention(const ModelConfig& c, int64_t heads, int64_t max_tokens)
    : a_(c.mla), heads_(heads), scale_(float(c.attention_scale())) {
  const int64_t T = max_tokens, r = a_.kv_lora;
  qa_.resize(size_t(T * a_.q_lora));
  q_.resize(size_t(T * heads * a_.qk()));
  kva_.resize(size_t(T * a_.latent()));
  qabs_.resize(size_t(T * heads * a_.latent()));
  lat_.resize(size_t(T * heads * r));
}

void MlaAttention::forward(const LayerWeights& L, KVCache& cache, int64_t layer, const StepBatch& batch,
                           const float* xb, const float* cos, const float* sin, float* out) {
  const int64_t n = batch.size(), r = a_.kv_lora, dn = a_.nope, qk = a_.qk(), width = a_.latent(), half = a_.rope / 2;
  const int64_t B = KVCache::kBlockTokens;
  if (scratch_.size() < size_t(kernel_pool().size())) scratch_.resize(size_t(kernel_pool().size()));
  if (!L.mla.q_a.empty()) {
    matmul(xb, n, L.mla.q_a.view(), qa_.data());  // (n, q_lora)
    rmsnorm(qa_.data(), L.mla.q_a_norm.data(), qa_.data(), n, a_.q_lora, kLatentEps);
    matmul(qa_.data(), n, L.q_proj.view(), q_.data());  // (n, heads · qk)
  } else {
    matmul(xb, n, L.q_proj.view(), q_.data());
  }
  matmul(xb, n, L.mla.kv_a.view(), kva_.data());  // (n, r + dr)
  for (int64_t i = 0; i < n; ++i) {
    float* row = &kva_[size_t(i * width)];
    rmsnorm(row, L.mla.kv_a_norm.data(), row, 1, r, kLatentEps);
    rope_interleaved(row + r, 1, 0, half, cos + i * half, sin + i * half);
    rope_interleaved(&q_[size_t(i * heads_ * qk + dn)], heads_, qk, half, cos + i * half, sin + i * half);
    const int pos = batch.positions[size_t(i)];
    const int block = batch.table(batch.seqs[size_t(i)])[pos / B];
    std::memcpy(cache.k(layer, block) + (pos % B) * width, row, size_t(width) * sizeof(float));
  }
  plan_runs(batch);
  if (!absorbed_.empty()) {
    absorb(L);
    attend(cache, layer, batch);
    unembed(L, out);
  }
  if (absorbed_.size() < size_t(n)) expand(L, cache, layer, batch, out);
}

void MlaAttention::plan_runs(const StepBatch& batch) {
  const int64_t n = batch.size();
  runs_.clear();
  absorbed_.clear();
  for (int64_t i = 0, j; i < n; i = j) {
    j = batch.run_end(i);
    const bool expanded = mode_ == MlaMode::kExpand || (mode_ == MlaMode::kAuto && j - i >= kMinRun);
    runs_.push_back({i, j, expanded});
    if (!expanded)
      for (int64_t k = i; k < j; ++k) absorbed_.push_back(k);
  }
}

// For every absorbed token i and local head h (heads dealt over the kernel threads): the `out` values at dst(i, h) =
// w[h] (out, in) · the `in` values at src(i, h).
template <class Src, class Dst>
void MlaAttention::per_head(const std::vector<Matrix>& w, int64_t in, int64_t out, Src src, Dst dst) {
  const int64_t n = int64_t(absorbed_.size());
  ThreadPool& pool = kernel_pool();
  const int parts = std::min<int>(int(heads_), pool.members(double(n * heads_ * in * out)));
  pool.run(parts, [&](int member) {
    Scratch& s = scratch_[size_t(member)];
    s.in.resize(size_t(n * in));
    s.out.resize(size_t(n * out));
    const Range heads = even_split(heads_, parts, member);
    for (int64_t h = heads.begin; h < heads.end; ++h) {
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(&s.in[size_t(j * in)], src(absorbed_[size_t(j)], h), size_t(in) * sizeof(float));
      matmul_serial(s.in.data(), n, w[size_t(h)].view(), s.out.data());  // (n, out)
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(dst(absorbed_[size_t(j)], h), &s.out[size_t(j * out)], size_t(out) * sizeof(float));
    }
  });
}

// qabs[i, h] = [W_kᵀ·q_nope (r), q_pe (dr)] for every absorbed token i and local head h.
void MlaAttention::absorb(const LayerWeights& L) {
  const int64_t r = a_.kv_lora, dn = a_.nope, dr = a_.rope, qk = a_.qk(), width = a_.latent();
  per_head(L.mla.embed_q, dn, r, [&](int64_t i, int64_t h) { return &q_[size_t((i * heads_ + h) * qk)]; },
           [&](int64_t i, int64_t h) { return &qabs_[size_t((i * heads_ + h) * width)]; });
  for (int64_t i : absorbed_)
    for (int64_t h = 0; h < heads_; ++h)
      std::memcpy(&qabs_[size_t((i * heads_ + h) * width + r)], &q_[size_t((i * heads_ + h) * qk + dn)],
                  size_t(dr) * sizeof(float));
}

// lat[i, h] = Σ_t p·c_t over the positions token i sees, each thread taking a share of the heads of every sequence.
void MlaAttention::attend(const KVCache& cache, int64_t layer, const StepBatch& batch) {
  const int64_t r = a_.kv_lora, dr = a_.rope, width = a_.latent();
  double work = 0;
  for (int64_t i : absorbed_) work += double(batch.positions[size_t(i)] + 1) * double(heads_ * (2 * r + dr));
  ThreadPool& pool = kernel_pool();
  const int parts = std::min<int>(int(heads_), pool.members(work));
  pool.run(parts, [&](int member) {
    Scratch& s = scratch_[size_t(member)];
    const Range heads = even_split(heads_, parts, member);
    for (const auto& [i0, i1, expanded] : runs_) {
      if (expanded) continue;
      const int pos0 = batch.positions[size_t(i0)];
      const LatentRows rows{cache.k_layer(layer), batch.table(batch.seqs[size_t(i0)]), KVCache::kBlockTokens, r, dr};
      mla_gather(rows, pos0 + (i1 - i0), s.keys);
      if (i1 - i0 >= kMinRun) {  // one head over the run's tokens at a time
        for (int64_t h = heads.begin; h < heads.end; ++h)
          mla_attend(&qabs_[size_t((i0 * heads_ + h) * width)], i1 - i0, heads_ * width, pos0, 1, s.keys.data(), r,
                     dr, scale_, s.scores, &lat_[size_t((i0 * heads_ + h) * r)], heads_ * r);
      } else {  // all the share's heads of one token at a time
        for (int64_t i = i0; i < i1; ++i)
          mla_attend(&qabs_[size_t((i * heads_ + heads.begin) * width)], heads.size(), width,
                     batch.positions[size_t(i)], 0, s.keys.data(), r, dr, scale_, s.scores,
                     &lat_[size_t((i * heads_ + heads.begin) * r)], r);
      }
    }
  });
}

// out[i, h·dv ..] = W_v · lat[i, h].
void MlaAttention::unembed(const LayerWeights& L, float* out) {
  const int64_t r = a_.kv_lora, dv = a_.v;
  per_head(L.mla.unembed_out, r, dv, [&](int64_t i, int64_t h) { return &lat_[size_t((i * heads_ + h) * r)]; },
           [&](int64_t i, int64_t h) { return out + (i * heads_ + h) * dv; });
}

// Expanded runs: each head's keys and values for every position the run sees, k = c·W_kᵀ and v = c·W_vᵀ, then
// attention as transformers computes it, straight into out.
void MlaAttention::expand(const LayerWeights& L, const KVCache& cache, int64_t layer, const StepBatch& batch,
                          float* out) {
  const int64_t r = a_.kv_lora, dn = a_.nope, dr = a_.rope, dv = a_.v, qk = a_.qk(), width = a_.latent();
  double work = 0;
  for (const Run& run : runs_)
    if (run.expanded) {
      const double keys = double(batch.positions[size_t(run.begin)]) + double(run.end - run.begin);
      work += keys * double(heads_ * r * (dn + dv)) + keys * double(run.end - run.begin) * double(heads_ * (qk + dv));
    }
  ThreadPool& pool = kernel_pool();
  const int parts = std::min<int>(int(heads_), pool.members(work));
  pool.run(parts, [&](int member) {
    Scratch& s = scratch_[size_t(member)];
    const Range heads = even_split(heads_, parts, member);
    s.wk.resize(size_t(r * dn));
    s.wv.resize(size_t(dv * r));
    for (const auto& [i0, i1, expanded] : runs_) {
      if (!expanded) continue;
      const int64_t pos0 = batch.positions[size_t(i0)], keys = pos0 + (i1 - i0);
      const LatentRows rows{cache.k_layer(layer), batch.table(batch.seqs[size_t(i0)]), KVCache::kBlockTokens, r, dr};
      mla_gather(rows, keys, s.keys);
      s.k.resize(size_t(keys * dn));
      s.v.resize(size_t(keys * dv));
      for (int64_t h = heads.begin; h < heads.end; ++h) {
        const WeightView wk = L.mla.embed_q[size_t(h)].view(), wv = L.mla.unembed_out[size_t(h)].view();
        for (int64_t j = 0; j < r; ++j) weight_row(wk, j, &s.wk[size_t(j * dn)]);
        for (int64_t j = 0; j < dv; ++j) weight_row(wv, j, &s.wv[size_t(j * r)]);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(keys), int(dn), int(r), 1.0f, s.keys.data(),
                    int(width), s.wk.data(), int(dn), 0.0f, s.k.data(), int(dn));  // (keys, dn)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(keys), int(dv), int(r), 1.0f, s.keys.data(),
                    int(width), s.wv.data(), int(r), 0.0f, s.v.data(), int(dv));   // (keys, dv)
        mla_attend_expanded(&q_[size_t((i0 * heads_ + h) * qk)], i1 - i0, heads_ * qk, pos0, s.keys.data(),
                            s.k.data(), s.v.data(), r, dr, dn, dv, scale_, s.scores, out + (i0 * heads_ + h) * dv,
                            heads_ * dv);
      }
    }
  });
}

}  // namespace meshlm
