// Layout equivalence on synthetic models (bench/make_model): every layout gives the single rank's tokens, for
// greedy and for seeded sampling, with kv heads replicated (multi-query) and uneven splits; each rank loads only
// its share of the weights.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "equivalence.h"
#include "h5_read.h"
#include "test_support.h"

namespace meshlm {
namespace {

using test::generate;
using test::JobRun;
using test::Model;
using test::expect_same;
using test::logit_error;
using test::make_model;


// Twelve requests of different lengths: half greedy, half sampled with their own seeds.
std::string prompts(int vocab) {
  std::string out;
  for (int i = 0; i < 12; ++i) {
    std::vector<int> ids;
    for (int k = 0; k < 3 + (i * 7) % 19; ++k) ids.push_back((i * 131 + k * 17) % vocab);
    nlohmann::json j = {{"id", "q" + std::to_string(i)}, {"prompt_ids", ids}, {"max_tokens", 8 + i % 5}};
    if (i % 2) j.update({{"temperature", 0.9}, {"top_p", 0.95}, {"top_k", 40}, {"seed", 1000 + i}});
    out += j.dump() + "\n";
  }
  return out;
}

// Makes the model, writes the prompts, and runs the single-rank reference.
JobRun reference(const Model& m, const std::vector<std::string>& model_flags, int vocab, const test::TempDir& tmp) {
  make_model(m, model_flags);
  test::write_file(tmp.file("p.jsonl"), prompts(vocab));
  return generate(m.path(), 1, {}, tmp, "ref");
}

uint64_t weight_bytes(const JobRun& r, size_t rank) { return r.metrics["ranks"][rank]["weight_bytes"].get<uint64_t>(); }

TEST(ParallelEquivalence, MultiQueryModelEveryLayoutGreedyAndSampled) {
  // One kv head: with any tp > 1 the kv head is replicated on every tensor rank. 5 q heads split 2,1,1,1 at tp 4.
  Model m;
  test::TempDir tmp;
  const JobRun ref = reference(m, {"--dim", "80", "--heads", "5", "--kv-heads", "1", "--layers", "5", "--hidden", "104",
                                   "--vocab", "301", "--dtype", "f32"}, 301, tmp);
  ASSERT_EQ(ref.lines.size(), 12u);
  const struct {
    const char* tag;
    int np;
    std::vector<std::string> flags;
  } layouts[] = {
      {"tp2", 2, {"--tp", "2", "--pp", "1"}},
      {"tp4", 4, {"--tp", "4", "--pp", "1"}},
      {"pp3_by_hand", 3, {"--pp", "3", "--layer-split", "1,3,1", "--micro-batches", "3"}},
      {"tp2_pp2", 4, {"--tp", "2", "--pp", "2", "--layer-split", "auto"}},
      {"dp3", 3, {"--tp", "1", "--pp", "1"}},
  };
  for (const auto& l : layouts) {
    const JobRun got = generate(m.path(), l.np, l.flags, tmp, l.tag);
    expect_same(ref, got, tmp, l.tag);
  }
}

TEST(ParallelEquivalence, QwenShardedTiedBf16TensorAndPipeline) {
  // Qwen2 biases (added once, after the reduce where the layer is split by input), a tied head split by vocab,
  // three safetensors shards, bf16 weights.
  Model m;
  test::TempDir tmp;
  const JobRun ref = reference(m, {"--arch", "qwen2", "--dim", "96", "--heads", "6", "--kv-heads", "2", "--layers", "4",
                                   "--hidden", "160", "--vocab", "257", "--tie", "true", "--shards", "3", "--dtype",
                                   "bf16"}, 257, tmp);
  for (const auto& [tag, np, flags] : std::vector<std::tuple<std::string, int, std::vector<std::string>>>{
           {"tp3", 3, {"--tp", "3", "--pp", "1"}}, {"tp2_pp2", 4, {"--tp", "2", "--pp", "2"}}}) {
    expect_same(ref, generate(m.path(), np, flags, tmp, tag), tmp, tag);
  }
}

TEST(ParallelEquivalence, EachRankLoadsOnlyItsShare) {
  // Big matrices dominate (vocab 2048 x dim 256, 4 layers): at tp 2 and at pp 2 each rank holds about half.
  Model m;
  test::TempDir tmp;
  const JobRun one = reference(m, {"--dim", "256", "--heads", "8", "--kv-heads", "4", "--layers", "4", "--hidden", "512",
                                   "--vocab", "2048", "--dtype", "bf16"}, 2048, tmp);
  const uint64_t whole = weight_bytes(one, 0);
  EXPECT_GT(whole, 5'000'000u);
  for (const auto& [tag, flags] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"tp2", {"--tp", "2", "--pp", "1"}}, {"pp2", {"--tp", "1", "--pp", "2"}}}) {
    const JobRun two = generate(m.path(), 2, flags, tmp, tag);
    ASSERT_EQ(two.metrics["ranks"].size(), 2u) << tag;
    const uint64_t a = weight_bytes(two, 0), b = weight_bytes(two, 1);
    std::printf("[ weights ] %s: rank 0 %.3f MB, rank 1 %.3f MB of %.3f MB\n", tag.c_str(), a / 1e6, b / 1e6, whole / 1e6);
    EXPECT_LE(double(a), 0.6 * double(whole)) << tag;
    EXPECT_LE(double(b), 0.6 * double(whole)) << tag;
    EXPECT_GE(double(a + b), 1.0 * double(whole)) << tag;  // nothing missing
    expect_same(one, two, tmp, tag);
  }
}

