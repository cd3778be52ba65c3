// Helpers shared by the tests: where ../shared and the binary are, temp dirs, JSONL, running meshlm.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/hf_config.h"

namespace meshlm::test {

// ../shared (or $MESHLM_SHARED); empty if absent, and then tests that need it call GTEST_SKIP.
std::string shared_dir();
std::string source_dir();
std::string meshlm_binary();
std::string make_model_binary();  // bench/make_model: random-weight checkpoints
std::string mlx_convert_binary();  // bench/mlx_convert: MLX affine-quantized copies of float checkpoints

// n standard normal floats from a seeded generator (kernel tests' inputs).
std::vector<float> randn(size_t n, uint32_t seed);

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
// Runs a command (no shell, PATH searched); captures stdout and stderr.
RunResult run_command(const std::vector<std::string>& command);
// Starts `command`; once `watch` holds at least `bytes` bytes, calls inject() (a fault: a kill, a link down) and
// waits for the command to end. exit_code -1: it ended before the fault.
struct FaultRun {
  RunResult result;
  size_t bytes_at_fault = 0;        // of `watch`, when the fault was injected
  double seconds_after_fault = -1;  // until the command ended
};
FaultRun run_with_fault(const std::vector<std::string>& command, const std::string& watch, size_t bytes,
                        const std::function<void(pid_t)>& inject);
// A JSONL output's lines keyed by "id" (each whole line as text): an answer set to compare runs by.
std::map<std::string, std::string> answers_by_id(const std::string& path);
// After a fault: `out` must hold part of the job (0 < lines < total); `generate_args + --resume` (one process) must
// then complete it to `reference`.
void expect_resume_completes(std::vector<std::string> generate_args, const std::string& out, size_t total,
                             const std::map<std::string, std::string>& reference);
// n JSONL prompt lines {"id": "<prefix><i>", "prompt": "Once upon a time <i>", "max_tokens": max_tokens}.
std::string story_prompts(int n, int max_tokens, const std::string& prefix = "r");
// Runs `meshlm <args>`.
RunResult run_meshlm(const std::vector<std::string>& args);
// Starts `meshlm <args>` and kills it with SIGKILL once `watch` holds at least `bytes` bytes (or after ~4 s).
// Returns the size `watch` had when the process was dead.
size_t kill_meshlm_when(const std::vector<std::string>& args, const std::string& watch, size_t bytes);
// Runs `mpirun -np N meshlm <args>` on this host (oversubscribed, ranks yield when idle), under a time limit.
RunResult run_mpi(int np, const std::vector<std::string>& args);
// One mpirun, rank i running commands[i] (a program and its arguments: mpirun's "-np 1 A : -np 1 B" form).
RunResult run_mpi_each(const std::vector<std::vector<std::string>>& commands);

}  // namespace meshlm::test

namespace meshlm::test {

// Writes a safetensors file: `header` is the JSON header (offsets relative to the data), `data` the data section.
// header_len_override replaces the 8-byte length when set (for malformed-file tests).
void write_safetensors_raw(const std::string& path, const std::string& header, const std::string& data,
                           long long header_len_override = -1);

struct TestTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
// Writes well-formed safetensors with the tensors laid out back to back.
void write_safetensors(const std::string& path, const std::vector<TestTensor>& tensors);

// Copies a directory (e.g. a model) into `dst`.
void copy_dir(const std::string& src, const std::string& dst);

// config.json (and generation_config.json when given) written to a temporary directory and read back.
ModelConfig config_from_json(const nlohmann::json& config, const std::string& generation = "");
// The Error that reading `config` throws ("" when it reads).
std::string config_error(const nlohmann::json& config);

}  // namespace meshlm::test
