// Every parallel layout reproduces the goldens: greedy ids exactly and first-step logits within tolerance, for
// stories260k and every ../shared/golden/models/*, as far as each model's heads and layers allow. Ranks run on
// this host (mpirun --oversubscribe); test_vcluster runs a layout across emulated hosts.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "golden_check.h"

namespace meshlm {
namespace {

struct Layout {
  const char* name;
  int np;
  std::vector<std::string> args;
  int tp, pp;
};

const Layout kLayouts[] = {
    {"tp2", 2, {"--tp", "2", "--pp", "1"}, 2, 1},
    {"tp3", 3, {"--tp", "3", "--pp", "1"}, 3, 1},
    {"tp4", 4, {"--tp", "4", "--pp", "1"}, 4, 1},
    {"pp2", 2, {"--tp", "1", "--pp", "2"}, 1, 2},
    {"pp3", 3, {"--tp", "1", "--pp", "3"}, 1, 3},
    {"tp2_pp2", 4, {"--tp", "2", "--pp", "2"}, 2, 2},
    {"dp2", 2, {"--tp", "1", "--pp", "1"}, 1, 1},
    {"pp2_no_prefix_cache", 2, {"--tp", "1", "--pp", "2", "--no-prefix-cache"}, 1, 2},
    {"pp2_4_micro_batches", 2, {"--pp", "2", "--micro-batches", "4", "--batch-size", "4"}, 1, 2},
    {"tp2_dp2", 4, {"--tp", "2", "--pp", "1"}, 2, 1},
    {"tp2_pp2_chunked_prefill", 4, {"--tp", "2", "--pp", "2", "--max-batch", "4", "--max-batch-tokens", "6",
                                    "--prefill-chunk", "2"}, 2, 2},
};

class ParallelGolden : public ::testing::TestWithParam<Layout> {};

TEST_P(ParallelGolden, MatchesGoldens) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent (set MESHLM_SHARED): golden models not run";
  const Layout& layout = GetParam();
  int checked = 0;
  for (const std::string& name : test::golden_model_names()) {
    const std::string model = test::shared_dir() + "/" + name;
    const auto config = nlohmann::json::parse(test::read_file(model + "/config.json"));
    const int heads = config["num_attention_heads"], layers = config["num_hidden_layers"];
    const int kv = config.value("num_key_value_heads", heads);
    if (layout.tp > heads || layout.pp > layers) {
      std::printf("[ layout ] %s: %s does not fit (%d heads, %d layers)\n", layout.name, name.c_str(), heads, layers);
      continue;
    }
    SCOPED_TRACE(std::string(layout.name) + " on " + name + (layout.tp > kv ? " (kv heads replicated)" : ""));
    test::check_golden(model, [&](const std::vector<std::string>& a) { return test::run_mpi(layout.np, a); },
                       layout.args);
    ++checked;
  }
  EXPECT_GE(checked, 2) << "too few models fit this layout for it to mean anything";
}

INSTANTIATE_TEST_SUITE_P(Layouts, ParallelGolden, ::testing::ValuesIn(kLayouts),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace meshlm
