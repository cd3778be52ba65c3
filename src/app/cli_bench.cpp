// meshlm bench: prefill (pp) and decode (tg) throughput of this layout at several batch sizes, each row next to the
// machine's ceilings measured in the same run on every rank at once (streaming read bandwidth and the sgemm rate,
// summed over the ranks). Writes a markdown table to stdout, and CSV / markdown / HDF5 files for sweeps.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "app/bench_report.h"
#include "app/cli_common.h"
#include "app/commands.h"
#include "app/setup.h"
#include "comm/group.h"
#include "comm/stall_watch.h"
#include "core/timer.h"
#include "kernels/matmul.h"
#include "kernels/matvec.h"
#include "kernels/roofline.h"
#include "runtime/engine.h"
#include "runtime/pipeline.h"

namespace meshlm {
namespace {

struct BenchArgs {
  std::string model_dir, csv, md, h5, label;
  LayoutFlags layout;
  std::vector<int> batches;
  bool pp = true, tg = true;  // --tests
  int prompt = 128, gen = 32, reps = 3, micro_batches = 0, max_batch_tokens = 512;
  int64_t probe_mb = 1024;
  SpeedFlags speed;
};

std::vector<int> parse_list(const std::string& text, const char* flag) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    int v = 0;
    try {
      size_t used = 0;
      v = std::stoi(item, &used);
      MESH_CHECK(used == item.size(), "");
    } catch (...) {
      fail("--", flag, " must be a comma-separated list of positive integers, got '", text, "'");
    }
    MESH_CHECK(v > 0, "--", flag, " values must be positive, got ", v);
    out.push_back(v);
  }
  MESH_CHECK(!out.empty(), "--", flag, " is empty");
  return out;
}

bool parse_bench(int argc, char** argv, BenchArgs& a, bool quiet) {
  cxxopts::Options o("meshlm bench", "Prefill (pp) and decode (tg) tokens/s of a layout at several batch sizes, "
                                     "against the read-bandwidth and sgemm ceilings measured in the same run.\n"
                                     "  mpirun -np 2 meshlm bench --model DIR --tp 2 --batch 1,16 --csv runs.csv");
  o.add_options()
      ("model", "Hugging Face model directory", cxxopts::value<std::string>()->default_value(default_model_dir()))
      ("batch", "Sequences per replica, a comma-separated list", cxxopts::value<std::string>()->default_value("1,8,32"))
      ("prompt", "Prompt tokens per sequence in the pp test", cxxopts::value<int>()->default_value("128"))
      ("gen", "Generated tokens per sequence in the tg test", cxxopts::value<int>()->default_value("32"))
      ("tests", "pp (prefill), tg (decode) or pp,tg", cxxopts::value<std::string>()->default_value("pp,tg"))
      ("reps", "Timed repetitions of each test (after one warm-up)", cxxopts::value<int>()->default_value("3"))
      ("micro-batches", "Micro-batches in flight (default: one per stage)", cxxopts::value<int>())
      ("max-batch-tokens", "Tokens per step", cxxopts::value<int>()->default_value("512"))
      ("probe-mb", "Buffer for the read-bandwidth probe, MiB per rank (the probe after each test, which checks that "
                   "the bandwidth held, reads at most 256)", cxxopts::value<int64_t>()->default_value("1024"))
      ("label", "Free text kept in every row (e.g. the network profile)", cxxopts::value<std::string>()->default_value(""))
      ("csv", "Append the rows to this CSV file", cxxopts::value<std::string>()->default_value(""))
      ("md", "Append the markdown table to this file", cxxopts::value<std::string>()->default_value(""))
      ("h5", "Append the rows to /bench/* of this HDF5 file", cxxopts::value<std::string>()->default_value(""));
  add_layout_options(o);
  add_speed_options(o);
  cxxopts::ParseResult r;
  if (!parse_options(o, argc, argv, r, quiet)) return false;
  a.layout = read_layout_flags(r);
  a.model_dir = r["model"].as<std::string>();
  a.batches = parse_list(r["batch"].as<std::string>(), "batch");
  const std::string tests = r["tests"].as<std::string>();
  MESH_CHECK(tests == "pp" || tests == "tg" || tests == "pp,tg" || tests == "tg,pp",
             "--tests must be pp, tg or pp,tg, got '", tests, "'");
  a.pp = tests.find("pp") != std::string::npos, a.tg = tests.find("tg") != std::string::npos;
  a.prompt = r["prompt"].as<int>(), a.gen = r["gen"].as<int>(), a.reps = r["reps"].as<int>();
  a.max_batch_tokens = r["max-batch-tokens"].as<int>();
  a.probe_mb = r["probe-mb"].as<int64_t>();
  a.speed = read_speed_flags(r);
  a.label = r["label"].as<std::string>();
  a.csv = r["csv"].as<std::string>(), a.md = r["md"].as<std::string>(), a.h5 = r["h5"].as<std::string>();
  if (r.count("micro-batches")) a.micro_batches = r["micro-batches"].as<int>();
  MESH_CHECK(a.prompt >= 1 && a.gen >= 1 && a.reps >= 1, "--prompt, --gen and --reps must be at least 1");
  MESH_CHECK(a.probe_mb >= 16, "--probe-mb must be at least 16");
  MESH_CHECK(a.max_batch_tokens >= *std::max_element(a.batches.begin(), a.batches.end()),
             "--max-batch-tokens must be at least the largest --batch");
  return true;
}

