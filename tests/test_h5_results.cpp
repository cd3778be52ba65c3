// --h5: the results file read back through the HDF5 API, against the JSONL output of the same run, on one rank and
// with two data-parallel replicas (rank 0 writes the rows other replicas send).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "h5_read.h"
#include "test_support.h"

namespace meshlm {
namespace {

void check_results(int np) {
  test::TempDir tmp;
  std::string prompts;
  for (int i = 0; i < 9; ++i)
    prompts += nlohmann::json({{"id", "h" + std::to_string(i)}, {"prompt_ids", {1, 403 + i}},
                               {"max_tokens", 3 + i}}).dump() + "\n";
  prompts += "{\"id\": \"bad\", \"prompt\": \"\"}\n";
  test::write_file(tmp.file("p.jsonl"), prompts);
  const std::vector<std::string> args = {"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"),
                                         "--h5", tmp.file("r.h5"), "--tp", "1", "--pp", "1"};
  const auto r = np == 1 ? test::run_meshlm(args) : test::run_mpi(np, args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& j : test::read_jsonl(tmp.file("o.jsonl")))
    if (!j.contains("error")) by_id[j["id"].get<std::string>()] = j;
  ASSERT_EQ(by_id.size(), 9u);

  const std::string h5 = tmp.file("r.h5");
  const auto ids = test::read_h5_strings(h5, "/requests/id");
  const auto finish = test::read_h5_strings(h5, "/requests/finish_reason");
  const auto prompt = test::read_h5_array<int32_t>(h5, "/requests/prompt_tokens", H5T_NATIVE_INT32);
  const auto completion = test::read_h5_array<int32_t>(h5, "/requests/completion_tokens", H5T_NATIVE_INT32);
  const auto offset = test::read_h5_array<int64_t>(h5, "/requests/token_offset", H5T_NATIVE_INT64);
  const auto tokens = test::read_h5_array<int32_t>(h5, "/tokens", H5T_NATIVE_INT32);
  const auto ttft = test::read_h5_array<double>(h5, "/requests/ttft_s", H5T_NATIVE_DOUBLE);
  const auto decode = test::read_h5_array<double>(h5, "/requests/decode_s", H5T_NATIVE_DOUBLE);
  ASSERT_EQ(ids.size(), 9u);  // the bad line has no row
  ASSERT_EQ(ttft.size(), 9u);
  for (size_t k = 0; k < ids.size(); ++k) {
    const nlohmann::json& line = by_id.at(ids[k]);
    EXPECT_EQ(finish[k], line["finish_reason"]);
    EXPECT_EQ(prompt[k], 2);
    EXPECT_EQ(completion[k], line["completion_tokens"]);
    const std::vector<int> got(tokens.begin() + offset[k], tokens.begin() + offset[k] + completion[k]);
    EXPECT_EQ(got, line["token_ids"].get<std::vector<int>>()) << ids[k];
    EXPECT_GT(ttft[k], 0.0);
    EXPECT_GE(decode[k], 0.0);
  }
  EXPECT_EQ(test::read_h5_root_attribute(h5, "layout"), "tp 1 x pp 1 x dp " + std::to_string(np));
  EXPECT_FALSE(test::read_h5_root_attribute(h5, "meshlm_version").empty());
  EXPECT_FALSE(test::read_h5_root_attribute(h5, "hosts").empty());
}

TEST(H5Results, OneRank) { check_results(1); }

struct Logprobs {
  std::vector<int32_t> tokens, top_ids;
  std::vector<float> chosen, top;
};

Logprobs run_logprobs(int np, const std::vector<std::string>& layout) {
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), "{\"id\": \"g\", \"prompt\": \"Once upon a time\", \"max_tokens\": 6}\n"
                                        "{\"id\": \"s\", \"prompt\": \"The dog\", \"max_tokens\": 6, "
                                        "\"temperature\": 0.9, \"seed\": 3}\n");
  std::vector<std::string> args = {"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"),
                                   "--h5", tmp.file("r.h5"), "--logprobs", "3", "--max-batch", "1"};
  args.insert(args.end(), layout.begin(), layout.end());
  const auto r = np == 1 ? test::run_meshlm(args) : test::run_mpi(np, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string h5 = tmp.file("r.h5");
  return {test::read_h5_array<int32_t>(h5, "/tokens", H5T_NATIVE_INT32),
          test::read_h5_array<int32_t>(h5, "/logprobs/top_ids", H5T_NATIVE_INT32),
          test::read_h5_array<float>(h5, "/logprobs/chosen", H5T_NATIVE_FLOAT),
          test::read_h5_array<float>(h5, "/logprobs/top_values", H5T_NATIVE_FLOAT)};
}

