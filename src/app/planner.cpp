#include "app/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

#include "core/check.h"

namespace meshlm {

void ClusterSpec::add_host(const HostSpec& h) {
  hosts.push_back(h);
  rank_host.insert(rank_host.end(), size_t(h.ranks), int(hosts.size()) - 1);
}

ModelSpec model_spec(const ModelConfig& c, double replica_weight_bytes) {
  ModelSpec m;
  m.config = c;
  const std::vector<double> params = layer_params(c);
  const double vocab_params = head_params(c);
  const double total = std::accumulate(params.begin(), params.end(), 0.0) + vocab_params * (c.tie_embeddings ? 1 : 2);
  const double per_param = total > 0 && replica_weight_bytes > 0 ? replica_weight_bytes / total : 4.0;
  const double attn = attention_params(c);
  const MoeConfig& e = c.moe;
  const double experts = double(e.n_experts) * 3.0 * c.dim * e.expert_dim;
  const double moe_active = double(e.top_k) * 3.0 * c.dim * e.expert_dim + double(e.n_experts) * c.dim +
                            3.0 * c.dim * e.shared_expert_dim;  // (the router and shared expert: every token)
  for (int64_t l = 0; l < c.n_layers; ++l) {
    m.layer_bytes.push_back(params[size_t(l)] * per_param);
    m.expert_bytes.push_back(c.moe_layer(l) ? experts * per_param : 0.0);
    m.layer_flops.push_back(2.0 * (attn + (c.moe_layer(l) ? moe_active : 3.0 * c.dim * c.hidden_dim)));
  }
  m.embed_bytes = m.head_bytes = vocab_params * per_param;
  m.head_flops = 2.0 * vocab_params;
  m.kv_bytes_per_position = double(c.cache_planes()) * double(c.cache_row(c.n_kv_heads)) * sizeof(float);
  return m;
}

namespace {

// One candidate's geometry and the per-rank numbers the time model reads.
class Evaluator {
 public:
  Evaluator(const ClusterSpec& cl, const ModelSpec& m, const Workload& w, int tp, int pp)
      : cl_(cl), m_(m), w_(w), T_(tp), P_(pp), dp_(cl.world_size() / (tp * pp)) {
    const ModelConfig& c = m.config;
    for (int t = 0; t < T_; ++t) kv_heads_.push_back(split_heads(c.n_heads, c.n_kv_heads, T_, t).kv_heads.size());
    slots_ = int(std::max<int64_t>(1, std::min<int64_t>(w.max_batch, (w.requests + dp_ - 1) / dp_)));
  }
  int dp() const { return dp_; }
  int slots() const { return slots_; }
  int rank(int d, int s, int t) const { return world_rank_of({d, s, t}, T_, P_); }
  const HostSpec& host(int r) const { return cl_.hosts[size_t(cl_.host_of(r))]; }
  double bw(int r) const { return host(r).read_bw / host(r).ranks; }
  double rate(int r) const { return host(r).flops / host(r).ranks; }
  const LinkSpec& link(int a, int b) const { return cl_.host_of(a) == cl_.host_of(b) ? cl_.intra : cl_.inter; }
  double kv_layer_bytes(int t) const {  // one position, one layer, this tp rank's kv heads (MLA: the whole latent)
    if (m_.config.mla.on()) return m_.kv_bytes_per_position;
    return m_.kv_bytes_per_position * double(kv_heads_[size_t(t)]) / m_.config.n_kv_heads;
  }
  bool holds_head(int s) const { return s == P_ - 1 && !(m_.config.tie_embeddings && P_ == 1); }