// Model FLOPs of one test per sequence: every matmul weight a token reads once per token (for MoE layers the router,
// its top_k experts and any shared expert; the head only on tokens whose logits are taken), plus attention (q·k and
// p·v over the positions before each token).
double flops_per_sequence(const ModelConfig& c, int64_t tokens, int64_t logit_rows, int64_t first_position) {
  const double embeddings = head_params(c) * (c.tie_embeddings ? 1.0 : 2.0);
  const double layers = active_params(c) - embeddings;
  double positions = 0;  // sum over the tokens of the positions each attends to
  for (int64_t p = first_position; p < first_position + tokens; ++p) positions += double(p + 1);
  return 2.0 * layers * tokens + 2.0 * head_params(c) * logit_rows +
         2.0 * c.n_layers * attention_macs_per_position(c) * positions;
}

double matmul_params(const ModelConfig& c) {
  const std::vector<double> layers = layer_params(c);
  return std::accumulate(layers.begin(), layers.end(), 0.0) + head_params(c);
}

// MiB of the read-bandwidth probe after each test (the model is loaded then, so it is kept small).
constexpr int64_t kReprobeMb = 256;

struct Ceilings {
  double read_gbps = 0, sgemm_gflops = 0;  // summed over the ranks
};

// Every rank measures at once, so ranks that share a host share its bandwidth as they will when they run.
double measure_read(Group& world, int64_t probe_mb) {
  MPI_CHECK(MPI_Barrier(world.raw()));
  double mine = measure_read_bandwidth(probe_mb << 20);
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &mine, 1, MPI_DOUBLE, MPI_SUM, world.raw()));
  return mine;
}

Ceilings measure_ceilings(Group& world, int64_t probe_mb) {
  const double read = measure_read(world, probe_mb);
  MPI_CHECK(MPI_Barrier(world.raw()));
  double mine = measure_sgemm_peak();
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &mine, 1, MPI_DOUBLE, MPI_SUM, world.raw()));
  return {read, mine};
}

}  // namespace

