#include "test_support.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace meshlm::test {
namespace fs = std::filesystem;

std::string shared_dir() {
  const char* env = std::getenv("MESHLM_SHARED");
  const std::string dir = env && *env ? env : MESHLM_SHARED_DEFAULT;
  return fs::is_directory(dir) ? fs::canonical(dir).string() : "";
}

std::string source_dir() { return MESHLM_SOURCE_DIR; }
std::string meshlm_binary() { return MESHLM_BINARY; }
std::string make_model_binary() { return MESHLM_MAKE_MODEL; }
std::string mlx_convert_binary() { return MESHLM_MLX_CONVERT; }

TempDir::TempDir() {
  std::random_device rd;
  path = fs::temp_directory_path() / ("meshlm_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
  fs::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
// Starts `command` with stdout and stderr into files (mpirun's root variables set when root).
pid_t spawn(const std::vector<std::string>& command, const std::string& out_path, const std::string& err_path) {
  std::fflush(stdout);  // or the child's freopen would write our buffered output a second time
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> argv_s = command;
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (!std::freopen(out_path.c_str(), "w", stdout) || !std::freopen(err_path.c_str(), "w", stderr)) ::_exit(127);
    if (::geteuid() == 0) {  // mpirun refuses root without these
      ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
      ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    }
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

RunResult finish(pid_t pid, const std::string& out_path, const std::string& err_path) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}
}  // namespace

RunResult run_command(const std::vector<std::string>& command) {
  TempDir tmp;
  const std::string out_path = tmp.file("stdout"), err_path = tmp.file("stderr");
  return finish(spawn(command, out_path, err_path), out_path, err_path);
}

FaultRun run_with_fault(const std::vector<std::string>& command, const std::string& watch, size_t bytes,
                        const std::function<void(pid_t)>& inject) {
  TempDir tmp;
  const std::string out_path = tmp.file("stdout"), err_path = tmp.file("stderr");
  const pid_t pid = spawn(command, out_path, err_path);
  FaultRun f;
  for (int wait = 0; wait < 60000 && read_file(watch).size() < bytes; ++wait) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) {  // ended before the fault: report it as is
      f.result.exit_code = -1;
      f.result.err = read_file(err_path);
      return f;
    }
    ::usleep(2000);
  }
  f.bytes_at_fault = read_file(watch).size();
  inject(pid);
  const auto t0 = std::chrono::steady_clock::now();
  f.result = finish(pid, out_path, err_path);
  f.seconds_after_fault = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return f;
}

std::map<std::string, std::string> answers_by_id(const std::string& path) {
  std::map<std::string, std::string> out;
  for (const auto& j : read_jsonl(path)) out[j["id"].get<std::string>()] = j.dump();
  return out;
}

void expect_resume_completes(std::vector<std::string> generate_args, const std::string& out, size_t total,
                             const std::map<std::string, std::string>& reference) {
  const size_t before = read_jsonl(out).size();
  EXPECT_GT(before, 0u) << "the fault came before any answer was out";
  EXPECT_LT(before, total) << "the fault came after the job had finished";
  generate_args.push_back("--resume");
  const RunResult r = run_meshlm(generate_args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(answers_by_id(out), reference);
}

RunResult run_meshlm(const std::vector<std::string>& args) {
  std::vector<std::string> command = {meshlm_binary()};
  command.insert(command.end(), args.begin(), args.end());
  return run_command(command);
}

size_t kill_meshlm_when(const std::vector<std::string>& args, const std::string& watch, size_t bytes) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> argv_s = {meshlm_binary()};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (!std::freopen("/dev/null", "w", stderr)) ::_exit(127);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  for (int wait = 0; wait < 2000 && read_file(watch).size() < bytes; ++wait) ::usleep(2000);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return read_file(watch).size();
}

RunResult run_mpi(int np, const std::vector<std::string>& args) {
  // A hung job fails the test after 240 s instead of eating the CI budget.
  std::vector<std::string> command = {"timeout", "-k", "5",  "240", "mpirun", "--oversubscribe", "--bind-to", "none",
                                      "--mca", "mpi_yield_when_idle", "1", "-np", std::to_string(np), meshlm_binary()};
  command.insert(command.end(), args.begin(), args.end());
  return run_command(command);
}

std::string story_prompts(int n, int max_tokens, const std::string& prefix) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += "{\"id\": \"" + prefix + std::to_string(i) + "\", \"prompt\": \"Once upon a time " + std::to_string(i) +
           "\", \"max_tokens\": " + std::to_string(max_tokens) + "}\n";
  return out;
}

RunResult run_mpi_each(const std::vector<std::vector<std::string>>& commands) {
  std::vector<std::string> command = {"timeout", "-k", "5",  "240", "mpirun", "--oversubscribe", "--bind-to", "none",
                                      "--mca", "mpi_yield_when_idle", "1"};
  for (size_t i = 0; i < commands.size(); ++i) {
    if (i > 0) command.push_back(":");
    command.insert(command.end(), {"-np", "1"});
    command.insert(command.end(), commands[i].begin(), commands[i].end());
  }
  return run_command(command);
}

}  // namespace meshlm::test

namespace meshlm::test {

void write_safetensors_raw(const std::string& path, const std::string& header, const std::string& data,
                           long long header_len_override) {
  std::string out(8, '\0');
  const unsigned long long n = header_len_override >= 0 ? (unsigned long long)header_len_override : header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  write_file(path, out + header + data);
}

void write_safetensors(const std::string& path, const std::vector<TestTensor>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  std::string data;
  for (auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  write_safetensors_raw(path, h.dump(), data);
}

void copy_dir(const std::string& src, const std::string& dst) {
  fs::create_directories(dst);
  for (auto& e : fs::directory_iterator(src)) {
    fs::copy_file(e.path(), fs::path(dst) / e.path().filename(), fs::copy_options::overwrite_existing);
    fs::permissions(fs::path(dst) / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::add);
  }
}

ModelConfig config_from_json(const nlohmann::json& config, const std::string& generation) {
  TempDir tmp;
  write_file(tmp.file("config.json"), config.dump());
  if (!generation.empty()) write_file(tmp.file("generation_config.json"), generation);
  return load_model_config(tmp.path.string());
}

std::string config_error(const nlohmann::json& config) {
  try {
    config_from_json(config);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

}  // namespace meshlm::test
