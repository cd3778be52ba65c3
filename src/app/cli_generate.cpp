// meshlm generate: run a file of prompts through the model on every rank of the job, and write one JSON line per
// request. The ranks form tp x pp x dp groups; each loads only its slice of the weights.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/cli_common.h"
#include "app/commands.h"
#include "app/progress.h"
#include "app/prompt_file.h"
#include "app/result_format.h"
#include "app/request_queue.h"
#include "app/resume.h"
#include "app/result_sink.h"
#include "app/run_metrics.h"
#include "app/setup.h"
#include "app/topology.h"
#include "comm/comm.h"
#include "comm/stall_watch.h"
#include "core/timer.h"
#include "io/hdf5_writer.h"
#include "kernels/matvec.h"
#include "model/transformer.h"
#include "runtime/engine.h"
#include "runtime/pipeline.h"

namespace meshlm {
namespace {

struct GenerateArgs {
  std::string model_arg;  // --model as given (names the model in the output); model_dir: where this rank reads it
  std::string model_dir, prompts, output, dump_logits, metrics_json, chat_template, h5;
  PromptOptions prompt_options;
  RequestDefaults defaults;
  LayoutFlags layout;
  int batch_size = 8;
  int max_batch_tokens = 512;  // tokens per step (prefill chunks + decode tokens)
  int logprobs = 0;            // top-k logprobs per generated token into --h5
  int prefill_chunk = 0;       // prompt tokens per sequence per step (0: up to max_batch_tokens)
  int micro_batches = 0;       // 0: one per pipeline stage
  int max_context = 0;         // 0: from the requests, capped by the model
  SpeedFlags speed;            // --threads, --weight-dtype, --wire-dtype, --comm-chunks
  bool in_input_order = false, resume = false;
  bool prefix_cache = true;    // --no-prefix-cache turns it off
};

bool parse_generate(int argc, char** argv, GenerateArgs& a, bool quiet) {
  cxxopts::Options o("meshlm generate", "Generate completions for a JSONL file of prompts, on every rank of an "
                                        "mpirun job.\n  mpirun --hostfile hosts -np 4 meshlm generate --model DIR "
                                        "--prompts p.jsonl --output out.jsonl --tp 2 --pp 2");
  o.add_options()
      ("model", "Hugging Face model directory (config.json, *.safetensors, tokenizer.json), present on every host",
       cxxopts::value<std::string>()->default_value(default_model_dir()))
      ("prompts", "Prompt file: JSONL {\"id\", \"prompt\" | \"prompt_ids\" | \"messages\", optional max_tokens, "
                  "temperature, top_k, top_p, min_p, seed, stop}, OpenAI batch JSONL, or plain text (one prompt per "
                  "line); read by rank 0 only", cxxopts::value<std::string>())
      ("prompt-format", "auto | jsonl | openai | text", cxxopts::value<std::string>()->default_value("auto"))
      ("on-error", "A bad prompt line: 'skip' writes an error record in its place and goes on; 'fail' stops "
                   "before any generation", cxxopts::value<std::string>()->default_value("skip"))
      ("output-order", "completion: write each line as its request finishes; input: in prompt-file order",
       cxxopts::value<std::string>()->default_value("completion"))
      ("resume", "Skip the requests already in --output (from a killed run), drop its partial last line, append the rest")
      ("chat-template", "Jinja file (or JSON with chat_template) for \"messages\", instead of the model's",
       cxxopts::value<std::string>()->default_value(""))
      ("output", "Output JSONL file ('-' for stdout), written by rank 0", cxxopts::value<std::string>())
      ("max-tokens", "Tokens to generate per request", cxxopts::value<int>()->default_value("256"))
      ("temperature", "Sampling temperature (0 = greedy)", cxxopts::value<double>()->default_value("0"))
      ("top-k", "Keep the k most likely tokens (0 = off)", cxxopts::value<int>()->default_value("0"))
      ("top-p", "Keep the smallest set with this much probability (1 = off)", cxxopts::value<double>()->default_value("1"))
      ("min-p", "Drop tokens below min-p x the top probability (0 = off)", cxxopts::value<double>()->default_value("0"))
      ("seed", "Base seed: request i without its own seed uses seed + i", cxxopts::value<uint64_t>()->default_value("0"))
      ("max-batch,batch-size", "Sequences in flight per replica; a finished one's slot takes the next request at once",
       cxxopts::value<int>()->default_value("8"))
      ("max-batch-tokens", "Tokens per step: prefill chunks and decode tokens together",
       cxxopts::value<int>()->default_value("512"))
      ("prefill-chunk", "Prompt tokens one sequence may prefill per step (0 = up to --max-batch-tokens); long "
                        "prompts prefill in chunks mixed with the running requests' decode tokens",
       cxxopts::value<int>()->default_value("0"))
      ("no-prefix-cache", "Prefill every prompt in full, instead of reusing the KV blocks of a prefix (system prompt, "
                          "shared document) that an earlier request of the job computed")
      ("max-context", "Cap on positions per sequence (0 = what the requests need, up to the model's limit)",
       cxxopts::value<int>()->default_value("0"))
      ("micro-batches", "Micro-batches in flight through the pipeline (default: one per stage)",
       cxxopts::value<int>())
      ("h5", "Also write results as HDF5: per request id, tokens, finish reason and timings, run metadata as "
             "attributes (schema in README)", cxxopts::value<std::string>())
      ("logprobs", "Keep each generated token's log-probability and the K most likely tokens' in the --h5 file",
       cxxopts::value<int>()->default_value("0"))
      ("metrics-json", "Write the run summary (per-rank bytes, times, memory) to this JSON file",
       cxxopts::value<std::string>())
      ("dump-logits", "Write each request's first-step logits to this HDF5 file as /logits/<id>",
       cxxopts::value<std::string>());
  add_layout_options(o);
  add_speed_options(o);
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r, quiet)) return false;
  a.layout = read_layout_flags(r);
  a.model_arg = a.model_dir = r["model"].as<std::string>();
  a.prompts = required(r, "prompts");
  a.output = required(r, "output");
  a.prompt_options.format = parse_prompt_format(r["prompt-format"].as<std::string>());
  const std::string on_error = r["on-error"].as<std::string>();
  MESH_CHECK(on_error == "skip" || on_error == "fail", "--on-error must be skip or fail, got '", on_error, "'");
  a.prompt_options.fail_on_error = on_error == "fail";
  a.chat_template = r["chat-template"].as<std::string>();
  const std::string order = r["output-order"].as<std::string>();
  MESH_CHECK(order == "completion" || order == "input", "--output-order must be completion or input, got '", order, "'");
  a.in_input_order = order == "input";
  a.resume = r.count("resume") > 0;
  a.prefix_cache = r.count("no-prefix-cache") == 0;
  if (r.count("dump-logits")) a.dump_logits = r["dump-logits"].as<std::string>();
  if (r.count("h5")) a.h5 = r["h5"].as<std::string>();
  a.logprobs = r["logprobs"].as<int>();
  MESH_CHECK(a.logprobs >= 0, "--logprobs must be >= 0");
  MESH_CHECK(a.logprobs == 0 || !a.h5.empty(), "--logprobs K goes into the results file: give --h5 FILE too");
  if (r.count("metrics-json")) a.metrics_json = r["metrics-json"].as<std::string>();
  if (r.count("micro-batches")) a.micro_batches = r["micro-batches"].as<int>();
  a.defaults.max_tokens = r["max-tokens"].as<int>();
  a.defaults.sampling.temperature = r["temperature"].as<double>();
  a.defaults.sampling.top_k = r["top-k"].as<int>();
  a.defaults.sampling.top_p = r["top-p"].as<double>();
  a.defaults.sampling.min_p = r["min-p"].as<double>();
  a.defaults.sampling.seed = r["seed"].as<uint64_t>();
  a.batch_size = r["max-batch"].as<int>();
  a.max_batch_tokens = r["max-batch-tokens"].as<int>();
  a.prefill_chunk = r["prefill-chunk"].as<int>();
  a.max_context = r["max-context"].as<int>();
  a.speed = read_speed_flags(r);
  MESH_CHECK(a.defaults.max_tokens >= 1, "--max-tokens must be at least 1");
  MESH_CHECK(a.defaults.sampling.temperature >= 0, "--temperature must be >= 0");
  MESH_CHECK(a.defaults.sampling.top_k >= 0, "--top-k must be >= 0");
  MESH_CHECK(a.defaults.sampling.top_p > 0 && a.defaults.sampling.top_p <= 1, "--top-p must be in (0, 1]");
  MESH_CHECK(a.defaults.sampling.min_p >= 0 && a.defaults.sampling.min_p <= 1, "--min-p must be in [0, 1]");
  MESH_CHECK(a.batch_size >= 1, "--max-batch (--batch-size) must be at least 1");
  MESH_CHECK(a.max_batch_tokens >= a.batch_size, "--max-batch-tokens (", a.max_batch_tokens,
             ") must be at least --max-batch (", a.batch_size, "): every running sequence decodes a token per step");
  MESH_CHECK(a.prefill_chunk >= 0, "--prefill-chunk must be >= 0");
  MESH_CHECK(a.max_context >= 0, "--max-context must be >= 0");
  MESH_CHECK(!a.resume || a.output != "-", "--resume needs an output file (--output FILE), not stdout");
  MESH_CHECK(!r.count("tp") || a.layout.tp >= 1, "--tp must be at least 1");
  MESH_CHECK(!r.count("pp") || a.layout.pp >= 1, "--pp must be at least 1");
  MESH_CHECK(!r.count("micro-batches") || a.micro_batches >= 1, "--micro-batches must be at least 1");
  return true;
}