int64_t rank_op(const JobRun& r, size_t rank, const char* op, const char* field) {
  const nlohmann::json& ops = r.metrics["ranks"][rank]["comm_by_call"];
  return ops.contains(op) ? ops[op][field].get<int64_t>() : 0;
}

TEST(ParallelEquivalence, OverlappedAllReducePartsAndBf16Wire) {
  Model m;
  test::TempDir tmp;
  const int layers = 5;
  const JobRun ref = reference(m, {"--dim", "96", "--heads", "6", "--kv-heads", "2", "--layers", std::to_string(layers),
                                   "--hidden", "160", "--vocab", "301", "--dtype", "bf16"}, 301, tmp);
  // Any number of overlapped parts gives the single rank's tokens; each part is one all-reduce: per step and rank,
  // one for the embedding and `parts` for each of the two row-parallel outputs of every layer.
  const JobRun one_part = generate(m.path(), 2, {"--tp", "2", "--comm-chunks", "1"}, tmp, "c1");
  expect_same(ref, one_part, tmp, "c1");
  const int64_t steps = rank_op(one_part, 0, "allreduce", "calls") / (1 + 2 * layers);
  ASSERT_GT(steps, 8);
  EXPECT_EQ(rank_op(one_part, 0, "allreduce", "calls"), steps * (1 + 2 * layers));
  for (int parts : {3, 6}) {
    const std::string tag = "c" + std::to_string(parts);
    const JobRun got = generate(m.path(), 2, {"--tp", "2", "--comm-chunks", std::to_string(parts)}, tmp, tag);
    expect_same(ref, got, tmp, tag);
    EXPECT_EQ(rank_op(got, 1, "allreduce", "calls"), steps * (1 + 2 * layers * parts)) << tag;
    EXPECT_EQ(rank_op(got, 1, "allreduce", "bytes_sent"), rank_op(one_part, 1, "allreduce", "bytes_sent")) << tag;
  }
  // bf16 on the wire: the layers' all-reduces carry half the bytes (the embedding's stays fp32), and the logits move
  // by about bf16's rounding, no more.
  const JobRun bf16 = generate(m.path(), 2, {"--tp", "2", "--wire-dtype", "bf16"}, tmp, "bf16");
  ASSERT_EQ(bf16.lines.size(), ref.lines.size());
  const double ratio = double(rank_op(bf16, 0, "allreduce", "bytes_sent")) /
                       double(rank_op(one_part, 0, "allreduce", "bytes_sent"));
  EXPECT_NEAR(ratio, (1.0 + layers) / (1.0 + 2 * layers), 0.02);  // per token: 4·dim + 2·layers·2·dim bytes
  const float err = logit_error(ref, tmp, "bf16");
  EXPECT_GT(err, 0.0f) << "bf16 wire left the logits bit-identical: was it used?";
  EXPECT_LT(err, 0.05f);
  // Pipeline sends: the same step messages with the activations in bf16.
  const JobRun pp_f32 = generate(m.path(), 2, {"--pp", "2"}, tmp, "pp_f32");
  const JobRun pp_bf16 = generate(m.path(), 2, {"--pp", "2", "--wire-dtype", "bf16"}, tmp, "pp_bf16");
  expect_same(ref, pp_f32, tmp, "pp_f32");
  EXPECT_LT(rank_op(pp_bf16, 0, "send", "bytes_sent"), rank_op(pp_f32, 0, "send", "bytes_sent") * 3 / 4);
  EXPECT_GT(logit_error(ref, tmp, "pp_bf16"), 0.0f);
  EXPECT_LT(logit_error(ref, tmp, "pp_bf16"), 0.05f);
}

