// meshlm generate: run a file of prompts through the model and write one JSON line per request.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/cli_common.h"
#include "app/commands.h"
#include "app/output_writer.h"
#include "app/prompt_file.h"
#include "comm/comm.h"
#include "io/hdf5_writer.h"
#include "io/weight_index.h"
#include "model/transformer.h"
#include "runtime/engine.h"

namespace meshlm {
namespace {

struct GenerateArgs {
  std::string model_dir, prompts, output, dump_logits;
  RequestDefaults defaults;
  int batch_size = 8;
  int max_context = 0;  // 0: from the requests, capped by the model
};

bool parse_generate(int argc, char** argv, GenerateArgs& a) {
  cxxopts::Options o("meshlm generate", "Generate completions for a JSONL file of prompts.");
  o.add_options()
      ("model", "Hugging Face model directory (config.json, *.safetensors, tokenizer.json)",
       cxxopts::value<std::string>()->default_value(default_model_dir()))
      ("prompts", "Prompt file, JSONL: {\"id\", \"prompt\" | \"prompt_ids\", optional max_tokens, temperature, "
                  "top_k, top_p, min_p, seed, stop}", cxxopts::value<std::string>())
      ("output", "Output JSONL file ('-' for stdout)", cxxopts::value<std::string>())
      ("max-tokens", "Tokens to generate per request", cxxopts::value<int>()->default_value("256"))
      ("temperature", "Sampling temperature (0 = greedy)", cxxopts::value<double>()->default_value("0"))
      ("top-k", "Keep the k most likely tokens (0 = off)", cxxopts::value<int>()->default_value("0"))
      ("top-p", "Keep the smallest set with this much probability (1 = off)", cxxopts::value<double>()->default_value("1"))
      ("min-p", "Drop tokens below min-p x the top probability (0 = off)", cxxopts::value<double>()->default_value("0"))
      ("seed", "Base seed: request i without its own seed uses seed + i", cxxopts::value<uint64_t>()->default_value("0"))
      ("batch-size", "Sequences generated together", cxxopts::value<int>()->default_value("8"))
      ("max-context", "Cap on positions per sequence (0 = what the requests need, up to the model's limit)",
       cxxopts::value<int>()->default_value("0"))
      ("dump-logits", "Write each request's first-step logits to this HDF5 file as /logits/<id>",
       cxxopts::value<std::string>());
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r)) return false;
  a.model_dir = r["model"].as<std::string>();
  a.prompts = required(r, "prompts");
  a.output = required(r, "output");
  if (r.count("dump-logits")) a.dump_logits = r["dump-logits"].as<std::string>();
  a.defaults.max_tokens = r["max-tokens"].as<int>();
  a.defaults.sampling.temperature = r["temperature"].as<double>();
  a.defaults.sampling.top_k = r["top-k"].as<int>();
  a.defaults.sampling.top_p = r["top-p"].as<double>();
  a.defaults.sampling.min_p = r["min-p"].as<double>();
  a.defaults.sampling.seed = r["seed"].as<uint64_t>();
  a.batch_size = r["batch-size"].as<int>();
  a.max_context = r["max-context"].as<int>();
  MESH_CHECK(a.defaults.max_tokens >= 1, "--max-tokens must be at least 1");
  MESH_CHECK(a.defaults.sampling.temperature >= 0, "--temperature must be >= 0");
  MESH_CHECK(a.defaults.sampling.top_k >= 0, "--top-k must be >= 0");
  MESH_CHECK(a.defaults.sampling.top_p > 0 && a.defaults.sampling.top_p <= 1, "--top-p must be in (0, 1]");
  MESH_CHECK(a.defaults.sampling.min_p >= 0 && a.defaults.sampling.min_p <= 1, "--min-p must be in [0, 1]");
  MESH_CHECK(a.batch_size >= 1, "--batch-size must be at least 1");
  MESH_CHECK(a.max_context >= 0, "--max-context must be >= 0");
  return true;
}

