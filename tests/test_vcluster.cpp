// A real multi-host job: ../shared/cluster/vcluster makes network namespaces with emulated Thunderbolt links, and
// mpirun starts ranks in them as on separate hosts (TCP between hosts). The automatic layout must make replicas of a
// model that fits on a host and split one that does not, and the goldens must still match.
// Needs root and network namespaces, as CI has; elsewhere it is skipped with the reason.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>

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
  // ucx: Open MPI's UCX point-to-point layer (over TCP here) instead of ob1/tcp.
  test::Runner runner(int np, int slots, bool ucx = false) {
    return [np, slots, ucx](const std::vector<std::string>& args) {
      std::vector<std::string> cmd = {"timeout", "-k", "5", "240", vcluster(), "mpirun"};
      if (ucx) cmd.push_back("--ucx");
      if (slots > 1) cmd.insert(cmd.end(), {"--slots", std::to_string(slots), "--shm"});
      // vcluster's --ucx passes UCX's settings in mca_base_env_list, which Open MPI will not mix with -x.
      if (ucx)
        cmd.insert(cmd.end(), {"--mca", "mca_base_env_list",
                               "UCX_TLS=tcp,self;UCX_NET_DEVICES=eth0;OPENBLAS_NUM_THREADS=1"});
      else
        cmd.insert(cmd.end(), {"-x", "OPENBLAS_NUM_THREADS=1"});
      cmd.insert(cmd.end(), {"-np", std::to_string(np), "--mca",
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

// A model that fits on each host runs as one replica per host; with --memory-limit below one copy of the model the
// planner must split it across the hosts (the pipeline or the tensor group over TCP), and the goldens still match.
TEST_F(VirtualCluster, ReplicasWhenTheModelFitsSplitAcrossHostsWhenItDoesNot) {
  up(3);
  for (const std::string& name : {std::string("models/stories260k"), std::string("golden/models/tiny-llama3-bf16")}) {
    SCOPED_TRACE(name);
    test::check_golden(test::shared_dir() + "/" + name, runner(3, 1), {});
    EXPECT_NE(last_err().find("layout tp 1 x pp 1 x dp 3 (auto: a replica"), std::string::npos) << last_err();
    EXPECT_NE(last_err().find("fits on one host"), std::string::npos) << last_err();
    for (const char* host : {"node0", "node1", "node2"}) EXPECT_NE(last_err().find(host), std::string::npos) << host;
  }
  // tiny-llama3-bf16 holds 0.39 MB: 0.3 MB per host leaves no room for a copy on one host.
  test::check_golden(test::shared_dir() + "/golden/models/tiny-llama3-bf16", runner(3, 1), {"--memory-limit", "300K"});
  EXPECT_NE(last_err().find("x dp 1 (auto: a replica"), std::string::npos) << last_err();
  EXPECT_NE(last_err().find("needs 3 hosts"), std::string::npos) << last_err();
}

// Two ranks per host, and a model that must be split over both hosts: the tensor group inside a host (shared memory),
// the pipeline across the link.
TEST_F(VirtualCluster, TensorInsideHostsPipelineAcrossTwoHosts) {
  up(2);
  test::check_golden(test::shared_dir() + "/golden/models/tiny-qwen2-f32", runner(4, 2), {"--memory-limit", "400K"});
  EXPECT_NE(last_err().find("layout tp 2 x pp 2 x dp 1 (auto: a replica"), std::string::npos) << last_err();
  EXPECT_NE(last_err().find("pipeline across hosts"), std::string::npos) << last_err();
}

// `meshlm plan` on two hosts: the hosts, the link and the ranked layouts, a --json file with them, a --verify run
// beside its prediction, and a command line that runs and gives the goldens.
TEST_F(VirtualCluster, PlanPrintsARankedTableAndACommandThatRuns) {
  up(2);
  test::TempDir tmp;
  const std::string model = test::shared_dir() + "/golden/models/tiny-llama3-bf16";
  const auto r = runner(2, 1)({"plan", "--model", model, "--memory-limit", "300K", "--json", tmp.file("plan.json"),
                               "--verify", "1", "--batch", "4", "--prompt-len", "8", "--gen-len", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* text : {"| node0 | 1 |", "| node1 | 1 |", "link between hosts:", "| 1 | tp ", "measured / predicted"})
    EXPECT_NE(r.out.find(text), std::string::npos) << text << " in " << r.out;
  const auto plan = nlohmann::json::parse(test::read_file(tmp.file("plan.json")));
  ASSERT_GE(plan["rows"].size(), 2u);
  EXPECT_FALSE(plan["rows"].back()["fits"].get<bool>()) << "dp 2 cannot fit in 300 KB per host";
  EXPECT_EQ(plan["verify"].size(), 1u);
  EXPECT_GT(plan["verify"][0]["measured_tok_s"].get<double>(), 0);
  // The command's layout, with the goldens' prompts (whose KV cache is larger than the planned workload's, so without
  // the memory cap), gives the goldens.
  const size_t at = r.out.find("command: mpirun ");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::istringstream words(r.out.substr(at, r.out.find('\n', at) - at));
  std::vector<std::string> args;
  bool after_binary = false, skip_value = false;
  for (std::string w; words >> w;) {
    const bool flag_to_drop = w == "--prompts" || w == "--output" || w == "--memory-limit";
    if (after_binary && w != "generate" && !flag_to_drop && !skip_value) args.push_back(w);
    skip_value = flag_to_drop;
    after_binary |= w == "meshlm";
  }
  ASSERT_FALSE(args.empty());
  EXPECT_EQ(args[0], "--model");
  test::check_golden(model, runner(2, 1), std::vector<std::string>(args.begin() + 2, args.end()));
}

// A host without the model: node1's rank is given a directory that does not exist, receives its slices over the
// link, and the answers are the goldens.
TEST_F(VirtualCluster, HostWithoutTheModelIsSentItsSlices) {
  up(2);
  test::TempDir tmp;
  const std::string model = test::shared_dir() + "/golden/models/tiny-qwen2-f32";
  test::write_file(tmp.file("p.jsonl"), "{\"id\": \"a\", \"prompt\": \"Hello there\", \"max_tokens\": 16}\n");
  ASSERT_EQ(test::run_meshlm({"generate", "--model", model, "--prompts", tmp.file("p.jsonl"), "--output",
                              tmp.file("one.jsonl")}).exit_code, 0);
  for (const char* tp : {"1", "2"}) {
    const std::string out = tmp.file(std::string("two-tp") + tp + ".jsonl");
    std::vector<std::string> cmd = {"timeout", "-k", "5", "240", vcluster(), "mpirun", "-x", "OPENBLAS_NUM_THREADS=1"};
    for (const std::string& dir : {model, tmp.file("nowhere")}) {
      if (dir != model) cmd.push_back(":");
      cmd.insert(cmd.end(), {"-np", "1", test::meshlm_binary(), "generate", "--model", dir, "--prompts",
                             tmp.file("p.jsonl"), "--output", out, "--tp", tp, "--pp", "1"});
    }
    const auto r = test::run_command(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("rank 1 (node1) was sent its weights"), std::string::npos) << r.err;
    EXPECT_EQ(test::answers_by_id(out), test::answers_by_id(tmp.file("one.jsonl")));
  }
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

// Every layout over UCX (mpirun --mca pml ucx, as `vcluster mpirun --ucx` sets it) gives the goldens, as over TCP.
TEST_F(VirtualCluster, EveryLayoutOverUcx) {
  up(2);
  const std::string model = test::shared_dir() + "/golden/models/tiny-qwen2-f32";
  const std::vector<std::vector<std::string>> layouts = {
      {}, {"--tp", "2", "--pp", "1"}, {"--tp", "1", "--pp", "2"}, {"--tp", "2", "--pp", "2"}, {"--tp", "4"},
      {"--tp", "1", "--pp", "1"}};
  for (const auto& layout : layouts) {
    SCOPED_TRACE(layout.empty() ? "auto" : layout[1] + "," + (layout.size() > 3 ? layout[3] : "-"));
    test::check_golden(model, runner(4, 2, /*ucx=*/true), layout);
  }
  // The job really ran on UCX: Open MPI names the point-to-point component it selected.
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), "{\"id\": \"a\", \"prompt\": \"Once upon a time\", \"max_tokens\": 4}\n");
  const auto r = test::run_command({"timeout", "120", vcluster(), "mpirun", "--ucx", "--mca", "pml_base_verbose", "10",
                                    "-np", "2", test::meshlm_binary(), "generate", "--prompts", tmp.file("p.jsonl"),
                                    "--output", tmp.file("out.jsonl"), "--tp", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("component ucx selected"), std::string::npos) << r.out << r.err;
}

// meshlm processes in a node's network namespace.
int meshlm_in(const std::string& node) {
  const auto r = test::run_command({"ip", "netns", "pids", node});
  int n = 0;
  std::istringstream pids(r.out);
  for (std::string pid; pids >> pid;) n += test::read_file("/proc/" + pid + "/comm") == "meshlm\n";
  return n;
}

// Faults mid-job on a two-host cluster. A cable pulled (link down: no FIN or RST reaches anyone): meshlm's own
// watchdog, not Open MPI's keepalive (left at its 8-minute default here), must end every rank on both sides within
// the stall bound, naming the silent peer, with the tensor group (tp2) or the pipeline (pp2) across the hosts. A
// rank killed (kill -9, a crashed host) under data parallelism (dp2) ends the job too. Each time no meshlm is left
// on either host, and --resume on one host completes the output to the uninterrupted run's answers.
TEST_F(VirtualCluster, FaultsEndEveryRankAndResumeCompletesTheJob) {
  test::TempDir tmp;
  test::write_file(tmp.file("p.jsonl"), test::story_prompts(48, 48));
  const auto base = [&](const std::string& out) {
    return std::vector<std::string>{"generate", "--prompts", tmp.file("p.jsonl"), "--output", out, "--max-batch", "4"};
  };
  ASSERT_EQ(test::run_meshlm(base(tmp.file("reference.jsonl"))).exit_code, 0);
  const auto reference = test::answers_by_id(tmp.file("reference.jsonl"));
  ASSERT_EQ(reference.size(), 48u);

  constexpr double kStall = 4;  // --stall-timeout
  struct Fault {
    const char* name;
    std::vector<std::string> layout;
    bool partition;  // else kill -9 of the rank on node1
  } faults[] = {{"partition tp2", {"--tp", "2"}, true},
                {"partition pp2", {"--pp", "2"}, true},
                {"kill dp2", {"--tp", "1", "--pp", "1"}, false}};
  for (const Fault& fault : faults) {
    SCOPED_TRACE(fault.name);
    up(2);
    const std::string out = tmp.file(std::string(fault.name).replace(std::string(fault.name).find(' '), 1, "_"));
    std::vector<std::string> cmd = {"timeout", "-k", "5", "120", vcluster(), "mpirun", "-np", "2", "-x",
                                    "OPENBLAS_NUM_THREADS=1", test::meshlm_binary()};
    for (const auto& a : base(out)) cmd.push_back(a);
    cmd.insert(cmd.end(), {"--stall-timeout", std::to_string(kStall)});
    cmd.insert(cmd.end(), fault.layout.begin(), fault.layout.end());
    double all_gone = -1;
    const test::FaultRun f = test::run_with_fault(cmd, out, 400, [&](pid_t launcher) {
      if (fault.partition) {
        test::run_command({"ip", "-n", "vc-switch", "link", "set", "node1", "down"});
      } else {
        const auto pids = test::run_command({"ip", "netns", "pids", "node1"});
        std::istringstream in(pids.out);
        for (std::string pid; in >> pid;)
          if (test::read_file("/proc/" + pid + "/comm") == "meshlm\n") ::kill(pid_t(std::stol(pid)), SIGKILL);
      }
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 600 && all_gone < 0; ++i) {
        ::usleep(100000);
        if (meshlm_in("node0") + meshlm_in("node1") == 0)
          all_gone = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      ::kill(launcher, SIGTERM);  // mpirun itself may wait on a lost node's daemon: not meshlm's to fix
    });
    ASSERT_GE(f.seconds_after_fault, 0) << "the job ended before the fault: " << f.result.err;
    std::printf("[ %s ] every meshlm gone %.1f s after the fault (stall bound %.0f s, + 5 s for an abort that cannot "
                "reach anyone)\n", fault.name, all_gone, kStall);
    EXPECT_GE(all_gone, 0) << "meshlm still running 60 s after the fault";
    EXPECT_LT(all_gone, kStall + 5 + 5);
    if (fault.partition)
      EXPECT_NE(f.result.err.find("no message from rank 1 (node1)"), std::string::npos) << f.result.err;
    test::run_command({vcluster(), "down"});
    up_ = false;
    // Resumed on one host: the rest is answered, and the whole output is the uninterrupted run's.
    test::expect_resume_completes(base(out), out, 48, reference);
  }
}

}  // namespace
}  // namespace meshlm
