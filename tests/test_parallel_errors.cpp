// Impossible layouts are refused at start-up with the reason, printed once; an error on one rank ends every rank
// promptly with that rank's message. Nothing hangs (run_mpi has a time limit; these finish in seconds).
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "test_support.h"

namespace meshlm {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

struct Job {
  test::TempDir tmp;
  Job() { test::write_file(tmp.file("p.jsonl"), "{\"id\": \"a\", \"prompt_ids\": [1, 2, 3], \"max_tokens\": 4}\n"); }
  test::RunResult run(int np, const std::vector<std::string>& flags, const std::string& model = "") {
    std::vector<std::string> args = {"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl")};
    if (!model.empty()) args.insert(args.end(), {"--model", model});
    args.insert(args.end(), flags.begin(), flags.end());
    return test::run_mpi(np, args);
  }
};

TEST(ParallelErrors, BadLayoutsAreRefusedWithTheReasonOnce) {
  // The embedded model: 5 layers, 8 heads.
  const struct {
    int np;
    std::vector<std::string> flags;
    std::string message;
  } cases[] = {
      {3, {"--tp", "2"}, "3 ranks cannot form --tp 2 x --pp 1 groups: the rank count must be a multiple of tp*pp = 2"},
      {2, {"--tp", "16", "--pp", "1"}, "--tp 16 is more than the model's 8 attention heads"},
      {2, {"--pp", "6"}, "--pp 6 is more than the model's 5 layers"},
      {2, {"--pp", "2", "--layer-split", "1,2"}, "--layer-split adds up to 3 layers but the model has 5"},
      {2, {"--pp", "2", "--layer-split", "1,2,2"}, "--layer-split has 3 stages but --pp is 2"},
      {2, {"--pp", "2", "--layer-split", "5,0"}, "every stage needs at least one layer"},
      {2, {"--pp", "2", "--layer-split", "two,three"}, "expected layer counts like 10,12,10 or 'auto'"},
      {2, {"--micro-batches", "0"}, "--micro-batches must be at least 1"},
      {2, {"--tp", "0"}, "--tp must be at least 1"},
      {2, {"--pp", "2", "--memory-limit", "400K"}, "this layout needs"},
  };
  for (const auto& c : cases) {
    Job job;
    const auto r = job.run(c.np, c.flags);
    EXPECT_NE(r.exit_code, 0) << c.message;
    EXPECT_EQ(count(r.err, c.message), 1u) << "expected once: " << c.message << "\n" << r.err;
    EXPECT_EQ(count(r.err, "error:"), 1u) << r.err;
  }
}

TEST(ParallelErrors, OneRanksBadTensorEndsEveryRank) {
  // A copy of the embedded model whose layer-4 up_proj claims dtype I32 (same size, so the file stays valid):
  // only the stage that holds layer 4 reads it, and its message must reach the user.
  test::TempDir tmp;
  test::copy_dir(test::source_dir() + "/models/stories260k", tmp.file("m"));
  const std::string path = tmp.file("m") + "/model.safetensors";
  std::string bytes = test::read_file(path);
  const std::string key = "\"model.layers.4.mlp.up_proj.weight\":{\"dtype\":\"F32\"";
  size_t at = bytes.find(key);
  if (at == std::string::npos) {  // header written with spaces
    at = bytes.find("model.layers.4.mlp.up_proj.weight");
    ASSERT_NE(at, std::string::npos);
    at = bytes.find("F32", at);
  } else {
    at += key.size() - 4;
  }
  bytes.replace(at, 3, "I32");
  test::write_file(path, bytes);

  Job job;
  const auto start = std::chrono::steady_clock::now();
  const auto r = job.run(2, {"--pp", "2"}, tmp.file("m"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("[rank 1] meshlm generate: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'model.layers.4.mlp.up_proj.weight': dtype I32 is not supported"), std::string::npos)
      << r.err;
  EXPECT_LT(seconds, 30.0);
}

}  // namespace
}  // namespace meshlm