// What every rank must agree on before allocating: the KV cache shape and the micro-batching.
struct JobShape {
  int64_t ctx = 1;        // positions per sequence
  int slots = 1;          // sequences in flight per replica
  int micro_batches = 1;
};

JobShape job_shape(const GenerateArgs& a, const std::vector<Request>& requests, const Topology& t, int context_cap) {
  JobShape s;
  for (const Request& r : requests) s.ctx = std::max<int64_t>(s.ctx, int64_t(r.prompt.size()) + r.max_tokens);
  s.ctx = std::min<int64_t>(s.ctx, context_cap);
  const size_t per_replica = (requests.size() + size_t(t.dp) - 1) / size_t(t.dp);  // replica d takes i % dp == d
  s.slots = int(std::max<size_t>(1, std::min<size_t>(size_t(a.batch_size), per_replica)));
  s.micro_batches = std::min(a.micro_batches > 0 ? a.micro_batches : t.pp, s.slots);
  return s;
}

// What the planner weighs the layouts by: these requests' counts and lengths.
Workload workload_of(const GenerateArgs& a, const std::vector<Request>& requests, int context_cap) {
  Workload w;
  w.requests = int64_t(requests.size());
  w.max_batch = a.batch_size, w.max_batch_tokens = a.max_batch_tokens;
  double prompt = 0, gen = 0;
  w.ctx = 1;
  for (const Request& r : requests) {
    prompt += double(r.prompt.size()), gen += double(r.max_tokens);
    w.ctx = std::max<int64_t>(w.ctx, int64_t(r.prompt.size()) + r.max_tokens);
  }
  w.ctx = std::min<int64_t>(w.ctx, context_cap);
  if (!requests.empty()) w.prompt_len = prompt / double(requests.size()), w.gen_len = gen / double(requests.size());
  return w;
}

