// The rows `meshlm bench` measures and the three shapes it writes them in: CSV (appended, for sweeps), a
// llama-bench-style markdown table, and HDF5 (one dataset per column under /bench, appended).
#pragma once
#include <string>
#include <vector>

namespace meshlm {

struct BenchRow {
  std::string label;     // free text from --label (e.g. the vcluster profile)
  std::string model;     // model directory name
  double size_gb = 0;    // weight bytes of one replica
  double params_b = 0;   // matmul parameters of one replica, billions
  std::string dtype;     // stored weight dtype
  std::string layout;    // "tp 2 x pp 1 x dp 1"
  int ranks = 1, hosts = 1, threads = 1, micro_batches = 1;
  std::string isa;
  std::string test;      // "pp" (prefill) or "tg" (decode)
  int batch = 1, prompt = 0, gen = 0, reps = 0;
  double tps_mean = 0, tps_sd = 0;            // tokens per second over all replicas, mean and sd of the repetitions
  double achieved_gbps = 0, read_gbps = 0;    // weights streamed per second vs the summed read-bandwidth ceiling
  double read_gbps_after = 0;  // the read bandwidth measured again after the test (comparable to read_gbps)
  double achieved_gflops = 0, sgemm_gflops = 0;  // model FLOPs per second vs the summed sgemm ceiling
  double pct_bw() const { return read_gbps > 0 ? 100 * achieved_gbps / read_gbps : 0; }
  double pct_sgemm() const { return sgemm_gflops > 0 ? 100 * achieved_gflops / sgemm_gflops : 0; }
  // Whether the read bandwidth moved by more than kBandwidthMoved (a fraction) around the test: its percentage of
  // the ceiling then says little (memory shared with other tenants, or changing power states).
  bool bandwidth_moved() const;
};

constexpr double kBandwidthMoved = 0.1;

// Appends rows to a CSV file, writing the header first when the file is new or empty (an existing header must
// name the same columns).
void append_csv(const std::string& path, const std::vector<BenchRow>& rows);
// The markdown table (header included).
std::string markdown_table(const std::vector<BenchRow>& rows);
// Appends rows to /bench/<column> datasets of an HDF5 file (created when missing; an existing /bench must hold
// every column).
void append_h5(const std::string& path, const std::vector<BenchRow>& rows);

}  // namespace meshlm