int run_bench(int argc, char** argv, const MpiSession& mpi) {
  const bool rank0 = mpi.world_rank() == 0;
  BenchArgs a;
  ModelConfig config;
  bool help = false;
  mpi.all_or_none("bench", [&] { help = !parse_bench(argc, argv, a, !rank0); });
  if (help) return 0;
  const std::string model_name = std::filesystem::path(a.model_dir).lexically_normal().filename().string();
  const ModelSource source = open_model(mpi, "bench", a.model_dir, a.layout, config);
  const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  Workload work;  // every replica runs the largest batch
  work.requests = int64_t(max_batch) * mpi.world_size(), work.max_batch = max_batch;
  work.prompt_len = a.prompt, work.gen_len = a.gen, work.ctx = a.prompt + a.gen + 1;
  work.max_batch_tokens = a.max_batch_tokens;
  const RankPlan plan = plan_ranks(mpi, "bench", survey_hosts(mpi, "bench", a.model_dir, a.layout), a.model_dir,
                                   a.layout, config, a.speed, work);
  Groups groups = Groups::split(plan.topo.tp, plan.topo.pp);
  if (rank0)
    std::fprintf(stderr, "meshlm bench: layout tp %d x pp %d x dp %d (%s); kernels %s, %d thread%s per rank; "
                         "measuring the ceilings\n", plan.topo.tp, plan.topo.pp, plan.topo.dp, plan.topo.how.c_str(),
                 compute_label(a.speed.compute).c_str(), plan.threads, plan.threads == 1 ? "" : "s");
  MemoryNeed need;
  const int64_t ctx = int64_t(a.prompt) + a.gen + 1;
  mpi.all_or_none("bench", [&] { need = memory_need(a.model_dir, config, plan.layout, max_batch, ctx, a.speed); });
  const int64_t kv_blocks = check_memory(mpi, "bench", plan, need, a.layout);
  fetch_slices(mpi, "bench", source, config, plan.layout, a.speed.weight_dtype);
  const Ceilings ceilings = measure_ceilings(groups.world, a.probe_mb);

  LoadedModel loaded;
  mpi.all_or_none("bench", [&] {
    loaded = load_model(a.model_dir, config, plan.layout, &groups.tp, max_batch, kv_blocks, ctx, a.max_batch_tokens,
                        a.speed);
  });
  if (mpi.world_size() > 1) stall_watch().arm(a.layout.stall_timeout, mpi.world_rank(), plan.facts.hosts);
  double replica_bytes[2] = {double(loaded.weight_bytes), double(loaded.streamed_bytes)};  // summed over the replica
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, replica_bytes, 2, MPI_DOUBLE, MPI_SUM, groups.replica.raw()));
  MPI_Comm drivers_comm = MPI_COMM_NULL;  // the replicas' drivers time each test together
  MPI_CHECK(MPI_Comm_split(groups.world.raw(), plan.driver() ? 0 : MPI_UNDEFINED, mpi.world_rank(), &drivers_comm));

  std::vector<BenchRow> rows;
  // Routed experts are read only when a token goes to them: every rank counts the bytes its experts read during each
  // test (warm-up included: every repetition routes the same tokens alike), summed over the world after the tests.
  std::vector<double> expert_bytes;   // (tests run), this rank's
  std::vector<double> timed_steps;    // (rows) steps x replicas, summed over the timed repetitions (rank 0)
  std::vector<double> timed_seconds;  // (rows)
  // The read bandwidth is measured again after every test, with the model loaded: by a probe of at most kReprobeMb
  // (held only while it runs), scaled by its ratio to the full probe at start-up. One that differs from the ceiling
  // says the machine's bandwidth moved while the test ran.
  const int64_t reprobe_mb = std::min(a.probe_mb, kReprobeMb);
  const double reprobe_scale =
      reprobe_mb == a.probe_mb ? 1.0 : ceilings.read_gbps / measure_read(groups.world, reprobe_mb);
  for (int b : a.batches) {
    const int micro_batches = std::min(a.micro_batches > 0 ? a.micro_batches : plan.topo.pp, b);
    for (const char* test : {"pp", "tg"}) {
      const bool prefill = test[0] == 'p';
      if ((prefill && !a.pp) || (!prefill && !a.tg)) continue;
      Pipeline pipeline(*loaded.model, groups, micro_batches, a.speed.comm.wire);
      const uint64_t expert_bytes_before = loaded.model->moe().expert_bytes_read();
      if (!plan.driver()) {
        pipeline.serve();
        expert_bytes.push_back(double(loaded.model->moe().expert_bytes_read() - expert_bytes_before));
        measure_read(groups.world, reprobe_mb);  // with the drivers'
        continue;
      }
      // The pp test prefills `prompt` random tokens and takes one; the tg test starts from one token and generates
      // `gen` (no eos stops: the engine gets no eos ids).
      const auto requests = random_requests(b, prefill ? a.prompt : 1, prefill ? 1 : a.gen, config.vocab_size, 7);
      std::vector<double> tps;
      double seconds_sum = 0, steps_sum = 0;
      for (int rep = 0; rep <= a.reps; ++rep) {  // rep 0 warms up
        EngineOptions opts;
        opts.batch_size = b;
        Engine engine(pipeline, nullptr, {}, opts);
        MPI_CHECK(MPI_Barrier(drivers_comm));
        const Timer t;
        engine.run(requests, [](size_t, Completion&&) {});
        double took[2] = {t.seconds(), double(engine.stats().steps)};
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &took[0], 1, MPI_DOUBLE, MPI_MAX, drivers_comm));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &took[1], 1, MPI_DOUBLE, MPI_SUM, drivers_comm));
        if (rep == 0) continue;
        const double tokens = double(plan.topo.dp) * b * (prefill ? a.prompt : a.gen);
        tps.push_back(tokens / took[0]);
        seconds_sum += took[0], steps_sum += took[1];
      }
      pipeline.stop();
      expert_bytes.push_back(double(loaded.model->moe().expert_bytes_read() - expert_bytes_before));
      const double read_after = reprobe_scale * measure_read(groups.world, reprobe_mb);
      if (!rank0) continue;
      BenchRow row;
      row.label = a.label;
      row.model = model_name;
      row.size_gb = replica_bytes[0] * 1e-9, row.params_b = matmul_params(config) * 1e-9;
      row.dtype = is_quantized(a.speed.weight_dtype) ? dtype_name(a.speed.weight_dtype)
                  : config.affine.quantized()
                      ? "mlx" + std::to_string(config.affine.bits) + " g" + std::to_string(config.affine.group)
                      : config.torch_dtype;
      row.layout = "tp " + std::to_string(plan.topo.tp) + " x pp " + std::to_string(plan.topo.pp) + " x dp " +
                   std::to_string(plan.topo.dp);
      if (config.is_moe() && plan.topo.tp > 1) row.layout += std::string(" (moe ") + moe_split_name(plan.topo.moe_split) + ")";
      row.ranks = mpi.world_size(), row.hosts = plan.facts.n_hosts, row.threads = plan.threads;
      row.micro_batches = micro_batches, row.isa = isa_name(matmul_isa());
      if (a.speed.compute == Compute::kFast) row.isa += " fast";  // the table's "threads" column shows it
      row.test = test, row.batch = b, row.prompt = a.prompt, row.gen = a.gen, row.reps = a.reps;
      const double mean = std::accumulate(tps.begin(), tps.end(), 0.0) / double(tps.size());
      double var = 0;
      for (double v : tps) var += (v - mean) * (v - mean);
      row.tps_mean = mean, row.tps_sd = tps.size() > 1 ? std::sqrt(var / double(tps.size() - 1)) : 0;
      const double flops = prefill ? flops_per_sequence(config, a.prompt, 1, 0) : flops_per_sequence(config, a.gen, a.gen, 0);
      row.achieved_gflops = double(plan.topo.dp) * b * flops * a.reps / seconds_sum * 1e-9;
      row.read_gbps = ceilings.read_gbps, row.read_gbps_after = read_after, row.sgemm_gflops = ceilings.sgemm_gflops;
      rows.push_back(row);
      timed_steps.push_back(steps_sum), timed_seconds.push_back(seconds_sum);
      std::fprintf(stderr, "meshlm bench: %s%d b%d: %.2f t/s\n", test, prefill ? a.prompt : a.gen, b, mean);
      if (row.bandwidth_moved())
        std::fprintf(stderr, "meshlm bench: %s%d b%d: the read bandwidth moved from %.1f to %.1f GB/s around this "
                     "test, so its percentage of it says little (memory shared with other tenants, or power states "
                     "changing?); rerun it\n", test, prefill ? a.prompt : a.gen, b, row.read_gbps, read_after);
    }
  }
  // Bytes read per second: per replica step every rank streams its dense weights once; the routed experts' bytes are
  // what the ranks counted, the timed repetitions' share of it.
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, expert_bytes.data(), int(expert_bytes.size()), MPI_DOUBLE, MPI_SUM,
                          groups.world.raw()));
  for (size_t i = 0; i < rows.size(); ++i) {
    const double routed = expert_bytes[i] * a.reps / (a.reps + 1.0);
    rows[i].achieved_gbps = (timed_steps[i] * replica_bytes[1] + routed) / timed_seconds[i] * 1e-9;
  }
  if (drivers_comm != MPI_COMM_NULL) MPI_Comm_free(&drivers_comm);
  if (!rank0) return 0;
  const std::string table = markdown_table(rows);
  std::printf("%s", table.c_str());
  if (!a.csv.empty()) append_csv(a.csv, rows);
  if (!a.h5.empty()) append_h5(a.h5, rows);
  if (!a.md.empty()) {
    std::ofstream out(a.md, std::ios::app);
    out << table << "\n";
    MESH_CHECK(out.good(), a.md, ": write failed");
  }
  return 0;
}

}  // namespace meshlm
