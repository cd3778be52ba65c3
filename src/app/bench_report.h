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
  double achieved_gflops = 0, sgemm_gflops = 0;  // model FLOPs per second vs the summed sgemm ceiling
  double pct_bw() const { return read_gbps > 0 ? 100 * achieved_gbps / read_gbps : 0; }
  double pct_sgemm() const { return sgemm_gflops > 0 ? 100 * achieved_gflops / sgemm_gflops : 0; }
};

// Appends rows to a CSV file, writing the header first when the file is new or empty.
void append_csv(const std::string& path, const std::vector<BenchRow>& rows);
// The markdown table (header included).
std::string markdown_table(const std::vector<BenchRow>& rows);
// Appends rows to /bench/<column> datasets of an HDF5 file (created when missing).
void append_h5(const std::string& path, const std::vector<BenchRow>& rows);

}  // namespace meshlm
