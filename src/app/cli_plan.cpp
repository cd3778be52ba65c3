// meshlm plan: measure the hosts and links of this mpirun job, predict every layout of its ranks for a workload,
// print them ranked with the command that runs the best, and (--verify K) run the best K for a few steps to put the
// measured speed beside the predicted one.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/cli_common.h"
#include "app/cluster_probe.h"
#include "app/commands.h"
#include "app/planner.h"
#include "app/prompt_file.h"
#include "app/setup.h"
#include "comm/comm.h"
#include "comm/group.h"
#include "core/timer.h"
#include "kernels/matmul.h"
#include "runtime/engine.h"
#include "runtime/pipeline.h"
#include "tokenizer/tokenizer.h"

namespace meshlm {
namespace {

struct PlanArgs {
  std::string model_arg, model_dir, prompts, json;  // model_arg: --model as given; model_dir: where it is read here
  ModelSource source;
  LayoutFlags layout;
  SpeedFlags speed;
  Workload work;
  int verify = 0, verify_gen = 16, show = 20;
};

bool parse_plan(int argc, char** argv, PlanArgs& a, bool quiet) {
  cxxopts::Options o("meshlm plan", "Measure the hosts and links of this job, predict every tp x pp x dp layout of "
                                    "its ranks for a workload, and print them ranked with the command for the best.\n"
                                    "  mpirun --hostfile hosts -np 4 meshlm plan --model DIR --prompts p.jsonl");
  o.add_options()
      ("model", "Hugging Face model directory", cxxopts::value<std::string>()->default_value(default_model_dir()))
      ("prompts", "Prompt file whose requests' count and lengths make the workload (read by rank 0)",
       cxxopts::value<std::string>())
      ("batch", "Requests in the workload (without --prompts)", cxxopts::value<int64_t>()->default_value("64"))
      ("prompt-len", "Prompt tokens per request (without --prompts)", cxxopts::value<int>()->default_value("128"))
      ("gen-len", "Generated tokens per request (without --prompts)", cxxopts::value<int>()->default_value("128"))
      ("max-batch", "Sequences in flight per replica, as generate takes it", cxxopts::value<int>()->default_value("8"))
      ("max-batch-tokens", "Tokens per step, as generate takes it", cxxopts::value<int>()->default_value("512"))
      ("json", "Write the hosts, links and the ranked table to this JSON file", cxxopts::value<std::string>())
      ("verify", "Run the best K layouts that fit for a few steps each and print measured beside predicted",
       cxxopts::value<int>()->default_value("0"))
      ("verify-gen", "Generated tokens per request in each --verify run", cxxopts::value<int>()->default_value("16"))
      ("show", "Rows of the table to print", cxxopts::value<int>()->default_value("20"));
  add_layout_options(o);
  add_speed_options(o);
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r, quiet)) return false;
  a.layout = read_layout_flags(r);
  MESH_CHECK(a.layout.tp == 0 && a.layout.pp == 0, "plan chooses --tp and --pp itself; leave them out");
  a.speed = read_speed_flags(r);
  a.model_dir = r["model"].as<std::string>();
  if (r.count("prompts")) a.prompts = r["prompts"].as<std::string>();
  if (r.count("json")) a.json = r["json"].as<std::string>();
  a.work.requests = r["batch"].as<int64_t>();
  a.work.prompt_len = r["prompt-len"].as<int>(), a.work.gen_len = r["gen-len"].as<int>();
  a.work.max_batch = r["max-batch"].as<int>(), a.work.max_batch_tokens = r["max-batch-tokens"].as<int>();
  a.verify = r["verify"].as<int>(), a.verify_gen = r["verify-gen"].as<int>(), a.show = r["show"].as<int>();
  MESH_CHECK(a.work.requests >= 1 && a.work.prompt_len >= 1 && a.work.gen_len >= 1,
             "--batch, --prompt-len and --gen-len must be at least 1");
  MESH_CHECK(a.work.max_batch >= 1 && a.work.max_batch_tokens >= a.work.max_batch,
             "--max-batch must be at least 1 and --max-batch-tokens at least --max-batch");
  MESH_CHECK(a.verify >= 0 && a.verify_gen >= 1 && a.show >= 1, "--verify, --verify-gen and --show must be positive");
  return true;
}

