// --weight-dtype q8_0 / q4_0 against the goldens, teacher-forced: for every step of every golden continuation, the
// prompt plus the golden tokens so far must make the quantized model pick the golden next token. Prints the
// agreement; fails only when quantization is broken (far below what it measures), since these small random models
// have narrow top-2 margins.
#include <gtest/gtest.h>

#include <filesystem>

#include "golden_check.h"

namespace meshlm {
namespace {

struct Agreement {
  size_t agree = 0, total = 0;
};

Agreement agreement(const std::string& model, const std::string& weight_dtype) {
  test::TempDir tmp;
  std::string prompts;
  std::vector<int> want;
  for (const auto& e : test::read_jsonl(model + "/expected.jsonl")) {
    std::vector<int> prefix = e["prompt_ids"].get<std::vector<int>>();
    for (int next : e["greedy"].get<std::vector<int>>()) {
      prompts += nlohmann::json({{"id", std::to_string(want.size())}, {"prompt_ids", prefix}, {"max_tokens", 1}}).dump() + "\n";
      want.push_back(next);
      prefix.push_back(next);
    }
  }
  test::write_file(tmp.file("p.jsonl"), prompts);
  const auto r = test::run_meshlm({"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                                   tmp.file("o.jsonl"), "--output-order", "input", "--weight-dtype", weight_dtype,
                                   "--max-batch", "32"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto out = test::read_jsonl(tmp.file("o.jsonl"));
  Agreement a;
  for (size_t i = 0; i < out.size() && i < want.size(); ++i) a.agree += out[i]["token_ids"][0] == want[i];
  a.total = want.size();
  return a;
}

TEST(QuantAccuracy, TopOneAgreementWithTheGoldens) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) GTEST_SKIP() << "../shared not found";
  std::vector<std::string> models;  // the goldens of supported models (test_e2e_golden lists them)
  for (const std::string& rel : test::golden_model_names()) models.push_back(shared + "/" + rel);
  for (const auto& [dtype, floor] : {std::pair{"q8_0", 0.95}, {"q4_0", 0.6}}) {
    Agreement all;
    for (const std::string& m : models) {
      const Agreement a = agreement(m, dtype);
      std::printf("[ %s ] %s: %zu/%zu\n", dtype, std::filesystem::path(m).filename().c_str(), a.agree, a.total);
      all.agree += a.agree, all.total += a.total;
    }
    const double share = double(all.agree) / double(all.total);
    std::printf("[ %s ] top-1 agreement %.2f%% (%zu/%zu)\n", dtype, 100 * share, all.agree, all.total);
    EXPECT_GE(share, floor) << dtype;
  }
}

}  // namespace
}  // namespace meshlm
