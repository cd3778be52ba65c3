// generate, tokenize and info through the binary: per-request seeds independent of batching, stop strings,
// finish reasons, the eos rule, and the tokenize round trip.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <map>

#include "test_support.h"

namespace meshlm {
namespace {

std::vector<nlohmann::json> generate(const std::string& prompts, std::vector<std::string> extra = {}) {
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), prompts);
  std::vector<std::string> args = {"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"),
                                   "--output-order", "input"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = test::run_meshlm(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return test::read_jsonl(tmp.file("o.jsonl"));
}

const char* kSampled =
    "{\"id\": \"a\", \"prompt\": \"Once upon a time\", \"temperature\": 1.0, \"seed\": 11, \"max_tokens\": 40}\n"
    "{\"id\": \"b\", \"prompt\": \"The cat\", \"temperature\": 0.9, \"top_k\": 20, \"max_tokens\": 30}\n"
    "{\"id\": \"c\", \"prompt\": \"Lily and Ben\", \"temperature\": 1.2, \"top_p\": 0.8, \"min_p\": 0.05, \"max_tokens\": 35}\n";

TEST(Generate, SampledOutputDoesNotDependOnBatching) {
  const auto one = generate(kSampled, {"--batch-size", "1"});
  const auto all = generate(kSampled, {"--batch-size", "3"});
  ASSERT_EQ(one.size(), 3u);
  ASSERT_EQ(all.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(one[i]["token_ids"], all[i]["token_ids"]) << one[i]["id"];
  // A request keeps its stream when another request is removed (its index-derived seed is pinned by "seed").
  const auto alone = generate(
      "{\"id\": \"a\", \"prompt\": \"Once upon a time\", \"temperature\": 1.0, \"seed\": 11, \"max_tokens\": 40}\n");
  EXPECT_EQ(alone[0]["token_ids"], one[0]["token_ids"]);
  // Different seeds give different samples.
  const auto other = generate(
      "{\"id\": \"a\", \"prompt\": \"Once upon a time\", \"temperature\": 1.0, \"seed\": 12, \"max_tokens\": 40}\n");
  EXPECT_NE(other[0]["token_ids"], one[0]["token_ids"]);
}

TEST(Generate, StopStringsCutTheTextAndEndTheRequest) {
  const auto free_run = generate("{\"prompt\": \"Once upon a time\", \"max_tokens\": 60}\n");
  const std::string text = free_run[0]["text"];
  // Choose a stop string that spans a token boundary: the first 5 characters after "Lily".
  const size_t at = text.find("Lily");
  ASSERT_NE(at, std::string::npos) << text;
  const std::string stop = text.substr(at + 2, 5);
  const auto stopped = generate(
      "{\"prompt\": \"Once upon a time\", \"max_tokens\": 60, \"stop\": [\"zzz\", " + nlohmann::json(stop).dump() + "]}\n");
  EXPECT_EQ(stopped[0]["finish_reason"], "stop");
  EXPECT_EQ(stopped[0]["text"], text.substr(0, at + 2));
  EXPECT_LT(stopped[0]["completion_tokens"].get<int>(), free_run[0]["completion_tokens"].get<int>());
  EXPECT_EQ(free_run[0]["finish_reason"], "length");
  EXPECT_EQ(free_run[0]["completion_tokens"], 60);
}

TEST(Generate, AcceptsByteOrderMarkAndCrlf) {
  const auto out = generate("\xEF\xBB\xBF{\"id\": \"x\", \"prompt_ids\": [1, 403], \"max_tokens\": 3}\r\n\r\n");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["id"], "x");
  EXPECT_EQ(out[0]["completion_tokens"], 3);
}

TEST(Generate, ContextLimitEndsWithLength) {
  const auto out = generate("{\"prompt_ids\": [1, 403, 407], \"max_tokens\": 100}\n", {"--max-context", "10"});
  EXPECT_EQ(out[0]["finish_reason"], "length");
  EXPECT_EQ(out[0]["completion_tokens"], 7);  // positions 0..9 hold 3 prompt tokens and 7 generated
}

TEST(Generate, EosFromGenerationConfigEndsWithStopAndIsLast) {
  const std::string prompt = "{\"prompt_ids\": [1, 403, 407, 261, 378], \"max_tokens\": 40}\n";
  const auto free_run = generate(prompt);
  const auto ids = free_run[0]["token_ids"].get<std::vector<int>>();
  ASSERT_GT(ids.size(), 12u);
  // Make the 11th generated token an eos id through generation_config.json (a list, next to config's eos 2).
  const int eos = ids[10];
  const size_t first = size_t(std::find(ids.begin(), ids.end(), eos) - ids.begin());
  test::TempDir tmp;
  test::copy_dir(test::source_dir() + "/models/stories260k", tmp.file("m"));
  test::write_file(tmp.file("m/generation_config.json"), "{\"eos_token_id\": [2, " + std::to_string(eos) + "]}");
  const auto out = generate(prompt, {"--model", tmp.file("m")});
  EXPECT_EQ(out[0]["finish_reason"], "stop");
  EXPECT_EQ(out[0]["token_ids"], std::vector<int>(ids.begin(), ids.begin() + long(first) + 1));
  EXPECT_EQ(out[0]["completion_tokens"], first + 1);
}

// 40 requests of different lengths, so that they finish out of order.
std::string many_prompts(int longest = 40) {
  std::string p;
  for (int i = 0; i < 40; ++i)
    p += nlohmann::json({{"id", "r" + std::to_string(i)}, {"prompt_ids", {1, 403 + i % 7}},
                         {"max_tokens", 5 + (i * 13) % longest}}).dump() + "\n";
  return p;
}

std::map<std::string, nlohmann::json> by_id(const std::vector<nlohmann::json>& lines) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& j : lines) EXPECT_TRUE(out.emplace(j["id"].get<std::string>(), j).second) << "duplicate " << j["id"];
  return out;
}

