#include "app/bench_report.h"

#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/check.h"
#include "io/h5_append.h"

namespace meshlm {
namespace {

// Every column once: its name, and how to print / store it.
struct Column {
  const char* name;
  std::function<std::string(const BenchRow&)> text;     // set for string columns
  std::function<double(const BenchRow&)> number;        // set for numeric columns
};

const std::vector<Column>& columns() {
  static const std::vector<Column> c = {
      {"label", [](const BenchRow& r) { return r.label; }, {}},
      {"model", [](const BenchRow& r) { return r.model; }, {}},
      {"size_gb", {}, [](const BenchRow& r) { return r.size_gb; }},
      {"params_b", {}, [](const BenchRow& r) { return r.params_b; }},
      {"dtype", [](const BenchRow& r) { return r.dtype; }, {}},
      {"layout", [](const BenchRow& r) { return r.layout; }, {}},
      {"ranks", {}, [](const BenchRow& r) { return double(r.ranks); }},
      {"hosts", {}, [](const BenchRow& r) { return double(r.hosts); }},
      {"threads", {}, [](const BenchRow& r) { return double(r.threads); }},
      {"isa", [](const BenchRow& r) { return r.isa; }, {}},
      {"micro_batches", {}, [](const BenchRow& r) { return double(r.micro_batches); }},
      {"test", [](const BenchRow& r) { return r.test; }, {}},
      {"batch", {}, [](const BenchRow& r) { return double(r.batch); }},
      {"prompt", {}, [](const BenchRow& r) { return double(r.prompt); }},
      {"gen", {}, [](const BenchRow& r) { return double(r.gen); }},
      {"reps", {}, [](const BenchRow& r) { return double(r.reps); }},
      {"tps_mean", {}, [](const BenchRow& r) { return r.tps_mean; }},
      {"tps_sd", {}, [](const BenchRow& r) { return r.tps_sd; }},
      {"achieved_gbps", {}, [](const BenchRow& r) { return r.achieved_gbps; }},
      {"read_gbps", {}, [](const BenchRow& r) { return r.read_gbps; }},
      {"pct_bw", {}, [](const BenchRow& r) { return r.pct_bw(); }},
      {"achieved_gflops", {}, [](const BenchRow& r) { return r.achieved_gflops; }},
      {"sgemm_gflops", {}, [](const BenchRow& r) { return r.sgemm_gflops; }},
      {"pct_sgemm", {}, [](const BenchRow& r) { return r.pct_sgemm(); }},
      {"read_gbps_after", {}, [](const BenchRow& r) { return r.read_gbps_after; }},
  };
  return c;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

bool BenchRow::bandwidth_moved() const {
  return read_gbps > 0 && read_gbps_after > 0 && std::fabs(read_gbps_after - read_gbps) > kBandwidthMoved * read_gbps;
}

void append_csv(const std::string& path, const std::vector<BenchRow>& rows) {
  const bool fresh = !std::filesystem::exists(path) || std::filesystem::file_size(path) == 0;
  std::string header;
  for (size_t i = 0; i < columns().size(); ++i) header += (i ? "," : "") + std::string(columns()[i].name);
  if (!fresh) {
    std::ifstream in(path);
    std::string first;
    std::getline(in, first);
    MESH_CHECK(first == header, path, ": its header names other columns than this meshlm writes (",
               columns().size(), "); append to a new file");
  }
  std::ofstream out(path, std::ios::app);
  MESH_CHECK(out.good(), path, ": cannot open for appending");
  if (fresh) out << header << "\n";
  for (const BenchRow& r : rows) {
    for (size_t i = 0; i < columns().size(); ++i) {
      const Column& c = columns()[i];
      out << (i ? "," : "") << (c.text ? csv_field(c.text(r)) : format("%.6g", c.number(r)));
    }
    out << "\n";
  }
  MESH_CHECK(out.good(), path, ": write failed");
}

std::string markdown_table(const std::vector<BenchRow>& rows) {
  std::string t =
      "| model | size | params | layout | ranks | threads | test | t/s | weights GB/s (% of read bw) | GFLOP/s (% of "
      "sgemm) |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const BenchRow& r : rows) {
    const std::string test = r.test + std::to_string(r.test == "pp" ? r.prompt : r.gen) + " b" + std::to_string(r.batch);
    t += "| " + r.model + (r.label.empty() ? "" : " (" + r.label + ")") + " | " + format("%.2f GB", r.size_gb) + " " +
         r.dtype + " | " + format("%.2f B", r.params_b) + " | " + r.layout + " | " + std::to_string(r.ranks) + " | " +
         std::to_string(r.threads) + " " + r.isa + " | " + test + " | " + format("%.2f", r.tps_mean) + " ± " +
         format("%.2f", r.tps_sd) + " | " + format("%.2f", r.achieved_gbps) + " (" + format("%.0f%%", r.pct_bw()) +
         " of " + format("%.1f", r.read_gbps) +
         (r.bandwidth_moved() ? format(", %.1f after", r.read_gbps_after) : std::string()) + ") | " +
         format("%.1f", r.achieved_gflops) + " (" +
         format("%.0f%%", r.pct_sgemm()) + " of " + format("%.1f", r.sgemm_gflops) + ") |\n";
  }
  return t;
}

void append_h5(const std::string& path, const std::vector<BenchRow>& rows) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const bool exists = std::filesystem::exists(path);
  const hid_t file = exists ? H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)
                            : H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  MESH_CHECK(file >= 0, path, exists ? ": cannot open the HDF5 file to append" : ": cannot create the HDF5 file");
  const bool had_group = H5Lexists(file, "bench", H5P_DEFAULT) > 0;
  const hid_t group = had_group ? H5Gopen2(file, "bench", H5P_DEFAULT)
                                : H5Gcreate2(file, "bench", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t str = hid_t(utf8_string_type());
  try {
    MESH_CHECK(group >= 0, path, ": cannot open group /bench");
    for (const Column& c : columns())  // columns of unequal lengths would no longer line up by row
      MESH_CHECK(!had_group || H5Lexists(group, c.name, H5P_DEFAULT) > 0, path, ": /bench has no column '", c.name,
                 "' (written by another meshlm version?); append to a new file");
    for (const Column& c : columns()) {
      const hid_t ds = hid_t(open_or_create_dataset(group, c.name, c.text ? str : H5T_IEEE_F64LE, path));
      for (const BenchRow& r : rows) {
        if (c.text) {
          const std::string v = c.text(r);
          const char* p = v.c_str();
          append_values(ds, str, &p, 1, path);
        } else {
          const double v = c.number(r);
          append_values(ds, H5T_NATIVE_DOUBLE, &v, 1, path);
        }
      }
      H5Dclose(ds);
    }
  } catch (...) {
    H5Tclose(str);
    if (group >= 0) H5Gclose(group);
    H5Fclose(file);
    throw;
  }
  H5Tclose(str);
  H5Gclose(group);
  H5Fclose(file);
}

}  // namespace meshlm
