#include "golden_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "h5_read.h"

namespace meshlm::test {
namespace fs = std::filesystem;

const std::vector<std::string>& golden_model_names() {
  static const std::vector<std::string> names = {"models/stories260k", "golden/models/tiny-llama3-bf16",
                                                 "golden/models/tiny-mistral-f16", "golden/models/tiny-qwen2-f32",
                                                 "golden/models/tiny-qwen3-bf16", "golden/models/tiny-mixtral-bf16",
                                                 "golden/models/tiny-qwen3moe-bf16", "golden/models/tiny-qwen2moe-f32",
                                                 "golden/models/tiny-llama-mlx4", "golden/models/tiny-qwen3-mlx8",
                                                 "golden/models/tiny-qwen3moe-mlx4",
                                                 "golden/models/tiny-deepseekv3-bf16",
                                                 "golden/models/tiny-deepseekv3-mlx4"};
  return names;
}

std::vector<std::string> golden_models() {
  std::vector<std::string> out;
  const std::string shared = shared_dir();
  if (shared.empty()) return out;
  out.push_back(shared + "/models/stories260k");
  std::vector<std::string> golden;
  for (auto& e : fs::directory_iterator(shared + "/golden/models")) golden.push_back(e.path().string());
  std::sort(golden.begin(), golden.end());
  out.insert(out.end(), golden.begin(), golden.end());
  return out;
}

void check_golden(const std::string& model, const Runner& run, const std::vector<std::string>& extra_args) {
  const auto expected = read_jsonl(model + "/expected.jsonl");
  ASSERT_FALSE(expected.empty()) << model;
  TempDir tmp;
  std::string prompts;
  for (size_t i = 0; i < expected.size(); ++i) {
    nlohmann::json req = {{"id", "r" + std::to_string(i)}, {"prompt_ids", expected[i]["prompt_ids"]},
                          {"max_tokens", std::max<size_t>(1, expected[i]["greedy"].size())}};
    prompts += req.dump() + "\n";
  }
  write_file(tmp.file("p.jsonl"), prompts);
  std::vector<std::string> args = {"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                                   tmp.file("o.jsonl"), "--dump-logits", tmp.file("l.h5"), "--output-order", "input"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  const auto r = run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = read_jsonl(tmp.file("o.jsonl"));
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string where = fs::path(model).filename().string() + " line " + std::to_string(i + 1);
    EXPECT_EQ(out[i]["id"], "r" + std::to_string(i)) << where;
    EXPECT_EQ(out[i]["prompt_tokens"], expected[i]["prompt_ids"].size()) << where;
    const auto want = expected[i]["greedy"].get<std::vector<int>>();
    auto got = out[i]["token_ids"].get<std::vector<int>>();
    got.resize(std::min(got.size(), want.size()));
    EXPECT_EQ(got, want) << where << ": greedy tokens differ";
    const auto ref = expected[i]["first_logits"].get<std::vector<float>>();
    const auto logits = read_h5_floats(tmp.file("l.h5"), "/logits/r" + std::to_string(i));
    ASSERT_EQ(logits.size(), ref.size()) << where;
    float max_abs = 0, max_err = 0;
    for (size_t k = 0; k < ref.size(); ++k) {
      max_abs = std::max(max_abs, std::fabs(ref[k]));
      max_err = std::max(max_err, std::fabs(ref[k] - logits[k]));
    }
    const float tol = 1e-3f * std::max(1.0f, max_abs);
    EXPECT_LE(max_err, tol) << where << ": first-step logits differ";
    std::printf("[ logits ] %s: max |error| %.3g = %.2g of the tolerance\n", where.c_str(), max_err, max_err / tol);
  }
}

}  // namespace meshlm::test
