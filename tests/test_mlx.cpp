// MLX affine-quantized checkpoints through the binary, on models mlx_convert writes from make_model's: every bit
// width and group size gives one rank's tokens in tensor-parallel (slices inside groups), pipeline and MoE layouts,
// and bad quantized files or configs get one line naming the tensor or key. (The MLX goldens themselves run in
// test_e2e_golden, test_parallel_golden and test_moe.)
#include <gtest/gtest.h>

#include "test_support.h"

namespace meshlm {
namespace {

class MlxModel : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(tmp_.file("p.jsonl"), "{\"id\": \"a\", \"prompt_ids\": [1, 40, 7, 99, 3, 250]}\n"
                                           "{\"id\": \"b\", \"prompt_ids\": [1, 5]}\n"
                                           "{\"id\": \"c\", \"prompt_ids\": [1, 17, 18, 19, 20, 21, 22, 23, 24]}\n");
  }
  // make_model `args`, then mlx_convert at bits/group into `name`.
  std::string make(const std::string& name, std::vector<std::string> args, int bits, int group) {
    const std::string flt = tmp_.file(name + "-float"), out = tmp_.file(name);
    args.insert(args.begin(), {test::make_model_binary(), "--out", flt});
    EXPECT_EQ(test::run_command(args).exit_code, 0);
    const auto r = test::run_command({test::mlx_convert_binary(), "--model", flt, "--out", out, "--bits",
                                      std::to_string(bits), "--group", std::to_string(group)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
  std::vector<nlohmann::json> generate(const std::string& model, int np, std::vector<std::string> extra,
                                       test::RunResult* result = nullptr) {
    std::vector<std::string> args = {"generate", "--model", model, "--prompts", tmp_.file("p.jsonl"), "--output",
                                     tmp_.file("o.jsonl"), "--max-tokens", "8", "--output-order", "input"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = np == 1 ? test::run_meshlm(args) : test::run_mpi(np, args);
    if (result) *result = r;  // the caller checks it
    else EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? test::read_jsonl(tmp_.file("o.jsonl")) : std::vector<nlohmann::json>{};
  }
  void edit_config(const std::string& model, const std::function<void(nlohmann::json&)>& edit) {
    auto c = nlohmann::json::parse(test::read_file(model + "/config.json"));
    edit(c);
    test::write_file(model + "/config.json", c.dump());
  }
  static void expect_error(const test::RunResult& r, const std::vector<std::string>& fragments) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    for (auto& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "missing '" << f << "' in: " << r.err;
  }
  test::TempDir tmp_;
};

TEST_F(MlxModel, EveryBitWidthGivesOneRanksTokensInEveryLayout) {
  // 8 heads of 16: tp3 cuts o_proj's 128 inputs at 48 and 96, tp4 at every 32: slices start inside groups.
  for (auto [bits, group] : {std::pair{2, 32}, {3, 64}, {4, 64}, {5, 32}, {6, 128}, {8, 32}}) {
    SCOPED_TRACE(std::to_string(bits) + " bits, groups of " + std::to_string(group));
    const std::string m = make("llama" + std::to_string(bits), {"--dim", "128", "--heads", "8", "--kv-heads", "2",
                                                                 "--hidden", "256", "--vocab", "320"}, bits, group);
    const auto one = generate(m, 1, {});
    ASSERT_EQ(one.size(), 3u);
    for (const auto& [np, flags] : {std::pair{2, std::vector<std::string>{"--tp", "2"}},
                                    {4, {"--tp", "4"}}, {3, {"--tp", "3"}}, {2, {"--pp", "2"}}}) {
      const auto got = generate(m, np, flags);
      ASSERT_EQ(got.size(), 3u);
      for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i]["token_ids"], one[i]["token_ids"]) << flags[0] << flags[1];
    }
  }
}

TEST_F(MlxModel, StackedExpertsInBothSplits) {
  const std::string m = make("moe", {"--preset", "tiny-moe"}, 4, 32);
  const auto one = generate(m, 1, {});
  ASSERT_EQ(one.size(), 3u);
  for (const char* split : {"experts", "tensor"}) {
    const auto got = generate(m, 2, {"--tp", "2", "--moe-split", split});
    ASSERT_EQ(got.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i]["token_ids"], one[i]["token_ids"]) << split;
  }
}

TEST_F(MlxModel, InfoShowsTheQuantization) {
  const std::string m = make("info", {"--preset", "tiny-moe"}, 4, 32);
  // Packed words count as the weights they hold, so the parameters are the float model's.
  auto params = [](const std::string& out) {
    const size_t at = out.find("parameters");
    return out.substr(at, out.find('\n', at) - at);
  };
  const auto q = test::run_meshlm({"info", "--model", m});
  const auto f = test::run_meshlm({"info", "--model", m + "-float"});
  EXPECT_EQ(params(q.out), params(f.out));
  edit_config(m, [](nlohmann::json& c) { c["quantization"]["model.layers.1.mlp.gate"] = {{"bits", 8}, {"group_size", 32}}; });
  const auto r = test::run_meshlm({"info", "--model", m});
  EXPECT_NE(r.out.find("quantization  MLX affine, 4-bit, groups of 32; 1 module override"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("override    model.layers.1.mlp.gate: 8-bit, groups of 32"), std::string::npos) << r.out;
}

TEST_F(MlxModel, BadQuantizedCheckpointsSayWhatIsWrong) {
  const std::string m = make("bad", {"--preset", "tiny"}, 4, 32);
  test::RunResult r;
  edit_config(m, [](nlohmann::json& c) { c["quantization"]["bits"] = 8; });  // the file holds 4-bit words
  generate(m, 1, {}, &r);
  expect_error(r, {"model.safetensors", "tensor 'model.embed_tokens.weight'", "expected shape [256, 16]",
                   "8-bit", "got [256, 8]"});
  edit_config(m, [](nlohmann::json& c) { c["quantization"]["bits"] = 4, c["quantization"]["group_size"] = 128; });
  generate(m, 1, {}, &r);
  expect_error(r, {"input size 64 is not a multiple of group_size 128"});
  edit_config(m, [](nlohmann::json& c) { c["quantization"]["group_size"] = 48; });
  generate(m, 1, {}, &r);
  expect_error(r, {"config.json", "group_size 48 is not supported"});
  edit_config(m, [](nlohmann::json& c) { c["quantization"] = {{"group_size", 32}, {"bits", 4}, {"mode", "mxfp4"}}; });
  generate(m, 1, {}, &r);
  expect_error(r, {"config.json", "mode \"mxfp4\" is not supported"});
  edit_config(m, [](nlohmann::json& c) { c.erase("quantization"), c.erase("quantization_config"); });
  generate(m, 1, {}, &r);
  expect_error(r, {"scales' marks an MLX-quantized matrix", "no \"quantization\""});
}

}  // namespace
}  // namespace meshlm