std::string completion_line(const Request& req, const Completion& c) {
  nlohmann::ordered_json j;
  j["id"] = req.id;
  j["text"] = c.text;
  j["token_ids"] = c.token_ids;
  j["prompt_tokens"] = req.prompt.size();
  j["completion_tokens"] = c.token_ids.size();
  j["finish_reason"] = c.finish_reason;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

int run_generate(int argc, char** argv) {
  GenerateArgs a;
  if (!parse_generate(argc, argv, a)) return 0;
  const ModelConfig config = load_model_config(a.model_dir);
  std::unique_ptr<Tokenizer> tokenizer;
  if (std::filesystem::exists(std::filesystem::path(a.model_dir) / "tokenizer.json")) {
    tokenizer = Tokenizer::load(a.model_dir);
  } else {
    std::fprintf(stderr, "meshlm: warning: %s has no tokenizer.json: prompts must be prompt_ids and text stays empty\n",
                 a.model_dir.c_str());
  }
  const int context_cap = a.max_context > 0 ? std::min(a.max_context, config.max_seq_len) : config.max_seq_len;
  const std::vector<Request> requests =
      read_prompt_file(a.prompts, a.defaults, tokenizer.get(), config.vocab_size, context_cap);
  if (!a.dump_logits.empty()) {
    for (const Request& r : requests) {
      const std::string why = LogitsDump::invalid_name(r.id);
      MESH_CHECK(why.empty(), a.prompts, ":", r.line, ": id \"", r.id, "\" cannot name an HDF5 dataset: it ", why);
    }
  }
  // Each sequence needs its prompt plus the tokens it may generate, within the cap.
  int64_t ctx = 1;
  for (const Request& r : requests) ctx = std::max<int64_t>(ctx, int64_t(r.prompt.size()) + r.max_tokens);
  ctx = std::min<int64_t>(ctx, context_cap);
  const int slots = int(std::min<size_t>(size_t(a.batch_size), requests.size()));

  OrderedJsonlWriter writer(a.output);
  std::unique_ptr<LogitsDump> dump;
  if (!a.dump_logits.empty()) dump = std::make_unique<LogitsDump>(a.dump_logits);

  const WeightIndex index(a.model_dir);
  const ParallelLayout layout = ParallelLayout::single(config);
  ModelWeights weights = load_weights(index, config, layout);
  const uint64_t weight_bytes = weights.bytes;
  Transformer model(config, std::move(weights), layout, slots, ctx, std::max(512, slots));
  std::fprintf(stderr, "meshlm: %s (%s), %d layers, dim %d, vocab %d; %zu requests, batch %d, context %lld\n",
               config.arch_name.c_str(), arch_label(config.arch), config.n_layers, config.dim, config.vocab_size,
               requests.size(), slots, (long long)ctx);

  EngineOptions opts;
  opts.batch_size = slots;
  opts.keep_first_logits = dump != nullptr;
  Engine engine(model, tokenizer.get(), config.eos_ids, opts);
  engine.run(requests, [&](size_t i, Completion&& c) {
    if (dump) dump->write(requests[i].id, c.first_logits.data(), int64_t(c.first_logits.size()));
    writer.put(i, completion_line(requests[i], c));
  });

  const EngineStats& s = engine.stats();
  std::fprintf(stderr,
               "meshlm: %zu requests, %lld prompt + %lld generated tokens in %.3f s: %.1f generated tok/s, "
               "%.1f total tok/s (%lld steps, forward %.3f s, sampling %.3f s); weights %.2f MB, KV cache %.2f MB\n",
               requests.size(), (long long)s.prompt_tokens, (long long)s.generated_tokens, s.total_s,
               s.generated_tokens / std::max(1e-9, s.total_s),
               (s.prompt_tokens + s.generated_tokens) / std::max(1e-9, s.total_s), (long long)s.steps, s.forward_s,
               s.sample_s, weight_bytes / 1e6, model.kv_bytes() / 1e6);
  return 0;
}

}  // namespace meshlm
