// Impossible layouts are refused at start-up with the reason, printed once; an error on one rank ends every rank
// promptly with that rank's message. Nothing hangs (run_mpi has a time limit; these finish in seconds).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

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
