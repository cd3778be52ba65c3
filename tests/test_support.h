// Helpers shared by the tests: where ../shared and the binary are, temp dirs, JSONL, running meshlm.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace meshlm::test {

// ../shared (or $MESHLM_SHARED); empty if absent, and then tests that need it call GTEST_SKIP.
std::string shared_dir();
std::string source_dir();
std::string meshlm_binary();

// A fresh directory under the system temp dir, removed when the object dies.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<nlohmann::json> read_jsonl(const std::string& path);
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs `meshlm <args>` (no shell); captures stdout and stderr.
RunResult run_meshlm(const std::vector<std::string>& args);

}  // namespace meshlm::test
