#include "model/parallel_layout.h"

#include <algorithm>
#include <cmath>
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

std::vector<int64_t> layer_counts_balanced(int64_t n_layers, int64_t P, double head_layers) {
  std::vector<int64_t> counts = layer_counts(n_layers, P, {});
  if (P == 1) return counts;
  // The first P-1 stages share what the last leaves them evenly; try every size of the last stage.
  double best = 1e300, even = double(n_layers) / double(P), best_off = 1e300;
  for (int64_t last = 1; last <= n_layers - (P - 1); ++last) {
    const int64_t rest = n_layers - last, widest = (rest + P - 2) / (P - 1);
    const double busiest = std::max(double(last) + head_layers, double(widest)), off = std::fabs(double(last) - even);
    if (busiest < best - 1e-9 || (busiest < best + 1e-9 && off < best_off)) {
      best = busiest, best_off = off;
      for (int64_t s = 0; s + 1 < P; ++s) counts[size_t(s)] = even_split(rest, P - 1, s).size();
      counts[size_t(P - 1)] = last;
    }
  }
  return counts;
}

double head_in_layers(const ModelConfig& c) {
  const double layer = double(c.dim) * (2.0 * c.q_dim() + 2.0 * c.kv_dim()) + 3.0 * double(c.dim) * c.hidden_dim;
  return double(c.vocab_size) * c.dim / layer;
}

std::vector<int64_t> layer_counts_weighted(int64_t n_layers, const std::vector<double>& weights) {
  const int64_t P = int64_t(weights.size());
  MESH_CHECK(P >= 1 && P <= n_layers, "pipeline size ", P, " must be between 1 and the ", n_layers, " layers");
  double total = 0;
  for (double w : weights) total += std::max(w, 0.0);
  if (total <= 0) return layer_counts(n_layers, P, {});
  // One layer each, then the rest shared by weight: floors first, then the largest remainders.
  const int64_t spare = n_layers - P;
  std::vector<int64_t> counts(size_t(P), 1);
  std::vector<std::pair<double, int64_t>> rem;
  int64_t given = 0;
  for (int64_t s = 0; s < P; ++s) {
    const double share = spare * std::max(weights[size_t(s)], 0.0) / total;
    counts[size_t(s)] += int64_t(std::floor(share));
    given += int64_t(std::floor(share));
    rem.push_back({share - std::floor(share), s});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (int64_t i = 0; i < spare - given; ++i) ++counts[size_t(rem[size_t(i)].second)];
  return counts;
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

namespace {
// The largest divisor of n that is <= cap (at least 1).
int largest_divisor_upto(int n, int cap) {
  for (int d = std::min(n, cap); d > 1; --d)
    if (n % d == 0) return d;
  return 1;
}
}  // namespace

AutoLayout choose_layout(int world_size, int ranks_per_host, int n_heads, int n_layers) {
  AutoLayout a;
  if (ranks_per_host > 1 && world_size % ranks_per_host == 0) a.tp = largest_divisor_upto(ranks_per_host, n_heads);
  a.pp = largest_divisor_upto(world_size / a.tp, n_layers);
  return a;
}

void check_degrees(int world_size, int tp, int pp, const ModelConfig& c) {
  MESH_CHECK(tp >= 1 && pp >= 1, "--tp and --pp must be at least 1");
  MESH_CHECK(tp <= c.n_heads, "--tp ", tp, " is more than the model's ", c.n_heads,
             " attention heads: every tensor-parallel rank needs at least one head");
  MESH_CHECK(pp <= c.n_layers, "--pp ", pp, " is more than the model's ", c.n_layers,
             " layers: every stage needs at least one layer");
  MESH_CHECK(tp <= c.hidden_dim && tp <= c.vocab_size, "--tp ", tp, " is too large for this model");
  MESH_CHECK(world_size % (tp * pp) == 0, world_size, " ranks cannot form --tp ", tp, " x --pp ", pp,
             " groups: the rank count must be a multiple of tp*pp = ", tp * pp, " (dp = ranks / (tp*pp))");
}

ParallelLayout ParallelLayout::single(const ModelConfig& c) { return make(c, 1, 0, 1, 1, {c.n_layers}); }

ParallelLayout ParallelLayout::make(const ModelConfig& c, int world_size, int world_rank, int tp, int pp,
                                    const std::vector<int64_t>& counts) {
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