// Rank 0 reads the prompt file for the workload's numbers; every rank gets them.
void workload_from_prompts(const MpiSession& mpi, PlanArgs& a, const ModelConfig& config) {
  double numbers[4] = {0, 0, 0, 0};  // requests, mean prompt, mean max_tokens, longest prompt + max_tokens
  mpi.all_or_none("plan", [&] {
    if (mpi.world_rank() != 0 || a.prompts.empty()) return;
    std::unique_ptr<Tokenizer> tokenizer;
    if (std::filesystem::exists(std::filesystem::path(a.model_dir) / "tokenizer.json"))
      tokenizer = Tokenizer::load(a.model_dir);
    PromptOptions options;
    options.max_context = config.max_seq_len;
    const PromptFile file = read_prompt_file(a.prompts, a.model_dir, "", tokenizer.get(), RequestDefaults{},
                                             config.vocab_size, options);
    MESH_CHECK(!file.requests.empty(), a.prompts, ": no requests to plan for");
    for (const Request& r : file.requests) {
      numbers[1] += double(r.prompt.size()), numbers[2] += r.max_tokens;
      numbers[3] = std::max(numbers[3], double(r.prompt.size() + size_t(r.max_tokens)));
    }
    numbers[0] = double(file.requests.size());
    numbers[1] /= numbers[0], numbers[2] /= numbers[0];
  });
  MPI_CHECK(MPI_Bcast(numbers, 4, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  if (numbers[0] > 0) {
    a.work.requests = int64_t(numbers[0]), a.work.prompt_len = numbers[1], a.work.gen_len = numbers[2];
    a.work.ctx = std::min<int64_t>(int64_t(numbers[3]), config.max_seq_len);
  } else {
    a.work.ctx = std::min<int64_t>(int64_t(a.work.prompt_len + a.work.gen_len), config.max_seq_len);
  }
}

std::string layout_name(const PlanRow& r, const ModelConfig& c) {
  std::string s = "tp " + std::to_string(r.tp) + " x pp " + std::to_string(r.pp) + " x dp " + std::to_string(r.dp);
  if (c.is_moe()) s += std::string(" (") + moe_split_name(r.moe_split) + ")";
  return s;
}

std::string command_line(const PlanArgs& a, const PlanRow& best, const ModelConfig& c, int world) {
  std::string cmd = "mpirun --hostfile HOSTFILE -np " + std::to_string(world) + " meshlm generate --model " +
                    a.model_arg + " " + best.command_flags();
  if (c.is_moe() && best.tp > 1) cmd += std::string(" --moe-split ") + moe_split_name(best.moe_split);
  if (a.layout.memory_limit > 0) cmd += " --memory-limit " + std::to_string(int64_t(a.layout.memory_limit));
  if (a.speed.weight_dtype != DType::kF32) cmd += std::string(" --weight-dtype ") + dtype_name(a.speed.weight_dtype);
  cmd += " --max-batch " + std::to_string(a.work.max_batch);
  cmd += " --prompts " + (a.prompts.empty() ? std::string("PROMPTS.jsonl") : a.prompts) + " --output OUT.jsonl";
  return cmd;
}

void print_cluster(const ClusterProbe& probe, const PlanArgs& a, const ModelConfig& c, double bytes) {
  const ClusterSpec& cl = probe.cluster;
  std::printf("meshlm plan: %d ranks on %zu host%s, measured in %.1f s\n\n", cl.world_size(), cl.hosts.size(),
              cl.hosts.size() == 1 ? "" : "s", probe.seconds);
  std::printf("| host | ranks | cores | memory for meshlm | read GB/s | sgemm GFLOP/s |\n|---|---|---|---|---|---|\n");
  for (const HostSpec& h : cl.hosts)
    std::printf("| %s | %d | %d | %s | %.1f | %.0f |\n", h.name.c_str(), h.ranks, h.cores, bytes_text(h.memory).c_str(),
                h.read_bw / 1e9, h.flops / 1e9);
  for (const auto& [name, samples, link] : {std::tuple{"between hosts", &probe.inter, cl.inter},
                                            std::tuple{"inside a host", &probe.intra, cl.intra}}) {
    if (samples->empty()) continue;
    std::printf("\nlink %s: %.1f us, %.2f GB/s (one way:", name, link.latency * 1e6, link.bandwidth / 1e9);
    for (const LinkSample& s : *samples) std::printf(" %.0f B %.1f us;", s.bytes, s.seconds * 1e6);
    std::printf(")\n");
  }
  std::printf("\nmodel: %s, %d layers, %s as loaded; workload: %lld requests, prompt %.0f, generate %.0f, batch %d "
              "per replica, context %lld\n\n", c.arch_name.c_str(), c.n_layers, bytes_text(bytes).c_str(),
              (long long)a.work.requests, a.work.prompt_len, a.work.gen_len, a.work.max_batch,
              (long long)a.work.ctx);
}

void print_table(const std::vector<PlanRow>& rows, const ModelConfig& c, int show) {
  std::printf("| # | layout | layers per stage | fits | memory per host | prefill tok/s | decode tok/s | "
              "job tok/s | bound by |\n|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < rows.size() && int(i) < show; ++i) {
    const PlanRow& r = rows[i];
    std::string split, memory;
    for (int64_t n : r.layer_counts) split += (split.empty() ? "" : ",") + std::to_string(n);
    for (double b : r.host_bytes) memory += (memory.empty() ? "" : ", ") + bytes_text(b);
    std::printf("| %zu | %s | %s | %s | %s | %.0f | %.0f | %.1f | %s |\n", i + 1, layout_name(r, c).c_str(),
                split.c_str(), r.fits ? "yes" : "no", memory.c_str(), r.prefill_tps, r.decode_tps, r.tokens_per_s,
                r.bound.c_str());
  }
}

nlohmann::json row_json(const PlanRow& r) {
  return {{"tp", r.tp}, {"pp", r.pp}, {"dp", r.dp}, {"moe_split", moe_split_name(r.moe_split)},
          {"layer_counts", r.layer_counts}, {"fits", r.fits}, {"host_bytes", r.host_bytes},
          {"prefill_tok_s", r.prefill_tps}, {"decode_tok_s", r.decode_tps}, {"tok_s", r.tokens_per_s},
          {"seconds", r.seconds}, {"bound", r.bound}, {"flags", r.command_flags()}};
}

// Runs `requests` synthetic requests on this layout (replicas share them as generate does); returns generated
// tokens per second of the whole job.
double measure_layout(const PlanRow& row, const PlanArgs& a, const ModelConfig& config, const MpiSession& mpi,
                      int64_t requests) {
  const int prompt = std::max(1, int(a.work.prompt_len));
  const int64_t ctx = int64_t(prompt) + a.verify_gen + 1;
  const int slots = int(std::max<int64_t>(1, std::min<int64_t>(a.work.max_batch, (requests + row.dp - 1) / row.dp)));
  ParallelLayout layout;
  Groups groups = Groups::split(row.tp, row.pp);
  LoadedModel loaded;
  mpi.all_or_none("plan", [&] {
    layout = ParallelLayout::make(config, mpi.world_size(), mpi.world_rank(), row.tp, row.pp, row.layer_counts,
                                  row.moe_split);
  });
  fetch_slices(mpi, "plan", a.source, config, layout, a.speed.weight_dtype);
  mpi.all_or_none("plan", [&] {
    loaded = load_model(a.model_dir, config, layout, &groups.tp, slots, slots * KVCache::blocks_for(ctx), ctx,
                        a.work.max_batch_tokens, a.speed);
  });
  Pipeline pipeline(*loaded.model, groups, std::min(row.pp, slots), a.speed.comm.wire);
  const std::vector<Request> all = random_requests(requests, prompt, a.verify_gen, config.vocab_size, 11);
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  const Timer t;
  if (pipeline.is_driver()) {
    std::vector<Request> mine;
    for (size_t i = size_t(layout.dp_rank); i < all.size(); i += size_t(row.dp)) mine.push_back(all[i]);
    EngineOptions options;
    options.batch_size = slots;
    Engine engine(pipeline, nullptr, {}, options);
    engine.run(mine, [](size_t, Completion&&) {});
    pipeline.stop();
  } else {
    pipeline.serve();
  }
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  return double(requests) * a.verify_gen / t.seconds();
}

}  // namespace

int run_plan(int argc, char** argv, const MpiSession& mpi) {
  const bool rank0 = mpi.world_rank() == 0;
  PlanArgs a;
  ModelConfig config;
  bool help = false;
  mpi.all_or_none("plan", [&] { help = !parse_plan(argc, argv, a, !rank0); });
  if (help) return 0;
  a.model_arg = a.model_dir;
  a.source = open_model(mpi, "plan", a.model_dir, a.layout, config);
  const HostFacts facts = survey_hosts(mpi, "plan", a.model_dir, a.layout);
  workload_from_prompts(mpi, a, config);
  set_matmul_threads(a.speed.threads > 0 ? a.speed.threads : default_threads(facts, mpi.world_rank()));
  double bytes = 0;
  mpi.all_or_none("plan", [&] { bytes = replica_weight_bytes(a.model_dir, config, a.speed); });
  const ClusterProbe probe = probe_cluster(facts, /*quick=*/false);
  std::vector<PlanRow> rows;
  mpi.all_or_none("plan", [&] { rows = plan_layouts(probe.cluster, model_spec(config, bytes), a.work,
                                                    a.layout.moe_split); });
  MESH_CHECK(!rows.empty(), "no layout of ", mpi.world_size(), " ranks suits this model");
  if (rank0) {
    print_cluster(probe, a, config, bytes);
    print_table(rows, config, a.show);
    std::printf("\nbest: %s: %s\ncommand: %s\n", layout_name(rows[0], config).c_str(),
                plan_reason(probe.cluster, rows[0]).c_str(),
                command_line(a, rows[0], config, mpi.world_size()).c_str());
    std::fflush(stdout);
  }

  // --verify K: the best K that fit, each for a few steps, on a smaller job of the same shape.
  nlohmann::json verified = nlohmann::json::array();
  if (a.verify > 0) {
    Workload small = a.work;
    small.requests = std::min<int64_t>(a.work.requests, int64_t(a.work.max_batch) * mpi.world_size());
    small.gen_len = a.verify_gen, small.ctx = int64_t(a.work.prompt_len) + a.verify_gen + 1;
    const std::vector<PlanRow> predicted = plan_layouts(probe.cluster, model_spec(config, bytes), small,
                                                        a.layout.moe_split);
    if (rank0)
      std::printf("\nverify (%lld requests, %d generated each):\n\n| layout | predicted tok/s | measured tok/s | "
                  "measured / predicted |\n|---|---|---|---|\n", (long long)small.requests, a.verify_gen);
    int done = 0;
    for (const PlanRow& row : rows) {
      if (done == a.verify || !row.fits) break;
      ++done;
      const auto same = std::find_if(predicted.begin(), predicted.end(), [&](const PlanRow& p) {
        return p.tp == row.tp && p.pp == row.pp && p.moe_split == row.moe_split;
      });
      const double want = same == predicted.end() ? 0 : same->tokens_per_s;
      const double got = measure_layout(row, a, config, mpi, small.requests);
      if (rank0) {
        std::printf("| %s | %.1f | %.1f | %.2f |\n", layout_name(row, config).c_str(), want, got, got / want);
        std::fflush(stdout);
      }
      verified.push_back({{"flags", row.command_flags()}, {"predicted_tok_s", want}, {"measured_tok_s", got}});
    }
  }

  if (rank0 && !a.json.empty()) {
    nlohmann::json j;
    for (const HostSpec& h : probe.cluster.hosts)
      j["hosts"].push_back({{"name", h.name}, {"ranks", h.ranks}, {"cores", h.cores}, {"memory", h.memory},
                            {"read_bytes_s", h.read_bw}, {"flops", h.flops}});
    j["links"] = {{"inter", {{"latency_s", probe.cluster.inter.latency}, {"bytes_s", probe.cluster.inter.bandwidth}}},
                  {"intra", {{"latency_s", probe.cluster.intra.latency}, {"bytes_s", probe.cluster.intra.bandwidth}}}};
    j["workload"] = {{"requests", a.work.requests}, {"prompt_len", a.work.prompt_len},
                     {"gen_len", a.work.gen_len}, {"max_batch", a.work.max_batch}, {"ctx", a.work.ctx}};
    for (const PlanRow& r : rows) j["rows"].push_back(row_json(r));
    j["command"] = command_line(a, rows[0], config, mpi.world_size());
    j["verify"] = verified;
    std::ofstream out(a.json);
    out << j.dump(2) << "\n";
    MESH_CHECK(out.good(), "cannot write ", a.json);
  }
  return 0;
}

}  // namespace meshlm
