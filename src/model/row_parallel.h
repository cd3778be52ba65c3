// The output of a row-parallel linear layer (Megatron's RowParallelLinear: o_proj and down_proj under tensor
// parallelism): each tensor rank multiplies its slice of the input features, and the partial sums are added over the
// tensor group, one all-reduce per layer for the whole step.
//
// Overlap: the output features are computed in `chunks` parts. Each part's all-reduce (comm/async_allreduce.h) starts
// as soon as the part is computed and travels while the cores compute the next part (matmul's progress hook lets MPI
// move it), so only the last part's all-reduce is exposed. With WireDType::kBF16 the parts travel as bf16.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "comm/async_allreduce.h"
#include "comm/group.h"
#include "kernels/matmul.h"
#include "model/parallel_layout.h"

namespace meshlm {

struct TpComm {
  WireDType wire = WireDType::kF32;
  int chunks = 4;  // parts per row-parallel output (1: compute all, then sum)
};

class RowParallel {
 public:
  RowParallel() = default;
  RowParallel(Group* tp, TpComm comm) : tp_(tp), comm_(comm) {}

  // y (n, w.rows) = x (n, w.cols) · wᵀ summed over the tensor group (plain matmul without one).
  void run(const float* x, int64_t n, const WeightView& w, float* y);
  // The same for any output that can be computed by output columns: compute(r, part) writes columns r of the n rows
  // into part (n, r.size()); y (n, cols) gets the sums. (The MoE layer adds its experts' down projections so.)
  using PartFn = std::function<void(Range cols, float* part)>;
  void run_parts(int64_t n, int64_t cols, const PartFn& compute, float* y);

 private:
  static void progress(void* self);

  Group* tp_ = nullptr;
  TpComm comm_;
  std::vector<float> part_;            // (n, w.rows) as parts: part c is (n, rows of c), contiguous
  std::vector<AsyncAllreduce> sums_;   // one per part
  ProgressHook outer_ = nullptr;   // the hook this one chains onto while it runs
  void* outer_context_ = nullptr;
};

}  // namespace meshlm