TEST(H5Results, TopLogprobsOnOneRankAndAtTp2) {
  const Logprobs one = run_logprobs(1, {});
  ASSERT_EQ(one.tokens.size(), 12u);
  ASSERT_EQ(one.chosen.size(), 12u);
  ASSERT_EQ(one.top_ids.size(), 36u);
  for (size_t t = 0; t < 12; ++t) {
    EXPECT_LE(one.chosen[t], 0.0f);
    EXPECT_GE(one.top[3 * t], one.top[3 * t + 1]);
    EXPECT_GE(one.top[3 * t + 1], one.top[3 * t + 2]);
    double mass = 0;
    for (int i = 0; i < 3; ++i) mass += std::exp(double(one.top[3 * t + i]));
    EXPECT_LE(mass, 1.0 + 1e-5);
    if (t < 6) {  // the greedy request picks the most likely token
      EXPECT_EQ(one.tokens[t], one.top_ids[3 * t]);
      EXPECT_FLOAT_EQ(one.chosen[t], one.top[3 * t]);
    }
  }
  const Logprobs tp2 = run_logprobs(2, {"--tp", "2", "--pp", "1"});
  EXPECT_EQ(tp2.tokens, one.tokens);
  EXPECT_EQ(tp2.top_ids, one.top_ids);
  ASSERT_EQ(tp2.top.size(), one.top.size());
  for (size_t i = 0; i < one.top.size(); ++i) EXPECT_NEAR(tp2.top[i], one.top[i], 1e-4);
}
TEST(H5Results, TwoReplicas) { check_results(2); }

// What a run leaves in its three files, by request id.
struct RunFiles {
  std::map<std::string, std::vector<int>> jsonl_tokens, h5_tokens;
  std::map<std::string, std::vector<float>> chosen, logits;
  size_t jsonl_lines = 0, h5_rows = 0;
};

RunFiles read_run(const test::TempDir& tmp) {
  RunFiles f;
  for (const auto& j : test::read_jsonl(tmp.file("o.jsonl"))) {
    ++f.jsonl_lines;
    f.jsonl_tokens[j["id"].get<std::string>()] = j["token_ids"].get<std::vector<int>>();
  }
  const std::string h5 = tmp.file("r.h5");
  const auto ids = test::read_h5_strings(h5, "/requests/id");
  const auto count = test::read_h5_array<int32_t>(h5, "/requests/completion_tokens", H5T_NATIVE_INT32);
  const auto offset = test::read_h5_array<int64_t>(h5, "/requests/token_offset", H5T_NATIVE_INT64);
  const auto tokens = test::read_h5_array<int32_t>(h5, "/tokens", H5T_NATIVE_INT32);
  const auto chosen = test::read_h5_floats(h5, "/logprobs/chosen");
  f.h5_rows = ids.size();
  EXPECT_EQ(tokens.size(), chosen.size());
  for (size_t k = 0; k < ids.size() && k < count.size() && k < offset.size(); ++k) {
    const auto at = offset[k], end = offset[k] + count[k];
    EXPECT_LE(size_t(end), std::min(tokens.size(), chosen.size()));
    if (size_t(end) > std::min(tokens.size(), chosen.size())) break;
    f.h5_tokens[ids[k]] = std::vector<int>(tokens.begin() + at, tokens.begin() + end);
    f.chosen[ids[k]] = std::vector<float>(chosen.begin() + at, chosen.begin() + end);
  }
  for (const std::string& id : test::read_h5_names(tmp.file("d.h5"), "/logits"))
    f.logits[id] = test::read_h5_floats(tmp.file("d.h5"), "/logits/" + id);
  return f;
}

