// The layout planner on synthetic clusters (no MPI): the choices that matter. A model that fits on a host runs as
// replicas, one that does not is split with tensor parallelism inside hosts and across a fast link and the pipeline
// across a slow one, hosts with less memory or speed get fewer layers, and adding a host never lowers throughput.
#include <gtest/gtest.h>

#include "app/planner.h"
#include "core/check.h"

namespace meshlm {
namespace {

// Llama-3.2-1B's geometry in bf16: 1.24 B parameters, 2.47 GB.
ModelSpec llama_1b(double bytes_per_param = 2.0) {
  ModelConfig c;
  c.dim = 2048, c.hidden_dim = 8192, c.n_layers = 16, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 64;
  c.vocab_size = 128256, c.max_seq_len = 8192, c.tie_embeddings = true;
  const std::vector<double> params = layer_params(c);
  double total = head_params(c);
  for (double p : params) total += p;
  return model_spec(c, total * bytes_per_param);
}

const LinkSpec kShm{1e-6, 10e9}, kFast{5e-6, 5e9}, kTb5{60e-6, 1.0e9}, kGbe{250e-6, 116e6}, kWifi{2e-3, 35e6};

HostSpec host(const std::string& name, int ranks, double memory_gb, double read_gbps = 30, double gflops = 200) {
  HostSpec h;
  h.name = name, h.ranks = ranks, h.cores = 2 * ranks;
  h.memory = memory_gb * 1e9, h.read_bw = read_gbps * 1e9, h.flops = gflops * 1e9;
  return h;
}

ClusterSpec cluster(const std::vector<HostSpec>& hosts, LinkSpec inter) {
  ClusterSpec c;
  for (const HostSpec& h : hosts) c.add_host(h);
  c.intra = kShm, c.inter = inter;
  return c;
}

ClusterSpec same_hosts(int n, int ranks, double memory_gb, LinkSpec inter) {
  std::vector<HostSpec> hosts;
  for (int i = 0; i < n; ++i) hosts.push_back(host("node" + std::to_string(i), ranks, memory_gb));
  return cluster(hosts, inter);
}

Workload batch_job(int64_t requests = 64) {
  Workload w;
  w.requests = requests, w.prompt_len = 128, w.gen_len = 128, w.ctx = 256, w.max_batch = 8;
  return w;
}

TEST(Planner, ModelThatFitsOneHostRunsAsReplicas) {
  const ModelSpec m = llama_1b();
  const double one = plan_layouts(same_hosts(1, 1, 16, kGbe), m, batch_job()).front().tokens_per_s;
  for (LinkSpec link : {kTb5, kGbe, kWifi}) {
    for (int n : {2, 3}) {
      const ClusterSpec cl = same_hosts(n, 1, 16, link);
      const auto rows = plan_layouts(cl, m, batch_job());
      ASSERT_FALSE(rows.empty());
      EXPECT_EQ(rows[0].dp, n);
      EXPECT_TRUE(rows[0].fits);
      EXPECT_GE(rows[0].tokens_per_s, 0.9 * n * one) << n << " hosts";
      EXPECT_NE(plan_reason(cl, rows[0]).find("fits on one host"), std::string::npos) << plan_reason(cl, rows[0]);
    }
  }
}

TEST(Planner, AddingAHostNeverLowersThroughput) {
  for (double memory : {16.0, 2.0}) {
    for (LinkSpec link : {kFast, kTb5, kGbe, kWifi}) {
      double before = 0;
      for (int n = 1; n <= 4; ++n) {
        const auto rows = plan_layouts(same_hosts(n, 1, memory, link), llama_1b(), batch_job());
        if (!rows.front().fits) continue;  // one 2 GB host cannot hold it
        EXPECT_GE(rows.front().tokens_per_s, before * 0.999) << n << " hosts, " << memory << " GB";
        before = rows.front().tokens_per_s;
      }
    }
  }
}

TEST(Planner, TooBigForOneHostTensorInsideHostsPipelineAcrossASlowLink) {
  const ClusterSpec cl = same_hosts(2, 2, 2.0, kGbe);  // 2 GB per host, the model is 2.47 GB
  const auto rows = plan_layouts(cl, llama_1b(), batch_job());
  ASSERT_TRUE(rows[0].fits);
  EXPECT_EQ(rows[0].tp, 2);
  EXPECT_EQ(rows[0].pp, 2);
  EXPECT_EQ(rows[0].dp, 1);
  EXPECT_NE(plan_reason(cl, rows[0]).find("pipeline across hosts"), std::string::npos) << plan_reason(cl, rows[0]);
  for (const PlanRow& r : rows)
    if (r.dp > 1) EXPECT_FALSE(r.fits) << "a replica per host cannot fit in 2 GB";
}

TEST(Planner, TooBigForOneHostTensorAcrossAFastLinkPipelineAcrossASlowOne) {
  for (const Workload& w : {batch_job(1), batch_job(64)}) {
    const auto fast = plan_layouts(same_hosts(2, 1, 2.0, kFast), llama_1b(), w);
    EXPECT_EQ(fast[0].tp, 2) << w.requests << " requests";
    const auto slow = plan_layouts(same_hosts(2, 1, 2.0, kWifi), llama_1b(), w);
    EXPECT_EQ(slow[0].pp, 2) << w.requests << " requests";
    EXPECT_TRUE(fast[0].fits && slow[0].fits);
  }
}

TEST(Planner, LessMemoryFewerLayers) {
  // 2.8 GB and 0.8 GB: only an uneven split fits. The model is 2.47 GB, and with two stages its tied 0.53 GB
  // embedding is held twice (as the embedding on the first, as the lm_head on the last).
  const ClusterSpec cl = cluster({host("big", 1, 2.8), host("small", 1, 0.8)}, kGbe);
  const auto rows = plan_layouts(cl, llama_1b(), batch_job(8));
  ASSERT_TRUE(rows[0].fits);
  ASSERT_EQ(rows[0].pp, 2);
  EXPECT_GT(rows[0].layer_counts[0], rows[0].layer_counts[1] + 4);
  EXPECT_LE(rows[0].host_bytes[1], 0.8e9);
  EXPECT_LE(rows[0].host_bytes[0], 2.8e9);
}

TEST(Planner, SlowerHostFewerLayers) {
  const ClusterSpec cl = cluster({host("fast", 1, 2.0, 40), host("slow", 1, 2.0, 10)}, kWifi);
  const auto rows = plan_layouts(cl, llama_1b(), batch_job());
  ASSERT_TRUE(rows[0].fits);
  ASSERT_EQ(rows[0].pp, 2);
  EXPECT_GT(rows[0].layer_counts[0], rows[0].layer_counts[1]);
  // Swapping the hosts swaps the split.
  const auto swapped = plan_layouts(cluster({host("slow", 1, 2.0, 10), host("fast", 1, 2.0, 40)}, kWifi), llama_1b(),
                                    batch_job());
  EXPECT_LT(swapped[0].layer_counts[0], swapped[0].layer_counts[1]);
}

TEST(Planner, NothingFitsSaysSo) {
  const ClusterSpec cl = same_hosts(2, 1, 0.5, kGbe);
  const auto rows = plan_layouts(cl, llama_1b(), batch_job());
  ASSERT_FALSE(rows.empty());
  EXPECT_FALSE(rows[0].fits);
  EXPECT_NE(plan_reason(cl, rows[0]).find("no layout fits"), std::string::npos);
}

TEST(Planner, KvCacheCountsAgainstMemory) {
  Workload w = batch_job();
  const auto small = plan_layouts(same_hosts(1, 1, 3.0, kGbe), llama_1b(), w);
  EXPECT_TRUE(small[0].fits);
  w.ctx = 8192, w.max_batch = 64;  // 64 x 8192 positions x 16 layers x 2 x 512 floats = 34 GB
  EXPECT_FALSE(plan_layouts(same_hosts(1, 1, 3.0, kGbe), llama_1b(), w)[0].fits);
}

TEST(Planner, QuantizedWeightsFitWhereBf16DoesNot) {
  const ClusterSpec cl = same_hosts(2, 1, 2.0, kGbe);
  EXPECT_EQ(plan_layouts(cl, llama_1b(2.0), batch_job())[0].dp, 1);      // bf16 must be split
  EXPECT_EQ(plan_layouts(cl, llama_1b(0.5625), batch_job())[0].dp, 2);   // 4-bit fits on each host
}

TEST(Planner, MixtureOfExpertsTriesBothSplits) {
  ModelSpec m = llama_1b();
  ModelConfig c = m.config;
  c.moe.n_experts = 8, c.moe.top_k = 2, c.moe.expert_dim = 1024;
  m = model_spec(c, 0);
  const auto rows = plan_layouts(same_hosts(1, 2, 64, kGbe), m, batch_job());
  int experts = 0, tensor = 0;
  for (const PlanRow& r : rows)
    if (r.tp == 2) (r.moe_split == MoeSplit::kExperts ? experts : tensor) += 1;
  EXPECT_EQ(experts, 1);
  EXPECT_EQ(tensor, 1);
  const auto only = plan_layouts(same_hosts(1, 2, 64, kGbe), m, batch_job(), "experts");
  for (const PlanRow& r : only) EXPECT_EQ(r.moe_split, MoeSplit::kExperts);
}

TEST(Planner, CommandFlagsGiveTheLayerSplit) {
  PlanRow r;
  r.tp = 2, r.pp = 2, r.layer_counts = {9, 7};
  EXPECT_EQ(r.command_flags(), "--tp 2 --pp 2 --layer-split 9,7");
}

TEST(LayerCountsFit, LimitsPerStage) {
  const std::vector<double> cost(10, 1.0);
  // Equal speed, but stage 1 may hold only 3 layers.
  EXPECT_EQ(layer_counts_fit(cost, {1, 1}, {0, 0}, {100, 3}), (std::vector<int64_t>{7, 3}));
  EXPECT_TRUE(layer_counts_fit(cost, {1, 1}, {0, 0}, {4, 4}).empty());  // 10 layers cannot fit in 8
  EXPECT_EQ(layer_counts_fit(cost, {1, 1}, {0, 0}), (std::vector<int64_t>{5, 5}));
}

}  // namespace
}  // namespace meshlm
