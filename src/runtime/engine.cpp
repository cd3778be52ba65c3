#include "runtime/engine.h"

#include <algorithm>

#include "core/check.h"
#include "core/timer.h"
#include "model/kv_cache.h"
#include "model/parallel_layout.h"

namespace meshlm {

Engine::Engine(StepRunner& runner, const Tokenizer* tokenizer, std::vector<int> eos_ids, EngineOptions options)
    : runner_(runner), tokenizer_(tokenizer), eos_ids_(std::move(eos_ids)), options_(options),
      blocks_(runner.kv_blocks(), KVCache::kBlockTokens, options.prefix_cache) {
  MESH_CHECK(options_.batch_size >= runner_.micro_batches(), "batch size ", options_.batch_size,
             " is below the ", runner_.micro_batches(), " micro-batches");
  MESH_CHECK(runner_.max_step_tokens() >= options_.batch_size, "step capacity ", runner_.max_step_tokens(),
             " is below the batch size ", options_.batch_size);
  MESH_CHECK(blocks_.size() * blocks_.block_tokens() >= runner_.max_ctx(), "a KV cache of ", blocks_.size(),
             " blocks cannot hold one sequence of ", runner_.max_ctx(), " positions");
}

std::vector<int> Engine::context(const Sequence& s, const Request& r) const {
  std::vector<int> c(r.prompt);
  c.insert(c.end(), s.generated.begin(), s.generated.end());
  return c;
}

void Engine::hash_blocks(Sequence& s, const std::vector<int>& context, int64_t full) const {
  const int64_t B = blocks_.block_tokens();
  for (int64_t j = int64_t(s.hashes.size()); j < full; ++j)
    s.hashes.push_back(block_hash(j ? s.hashes[size_t(j - 1)] : 0, &context[size_t(j * B)], B));
}

bool Engine::admit(Sequence& s, const Request& r, int64_t headroom) {
  const int64_t B = blocks_.block_tokens();
  const std::vector<int> tokens = context(s, r);
  const int64_t len = int64_t(tokens.size()), full = len / B;
  std::vector<int> reused;  // cached blocks of the longest cached prefix, leaving at least one token to compute
  if (blocks_.prefix_cache()) {
    hash_blocks(s, tokens, full);
    for (int64_t j = 0; j < (len - 1) / B; ++j) {
      const int b = blocks_.find(s.hashes[size_t(j)], reused.empty() ? -1 : reused.back(), &tokens[size_t(j * B)]);
      if (b < 0) {
        if (pending_.count(s.hashes[size_t(j)])) return false;  // a sequence in flight is computing it: wait
        break;
      }
      reused.push_back(b);
    }
  }
  for (int b : reused) blocks_.hold(b);
  const int64_t need = (len + B - 1) / B - int64_t(reused.size());
  if (blocks_.available() < need + headroom) {
    for (int b : reused) blocks_.release(b);
    return false;
  }
  s.blocks = reused;
  for (int64_t k = 0; k < need; ++k) s.blocks.push_back(blocks_.allocate());
  s.published = int64_t(reused.size());
  s.fed = s.published * B;
  s.pending_end = blocks_.prefix_cache() ? std::max(full, s.published) : s.published;
  for (int64_t j = s.published; j < s.pending_end; ++j) ++pending_[s.hashes[size_t(j)]];
  stats_.reused_tokens += std::min(s.fed, int64_t(r.prompt.size()));
  if (!s.admitted) s.result.queue_s = run_timer_.seconds();
  s.admitted = true;
  s.evicted = false;
  return true;
}

void Engine::release(Sequence& s) {
  for (int b : s.blocks) blocks_.release(b);
  for (int64_t j = s.published; j < s.pending_end; ++j) {
    const auto it = pending_.find(s.hashes[size_t(j)]);
    if (it != pending_.end() && --it->second == 0) pending_.erase(it);
  }
  s.blocks.clear();
  s.fed = s.published = s.pending_end = 0;
}

bool Engine::grow(MicroBatch& mb, size_t i, int64_t upto) {
  const int64_t B = blocks_.block_tokens();
  while (int64_t(mb.active[i].blocks.size()) * B < upto) {
    const int b = blocks_.allocate();
    if (b >= 0) {
      mb.active[i].blocks.push_back(b);
      continue;
    }
    size_t victim = mb.active.size();  // the youngest sequence still running (not yet scheduled: it is after i)
    while (victim-- > i && mb.active[victim].evicted) {}
    release(mb.active[victim]);
    mb.active[victim].evicted = true;
    ++stats_.preemptions;
    if (victim == i) return false;
  }
  return true;
}

void Engine::publish_full(Sequence& s, const Request& r) {
  const int64_t B = blocks_.block_tokens();
  if (!blocks_.prefix_cache() || (s.published + 1) * B > s.fed) return;
  const std::vector<int> tokens = context(s, r);
  hash_blocks(s, tokens, s.fed / B);
  for (int64_t j = s.published; j < s.fed / B; ++j) {
    const uint64_t h = s.hashes[size_t(j)];
    blocks_.publish(s.blocks[size_t(j)], h, j ? s.blocks[size_t(j - 1)] : -1, &tokens[size_t(j * B)]);
    if (j < s.pending_end) {
      const auto it = pending_.find(h);
      if (it != pending_.end() && --it->second == 0) pending_.erase(it);
    }
  }
  s.published = s.fed / B;
  s.pending_end = std::max(s.pending_end, s.published);
}

void Engine::drop_evicted(MicroBatch& mb) {
  std::vector<size_t> index(mb.active.size());  // old active index -> new
  size_t kept = 0;
  for (size_t i = 0; i < mb.active.size(); ++i) {
    index[i] = kept;
    if (mb.active[i].evicted) {
      preempted_.push_back(std::move(mb.active[i]));
      continue;
    }
    if (kept != i) mb.active[kept] = std::move(mb.active[i]);
    mb.fed_now[kept] = mb.fed_now[i];
    ++kept;
  }
  mb.active.resize(kept);
  mb.fed_now.resize(kept);
  for (size_t& owner : mb.row_owner) owner = index[owner];
}

int64_t Engine::schedule(const Sequence& s, const Request& r, int64_t budget, StepBatch& batch) const {
  const int64_t prompt_len = int64_t(r.prompt.size());
  const int64_t context_len = prompt_len + int64_t(s.generated.size());
  int64_t n = std::min(budget, context_len - s.fed);
  if (options_.prefill_chunk > 0) n = std::min(n, options_.prefill_chunk);
  if (n <= 0) return 0;
  const int seq = int(batch.n_seqs());
  for (int64_t k = 0; k < n; ++k) {
    const int64_t pos = s.fed + k;
    batch.tokens.push_back(pos < prompt_len ? r.prompt[size_t(pos)] : s.generated[size_t(pos - prompt_len)]);
    batch.positions.push_back(int(pos));
    batch.seqs.push_back(seq);
  }
  batch.blocks.insert(batch.blocks.end(), s.blocks.begin(), s.blocks.end());
  batch.tables.push_back(int(batch.blocks.size()));
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

void Engine::build_step(MicroBatch& mb, const std::vector<Request>& requests) {
  mb.batch.clear();
  mb.row_owner.clear();
  mb.fed_now.assign(mb.active.size(), 0);
  int64_t budget = runner_.max_step_tokens();
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < mb.active.size(); ++i) {
      const Request& r = requests[mb.active[i].request];
      const int64_t left = int64_t(r.prompt.size() + mb.active[i].generated.size()) - mb.active[i].fed;
      const bool decoding = left == 1;
      if (mb.active[i].evicted || decoding != (pass == 0) || budget == 0) continue;
      if (decoding && !grow(mb, i, mb.active[i].fed + 1)) continue;
      const Sequence& s = mb.active[i];
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
  drop_evicted(mb);
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
    publish_full(s, requests[s.request]);
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
  // Retire finished sequences, freeing their blocks for the next admissions.
  for (Sequence& s : mb.active) {
    if (!s.finished) continue;
    release(s);
    s.result.token_ids = s.generated;
    s.result.decode_s = run_timer_.seconds() - s.result.queue_s - s.result.ttft_s;
    if (tokenizer_ && !s.text_cut) s.result.text = tokenizer_->decode(s.generated);
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
  for (int k = 0; k < n_mb; ++k) mbs[size_t(k)].capacity = size_t(even_split(options_.batch_size, n_mb, k).size());
  std::optional<size_t> waiting;  // a request taken but not admitted yet
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
      // Admit while there is room: preempted sequences first, then requests in the order the source gives. A
      // block per running sequence stays free for their next positions, so that admissions seldom cause preemptions.
      int64_t running = 0;
      for (const MicroBatch& other : mbs) running += int64_t(other.active.size());
      while (mb.active.size() < mb.capacity) {
        if (!preempted_.empty()) {
          Sequence& s = preempted_.front();
          if (!admit(s, requests[s.request], running)) break;
          ++running;
          mb.active.push_back(std::move(s));
          preempted_.pop_front();
          continue;
        }
        if (!waiting) waiting = source(false);
        if (!waiting) break;
        MESH_CHECK(*waiting < requests.size(), "request ", *waiting, " of ", requests.size());
        Sequence s;
        s.request = *waiting;
        s.rng = Rng(requests[s.request].sampling.seed);
        if (!admit(s, requests[s.request], running)) break;
        ++running;
        waiting.reset();
        mb.active.push_back(std::move(s));
      }
      if (mb.active.empty()) continue;
      build_step(mb, requests);
      if (mb.batch.size() == 0) continue;  // its only sequence was preempted
      Timer t_submit;
      runner_.submit(k, mb.batch);
      stats_.forward_s += t_submit.seconds();
      ++stats_.steps;
      mb.in_flight = busy = true;
    }
    size_t running = 0;
    for (const MicroBatch& mb : mbs) running += mb.active.size();
    stats_.peak_sequences = std::max(stats_.peak_sequences, int64_t(running));
    if (on_step) on_step();
    if (busy) continue;
    MESH_CHECK(preempted_.empty() && !waiting, "the scheduler stalled with ", preempted_.size() + (waiting ? 1 : 0),
               " sequences it could not admit into ", blocks_.size(), " free KV blocks");
    // Nothing is running and the source had nothing ready: wait for more, or for the end.
    waiting = source(true);
    if (!waiting) break;
  }
  stats_.total_s = run_timer_.seconds();
  stats_.kv_blocks = blocks_.size();
  stats_.kv_blocks_peak = blocks_.peak_used();
  stats_.kv_blocks_cached = blocks_.cached();
}

}  // namespace meshlm
