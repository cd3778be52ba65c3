#include "runtime/engine.h"

#include <algorithm>

#include "core/check.h"
#include "core/timer.h"
#include "model/parallel_layout.h"

namespace meshlm {

Engine::Engine(StepRunner& runner, const Tokenizer* tokenizer, std::vector<int> eos_ids, EngineOptions options)
    : runner_(runner), tokenizer_(tokenizer), eos_ids_(std::move(eos_ids)), options_(options) {
  MESH_CHECK(options_.batch_size >= runner_.micro_batches(), "batch size ", options_.batch_size,
             " is below the ", runner_.micro_batches(), " micro-batches");
  MESH_CHECK(runner_.max_step_tokens() >= options_.batch_size, "step capacity ", runner_.max_step_tokens(),
             " is below the batch size ", options_.batch_size);
}

int64_t Engine::schedule(const Sequence& s, const Request& r, int64_t budget, StepBatch& batch) const {
  const int64_t prompt_len = int64_t(r.prompt.size());
  const int64_t context_len = prompt_len + int64_t(s.generated.size());
  int64_t n = std::min(budget, context_len - s.fed);
  if (s.fed < prompt_len && options_.prefill_chunk > 0) n = std::min(n, options_.prefill_chunk);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t pos = s.fed + k;
    batch.tokens.push_back(pos < prompt_len ? r.prompt[size_t(pos)] : s.generated[size_t(pos - prompt_len)]);
    batch.positions.push_back(int(pos));
    batch.slots.push_back(s.slot);
  }
  if (n > 0 && s.fed + n == context_len) batch.logit_rows.push_back(int(batch.size() - 1));
  return n;
}

bool Engine::accept(Sequence& s, const Request& r, int token) {
  s.generated.push_back(token);
  Completion& c = s.result;
  if (std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end()) {
    c.finish_reason = "stop";
    return true;
  }
  if (tokenizer_ && !r.stop.empty()) {
    const std::string text = tokenizer_->decode(s.generated);
    size_t cut = std::string::npos;
    for (const std::string& stop : r.stop) cut = std::min(cut, text.find(stop));
    if (cut != std::string::npos) {
      c.text = text.substr(0, cut);
      s.text_cut = true;
      c.finish_reason = "stop";
      return true;
    }
  }
  const bool out_of_context = int64_t(r.prompt.size() + s.generated.size()) >= runner_.max_ctx();
  if (int(s.generated.size()) >= r.max_tokens || out_of_context) {
    c.finish_reason = "length";
    return true;
  }
  return false;
}

void Engine::build_step(MicroBatch& mb, const std::vector<Request>& requests) const {
  mb.batch.clear();
  mb.row_owner.clear();
  mb.fed_now.assign(mb.active.size(), 0);
  int64_t budget = runner_.max_step_tokens();
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < mb.active.size(); ++i) {
      const Sequence& s = mb.active[i];
      const Request& r = requests[s.request];
      const bool decoding = s.fed >= int64_t(r.prompt.size());
      if (decoding != (pass == 0) || budget == 0) continue;
      const size_t rows_before = mb.batch.logit_rows.size();
      mb.fed_now[i] = schedule(s, r, budget, mb.batch);
      budget -= mb.fed_now[i];
      if (mb.batch.logit_rows.size() > rows_before) {
        mb.row_owner.push_back(i);
        RowSpec spec;
        spec.sampling = r.sampling;
        spec.rng_state = s.rng.state();
        spec.want_logits = options_.keep_first_logits && s.generated.empty();
        spec.top_logprobs = options_.top_logprobs;
        mb.batch.rows.push_back(spec);
      }
    }
  }
}