// Kill a job that writes JSONL, --h5 (with logprobs) and --dump-logits; lose two of its JSONL lines as well, so that
// the HDF5 files hold requests the output lacks; --resume must end with exactly one record per request everywhere.
TEST(H5Results, ResumeAfterKillKeepsOneRecordPerRequest) {
  std::string prompts;
  for (int i = 0; i < 30; ++i)
    prompts += nlohmann::json({{"id", "k" + std::to_string(i)}, {"prompt_ids", {1, 403 + i % 7}},
                               {"max_tokens", 20 + (i * 37) % 200}}).dump() + "\n";
  const auto args = [](const test::TempDir& tmp) {
    return std::vector<std::string>{"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("o.jsonl"),
                                    "--h5", tmp.file("r.h5"), "--logprobs", "2", "--dump-logits", tmp.file("d.h5"),
                                    "--max-batch", "1"};
  };
  test::TempDir whole, killed;
  test::write_file(whole.file("p.jsonl"), prompts);
  test::write_file(killed.file("p.jsonl"), prompts);
  ASSERT_EQ(test::run_meshlm(args(whole)).exit_code, 0);
  const RunFiles want = read_run(whole);
  ASSERT_EQ(want.h5_rows, 30u);
  ASSERT_EQ(want.logits.size(), 30u);

  test::kill_meshlm_when(args(killed), killed.file("o.jsonl"), 1500);
  std::string text = test::read_file(killed.file("o.jsonl"));
  text.resize(text.rfind('\n') + 1);
  ASSERT_GE(std::count(text.begin(), text.end(), '\n'), 3) << "killed too early";
  for (int drop = 0; drop < 2; ++drop) text.resize(text.rfind('\n', text.size() - 2) + 1);
  test::write_file(killed.file("o.jsonl"), text);
  const RunFiles cut = read_run(killed);
  std::printf("[ resume ] killed with %zu JSONL lines kept, %zu HDF5 rows, %zu dumped logits\n", cut.jsonl_lines,
              cut.h5_rows, cut.logits.size());
  EXPECT_GT(cut.h5_rows, cut.jsonl_lines);

  std::vector<std::string> resume = args(killed);
  resume.push_back("--resume");
  const auto r = test::run_meshlm(resume);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const RunFiles got = read_run(killed);
  EXPECT_EQ(got.jsonl_lines, 30u);
  EXPECT_EQ(got.h5_rows, 30u);
  EXPECT_EQ(got.jsonl_tokens, want.jsonl_tokens);
  EXPECT_EQ(got.h5_tokens, want.h5_tokens);
  EXPECT_EQ(got.chosen, want.chosen);
  EXPECT_EQ(got.logits, want.logits);

  // Files that cannot continue the job are refused, naming the file and the reason; the output is untouched.
  std::vector<std::string> other_k = resume;
  other_k[std::find(other_k.begin(), other_k.end(), "--logprobs") - other_k.begin() + 1] = "3";
  auto bad = test::run_meshlm(other_k);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("r.h5: written with --logprobs 2; resume with the same"), std::string::npos) << bad.err;
  std::filesystem::remove(killed.file("r.h5"));
  bad = test::run_meshlm(resume);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("r.h5: missing, but the output already holds 30 finished requests"), std::string::npos)
      << bad.err;
  EXPECT_EQ(read_run(killed).jsonl_tokens, want.jsonl_tokens);
}

}  // namespace
}  // namespace meshlm