  // Layer counts: stage times balanced by the slowest rank's bandwidth, within every rank's memory.
  std::vector<int64_t> split(bool& within_memory) const {
    std::vector<double> cost, capacity(size_t(P_), 1e300), extra(size_t(P_), 0.0), limit(size_t(P_), 1e300);
    const double kv_per_layer = double(slots_) * double(w_.ctx) * kv_layer_bytes(0);
    for (double b : m_.layer_bytes) cost.push_back(b / T_ + kv_per_layer);
    extra.front() += m_.embed_bytes / T_;
    if (holds_head(P_ - 1)) extra.back() += m_.head_bytes / T_;
    for (int d = 0; d < dp_; ++d)
      for (int s = 0; s < P_; ++s)
        for (int t = 0; t < T_; ++t) {
          const int r = rank(d, s, t);
          capacity[size_t(s)] = std::min(capacity[size_t(s)], bw(r) > 0 ? bw(r) : 1.0);
          limit[size_t(s)] = std::min(limit[size_t(s)], kMemoryShare * host(r).memory / host(r).ranks);
        }
    std::vector<int64_t> counts = layer_counts_fit(cost, capacity, extra, limit);
    within_memory = !counts.empty();
    if (counts.empty()) counts = layer_counts_fit(cost, capacity, extra);
    return counts;
  }

  // Weights + KV held on each host.
  std::vector<double> host_bytes(const std::vector<int64_t>& counts) const {
    std::vector<double> out(cl_.hosts.size(), 0.0);
    for (int r = 0; r < cl_.world_size(); ++r) {
      const Placement p = place(r, T_, P_);
      const Range layers = stage_layers(counts, p.pp);
      double held = 0;
      for (int64_t l = layers.begin; l < layers.end; ++l) held += m_.layer_bytes[size_t(l)] / T_;
      if (p.pp == 0) held += m_.embed_bytes / T_;
      if (holds_head(p.pp)) held += m_.head_bytes / T_;
      held += double(slots_) * double(w_.ctx) * double(layers.size()) * kv_layer_bytes(p.tp);
      out[size_t(cl_.host_of(r))] += held;
    }
    return out;
  }

  struct StepTime {
    double seconds = 0;            // one micro-batch's round (see the header)
    double memory = 0, compute = 0, link = 0;  // of the slowest stage
  };
  // A step of replica d: M micro-batches of `rows` tokens each, `positions` attended positions summed over them,
  // `logit_rows` rows through the head.
  StepTime step(int d, const std::vector<int64_t>& counts, int M, double rows, double positions,
                double logit_rows) const {
    const ModelConfig& c = m_.config;
    StepTime out;
    double trip = 0, slowest = 0;
    for (int s = 0; s < P_; ++s) {
      const Range layers = stage_layers(counts, s);
      double worst = 0, mem = 0, comp = 0;
      for (int t = 0; t < T_; ++t) {
        const int r = rank(d, s, t);
        double bytes = 0, flops = 0;
        for (int64_t l = layers.begin; l < layers.end; ++l) {
          const double dense = m_.layer_bytes[size_t(l)] - m_.expert_bytes[size_t(l)];
          bytes += (dense + m_.expert_bytes[size_t(l)] * touched(rows)) / T_;
          flops += rows * m_.layer_flops[size_t(l)] / T_;
          bytes += positions * kv_layer_bytes(t);
          flops += 2.0 * positions * attention_macs_per_position(c) / T_;
        }
        if (s == P_ - 1) bytes += m_.head_bytes / T_, flops += logit_rows * m_.head_flops / T_;
        const double tm = bytes / std::max(bw(r), 1.0) + kLayerOverhead * double(layers.size());
        const double tc = flops / (std::max(rate(r), 1.0) * matmul_efficiency(rows));
        if (std::max(tm, tc) > worst) worst = std::max(tm, tc), mem = tm, comp = tc;
      }
      double comm = 0;
      if (T_ > 1) {
        bool one_host = true;
        for (int t = 1; t < T_; ++t) one_host &= cl_.host_of(rank(d, s, t)) == cl_.host_of(rank(d, s, 0));
        const LinkSpec& l = one_host ? cl_.intra : cl_.inter;
        comm = (2.0 * double(layers.size()) + 1.0) * allreduce(l, rows * c.dim * sizeof(float));
      }
      const int next = s + 1 < P_ ? rank(d, s + 1, 0) : rank(d, 0, 0);
      const double hop = P_ > 1 ? link(rank(d, s, 0), next).time(s + 1 < P_ ? rows * c.dim * sizeof(float)
                                                                             : rows * sizeof(int32_t))
                                : 0.0;
      trip += worst + comm + hop;
      if (worst + comm >= slowest) {
        slowest = worst + comm;
        out.memory = mem, out.compute = comp, out.link = comm + hop;
      }
    }
    out.seconds = std::max(trip, M * slowest);
    return out;
  }

