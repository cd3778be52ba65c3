#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "kernels/ops.h"
#include "kernels/vexp.h"

namespace meshlm {

double exact_dot(const float* x, const float* w, int64_t n) {
  // Four sums in a fixed order keep the adds independent (the products are exact in double, so contraction into
  // FMA cannot change them).
  double s[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += double(x[i + j]) * double(w[i + j]);
  for (; i < n; ++i) s[0] += double(x[i]) * double(w[i]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

namespace {
// ids[0..k) = the indices of the k largest of score[0..n), largest first, by repeated maximum (k is small: 2-8).
// Strictly greater keeps the lower index on a tie.
void pick_top(const double* score, int n, int k, int32_t* ids) {
  for (int j = 0; j < k; ++j) {
    int best = -1;
    for (int e = 0; e < n; ++e) {
      if (std::find(ids, ids + j, e) != ids + j) continue;
      if (best < 0 || score[e] > score[best]) best = e;
    }
    ids[j] = best;
  }
}
}  // namespace

void top_k_softmax(const double* logits, int n_experts, int k, bool renormalize, int32_t* ids, float* weights) {
  MESH_CHECK(k >= 1 && k <= 64 && k <= n_experts, "top-k of ", k, " over ", n_experts, " experts");
  double top = logits[0];
  for (int e = 1; e < n_experts; ++e) top = std::max(top, logits[e]);
  double total = 0;
  for (int e = 0; e < n_experts; ++e) total += std::exp(logits[e] - top);
  pick_top(logits, n_experts, k, ids);
  double chosen[64], kept = 0;
  for (int j = 0; j < k; ++j) kept += chosen[j] = std::exp(logits[ids[j]] - top) / total;
  for (int j = 0; j < k; ++j) weights[j] = float(renormalize ? chosen[j] / kept : chosen[j]);
}

void top_k_grouped_sigmoid(const double* logits, const float* bias, const MoeConfig& m, int32_t* ids, float* weights) {
  const int E = m.n_experts, k = m.top_k, G = m.n_group, per = E / G;
  MESH_CHECK(k >= 1 && k <= 64 && E % G == 0 && m.topk_group <= G, "grouped top-", k, " over ", E, " experts in ", G,
             " groups");
  std::vector<double> s(static_cast<size_t>(E)), b(static_cast<size_t>(E));
  for (int e = 0; e < E; ++e) {
    s[size_t(e)] = 1.0 / (1.0 + std::exp(-logits[e]));
    b[size_t(e)] = s[size_t(e)] + double(bias[e]);
  }
  if (G > 1) {  // keep the topk_group groups whose two best b sum highest (ties: lower group first)
    std::vector<double> score(static_cast<size_t>(G));
    for (int g = 0; g < G; ++g) {
      double first = -INFINITY, second = -INFINITY;
      for (int e = g * per; e < (g + 1) * per; ++e) {
        const double v = b[size_t(e)];
        if (v > first) second = first, first = v;
        else if (v > second) second = v;
      }
      score[size_t(g)] = first + second;
    }
    std::vector<int32_t> kept(static_cast<size_t>(m.topk_group));
    pick_top(score.data(), G, m.topk_group, kept.data());
    for (int e = 0; e < E; ++e)  // as transformers: the dropped groups' experts get 0.0, not -inf
      if (std::find(kept.begin(), kept.end(), e / per) == kept.end()) b[size_t(e)] = 0.0;
  }
  pick_top(b.data(), E, k, ids);
  double total = 0;
  for (int j = 0; j < k; ++j) total += s[size_t(ids[j])];
  const double norm = m.norm_topk ? total + 1e-20 : 1.0;
  for (int j = 0; j < k; ++j) weights[j] = float(s[size_t(ids[j])] / norm * m.routed_scale);
}

void route(const float* x, int64_t n, int64_t dim, const float* router, const float* bias, const MoeConfig& m,
           int32_t* ids, float* weights) {
  std::vector<double> logits(size_t(m.n_experts));
  for (int64_t i = 0; i < n; ++i) {
    for (int e = 0; e < m.n_experts; ++e) logits[size_t(e)] = exact_dot(x + i * dim, router + e * dim, dim);
    if (m.grouped) top_k_grouped_sigmoid(logits.data(), bias, m, ids + i * m.top_k, weights + i * m.top_k);
    else top_k_softmax(logits.data(), m.n_experts, m.top_k, m.norm_topk, ids + i * m.top_k, weights + i * m.top_k);
  }
}

void ExpertGroups::build(const int32_t* ids, const float* w, int64_t n, int k, Range local) {
  const int64_t E = local.size();
  offset.assign(size_t(E + 1), 0);
  for (int64_t p = 0; p < n * k; ++p)
    if (local.contains(ids[p])) ++offset[size_t(ids[p] - local.begin + 1)];
  for (int64_t e = 0; e < E; ++e) offset[size_t(e + 1)] += offset[size_t(e)];
  token.resize(size_t(offset[size_t(E)]));
  weight.resize(token.size());
  std::vector<int64_t> next(offset.begin(), offset.end() - 1);
  for (int64_t p = 0; p < n * k; ++p) {
    if (!local.contains(ids[p])) continue;
    const int64_t at = next[size_t(ids[p] - local.begin)]++;
    token[size_t(at)] = int32_t(p / k);
    weight[size_t(at)] = w[p];
  }
}

MoeMlp::MoeMlp(const ModelConfig& c, const ParallelLayout& l, int64_t max_tokens)
    : moe_(c.moe), dim_(c.dim), experts_(l.experts), hidden_(l.expert_hidden.size()),
      shared_hidden_(l.shared_hidden.size()) {
  const int64_t T = max_tokens, k = c.moe.top_k;
  ids_.resize(size_t(T * k));
  weights_.resize(size_t(T * k));
  xe_.resize(size_t(T * dim_));
  gate_.resize(size_t(T * k * hidden_));
  up_.resize(gate_.size());
  sgate_.resize(size_t(T * shared_hidden_));
  sup_.resize(sgate_.size());
  shared_w_.resize(size_t(T));
  down_.resize(size_t(T * dim_));
  expert_rows_.assign(size_t(c.moe.n_experts), 0);
}

void MoeMlp::forward(const MoeWeights& w, const float* xb, int64_t n, RowParallel& sum, float* out) {
  const int k = moe_.top_k;
  route(xb, n, dim_, w.router.data(), w.score_bias.data(), moe_, ids_.data(), weights_.data());
  groups_.build(ids_.data(), weights_.data(), n, k, experts_);

  // SwiGLU inputs of every (token, expert) pair of this rank's experts: one matmul per active expert.
  for (int64_t e = 0; e < experts_.size(); ++e) {
    const int64_t m = groups_.rows(e), first = groups_.offset[size_t(e)];
    if (m == 0) continue;
    const MlpWeights& x = w.experts[size_t(e)];
    for (int64_t j = 0; j < m; ++j)
      std::memcpy(&xe_[size_t(j * dim_)], xb + int64_t(groups_.token[size_t(first + j)]) * dim_,
                  size_t(dim_) * sizeof(float));
    float* g = &gate_[size_t(first * hidden_)];  // (m, hidden)
    float* u = &up_[size_t(first * hidden_)];
    matmul(xe_.data(), m, x.gate.view(), g);
    matmul(xe_.data(), m, x.up.view(), u);
    silu_mul(g, u, m * hidden_);
    expert_rows_[size_t(experts_.begin + e)] += m;
    bytes_read_ += x.gate.held_bytes() + x.up.held_bytes() + x.down.held_bytes();
  }
  const bool shared = !w.shared.gate.empty();
  if (shared) {
    matmul(xb, n, w.shared.gate.view(), sgate_.data());  // (n, shared_hidden)
    matmul(xb, n, w.shared.up.view(), sup_.data());
    silu_mul(sgate_.data(), sup_.data(), n * shared_hidden_);
    for (int64_t i = 0; i < n; ++i)
      shared_w_[size_t(i)] = w.shared_gate.empty()
                                 ? 1.0f
                                 : float(1.0 / (1.0 + std::exp(-exact_dot(xb + i * dim_, w.shared_gate.data(), dim_))));
  }

  // Down projections by output columns, each part summed over the tensor group while the next is computed.
  sum.run_parts(n, dim_, [&](Range cols, float* part) {  // part (n, cols.size())
    const int64_t width = cols.size();
    std::fill(part, part + n * width, 0.0f);
    for (int64_t e = 0; e < experts_.size(); ++e) {
      const int64_t m = groups_.rows(e), first = groups_.offset[size_t(e)];
      if (m == 0) continue;
      matmul(&gate_[size_t(first * hidden_)], m, w.experts[size_t(e)].down.view().row_slice(cols.begin, cols.end),
             down_.data());  // (m, width)
      for (int64_t j = 0; j < m; ++j) {
        float* dst = part + int64_t(groups_.token[size_t(first + j)]) * width;
        const float* src = &down_[size_t(j * width)];
        const float p = groups_.weight[size_t(first + j)];
        for (int64_t c = 0; c < width; ++c) dst[c] += p * src[c];
      }
    }
    if (shared) {
      matmul(sgate_.data(), n, w.shared.down.view().row_slice(cols.begin, cols.end), down_.data());  // (n, width)
      for (int64_t i = 0; i < n; ++i) {
        float* dst = part + i * width;
        const float* src = &down_[size_t(i * width)];
        for (int64_t c = 0; c < width; ++c) dst[c] += shared_w_[size_t(i)] * src[c];
      }
    }
  }, out);
}

}  // namespace meshlm
