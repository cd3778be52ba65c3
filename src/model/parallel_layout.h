// Which part of the model each rank holds. All shard arithmetic lives here, as pure functions (no MPI),
// so that it can be tested on its own and read in one place.
//
// World ranks are laid out tp fastest, then pp, then dp:  rank = (dp * pp_size + pp) * tp_size + tp.
// Tensor-parallel groups are adjacent ranks, which mpirun places on the same host first; a whole data-parallel
// replica is a contiguous run of ranks, so replicas never talk to each other during a step.
//
// Worked example: 8 ranks, --tp 2 --pp 2, so dp = 8 / (2*2) = 2. A Llama with 32 layers, 32 q heads,
// 8 kv heads, vocab 128256:
//
//   world rank   0    1    2    3    4    5    6    7
//   dp           0    0    0    0    1    1    1    1
//   pp (stage)   0    0    1    1    0    0    1    1     stage 0: layers [0,16), stage 1: [16,32)
//   tp           0    1    0    1    0    1    0    1     tp 0: q heads [0,16) kv [0,4); tp 1: q [16,32) kv [4,8)
//                                                         vocab: tp 0 [0,64128), tp 1 [64128,128256)
//
// Heads never split inside a head. With T <= n_kv_heads, whole GQA groups are dealt out evenly (8 kv heads on
// 3 ranks: 3,3,2 groups). With T > n_kv_heads, each kv head is replicated on the ranks that share its group,
// and the group's q heads are split among them (6 q / 2 kv heads on 4 ranks: q 2,1,2,1, each with one kv head).
// Uneven splits put the larger pieces first (6 kv heads on 4 ranks: 2,2,1,1).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/hf_config.h"

namespace meshlm {

struct Range {
  int64_t begin = 0, end = 0;  // half-open
  int64_t size() const { return end - begin; }
  bool contains(int64_t i) const { return begin <= i && i < end; }
};

// Split [0, n) into `parts` contiguous pieces whose sizes differ by at most one (larger pieces first);
// returns piece `index`. Example: n=6, parts=4 -> [0,2) [2,4) [4,5) [5,6).
Range even_split(int64_t n, int64_t parts, int64_t index);

struct HeadSplit {
  Range q_heads, kv_heads;
};
// The heads of tensor-parallel rank t of T (see the header comment). Requires T <= n_heads.
HeadSplit split_heads(int64_t n_heads, int64_t n_kv_heads, int64_t T, int64_t t);

// Layer counts per pipeline stage, in order. `by_hand` (from --layer-split 10,12,10) is checked and returned;
// empty means even. Throws Error with the reason when the counts cannot work.
std::vector<int64_t> layer_counts(int64_t n_layers, int64_t P, const std::vector<int64_t>& by_hand);
// Contiguous stages over layers of unequal cost (layer_costs: one per layer, e.g. its weight bytes), every stage at
// least one layer. Minimizes the largest (stage cost + extra[s]) / capacity[s]; among equal answers, the counts
// nearest to layer_costs.size() * capacity[s] / Σ capacity. Exact (dynamic programming over the cut points).
// limit (optional, one per stage): the most a stage may hold (its layer costs + extra); empty result when no split
// stays within the limits.
std::vector<int64_t> layer_counts_fit(const std::vector<double>& layer_costs, const std::vector<double>& capacity,
                                      const std::vector<double>& extra, const std::vector<double>& limit = {});
// Matmul parameters of each layer (attention, and the dense MLP or all experts + router + shared expert) and of the
// lm_head: what the pipeline split weighs, since a stage holds (and at large batches reads) all of them.
std::vector<double> layer_params(const ModelConfig& c);
// Matmul parameters of one layer's attention (DeepSeek-V3: the MLA projections, kv_b_proj once).
double attention_params(const ModelConfig& c);
// Attention multiply-adds per query token and position it sees, all heads: 2·q_dim (q·k, p·v); MLA (absorbed):
// heads·(2·kv_lora + rope).
double attention_macs_per_position(const ModelConfig& c);
double head_params(const ModelConfig& c);
// Active parameters per token, as model cards count them: everything but the experts a token is not routed to
// (attention, top_k experts + router + shared expert or the dense MLP per layer, embedding and head).
// Mixtral-8x7B: 12.9 B of 46.7 B; Qwen3-30B-A3B: 3.3 B of 30.5 B.
double active_params(const ModelConfig& c);
// "10,12,10" -> {10, 12, 10}; throws Error on anything else.
std::vector<int64_t> parse_layer_split(const std::string& text);

// How a tensor group shares a mixture-of-experts layer (--moe-split): `experts` gives each rank whole experts
// (8 on 3 ranks: 3,3,2), `tensor` splits every expert's intermediate dimension as a dense MLP is split.
enum class MoeSplit { kExperts, kTensor };
// The default: measured in bench/RESULTS.md (see README, "Mixture of experts").
constexpr MoeSplit kDefaultMoeSplit = MoeSplit::kTensor;
MoeSplit parse_moe_split(const std::string& text);  // throws Error naming the flag
const char* moe_split_name(MoeSplit s);

struct Placement {
  int dp = 0, pp = 0, tp = 0;
};
Placement place(int world_rank, int tp_size, int pp_size);
int world_rank_of(const Placement& p, int tp_size, int pp_size);

// Checks a requested --tp/--pp against the world and the model; throws Error with the reason.
void check_degrees(int world_size, int tp, int pp, const ModelConfig& c, MoeSplit split = MoeSplit::kExperts);

struct ParallelLayout {
  int world_rank = 0;
  int tp_rank = 0, tp_size = 1;
  int pp_rank = 0, pp_size = 1;
  int dp_rank = 0, dp_size = 1;
  Range q_heads;    // this rank's query heads
  Range kv_heads;   // this rank's kv heads
  Range hidden;     // this rank's slice of intermediate_size
  MoeSplit moe_split = MoeSplit::kExperts;
  Range experts;        // MoE: the experts this rank computes (all of them with the tensor split)
  Range expert_hidden;  // MoE: its slice of each expert's intermediate size (all of it with the experts split)
  Range shared_hidden;  // Qwen2-MoE: its slice of the shared expert's intermediate size
  Range vocab;      // this rank's slice of the vocabulary
  Range layers;     // this rank's layers
  std::vector<Range> stage_layers;  // every stage's layers, for the summary

  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }
  // Rank within this replica (0 .. tp*pp-1) of tensor rank 0 of stage s.
  int stage_root(int s) const { return s * tp_size; }

  static ParallelLayout single(const ModelConfig& c);
  // The layout of `world_rank`; counts are the per-stage layer counts (layer_counts*). Degrees must be checked.
  static ParallelLayout make(const ModelConfig& c, int world_size, int world_rank, int tp, int pp,
                             const std::vector<int64_t>& counts, MoeSplit split = MoeSplit::kExperts);
};

}  // namespace meshlm