  static constexpr double kMemoryShare = 0.98;  // of a rank's memory the planner fills (the exact check follows)
  // Fixed cost of a layer in a step whatever its size (kernel dispatch, norms, rope): what makes small models
  // faster as replicas than split.
  static constexpr double kLayerOverhead = 10e-6;

 private:
  Range stage_layers(const std::vector<int64_t>& counts, int s) const {
    const int64_t begin = std::accumulate(counts.begin(), counts.begin() + s, int64_t(0));
    return {begin, begin + counts[size_t(s)]};
  }
  // Share of the sgemm rate a matmul of `rows` activation rows reaches: few rows leave the kernels short of work
  // (bench/RESULTS.md: batched decode of 8-64 rows ran at about half the sgemm ceiling; 512-row prefill near it).
  static double matmul_efficiency(double rows) { return rows / (rows + 8.0); }
  // Share of a layer's routed experts that `rows` tokens touch.
  double touched(double rows) const {
    const MoeConfig& e = m_.config.moe;
    if (e.n_experts <= 0) return 1.0;
    return 1.0 - std::pow(1.0 - double(e.top_k) / e.n_experts, std::max(rows, 1.0));
  }
  // Recursive doubling for the latency, ring volume for the bytes.
  double allreduce(const LinkSpec& l, double bytes) const {
    const double steps = 2.0 * std::ceil(std::log2(double(T_)));
    return steps * l.latency + (l.bandwidth > 0 ? 2.0 * (T_ - 1) / T_ * bytes / l.bandwidth : 0.0);
  }

