// A real multi-host job: ../shared/cluster/vcluster makes network namespaces with emulated Thunderbolt links, and
// mpirun starts ranks in them as on separate hosts (TCP between hosts). The automatic layout must put the pipeline
// across hosts (and tensor parallelism inside a host), and the goldens must still match.
// Needs root and network namespaces, as CI has; elsewhere it is skipped with the reason.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "golden_check.h"

namespace meshlm {
namespace {

std::string vcluster() { return test::shared_dir() + "/cluster/vcluster"; }

class VirtualCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::shared_dir().empty() || !std::filesystem::exists(vcluster())) GTEST_SKIP() << "no ../shared/cluster";
    if (::geteuid() != 0) GTEST_SKIP() << "vcluster needs root (CI runs as root)";
  }
  void TearDown() override {
    if (up_) test::run_command({vcluster(), "down"});
  }
  void up(int nodes) {
    const auto r = test::run_command({vcluster(), "up", std::to_string(nodes), "--profile", "tb5"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    up_ = true;
  }
  // mpirun across the nodes, with a time limit and fast detection of a lost node.
  test::Runner runner(int np, int slots) {
    return [np, slots](const std::vector<std::string>& args) {
      std::vector<std::string> cmd = {"timeout", "-k", "5", "240", vcluster(), "mpirun"};
      if (slots > 1) cmd.insert(cmd.end(), {"--slots", std::to_string(slots), "--shm"});
      cmd.insert(cmd.end(), {"-np", std::to_string(np), "-x", "OPENBLAS_NUM_THREADS=1", "--mca",
                             "oob_tcp_keepalive_time", "5", "--mca", "oob_tcp_keepalive_intvl", "1", "--mca",
                             "oob_tcp_keepalive_probes", "3", test::meshlm_binary()});
      cmd.insert(cmd.end(), args.begin(), args.end());
      auto r = test::run_command(cmd);
      last_err() = r.err;
      return r;
    };
  }
  static std::string& last_err() {
    static std::string s;
    return s;
  }
  bool up_ = false;
};

TEST_F(VirtualCluster, PipelineAcrossThreeHosts) {
  up(3);
  for (const std::string& name : {std::string("models/stories260k"), std::string("golden/models/tiny-llama3-bf16")}) {
    SCOPED_TRACE(name);
    test::check_golden(test::shared_dir() + "/" + name, runner(3, 1), {});
    EXPECT_NE(last_err().find("layout tp 1 x pp 3 x dp 1 (auto: 3 ranks on 3 hosts"), std::string::npos) << last_err();
    for (const char* host : {"node0", "node1", "node2"}) EXPECT_NE(last_err().find(host), std::string::npos) << host;
  }
}

TEST_F(VirtualCluster, TensorInsideHostsPipelineAcrossTwoHosts) {
  up(2);
  test::check_golden(test::shared_dir() + "/golden/models/tiny-qwen2-f32", runner(4, 2), {});
  EXPECT_NE(last_err().find("layout tp 2 x pp 2 x dp 1 (auto: 4 ranks on 2 hosts"), std::string::npos) << last_err();
}

// Mixture of experts with the tensor group across hosts (TCP between its ranks): each host holds half the experts, or
// half of every expert.
TEST_F(VirtualCluster, ExpertsSplitAcrossTwoHosts) {
  up(2);
  test::check_golden(test::shared_dir() + "/golden/models/tiny-qwen2moe-f32", runner(2, 1),
                     {"--tp", "2", "--moe-split", "experts"});
  EXPECT_NE(last_err().find("experts split over the 2 tensor ranks"), std::string::npos) << last_err();
  test::check_golden(test::shared_dir() + "/golden/models/tiny-mixtral-bf16", runner(2, 1),
                     {"--tp", "2", "--moe-split", "tensor"});
}

}  // namespace
}  // namespace meshlm