TEST(Generate, CompletionOrderWritesAsRequestsFinish) {
  const auto in_order = generate(many_prompts(), {"--batch-size", "8"});
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), many_prompts());
  const auto r = test::run_meshlm({"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"),
                                   "--batch-size", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto done = test::read_jsonl(tmp.file("o.jsonl"));
  ASSERT_EQ(done.size(), 40u);
  EXPECT_NE(done[1]["id"], "r1") << "short requests should overtake long ones";
  EXPECT_EQ(by_id(done), by_id(in_order));
}

TEST(Generate, ResumeAfterKillGivesTheUninterruptedSet) {
  const auto full = by_id(generate(many_prompts(), {"--batch-size", "4"}));
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), many_prompts());
  const std::vector<std::string> args = {"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"),
                                         "--batch-size", "4"};
  // A killed run leaves some complete lines and a partial one.
  ASSERT_EQ(test::run_meshlm(args).exit_code, 0);
  std::string text = test::read_file(tmp.file("o.jsonl"));
  size_t cut = 0;
  for (int k = 0; k < 11; ++k) cut = text.find('\n', cut) + 1;
  test::write_file(tmp.file("o.jsonl"), text.substr(0, cut + 17));
  std::vector<std::string> resume = args;
  resume.push_back("--resume");
  const auto r = test::run_meshlm(resume);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("11 lines already done, 29 to go"), std::string::npos) << r.err;
  EXPECT_EQ(by_id(test::read_jsonl(tmp.file("o.jsonl"))), full);

  // And a real kill -9 once a few lines are out (longer requests, one at a time), then --resume.
  const auto slow_full = by_id(generate(many_prompts(400), {"--batch-size", "1"}));
  test::write_file(tmp.file("p.jsonl"), many_prompts(400));
  test::write_file(tmp.file("o.jsonl"), "");
  std::vector<std::string> slow = args;
  slow.insert(slow.end(), {"--batch-size", "1"});
  test::kill_meshlm_when(slow, tmp.file("o.jsonl"), 600);
  const size_t before = test::read_jsonl(tmp.file("o.jsonl")).size();
  std::printf("[ resume ] killed after %zu of 40 lines\n", before);
  EXPECT_GT(before, 0u) << "the kill came before any line was out";
  EXPECT_LT(before, 40u) << "the kill came after the job had finished";
  resume = slow;
  resume.push_back("--resume");
  const auto again = test::run_meshlm(resume);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(by_id(test::read_jsonl(tmp.file("o.jsonl"))), slow_full);
}

