// meshlm bench through the binary: the rows it writes (CSV, HDF5, markdown) on one rank and at tp2, and its errors.
// Only the shape and sanity of the numbers are checked here; speed itself is measured in bench/, not in tests.
#include <gtest/gtest.h>

#include <hdf5.h>

#include <sstream>

#include "app/bench_report.h"
#include "h5_read.h"
#include "test_support.h"

namespace meshlm {
namespace {

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::stringstream in(test::read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cell_in(line);
    std::string cell;
    while (std::getline(cell_in, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

void check_bench(int np, const std::vector<std::string>& layout, const std::string& want_layout) {
  test::TempDir tmp;
  std::vector<std::string> args = {"bench", "--batch", "1,3", "--prompt", "8", "--gen", "4", "--reps", "2",
                                   "--probe-mb", "16", "--label", "here", "--csv", tmp.file("b.csv"),
                                   "--h5", tmp.file("b.h5"), "--md", tmp.file("b.md")};
  args.insert(args.end(), layout.begin(), layout.end());
  const auto r = np == 1 ? test::run_meshlm(args) : test::run_mpi(np, args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto csv = read_csv(tmp.file("b.csv"));
  ASSERT_EQ(csv.size(), 5u) << "a header and pp/tg rows at batch 1 and 3";
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < csv[0].size(); ++i) col[csv[0][i]] = i;
  for (const char* name : {"layout", "test", "batch", "tps_mean", "tps_sd", "read_gbps", "pct_bw", "sgemm_gflops",
                           "pct_sgemm", "label"})
    ASSERT_TRUE(col.count(name)) << name;
  const std::vector<std::pair<std::string, std::string>> want = {{"pp", "1"}, {"tg", "1"}, {"pp", "3"}, {"tg", "3"}};
  for (size_t i = 1; i < csv.size(); ++i) {
    const auto& row = csv[i];
    EXPECT_EQ(row[col["layout"]], want_layout);
    EXPECT_EQ(row[col["label"]], "here");
    EXPECT_EQ(row[col["test"]], want[i - 1].first);
    EXPECT_EQ(row[col["batch"]], want[i - 1].second);
    EXPECT_GT(std::stod(row[col["tps_mean"]]), 0.0);
    EXPECT_GE(std::stod(row[col["tps_sd"]]), 0.0);
    EXPECT_GT(std::stod(row[col["read_gbps"]]), 0.0);
    EXPECT_GT(std::stod(row[col["sgemm_gflops"]]), 0.0);
    EXPECT_GT(std::stod(row[col["pct_bw"]]), 0.0);
    EXPECT_GT(std::stod(row[col["pct_sgemm"]]), 0.0);
    EXPECT_GT(std::stod(row[col["read_gbps_after"]]), 0.0);
  }
  EXPECT_EQ(test::read_h5_strings(tmp.file("b.h5"), "/bench/test"),
            (std::vector<std::string>{"pp", "tg", "pp", "tg"}));
  EXPECT_EQ(test::read_h5_floats(tmp.file("b.h5"), "/bench/tps_mean").size(), 4u);
  const std::string md = test::read_file(tmp.file("b.md"));
  EXPECT_NE(md.find("| pp8 b1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| tg4 b3 |"), std::string::npos) << md;
  EXPECT_EQ(r.out, md.substr(0, md.size() - 1)) << "stdout has the same table";
}

// A row whose read bandwidth moved by more than 10% around its test shows the second probe beside the ceiling.
TEST(Bench, MarksRowsWhoseBandwidthMoved) {
  BenchRow r;
  r.model = "m", r.test = "tg", r.gen = 32, r.batch = 1, r.isa = "avx512";
  r.achieved_gbps = 49, r.read_gbps = 50, r.read_gbps_after = 70.6, r.achieved_gflops = 1, r.sgemm_gflops = 10;
  EXPECT_TRUE(r.bandwidth_moved());
  EXPECT_NE(markdown_table({r}).find("| 49.00 (98% of 50.0, 70.6 after) |"), std::string::npos) << markdown_table({r});
  r.read_gbps_after = 52;
  EXPECT_FALSE(r.bandwidth_moved());
  EXPECT_NE(markdown_table({r}).find("| 49.00 (98% of 50.0) |"), std::string::npos) << markdown_table({r});
}

// Rows appended under another header (an older meshlm's columns) would not line up: the append is refused.
TEST(Bench, RefusesToAppendToACsvWithOtherColumns) {
  test::TempDir tmp;
  const std::string path = tmp.file("old.csv");
  test::write_file(path, "model,tps_mean\nm,1\n");
  BenchRow r;
  try {
    append_csv(path, {r});
    FAIL() << "appended under another header";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("new file"), std::string::npos) << e.what();
  }
  EXPECT_EQ(test::read_file(path), "model,tps_mean\nm,1\n") << "nothing written";
}

// The same for HDF5: an existing /bench without one of the columns takes no rows.
TEST(Bench, RefusesToAppendToAnH5WithoutAColumn) {
  test::TempDir tmp;
  const std::string path = tmp.file("old.h5");
  BenchRow r;
  r.test = "tg";
  append_h5(path, {r});
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  ASSERT_GE(H5Ldelete(file, "/bench/read_gbps_after", H5P_DEFAULT), 0);  // as a file from before that column
  H5Fclose(file);
  try {
    append_h5(path, {r});
    FAIL() << "appended to a /bench without read_gbps_after";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("read_gbps_after"), std::string::npos) << e.what();
  }
  EXPECT_EQ(test::read_h5_strings(path, "/bench/test"), std::vector<std::string>{"tg"}) << "nothing appended";
}

TEST(Bench, OneRankWritesCsvH5AndMarkdown) { check_bench(1, {}, "tp 1 x pp 1 x dp 1"); }

TEST(Bench, TensorParallelRows) { check_bench(2, {"--tp", "2", "--pp", "1"}, "tp 2 x pp 1 x dp 1"); }

TEST(Bench, PipelineRows) { check_bench(2, {"--tp", "1", "--pp", "2"}, "tp 1 x pp 2 x dp 1"); }

// Mixture of experts (routed experts' bytes counted as read, a pipeline per test) and MLX 4-bit weights.
TEST(Bench, MixtureOfExpertsAndMlxRows) {
  test::TempDir tmp;
  const std::string moe = tmp.file("moe"), mlx = tmp.file("mlx");
  ASSERT_EQ(test::run_command({test::make_model_binary(), "--out", moe, "--preset", "tiny-moe"}).exit_code, 0);
  ASSERT_EQ(test::run_command({test::mlx_convert_binary(), "--model", moe, "--out", mlx, "--group", "32"}).exit_code, 0);
  check_bench(2, {"--model", moe, "--tp", "2", "--moe-split", "experts"}, "tp 2 x pp 1 x dp 1 (moe experts)");
  check_bench(2, {"--model", mlx, "--tp", "2", "--moe-split", "tensor"}, "tp 2 x pp 1 x dp 1 (moe tensor)");
}

TEST(Bench, BadFlagsAreOneLine) {
  auto r = test::run_meshlm({"bench", "--batch", "1,0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--batch values must be positive, got 0"), std::string::npos) << r.err;
  r = test::run_meshlm({"bench", "--batch", "2,x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--batch must be a comma-separated list of positive integers, got '2,x'"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace meshlm