// Run metadata for --h5: what ran, where, and with which layout.
std::map<std::string, std::string> run_attributes(const GenerateArgs& a, const Topology& t, const HostFacts& facts) {
  std::string hosts;
  for (const std::string& h : facts.hosts)
    if (hosts.find(h) == std::string::npos) hosts += (hosts.empty() ? "" : ",") + h;
  return {{"model", a.model_arg},
          {"meshlm_version", MESHLM_VERSION},
          {"layout", "tp " + std::to_string(t.tp) + " x pp " + std::to_string(t.pp) + " x dp " + std::to_string(t.dp)},
          {"hosts", hosts},
          {"prompt_file", a.prompts}};
}

// Rank 0's --dump-logits and --h5 writers. With --resume they keep the earlier run's records of the requests the
// output already holds (done_keys), and drop the rest.
void open_hdf5_outputs(const GenerateArgs& a, const std::map<std::string, std::string>& attributes,
                       const std::set<std::string>& done_keys, std::unique_ptr<LogitsDump>& dump,
                       std::unique_ptr<H5Results>& results) {
  const std::set<std::string> done = completed_ids(done_keys);
  if (!a.dump_logits.empty())
    dump = a.resume ? std::make_unique<LogitsDump>(a.dump_logits, done) : std::make_unique<LogitsDump>(a.dump_logits);
  if (!a.h5.empty())
    results = a.resume ? H5Results::resume(a.h5, attributes, a.logprobs, done)
                       : std::make_unique<H5Results>(a.h5, attributes, a.logprobs);
}