// Replicas take requests from one queue, so a slower replica takes fewer: replica 0 runs on core 0 next to a busy
// loop (about half a core), replica 1 has core 1 to itself. The answers are those of one rank.
TEST(ParallelEquivalence, ReplicasTakeRequestsFromOneQueue) {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0 || !CPU_ISSET(0, &cpus) || !CPU_ISSET(1, &cpus))
    GTEST_SKIP() << "needs cores 0 and 1";
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), test::story_prompts(48, 64));
  const auto args = [&](const std::string& tag) {
    return std::vector<std::string>{"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file(tag + ".jsonl"),
                                    "--metrics-json", tmp.file(tag + ".json"), "--max-batch", "2", "--tp", "1",
                                    "--pp", "1", "--threads", "1"};
  };
  ASSERT_EQ(test::run_meshlm(args("one")).exit_code, 0);
  const pid_t busy = fork();
  if (busy == 0) {
    execlp("taskset", "taskset", "-c", "0", "sh", "-c", "while :; do :; done", nullptr);
    _exit(127);
  }
  std::vector<std::string> slow = {"taskset", "-c", "0", test::meshlm_binary()}, fast = {"taskset", "-c", "1",
                                                                                           test::meshlm_binary()};
  for (const std::string& a : args("two")) slow.push_back(a), fast.push_back(a);
  const auto r = test::run_mpi_each({slow, fast});
  kill(busy, SIGKILL);
  waitpid(busy, nullptr, 0);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::answers_by_id(tmp.file("two.jsonl")), test::answers_by_id(tmp.file("one.jsonl")));
  const nlohmann::json two = nlohmann::json::parse(test::read_file(tmp.file("two.json")));
  const int64_t slow_count = two["ranks"][0]["requests"], fast_count = two["ranks"][1]["requests"];
  EXPECT_EQ(slow_count + fast_count, 48);
  std::printf("[ queue ] the replica next to a busy loop took %lld requests, the other %lld\n", (long long)slow_count,
              (long long)fast_count);
  EXPECT_GE(fast_count, slow_count * 5 / 4) << "the faster replica should take more";
}

TEST(ParallelEquivalence, BadWireFlagsAreRefused) {
  test::TempDir tmp;
  test::write_file(tmp.file("p.txt"), "hello\n");
  for (const auto& [flag, value, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--wire-dtype", "fp8", "--wire-dtype must be f32 or bf16"}, {"--comm-chunks", "0", "--comm-chunks must be"}}) {
    const auto r = test::run_mpi(2, {"generate", "--prompts", tmp.file("p.txt"), "--output", tmp.file("o.jsonl"), flag,
                                     value});
    EXPECT_EQ(r.exit_code, 1) << flag;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace meshlm
