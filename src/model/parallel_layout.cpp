#include "model/parallel_layout.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/check.h"

namespace meshlm {

Range even_split(int64_t n, int64_t parts, int64_t index) {
  MESH_CHECK(parts > 0 && 0 <= index && index < parts, "even_split: bad part ", index, " of ", parts);
  const int64_t base = n / parts, extra = n % parts;
  const int64_t begin = index * base + (index < extra ? index : extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

HeadSplit split_heads(int64_t n_heads, int64_t n_kv_heads, int64_t T, int64_t t) {
  MESH_CHECK(T >= 1 && T <= n_heads, "tensor parallel size ", T, " must be between 1 and the ", n_heads,
             " attention heads");
  MESH_CHECK(n_kv_heads >= 1 && n_heads % n_kv_heads == 0, "bad head counts ", n_heads, "/", n_kv_heads);
  const int64_t group = n_heads / n_kv_heads;
  HeadSplit s;
  if (T <= n_kv_heads) {  // whole GQA groups per rank
    s.kv_heads = even_split(n_kv_heads, T, t);
    s.q_heads = {s.kv_heads.begin * group, s.kv_heads.end * group};
    return s;
  }
  // More ranks than kv heads: kv head k is replicated on the ranks even_split(T, n_kv_heads, k).
  for (int64_t k = 0; k < n_kv_heads; ++k) {
    const Range ranks = even_split(T, n_kv_heads, k);
    if (!ranks.contains(t)) continue;
    const Range q = even_split(group, ranks.size(), t - ranks.begin);  // ranks.size() <= group since T <= n_heads
    s.kv_heads = {k, k + 1};
    s.q_heads = {k * group + q.begin, k * group + q.end};
  }
  return s;
}

std::vector<int64_t> layer_counts(int64_t n_layers, int64_t P, const std::vector<int64_t>& by_hand) {
  MESH_CHECK(P >= 1 && P <= n_layers, "pipeline size ", P, " must be between 1 and the ", n_layers, " layers");
  if (by_hand.empty()) {
    std::vector<int64_t> counts;
    for (int64_t s = 0; s < P; ++s) counts.push_back(even_split(n_layers, P, s).size());
    return counts;
  }
  MESH_CHECK(int64_t(by_hand.size()) == P, "--layer-split has ", by_hand.size(), " stages but --pp is ", P);
  for (int64_t c : by_hand) MESH_CHECK(c >= 1, "--layer-split: every stage needs at least one layer");
  const int64_t sum = std::accumulate(by_hand.begin(), by_hand.end(), int64_t(0));
  MESH_CHECK(sum == n_layers, "--layer-split adds up to ", sum, " layers but the model has ", n_layers);
  return by_hand;
}

std::vector<int64_t> layer_counts_fit(const std::vector<double>& cost, const std::vector<double>& capacity,
                                      const std::vector<double>& extra, const std::vector<double>& limit) {
  const int64_t L = int64_t(cost.size()), P = int64_t(capacity.size());
  MESH_CHECK(P >= 1 && P <= L, "pipeline size ", P, " must be between 1 and the ", L, " layers");
  std::vector<double> prefix(size_t(L + 1), 0.0), cap(capacity);
  for (int64_t i = 0; i < L; ++i) prefix[size_t(i + 1)] = prefix[size_t(i)] + cost[size_t(i)];
  double cap_sum = 0;
  for (double& c : cap) cap_sum += (c = std::max(c, 1e-300));
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // Load of stage s holding layers [i, j); infinite past the stage's limit.
  auto load = [&](int64_t s, int64_t i, int64_t j) {
    const double held = prefix[size_t(j)] - prefix[size_t(i)] + (extra.empty() ? 0.0 : extra[size_t(s)]);
    if (!limit.empty() && held > limit[size_t(s)]) return kInf;
    return held / cap[size_t(s)];
  };
  // Pass 1: the smallest possible busiest load. best[s][j]: stages 0..s covering layers [0, j).
  std::vector<std::vector<double>> best(size_t(P), std::vector<double>(size_t(L + 1), kInf));
  for (int64_t j = 1; j <= L; ++j) best[0][size_t(j)] = load(0, 0, j);
  for (int64_t s = 1; s < P; ++s)
    for (int64_t j = s + 1; j <= L; ++j)
      for (int64_t i = s; i < j; ++i)
        best[size_t(s)][size_t(j)] = std::min(best[size_t(s)][size_t(j)],
                                              std::max(best[size_t(s - 1)][size_t(i)], load(s, i, j)));
  if (best[size_t(P - 1)][size_t(L)] == kInf) return {};  // no split within the limits
  const double busiest = best[size_t(P - 1)][size_t(L)] * (1 + 1e-9) + 1e-12;
  // Pass 2: among splits within that limit, counts nearest the capacity-proportional ones.
  std::vector<std::vector<double>> off(size_t(P), std::vector<double>(size_t(L + 1), kInf));
  std::vector<std::vector<int64_t>> from(size_t(P), std::vector<int64_t>(size_t(L + 1), 0));
  auto target = [&](int64_t s) { return double(L) * cap[size_t(s)] / cap_sum; };
  for (int64_t j = 1; j <= L; ++j)
    if (load(0, 0, j) <= busiest) off[0][size_t(j)] = std::fabs(double(j) - target(0));
  for (int64_t s = 1; s < P; ++s)
    for (int64_t j = s + 1; j <= L; ++j)
      for (int64_t i = s; i < j; ++i) {
        if (off[size_t(s - 1)][size_t(i)] == kInf || load(s, i, j) > busiest) continue;
        const double o = off[size_t(s - 1)][size_t(i)] + std::fabs(double(j - i) - target(s));
        if (o < off[size_t(s)][size_t(j)] - 1e-12) off[size_t(s)][size_t(j)] = o, from[size_t(s)][size_t(j)] = i;
      }
  std::vector<int64_t> counts(static_cast<size_t>(P));
  for (int64_t s = P - 1, j = L; s >= 0; --s) {
    const int64_t i = s == 0 ? 0 : from[size_t(s)][size_t(j)];
    counts[size_t(s)] = j - i;
    j = i;
  }
  return counts;
}

double attention_params(const ModelConfig& c) {
  if (!c.mla.on()) return double(c.dim) * (2.0 * c.q_dim() + 2.0 * c.kv_dim());
  const MlaConfig& a = c.mla;
  const double H = c.n_heads;
  const double q = a.q_lora > 0 ? double(c.dim) * a.q_lora + double(a.q_lora) * H * a.qk() : double(c.dim) * H * a.qk();
  return q + double(c.dim) * a.latent() + double(a.kv_lora) * H * (a.nope + a.v) + H * a.v * c.dim;
}

double attention_macs_per_position(const ModelConfig& c) {
  if (!c.mla.on()) return 2.0 * c.q_dim();
  return double(c.n_heads) * (2.0 * c.mla.kv_lora + c.mla.rope);  // absorbed: q·[c, k_pe] and p·c per head
}

namespace {
// Router, shared expert(s) and the shared expert's gate (Qwen2-MoE) of a MoE layer.
double moe_fixed_params(const ModelConfig& c) {
  const MoeConfig& m = c.moe;
  return double(m.n_experts) * c.dim + 3.0 * c.dim * m.shared_expert_dim +
         (m.shared_expert_dim > 0 && m.shared_gated() ? double(c.dim) : 0.0);
}
}  // namespace

std::vector<double> layer_params(const ModelConfig& c) {
  const double attn = attention_params(c);
  const MoeConfig& m = c.moe;
  const double moe = double(m.n_experts) * 3.0 * c.dim * m.expert_dim + moe_fixed_params(c);
  std::vector<double> out;
  for (int64_t l = 0; l < c.n_layers; ++l) out.push_back(attn + (c.moe_layer(l) ? moe : 3.0 * c.dim * c.hidden_dim));
  return out;
}

double head_params(const ModelConfig& c) { return double(c.vocab_size) * c.dim; }

double active_params(const ModelConfig& c) {
  const double attn = attention_params(c);
  const MoeConfig& m = c.moe;
  const double moe = double(m.top_k) * 3.0 * c.dim * m.expert_dim + moe_fixed_params(c);
  double total = head_params(c) * (c.tie_embeddings ? 1.0 : 2.0);  // head and embedding, as model cards count them
  for (int64_t l = 0; l < c.n_layers; ++l) total += attn + (c.moe_layer(l) ? moe : 3.0 * c.dim * c.hidden_dim);
  return total;
}

std::vector<int64_t> parse_layer_split(const std::string& text) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    MESH_CHECK(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos && item.size() < 10,
               "--layer-split '", text, "': expected layer counts like 10,12,10 or 'auto'");
    out.push_back(std::stoll(item));
    pos = comma + 1;
  }
  return out;
}

Placement place(int world_rank, int tp_size, int pp_size) {
  return {world_rank / (tp_size * pp_size), (world_rank / tp_size) % pp_size, world_rank % tp_size};
}

int world_rank_of(const Placement& p, int tp_size, int pp_size) {
  return (p.dp * pp_size + p.pp) * tp_size + p.tp;
}

MoeSplit parse_moe_split(const std::string& text) {
  if (text == "experts") return MoeSplit::kExperts;
  if (text == "tensor") return MoeSplit::kTensor;
  fail("--moe-split must be experts or tensor, got '", text, "'");
}

const char* moe_split_name(MoeSplit s) { return s == MoeSplit::kExperts ? "experts" : "tensor"; }

void check_degrees(int world_size, int tp, int pp, const ModelConfig& c, MoeSplit split) {
  MESH_CHECK(tp >= 1 && pp >= 1, "--tp and --pp must be at least 1");
  MESH_CHECK(tp <= c.n_heads, "--tp ", tp, " is more than the model's ", c.n_heads,
             " attention heads: every tensor-parallel rank needs at least one head");
  MESH_CHECK(pp <= c.n_layers, "--pp ", pp, " is more than the model's ", c.n_layers,
             " layers: every stage needs at least one layer");
  MESH_CHECK(tp <= c.hidden_dim && tp <= c.vocab_size, "--tp ", tp, " is too large for this model");
  if (c.is_moe() && split == MoeSplit::kExperts)
    MESH_CHECK(tp <= c.moe.n_experts, "--tp ", tp, " is more than the model's ", c.moe.n_experts,
               " experts: with --moe-split experts every tensor rank needs at least one (or use --moe-split tensor)");
  if (c.is_moe() && split == MoeSplit::kTensor)
    MESH_CHECK(tp <= c.moe.expert_dim, "--tp ", tp, " is more than the experts' intermediate size ",
               c.moe.expert_dim);
  MESH_CHECK(world_size % (tp * pp) == 0, world_size, " ranks cannot form --tp ", tp, " x --pp ", pp,
             " groups: the rank count must be a multiple of tp*pp = ", tp * pp, " (dp = ranks / (tp*pp))");
}

ParallelLayout ParallelLayout::single(const ModelConfig& c) { return make(c, 1, 0, 1, 1, {c.n_layers}); }

ParallelLayout ParallelLayout::make(const ModelConfig& c, int world_size, int world_rank, int tp, int pp,
                                    const std::vector<int64_t>& counts, MoeSplit split) {
  MESH_CHECK(int64_t(counts.size()) == pp, "layer counts for ", counts.size(), " stages, expected ", pp);
  ParallelLayout l;
  const Placement at = place(world_rank, tp, pp);
  l.world_rank = world_rank;
  l.tp_rank = at.tp, l.tp_size = tp;
  l.pp_rank = at.pp, l.pp_size = pp;
  l.dp_rank = at.dp, l.dp_size = world_size / (tp * pp);
  const HeadSplit heads = split_heads(c.n_heads, c.n_kv_heads, tp, at.tp);
  l.q_heads = heads.q_heads;
  l.kv_heads = heads.kv_heads;
  l.hidden = even_split(c.hidden_dim, tp, at.tp);
  l.moe_split = split;
  if (c.is_moe()) {
    const bool by_expert = split == MoeSplit::kExperts;
    l.experts = by_expert ? even_split(c.moe.n_experts, tp, at.tp) : Range{0, c.moe.n_experts};
    l.expert_hidden = by_expert ? Range{0, c.moe.expert_dim} : even_split(c.moe.expert_dim, tp, at.tp);
    l.shared_hidden = even_split(c.moe.shared_expert_dim, tp, at.tp);
  }
  l.vocab = even_split(c.vocab_size, tp, at.tp);
  int64_t begin = 0;
  for (int64_t n : counts) {
    l.stage_layers.push_back({begin, begin + n});
    begin += n;
  }
  l.layers = l.stage_layers[size_t(at.pp)];
  return l;
}

}  // namespace meshlm