void print_banner(const ModelConfig& c, const Topology& t, const JobShape& s, size_t n_requests, int threads,
                  int64_t kv_blocks, double kv_bytes) {
  std::fprintf(stderr, "meshlm: %s (%s), %d layers, dim %d, vocab %d; %zu requests, batch %d, context %lld\n",
               c.arch_name.c_str(), arch_label(c.arch), c.n_layers, c.dim, c.vocab_size, n_requests, s.slots,
               (long long)s.ctx);
  std::string stages;
  int64_t begin = 0;
  for (int64_t n : t.layer_counts) {
    stages += (stages.empty() ? "" : " ") + ("[" + std::to_string(begin) + "," + std::to_string(begin + n) + ")");
    begin += n;
  }
  std::fprintf(stderr, "meshlm: layout tp %d x pp %d x dp %d (%s); stage layers %s; %d micro-batch%s\n", t.tp, t.pp,
               t.dp, t.how.c_str(), stages.c_str(), s.micro_batches, s.micro_batches == 1 ? "" : "es");
  if (c.is_moe())
    std::fprintf(stderr, "meshlm: mixture of experts: %d experts, top %d, %s split over the %d tensor rank%s\n",
                 c.moe.n_experts, c.moe.top_k, moe_split_name(t.moe_split), t.tp, t.tp == 1 ? "" : "s");
  std::fprintf(stderr, "meshlm: kernels %s, %d thread%s on rank 0; KV cache %lld blocks of %lld positions (%.1f MB on "
                       "rank 0, %.1f sequences at full context)\n", compute_label(compute_mode()).c_str(), threads,
               threads == 1 ? "" : "s", (long long)kv_blocks, (long long)KVCache::kBlockTokens, kv_bytes / 1e6,
               double(kv_blocks) / double(KVCache::blocks_for(s.ctx)));
  if (t.pp > 1 && s.micro_batches < t.pp)
    std::fprintf(stderr, "meshlm: warning: %d micro-batches cannot keep %d stages busy (raise --max-batch)\n",
                 s.micro_batches, t.pp);
}

}  // namespace

