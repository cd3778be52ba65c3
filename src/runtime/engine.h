// The generation loop: admits requests while KV blocks are free, packs prefill chunks and decode tokens of all
// active sequences into one step, and retires finished sequences so that new ones can start. The sequences are
// dealt into micro-batches that the runner keeps in flight together (one per pipeline stage or more); each
// micro-batch takes its next step as soon as its last one returns.
//
// KV memory is paged (runtime/kv_blocks.h): a sequence holds blocks for its positions so far, and a request is
// admitted when the blocks of its prompt are available. A new request first takes every cached block of its
// longest cached prefix and prefills only the rest; a request whose next block is being computed by a sequence in
// flight waits for it rather than computing it twice. When a running sequence needs a block and none is left, the
// youngest sequence of its micro-batch is preempted: its blocks go back (its full ones stay cached) and it is
// recomputed later from its prompt and the tokens it had generated, which gives the same tokens.
#pragma once
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <functional>
#include <optional>
#include <vector>

#include "core/timer.h"
#include "runtime/kv_blocks.h"
#include "runtime/step_runner.h"
#include "runtime/request.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {

struct EngineOptions {
  int batch_size = 8;               // sequences in flight at most, shared out among the micro-batches
  bool keep_first_logits = false;   // fill Completion::first_logits
  int top_logprobs = 0;             // k most likely tokens' logprobs per generated token (0: none)
  int64_t prefill_chunk = 0;        // prompt tokens per sequence per step; 0: as many as the step budget allows
  bool prefix_cache = true;         // reuse the cached blocks of shared prefixes
};

struct EngineStats {
  int64_t steps = 0, generated_tokens = 0;
  int64_t prompt_tokens = 0;       // prompt positions computed (again after a preemption)
  int64_t reused_tokens = 0;       // prompt positions taken from the prefix cache instead
  int64_t preemptions = 0;
  int64_t peak_sequences = 0;      // most sequences running at once
  int64_t kv_blocks = 0, kv_blocks_peak = 0, kv_blocks_cached = 0;  // pool size, most held at once, cached at the end
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
    int64_t fed = 0;                // positions of prompt + generated already in the KV cache
    std::vector<int> generated;
    Rng rng;
    bool text_cut = false;          // result.text already cut at a stop string
    bool finished = false, evicted = false, admitted = false;
    Completion result;
    std::vector<int> blocks;        // block table: the KV blocks of positions [0, blocks.size() * block_tokens)
    std::vector<uint64_t> hashes;   // chain hash of each full block of the context, as far as computed
    int64_t published = 0;          // leading blocks taken from or published to the prefix cache
    int64_t pending_end = 0;        // blocks [published, pending_end) announced in pending_ as being computed
  };
  struct MicroBatch {
    std::vector<Sequence> active;   // oldest first
    size_t capacity = 1;            // sequences it may hold
    StepBatch batch;
    std::vector<size_t> row_owner;  // active index of each logit row
    std::vector<int64_t> fed_now;   // tokens each active sequence feeds this step
    bool in_flight = false;
  };
  // Packs decode tokens first (one per running sequence, growing its blocks, preempting if it must), then prefill
  // chunks in the budget that is left.
  void build_step(MicroBatch& mb, const std::vector<Request>& requests);
  // Appends this sequence's tokens for the step within `budget`; returns how many it added.
  int64_t schedule(const Sequence& s, const Request& r, int64_t budget, StepBatch& batch) const;
  // Takes a finished step's tokens; publishes blocks that became full; retires finished sequences.
  void apply(MicroBatch& mb, const StepResult& result, const std::vector<Request>& requests,
             const std::function<void(size_t, Completion&&)>& on_done);
  // Records the sampled token; returns true when the sequence is finished.
  bool accept(Sequence& s, const Request& r, int token);

  // KV blocks (the sequence's context is its prompt and the tokens generated so far).
  std::vector<int> context(const Sequence& s, const Request& r) const;
  void hash_blocks(Sequence& s, const std::vector<int>& context, int64_t full) const;  // hashes of `full` blocks
  // Gives s the blocks of its context, cached ones first, if `headroom` blocks stay available after it (room for
  // the running sequences to grow); false (nothing held) when it must wait.
  bool admit(Sequence& s, const Request& r, int64_t headroom);
  // Gives the blocks for positions below `upto` to active[i], preempting the youngest sequence while none is
  // left; false when active[i] itself was preempted.
  bool grow(MicroBatch& mb, size_t i, int64_t upto);
  void release(Sequence& s);  // back to the pool; fed = 0
  void publish_full(Sequence& s, const Request& r);
  void drop_evicted(MicroBatch& mb);  // moves preempted sequences to preempted_

  StepRunner& runner_;
  const Tokenizer* tokenizer_;
  std::vector<int> eos_ids_;
  EngineOptions options_;
  EngineStats stats_;
  Timer run_timer_;  // since the start of run()
  KvBlocks blocks_;
  std::unordered_map<uint64_t, int> pending_;  // block hash -> sequences computing it now
  std::deque<Sequence> preempted_;             // to recompute, before any new request
};

}  // namespace meshlm
