// --h5: the results file read back through the HDF5 API, against the JSONL output of the same run, on one rank and
// with two data-parallel replicas (rank 0 writes the rows other replicas send).
#include <gtest/gtest.h>

#include <cmath>
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

}  // namespace
}  // namespace meshlm
