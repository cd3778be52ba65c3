// The generation loop: admits requests into free KV slots, packs prefill chunks and decode tokens of all
// active sequences into one step, and retires finished sequences so that new ones can start. The sequences are
// dealt into micro-batches that the runner keeps in flight together (one per pipeline stage or more); each
// micro-batch owns a fixed share of the KV slots and takes its next step as soon as its last one returns.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/timer.h"
#include "runtime/step_runner.h"
#include "runtime/request.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {

struct EngineOptions {
  int batch_size = 8;               // sequences in flight (KV slots), shared out among the micro-batches
  bool keep_first_logits = false;   // fill Completion::first_logits
  int top_logprobs = 0;             // k most likely tokens' logprobs per generated token (0: none)
  int64_t prefill_chunk = 0;        // prompt tokens per sequence per step; 0: as many as the step budget allows
};

struct EngineStats {
  int64_t steps = 0, prompt_tokens = 0, generated_tokens = 0;
  double forward_s = 0, total_s = 0;  // forward: waiting for steps; the rest is scheduling
};

class Engine {
 public:
  // tokenizer may be null: then text stays empty and stop strings cannot be matched.
  Engine(StepRunner& runner, const Tokenizer* tokenizer, std::vector<int> eos_ids, EngineOptions options);

  // Generates for every request; calls on_done(request index, completion) as each one finishes, and on_step
  // (if set) once per round of micro-batches.
  void run(const std::vector<Request>& requests, const std::function<void(size_t, Completion&&)>& on_done,
           const std::function<void()>& on_step = {});
  // Where the requests to run come from: source(false) gives the index (into `requests`) of the next one to admit,
  // or none when none is ready now; source(true) waits, and none then means that no more will come.
  using RequestSource = std::function<std::optional<size_t>(bool wait)>;
  void run(const std::vector<Request>& requests, const RequestSource& source,
           const std::function<void(size_t, Completion&&)>& on_done, const std::function<void()>& on_step = {});
  const EngineStats& stats() const { return stats_; }

 private:
  struct Sequence {
    size_t request = 0;
    int slot = -1;
    int64_t fed = 0;                // tokens of prompt + generated already in the KV cache
    std::vector<int> generated;
    Rng rng;
    bool text_cut = false;          // result.text already cut at a stop string
    bool finished = false;
    Completion result;
  };
  struct MicroBatch {
    std::vector<Sequence> active;
    std::vector<int> free_slots;
    StepBatch batch;
    std::vector<size_t> row_owner;  // active index of each logit row
    std::vector<int64_t> fed_now;   // tokens each active sequence feeds this step
    bool in_flight = false;
  };
  // Packs decode tokens first (one per running sequence), then prefill chunks in the budget that is left.
  void build_step(MicroBatch& mb, const std::vector<Request>& requests) const;
  // Appends this sequence's tokens for the step within `budget`; returns how many it added.
  int64_t schedule(const Sequence& s, const Request& r, int64_t budget, StepBatch& batch) const;
  // Takes a finished step's tokens; retires finished sequences.
  void apply(MicroBatch& mb, const StepResult& result, const std::vector<Request>& requests,
             const std::function<void(size_t, Completion&&)>& on_done);
  // Records the sampled token; returns true when the sequence is finished.
  bool accept(Sequence& s, const Request& r, int token);

  StepRunner& runner_;
  const Tokenizer* tokenizer_;
  std::vector<int> eos_ids_;
  EngineOptions options_;
  EngineStats stats_;
  Timer run_timer_;  // since the start of run()
};

}  // namespace meshlm
