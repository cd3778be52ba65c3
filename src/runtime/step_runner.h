// What the engine drives: a model that takes steps for up to micro_batches() independent groups of sequences,
// with several steps in flight at once when the model is pipelined.
#pragma once
#include <cstdint>

#include "model/step_batch.h"

namespace meshlm {

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // Groups of sequences that may be in flight together.
  virtual int micro_batches() const = 0;
  virtual int64_t max_step_tokens() const = 0;
  virtual int64_t max_ctx() const = 0;
  virtual int vocab_size() const = 0;
  // Blocks of KVCache::kBlockTokens positions in the paged KV cache, shared by all micro-batches.
  virtual int64_t kv_blocks() const = 0;
  // Starts a step for micro-batch mb. The previous step of mb must have been waited for.
  virtual void submit(int mb, const StepBatch& batch) = 0;
  // Blocks until the step submitted for mb is done. Valid until the next submit of mb.
  virtual const StepResult& wait(int mb) = 0;
};

}  // namespace meshlm