  const ClusterSpec& cl_;
  const ModelSpec& m_;
  const Workload& w_;
  int T_, P_, dp_, slots_ = 1;
  std::vector<int64_t> kv_heads_;
};

PlanRow evaluate(const ClusterSpec& cl, const ModelSpec& m, const Workload& w, int tp, int pp, MoeSplit split) {
  const Evaluator ev(cl, m, w, tp, pp);
  PlanRow row;
  row.tp = tp, row.pp = pp, row.dp = ev.dp(), row.moe_split = split;
  bool within = false;
  row.layer_counts = ev.split(within);
  row.host_bytes = ev.host_bytes(row.layer_counts);
  row.fits = within;
  for (size_t h = 0; h < cl.hosts.size(); ++h)
    row.fits &= row.host_bytes[h] <= Evaluator::kMemoryShare * cl.hosts[h].memory;
  std::set<int> span;
  for (int s = 0; s < pp; ++s)
    for (int t = 0; t < tp; ++t) span.insert(cl.host_of(ev.rank(0, s, t)));
  row.host_span = int(span.size());

  const int B = ev.slots(), M = std::min(pp, B);
  const double b = double(B) / M;  // sequences per micro-batch
  const double prompt = std::max(1.0, w.prompt_len), gen = std::max(1.0, w.gen_len);
  std::vector<double> rates;  // requests/s of each replica
  double slowest_rate = 1e300;
  for (int d = 0; d < row.dp; ++d) {
    const auto dec = ev.step(d, row.layer_counts, M, b, b * (prompt + gen / 2), b);
    const double chunk = std::min(double(w.max_batch_tokens), b * prompt);
    const auto pre = ev.step(d, row.layer_counts, M, chunk, chunk * prompt / 2, b);
    const double decode_tps = B / dec.seconds, prefill_tps = M * chunk / pre.seconds;
    row.decode_tps += decode_tps, row.prefill_tps += prefill_tps;
    const double rate = 1.0 / (prompt / prefill_tps + gen / decode_tps);
    rates.push_back(rate);
    if (rate < slowest_rate) {
      slowest_rate = rate;
      const double most = std::max({dec.memory, dec.compute, dec.link});
      row.bound = most == dec.link ? "link" : most == dec.memory ? "memory" : "compute";
    }
  }
  std::sort(rates.rbegin(), rates.rend());
  rates.resize(size_t(std::min<int64_t>(row.dp, std::max<int64_t>(w.requests, 1))));
  row.seconds = double(std::max<int64_t>(w.requests, 1)) / std::accumulate(rates.begin(), rates.end(), 0.0);
  row.tokens_per_s = double(w.requests) * gen / row.seconds;
  return row;
}

}  // namespace

std::string PlanRow::command_flags() const {
  std::string s = "--tp " + std::to_string(tp) + " --pp " + std::to_string(pp);
  if (pp > 1) {
    s += " --layer-split ";
    for (size_t i = 0; i < layer_counts.size(); ++i) s += (i ? "," : "") + std::to_string(layer_counts[i]);
  }
  return s;
}

std::vector<PlanRow> plan_layouts(const ClusterSpec& cl, const ModelSpec& m, const Workload& w,
                                  const std::string& moe_split) {
  const int world = cl.world_size();
  std::vector<MoeSplit> splits = {kDefaultMoeSplit};
  if (!moe_split.empty()) splits = {parse_moe_split(moe_split)};
  else if (m.config.is_moe()) splits.push_back(kDefaultMoeSplit == MoeSplit::kTensor ? MoeSplit::kExperts
                                                                                      : MoeSplit::kTensor);
  std::vector<PlanRow> rows;
  for (int tp = 1; tp <= world; ++tp)
    for (int pp = 1; tp * pp <= world; ++pp) {
      if (world % (tp * pp)) continue;
      for (MoeSplit split : splits) {
        try {
          check_degrees(world, tp, pp, m.config, split);
        } catch (const Error&) {
          continue;  // the model does not allow it (more ranks than heads, layers or experts)
        }
        if (!m.config.is_moe() && split != splits.front()) continue;
        rows.push_back(evaluate(cl, m, w, tp, pp, split));
      }
    }
  std::stable_sort(rows.begin(), rows.end(), [](const PlanRow& a, const PlanRow& b) {
    if (a.fits != b.fits) return a.fits;
    return a.seconds < b.seconds;
  });
  // Predictions within 5% are a tie: prefer replicas (no traffic during a step), then fewer hosts per replica.
  if (!rows.empty()) {
    size_t pick = 0;
    for (size_t i = 1; i < rows.size() && rows[i].fits == rows[0].fits; ++i) {
      if (rows[i].seconds > rows[0].seconds * 1.05) break;
      const PlanRow& a = rows[i];
      const PlanRow& b = rows[pick];
      if (a.dp > b.dp || (a.dp == b.dp && a.host_span < b.host_span)) pick = i;
    }
    std::rotate(rows.begin(), rows.begin() + long(pick), rows.begin() + long(pick) + 1);
  }
  return rows;
}

std::string bytes_text(double b) {
  char buf[32];
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  return buf;
}

std::string plan_reason(const ClusterSpec& cl, const PlanRow& best) {
  char buf[320];
  double replica = 0;
  for (double b : best.host_bytes) replica += b;
  const std::string size = bytes_text(replica / best.dp);
  if (!best.fits) {
    std::snprintf(buf, sizeof buf, "no layout fits the hosts' memory; the closest needs %s per replica", size.c_str());
  } else if (best.host_span == 1) {
    std::snprintf(buf, sizeof buf, "a replica (%s) fits on one host: %d data-parallel replica%s%s", size.c_str(),
                  best.dp, best.dp == 1 ? "" : "s",
                  best.tp > 1 ? ", tensor parallel inside a host" : best.pp > 1 ? ", pipeline inside a host" : "");
  } else {
    // Which degree crosses hosts: the tensor group (adjacent ranks) or the pipeline.
    bool tp_crosses = false;
    for (int t = 1; t < best.tp; ++t) tp_crosses |= cl.host_of(t) != cl.host_of(0);
    std::snprintf(buf, sizeof buf, "a replica (%s) needs %d hosts: %s across hosts over a link of %.0f us, "
                  "%.2f GB/s", size.c_str(), best.host_span, tp_crosses ? "tensor parallel" : "pipeline",
                  cl.inter.latency * 1e6, cl.inter.bandwidth / 1e9);
  }
  char tail[96];
  std::snprintf(tail, sizeof tail, "; predicted %.0f tok/s, bound by %s", best.tokens_per_s, best.bound.c_str());
  return std::string(buf) + tail;
}

}  // namespace meshlm