namespace meshlm {
namespace {

// Rank 1 is given a model directory whose config.json differs in one value (as when one host has another copy of
// the model): refused at start-up, naming the hosts and the first differing file, once.
TEST(ParallelErrors, DifferentModelFilesOnTwoRanksAreRefused) {
  test::TempDir tmp;
  const std::string same = tmp.file("same"), other = tmp.file("other");
  test::copy_dir(test::source_dir() + "/models/stories260k", same);
  test::copy_dir(test::source_dir() + "/models/stories260k", other);
  auto config = nlohmann::json::parse(test::read_file(other + "/config.json"));
  config["rms_norm_eps"] = 1e-6;
  test::write_file(other + "/config.json", config.dump());
  test::write_file(tmp.file("p.jsonl"), "{\"prompt_ids\": [1, 2, 3], \"max_tokens\": 2}\n");
  // Each rank picks its directory by its MPI rank: the same path on two hosts with different contents.
  const std::string pick = "[ \"$OMPI_COMM_WORLD_RANK\" = 1 ] && m=" + other + " || m=" + same + "; exec " +
                           test::meshlm_binary() + " generate --model $m --prompts " + tmp.file("p.jsonl") +
                           " --output " + tmp.file("o.jsonl");
  const auto run = [&] {
    return test::run_command({"timeout", "-k", "5", "120", "mpirun", "--oversubscribe", "--bind-to", "none", "-np",
                              "2", "bash", "-c", pick});
  };
  auto r = run();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count(r.err, "error: model files differ between"), 1u) << r.err;
  EXPECT_NE(r.err.find(": config.json"), std::string::npos) << r.err;
  // The same files again: the check passes and the job runs.
  test::copy_dir(same, other + "2");
  std::filesystem::remove_all(other);
  std::filesystem::rename(other + "2", other);
  r = run();
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace meshlm

namespace meshlm {
namespace {

// The pid of world rank `rank` among the processes running `marker` (found by their environment).
pid_t rank_pid(const std::string& marker, int rank) {
  const auto r = test::run_command({"pgrep", "-f", marker});
  std::istringstream pids(r.out);
  for (std::string pid; pids >> pid;) {
    const std::string env = test::read_file("/proc/" + pid + "/environ");
    if (env.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + std::string(1, '\0')) != std::string::npos)
      return pid_t(std::stol(pid));
  }
  return -1;
}

// A rank killed mid-job (kill -9, as a crashed host) ends the job promptly in every layout, and --resume on one
// process completes the output to the uninterrupted answers.
TEST(ParallelErrors, KilledRankEndsTheJobAndResumeCompletes) {
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), test::story_prompts(40, 60, "k"));
  const auto base = [&](const std::string& out) {
    return std::vector<std::string>{"generate", "--prompts", tmp.file("p.jsonl"), "--output", out, "--max-batch", "2"};
  };
  ASSERT_EQ(test::run_meshlm(base(tmp.file("reference.jsonl"))).exit_code, 0);
  const auto reference = test::answers_by_id(tmp.file("reference.jsonl"));
  for (const std::vector<std::string>& layout :
       {std::vector<std::string>{"--tp", "2"}, {"--pp", "2"}, {"--tp", "1", "--pp", "1"}}) {  // the last: dp2
    SCOPED_TRACE(layout[0] + " " + layout[1]);
    const std::string out = tmp.file("out" + layout[0] + layout[1] + ".jsonl");
    std::vector<std::string> cmd = {"timeout", "-k", "5", "120", "mpirun", "--oversubscribe", "--bind-to", "none",
                                    "--mca", "mpi_yield_when_idle", "1", "-np", "2", test::meshlm_binary()};
    for (const auto& a : base(out)) cmd.push_back(a);
    cmd.insert(cmd.end(), layout.begin(), layout.end());
    const test::FaultRun f = test::run_with_fault(cmd, out, 300, [&](pid_t) {
      const pid_t victim = rank_pid(out, 1);
      ASSERT_GT(victim, 0);
      ::kill(victim, SIGKILL);
    });
    ASSERT_GE(f.seconds_after_fault, 0) << "the job ended before the kill: " << f.result.err;
    std::printf("[ kill %s %s ] job ended %.1f s after rank 1 was killed\n", layout[0].c_str(), layout[1].c_str(),
                f.seconds_after_fault);
    EXPECT_NE(f.result.exit_code, 0);
    EXPECT_LT(f.seconds_after_fault, 15);
    EXPECT_EQ(rank_pid(out, 0), -1) << "a rank outlived the job";
    test::expect_resume_completes(base(out), out, 40, reference);
  }
}

}  // namespace
}  // namespace meshlm
