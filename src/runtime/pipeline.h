// One replica's ranks running steps together: the driver (stage 0, tensor rank 0) submits micro-batches;
// every other rank serves until the driver stops it.
//
//   driver:            bcast step to its tensor group -> embed + its layers -> isend activations to stage 1
//   stage s root:      recv from stage s-1 root -> bcast to its tensor group -> its layers -> isend to stage s+1
//   last stage:        ... -> lm_head slice -> greedy rows: MAXLOC reduce; sampled rows: gather the full logits
//                      -> its root samples and isends the tokens back to the driver
//
// Sends never block a rank on a slower neighbour: each micro-batch has its own send buffer, reused only after that
// micro-batch's previous step has come back, so with M >= P micro-batches every stage computes at once.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "comm/group.h"
#include "model/transformer.h"
#include "runtime/step_runner.h"

namespace meshlm {

class Pipeline : public StepRunner {
 public:
  // wire: how activations travel from stage to stage.
  Pipeline(Transformer& model, Groups& groups, int micro_batches, WireDType wire = WireDType::kF32);
  ~Pipeline() override;

  bool is_driver() const { return groups_.replica.rank() == 0; }

  // Driver side (StepRunner).
  int micro_batches() const override { return micro_batches_; }
  int64_t max_step_tokens() const override { return model_.max_step_tokens(); }
  int64_t max_ctx() const override { return model_.max_ctx(); }
  int vocab_size() const override { return model_.config().vocab_size; }
  int64_t kv_blocks() const override { return model_.kv_blocks(); }
  void submit(int mb, const StepBatch& batch) override;
  const StepResult& wait(int mb) override;
  // Driver: lets every other rank of the replica leave serve().
  void stop();

  // Every rank but the driver: runs steps as they arrive until the driver stops.
  void serve();

  // Time spent computing on this rank (communication excluded), in seconds.
  double compute_seconds() const { return compute_s_; }

 private:
  void run_stage(int mb, const StepBatch& batch);
  void sample(const StepBatch& batch, StepResult& out);
  void add_logprobs(const float* row, int vocab, int chosen, int k, StepResult& out);
  std::vector<uint8_t>& outbox(int mb);
  static void progress(void* self);  // matmul's hook: moves this rank's pending sends along

  Transformer& model_;
  Groups& groups_;
  const ParallelLayout& layout_;
  int micro_batches_;
  WireDType wire_;
  double compute_s_ = 0;

  StepBatch batch_;                          // the step being served
  std::vector<uint8_t> msg_;                 // incoming message
  std::vector<std::vector<uint8_t>> out_;    // (micro_batches) outgoing message per micro-batch
  std::vector<MPI_Request> out_req_;         // (micro_batches) its pending send
  std::vector<StepResult> results_;          // (micro_batches) driver: the last result of each micro-batch
  StepResult result_;                        // last stage: this step's result
  // Sampling scratch on the last stage.
  std::vector<MaxLoc> maxloc_;               // (rows)
  std::vector<int> full_rows_;               // rows that need their full logits
  std::vector<float> packed_, gathered_, full_;  // (full rows, vocab_local), (vocab total), (full rows, vocab)
  std::vector<int> counts_;                  // (tp_size) floats from each tensor rank
  SampleScratch scratch_;
  std::vector<int> order_;                   // (vocab) candidate ids for top-k logprobs
};

}  // namespace meshlm