void Engine::apply(MicroBatch& mb, const StepResult& result, const std::vector<Request>& requests,
                   const std::function<void(size_t, Completion&&)>& on_done) {
  const int vocab = runner_.vocab_size();
  MESH_CHECK(result.tokens.size() == mb.row_owner.size(), "step returned ", result.tokens.size(), " tokens for ",
             mb.row_owner.size(), " rows");
  for (size_t i = 0; i < mb.active.size(); ++i) {
    Sequence& s = mb.active[i];
    const int64_t prompt_len = int64_t(requests[s.request].prompt.size());
    stats_.prompt_tokens += std::max<int64_t>(0, std::min(prompt_len, s.fed + mb.fed_now[i]) - s.fed);
    s.fed += mb.fed_now[i];
  }
  size_t logits_at = 0, lp_row = 0;
  const size_t k = size_t(options_.top_logprobs);
  for (size_t row = 0; row < mb.row_owner.size(); ++row) {
    Sequence& s = mb.active[mb.row_owner[row]];
    if (mb.batch.rows[row].want_logits) {
      MESH_CHECK(result.logits.size() >= logits_at + size_t(vocab), "step returned too few logits");
      s.result.first_logits.assign(result.logits.begin() + long(logits_at), result.logits.begin() + long(logits_at + size_t(vocab)));
      logits_at += size_t(vocab);
    }
    if (k > 0) {
      MESH_CHECK(result.chosen_logprob.size() > lp_row && result.top_ids.size() >= (lp_row + 1) * k,
                 "step returned too few logprobs");
      s.result.chosen_logprob.push_back(result.chosen_logprob[lp_row]);
      s.result.top_ids.insert(s.result.top_ids.end(), result.top_ids.begin() + long(lp_row * k),
                              result.top_ids.begin() + long((lp_row + 1) * k));
      s.result.top_logprobs.insert(s.result.top_logprobs.end(), result.top_logprobs.begin() + long(lp_row * k),
                                   result.top_logprobs.begin() + long((lp_row + 1) * k));
      ++lp_row;
    }
    s.rng = Rng(result.rng_states[row]);
    if (s.generated.empty()) s.result.ttft_s = run_timer_.seconds() - s.result.queue_s;
    ++stats_.generated_tokens;
    s.finished = accept(s, requests[s.request], result.tokens[row]);
  }
  // Retire finished sequences, freeing their slots for the next admissions.
  for (Sequence& s : mb.active) {
    if (!s.finished) continue;
    s.result.token_ids = s.generated;
    s.result.decode_s = run_timer_.seconds() - s.result.queue_s - s.result.ttft_s;
    if (tokenizer_ && !s.text_cut) s.result.text = tokenizer_->decode(s.generated);
    mb.free_slots.push_back(s.slot);
    on_done(s.request, std::move(s.result));
  }
  mb.active.erase(std::remove_if(mb.active.begin(), mb.active.end(), [](const Sequence& s) { return s.finished; }),
                  mb.active.end());
}

void Engine::run(const std::vector<Request>& requests, const std::function<void(size_t, Completion&&)>& on_done,
                 const std::function<void()>& on_step) {
  size_t next = 0;
  run(requests, [&](bool) -> std::optional<size_t> {
    if (next < requests.size()) return next++;
    return std::nullopt;
  }, on_done, on_step);
}

void Engine::run(const std::vector<Request>& requests, const RequestSource& source,
                 const std::function<void(size_t, Completion&&)>& on_done, const std::function<void()>& on_step) {
  run_timer_ = Timer();
  const int n_mb = runner_.micro_batches();
  std::vector<MicroBatch> mbs(static_cast<size_t>(n_mb));
  for (int k = 0; k < n_mb; ++k) {  // micro-batch k owns slots even_split(batch_size, n_mb, k)
    const Range slots = even_split(options_.batch_size, n_mb, k);
    for (int64_t slot = slots.end - 1; slot >= slots.begin; --slot) mbs[size_t(k)].free_slots.push_back(int(slot));
  }
  std::optional<size_t> waiting;  // a request taken while every slot was busy, or after a wait
  while (true) {
    bool busy = false;
    for (int k = 0; k < n_mb; ++k) {
      MicroBatch& mb = mbs[size_t(k)];
      if (mb.in_flight) {
        Timer t_wait;
        const StepResult& result = runner_.wait(k);
        stats_.forward_s += t_wait.seconds();
        apply(mb, result, requests, on_done);
        mb.in_flight = false;
      }
      while (!mb.free_slots.empty()) {  // admit into free slots, in the order the source gives
        if (!waiting) waiting = source(false);
        if (!waiting) break;
        Sequence s;
        s.result.queue_s = run_timer_.seconds();
        s.request = *waiting;
        waiting.reset();
        MESH_CHECK(s.request < requests.size(), "request ", s.request, " of ", requests.size());
        s.slot = mb.free_slots.back();
        mb.free_slots.pop_back();
        s.rng = Rng(requests[s.request].sampling.seed);
        mb.active.push_back(std::move(s));
      }
      if (mb.active.empty()) continue;
      build_step(mb, requests);
      Timer t_submit;
      runner_.submit(k, mb.batch);
      stats_.forward_s += t_submit.seconds();
      ++stats_.steps;
      mb.in_flight = busy = true;
    }
    if (on_step) on_step();
    if (busy) continue;
    // Every slot is free and the source had nothing ready: wait for more, or for the end.
    waiting = source(true);
    if (!waiting) break;
  }
  stats_.total_s = run_timer_.seconds();
}

}  // namespace meshlm