int run_generate(int argc, char** argv, const MpiSession& mpi) {
  const bool rank0 = mpi.world_rank() == 0;
  GenerateArgs a;
  ModelConfig config;
  bool help = false;
  mpi.all_or_none("generate", [&] { help = !parse_generate(argc, argv, a, !rank0); });
  if (help) return 0;
  const ModelSource source = open_model(mpi, "generate", a.model_dir, a.layout, config);
  mpi.all_or_none("generate", [&] {
    MESH_CHECK(a.logprobs <= config.vocab_size, "--logprobs ", a.logprobs, " is more than the ", config.vocab_size,
               " tokens of the vocabulary");
  });

  const HostFacts surveyed = survey_hosts(mpi, "generate", a.model_dir, a.layout);

  // Requests: rank 0 reads and tokenizes the prompt file; the other ranks get the parsed requests.
  const int context_cap = a.max_context > 0 ? std::min(a.max_context, config.max_seq_len) : config.max_seq_len;
  const bool has_tokenizer = std::filesystem::exists(std::filesystem::path(a.model_dir) / "tokenizer.json");
  std::unique_ptr<Tokenizer> tokenizer;
  PromptFile file;
  std::set<std::string> done_keys;  // rank 0, --resume: what the output already holds
  mpi.all_or_none("generate", [&] {
    if (!rank0) return;
    if (has_tokenizer) tokenizer = Tokenizer::load(a.model_dir);
    else
      std::fprintf(stderr, "meshlm: warning: %s has no tokenizer.json: prompts must be prompt_ids and text stays "
                           "empty\n", a.model_dir.c_str());
    a.prompt_options.max_context = context_cap;
    file = read_prompt_file(a.prompts, a.model_dir, a.chat_template, tokenizer.get(), a.defaults, config.vocab_size,
                            a.prompt_options);
    if (a.resume) {
      done_keys = completed_keys(a.output);
      const size_t done = drop_completed(file, done_keys);
      std::fprintf(stderr, "meshlm: resuming %s: %zu lines already done, %zu to go\n", a.output.c_str(), done,
                   file.entries);
    }
    for (const Request& r : file.requests) {
      const std::string why = a.dump_logits.empty() ? "" : LogitsDump::invalid_name(r.id);
      MESH_CHECK(why.empty(), a.prompts, ":", r.line, ": id \"", r.id, "\" cannot name an HDF5 dataset: it ", why);
    }
  });
  std::vector<Request>& requests = file.requests;
  {
    Group world(MPI_COMM_WORLD);
    std::vector<uint8_t> blob;
    if (rank0) {
      const std::string text = requests_to_json(requests);
      blob.assign(text.begin(), text.end());
    }
    world.bcast_bytes(blob, 0);
    if (!rank0) requests = requests_from_json(std::string(blob.begin(), blob.end()));
  }

  // Layout: from the flags, or planned for these requests on these hosts.
  const RankPlan plan = plan_ranks(mpi, "generate", surveyed, a.model_dir, a.layout, config, a.speed,
                                   workload_of(a, requests, context_cap));
  const HostFacts& facts = plan.facts;
  const Topology& topo = plan.topo;
  const ParallelLayout& layout = plan.layout;
  const int threads = plan.threads;
  const bool driver = plan.driver();
  mpi.all_or_none("generate", [&] {
    if (driver && !rank0 && has_tokenizer) tokenizer = Tokenizer::load(a.model_dir);
  });
  Groups groups = Groups::split(topo.tp, topo.pp);
  const JobShape shape = job_shape(a, requests, topo, context_cap);

  // Memory: what each rank will hold, against its host's, before anything is read.
  MemoryNeed need;
  mpi.all_or_none("generate", [&] { need = memory_need(a.model_dir, config, layout, shape.slots, shape.ctx, a.speed); });
  const int64_t kv_blocks = check_memory(mpi, "generate", plan, need, a.layout);
  const FetchStats fetched = fetch_slices(mpi, "generate", source, config, layout, a.speed.weight_dtype);

  // Weights: each rank reads only its rows, columns and layers.
  std::unique_ptr<Transformer> model;
  std::unique_ptr<ResultSink> sink;
  uint64_t weight_bytes = 0;
  int kept_unquantized = 0;
  mpi.all_or_none("generate", [&] {
    std::vector<std::string> ids(rank0 ? file.entries : 0);  // rank 0: dataset names by output position
    if (rank0)
      for (const Request& r : requests) ids[r.entry] = r.id;
    std::unique_ptr<LogitsDump> dump;
    std::unique_ptr<H5Results> results;
    if (rank0) open_hdf5_outputs(a, run_attributes(a, topo, facts), done_keys, dump, results);
    sink = std::make_unique<ResultSink>(groups.world, a.output, std::move(ids), a.in_input_order, a.resume,
                                        std::move(dump), std::move(results));
    for (const LineError& e : file.errors) sink->put(e.entry, error_line(file.format, e), {}, nullptr);
    LoadedModel loaded = load_model(a.model_dir, config, layout, &groups.tp, shape.slots, kv_blocks, shape.ctx,
                                    a.max_batch_tokens, a.speed);
    kept_unquantized = loaded.kept_unquantized;
    weight_bytes = loaded.weight_bytes;
    model = std::move(loaded.model);
  });
  if (rank0) print_banner(config, topo, shape, requests.size(), threads, kv_blocks, double(model->kv_bytes()));
  // From here every wait on a peer is bounded (a pulled cable ends the job with its name instead of a hang).
  if (mpi.world_size() > 1) stall_watch().arm(a.layout.stall_timeout, mpi.world_rank(), facts.hosts);
  if (rank0 && is_quantized(a.speed.weight_dtype))
    std::fprintf(stderr, "meshlm: weights quantized to %s at load%s\n", dtype_name(a.speed.weight_dtype),
                 kept_unquantized ? " (some matrices kept as stored: in_features not a multiple of 32)" : "");

  // Generate: each replica's driver runs the engine on its share; every other rank serves steps.
  const Timer wall;
  const CommStats comm_start = comm_stats();
  Pipeline pipeline(*model, groups, shape.micro_batches, a.speed.comm.wire);
  EngineStats stats;
  int64_t my_requests = 0;
  Latencies latencies;
  Progress progress(file.entries, rank0);
  if (driver) {
    // Replicas take requests from one queue on rank 0, so a faster replica takes more.
    std::vector<int> drivers;
    for (int d = 0; d < topo.dp; ++d) drivers.push_back(world_rank_of({d, 0, 0}, topo.tp, topo.pp));
    RequestQueue queue(groups.world, drivers, requests, shape.slots);
    const std::string model_name = std::filesystem::path(a.model_arg).lexically_normal().filename().string();
    EngineOptions opts;
    opts.batch_size = shape.slots;
    opts.prefill_chunk = a.prefill_chunk;
    opts.top_logprobs = a.logprobs;
    opts.keep_first_logits = !a.dump_logits.empty();
    opts.prefix_cache = a.prefix_cache;
    Engine engine(pipeline, tokenizer.get(), config.eos_ids, opts);
    const auto between_steps = [&] {
      queue.serve();
      sink->poll();
      progress.update(sink->written(), sink->tokens());
    };
    engine.run(
        requests, [&](bool wait) { return queue.take(wait); },
        [&](size_t i, Completion&& c) {
          latencies.ttft.push_back(c.ttft_s);
          if (c.token_ids.size() > 1) latencies.tpot.push_back(c.decode_s / double(c.token_ids.size() - 1));
          const Request& r = requests[i];
          const ResultRow row{r.id, c.finish_reason, c.token_ids, int32_t(r.prompt.size()),
                              c.queue_s, c.ttft_s, c.decode_s, c.chosen_logprob, c.top_logprobs, c.top_ids};
          sink->put(r.entry, completion_line(r, c, model_name), c.first_logits, &row);
        },
        between_steps);
    pipeline.stop();
    queue.finish(between_steps);
    my_requests = queue.taken();
    stats = engine.stats();
  } else {
    pipeline.serve();
  }
  sink->finish(file.entries);
  progress.finish(sink->written(), sink->tokens());
  sink.reset();

  // Summary: every rank's share, on rank 0.
  RankMetrics m;
  m.world_rank = mpi.world_rank(), m.dp = layout.dp_rank, m.pp = layout.pp_rank, m.tp = layout.tp_rank;
  m.layer_begin = layout.layers.begin, m.layer_end = layout.layers.end;
  m.received_bytes = fetched.bytes, m.received_s = fetched.seconds;
  m.weight_bytes = weight_bytes, m.kv_bytes = model->kv_bytes(), m.peak_rss = peak_rss_bytes();
  m.kv_bytes_per_token = double(model->kv_bytes()) / double(std::max<int64_t>(1, kv_blocks * KVCache::kBlockTokens));
  const CommStats comm = comm_stats().since(comm_start);
  m.bytes_sent = comm.bytes_sent, m.comm_s = comm.seconds;
  std::copy(std::begin(comm.by_op), std::end(comm.by_op), std::begin(m.comm_ops));
  m.compute_s = pipeline.compute_seconds(), m.wall_s = wall.seconds();
  m.requests = my_requests, m.prompt_tokens = stats.prompt_tokens, m.generated_tokens = stats.generated_tokens;
  m.reused_tokens = stats.reused_tokens, m.preemptions = stats.preemptions, m.peak_sequences = stats.peak_sequences;
  m.kv_blocks = stats.kv_blocks, m.kv_blocks_peak = stats.kv_blocks_peak, m.kv_blocks_cached = stats.kv_blocks_cached;
  const std::vector<int64_t>& expert_rows = model->moe().expert_rows();
  m.expert_work = double(std::accumulate(expert_rows.begin(), expert_rows.end(), int64_t(0))) *
                  double(layout.expert_hidden.size()) / std::max(1, config.moe.expert_dim);
  std::snprintf(m.host, sizeof m.host, "%s", mpi.host().c_str());
  const std::vector<RankMetrics> all = gather_metrics(groups.world, m);
  const Latencies all_latencies = gather_latencies(groups.world, latencies);
  auto all_expert_rows = gather_expert_rows(groups.world, expert_rows);
  if (rank0) {
    const RunInfo info{a.model_arg, topo, shape.micro_batches, shape.slots, all_latencies, std::move(all_expert_rows)};
    print_summary(stderr, info, all);
    if (!a.metrics_json.empty()) write_metrics_json(a.metrics_json, info, all);
  }
  return 0;
}

}  // namespace meshlm