// SIGTERM (or Ctrl-C) mid-job: the finished answers are synced, the process says how to go on and exits 143, and
// --resume completes the output to the uninterrupted set.
TEST(Generate, SigtermKeepsFinishedAnswersAndResumeCompletes) {
  const auto full = by_id(generate(many_prompts(400), {"--batch-size", "1"}));
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), many_prompts(400));
  const std::vector<std::string> args = {test::meshlm_binary(), "generate", "--prompts", tmp.file("p.jsonl"),
                                         "--output", tmp.file("o.jsonl"), "--batch-size", "1"};
  const test::FaultRun f =
      test::run_with_fault(args, tmp.file("o.jsonl"), 600, [](pid_t pid) { ::kill(pid, SIGTERM); });
  ASSERT_GE(f.seconds_after_fault, 0) << "ended before the signal: " << f.result.err;
  EXPECT_EQ(f.result.exit_code, 128 + SIGTERM) << f.result.err;
  EXPECT_NE(f.result.err.find("interrupted; the answers finished so far are in the output"), std::string::npos);
  const size_t before = test::read_jsonl(tmp.file("o.jsonl")).size();  // every line whole
  EXPECT_GT(before, 0u);
  EXPECT_LT(before, 40u);
  std::vector<std::string> resume(args.begin() + 1, args.end());
  resume.push_back("--resume");
  const auto r = test::run_meshlm(resume);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(by_id(test::read_jsonl(tmp.file("o.jsonl"))), full);
}

TEST(Generate, MetricsJsonHasThroughputAndLatencyPercentiles) {
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), many_prompts());
  const auto r = test::run_meshlm({"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"),
                                   "--metrics-json", tmp.file("m.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("requests/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("TTFT mean"), std::string::npos) << r.err;
  const auto m = nlohmann::json::parse(test::read_file(tmp.file("m.json")));
  EXPECT_EQ(m["requests"], 40);
  EXPECT_EQ(m["ttft_s"]["count"], 40);
  EXPECT_EQ(m["tpot_s"]["count"], 40);  // every request generates at least 5 tokens
  for (const char* k : {"ttft_s", "tpot_s"}) {
    EXPECT_GT(m[k]["p50"].get<double>(), 0.0) << k;
    EXPECT_LE(m[k]["p50"].get<double>(), m[k]["p99"].get<double>()) << k;
  }
  EXPECT_GT(m["requests_per_s"].get<double>(), 0.0);
  EXPECT_EQ(m["ranks"][0]["weight_bytes"].get<uint64_t>() > 0, true);
}

TEST(Tokenize, RoundTripsThroughTheBinary) {
  test::TempDir tmp;
  test::write_file(tmp.file("t.jsonl"), "{\"text\": \"Hello world\"}\n{\"text\": \"Lily \\u65e5\\u672c ran.\"}\n");
  auto r = test::run_meshlm({"tokenize", "--input", tmp.file("t.jsonl"), "--output", tmp.file("ids.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ids = test::read_jsonl(tmp.file("ids.jsonl"));
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0]["ids"][0], 1);  // BOS
  r = test::run_meshlm({"tokenize", "--decode", "--input", tmp.file("ids.jsonl"), "--output", tmp.file("back.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto back = test::read_jsonl(tmp.file("back.jsonl"));
  EXPECT_EQ(back[0]["text"], "Hello world");
  EXPECT_EQ(back[1]["text"], "Lily \u65e5\u672c ran.");
}

TEST(Info, DescribesTheEmbeddedModel) {
  const auto r = test::run_meshlm({"info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("LlamaForCausalLM"), std::string::npos);
  EXPECT_NE(r.out.find("parameters    260032"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes F32     1040128"), std::string::npos) << r.out;
}

TEST(Help, EveryVerbHasHelp) {
  for (const char* verb : {"generate", "tokenize", "info"}) {
    const auto r = test::run_meshlm({verb, "--help"});
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << verb;
  }
  EXPECT_EQ(test::run_meshlm({"--help"}).exit_code, 0);
}

}  // namespace
}  // namespace meshlm
