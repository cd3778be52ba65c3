#include "runtime/engine.h"

#include <algorithm>

#include "core/check.h"
#include "core/timer.h"

namespace meshlm {

Engine::Engine(Transformer& model, const Tokenizer* tokenizer, std::vector<int> eos_ids, EngineOptions options)
    : model_(model), tokenizer_(tokenizer), eos_ids_(std::move(eos_ids)), options_(options) {
  MESH_CHECK(options_.batch_size >= 1, "batch size must be at least 1");
  MESH_CHECK(model_.max_step_tokens() >= options_.batch_size, "step capacity ", model_.max_step_tokens(),
             " is below the batch size ", options_.batch_size);
}

int64_t Engine::schedule(const Sequence& s, const Request& r, int64_t budget, StepBatch& batch) const {
  const int64_t prompt_len = int64_t(r.prompt.size());
  const int64_t context_len = prompt_len + int64_t(s.generated.size());
  const int64_t n = std::min(budget, context_len - s.fed);
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
  const bool out_of_context = int64_t(r.prompt.size() + s.generated.size()) >= model_.max_ctx();
  if (int(s.generated.size()) >= r.max_tokens || out_of_context) {
    c.finish_reason = "length";
    return true;
  }
  return false;
}

void Engine::run(const std::vector<Request>& requests, const std::function<void(size_t, Completion&&)>& on_done) {
  const Timer total;
  const int vocab = model_.config().vocab_size;
  std::vector<Sequence> active;
  std::vector<int> free_slots;
  for (int slot = options_.batch_size - 1; slot >= 0; --slot) free_slots.push_back(slot);
  size_t next = 0;
  StepBatch batch;
  std::vector<size_t> row_owner;   // active index of each logit row
  std::vector<int64_t> fed_now;    // tokens each active sequence feeds this step
  SampleScratch scratch;

  while (next < requests.size() || !active.empty()) {
    while (!free_slots.empty() && next < requests.size()) {  // admit into free slots, in input order
      Sequence s;
      s.request = next++;
      s.slot = free_slots.back();
      free_slots.pop_back();
      s.rng = Rng(requests[s.request].sampling.seed);
      active.push_back(std::move(s));
    }
    // Decode tokens first (one per running sequence), then prefill chunks in the budget that is left.
    batch.clear();
    row_owner.clear();
    fed_now.assign(active.size(), 0);
    int64_t budget = model_.max_step_tokens();
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < active.size(); ++i) {
        const Request& r = requests[active[i].request];
        const bool decoding = active[i].fed >= int64_t(r.prompt.size());
        if (decoding != (pass == 0) || budget == 0) continue;
        const size_t rows_before = batch.logit_rows.size();
        fed_now[i] = schedule(active[i], r, budget, batch);
        budget -= fed_now[i];
        if (batch.logit_rows.size() > rows_before) row_owner.push_back(i);
      }
    }
    Timer t_forward;
    const float* logits = model_.forward(batch);
    stats_.forward_s += t_forward.seconds();
    ++stats_.steps;
    for (size_t i = 0; i < active.size(); ++i) {
      Sequence& s = active[i];
      const int64_t prompt_len = int64_t(requests[s.request].prompt.size());
      stats_.prompt_tokens += std::max<int64_t>(0, std::min(prompt_len, s.fed + fed_now[i]) - s.fed);
      s.fed += fed_now[i];
    }
    Timer t_sample;
    for (size_t row = 0; row < row_owner.size(); ++row) {
      Sequence& s = active[row_owner[row]];
      const Request& r = requests[s.request];
      const float* row_logits = logits + row * size_t(vocab);
      if (options_.keep_first_logits && s.generated.empty()) s.result.first_logits.assign(row_logits, row_logits + vocab);
      const int token = sample(row_logits, vocab, r.sampling, s.rng, scratch);
      ++stats_.generated_tokens;
      s.finished = accept(s, r, token);
    }
    stats_.sample_s += t_sample.seconds();
    // Retire finished sequences, freeing their slots for the next admissions.
    for (Sequence& s : active) {
      if (!s.finished) continue;
      s.result.token_ids = s.generated;
      if (tokenizer_ && !s.text_cut) s.result.text = tokenizer_->decode(s.generated);
      free_slots.push_back(s.slot);
      on_done(s.request, std::move(s.result));
    }
    active.erase(std::remove_if(active.begin(), active.end(), [](const Sequence& s) { return s.finished; }),
                 active.end());
  }
  stats_.total_s = total.seconds();
}

}  // namespace meshlm
