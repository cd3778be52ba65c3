#include "app/fingerprint.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/check.h"

namespace meshlm {
namespace fs = std::filesystem;
namespace {

uint64_t fnv1a(const std::string& bytes, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Whole file, or its size and first 8 + header bytes for safetensors (bounded: a header is at most 100 MB).
std::string digest(const fs::path& path, bool safetensors) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return "missing";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "unreadable";
  if (!safetensors) return hex(fnv1a(std::string(std::istreambuf_iterator<char>(in), {})));
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return "unreadable";
  unsigned char len_bytes[8] = {};
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  std::string header(size_t(std::min<uint64_t>(header_len, std::min<uint64_t>(size, 100ull << 20))), '\0');
  in.read(header.data(), std::streamsize(header.size()));
  return std::to_string(size) + " bytes, header " + hex(fnv1a(header));
}

std::string serialize(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out = MESHLM_VERSION "\n";
  for (const auto& [name, d] : files) out += name + "\t" + d + "\n";
  return out;
}

std::vector<std::pair<std::string, std::string>> parse(const std::string& text, std::string& version) {
  std::vector<std::pair<std::string, std::string>> files;
  size_t at = text.find('\n');
  version = text.substr(0, at);
  while (at != std::string::npos && at + 1 < text.size()) {
    const size_t end = text.find('\n', at + 1), tab = text.find('\t', at + 1);
    files.emplace_back(text.substr(at + 1, tab - at - 1), text.substr(tab + 1, end - tab - 1));
    at = end;
  }
  return files;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> model_fingerprint(const std::string& model_dir) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "model.safetensors.index.json"})
    files.emplace_back(name, digest(fs::path(model_dir) / name, false));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir, ec))
    if (entry.path().extension() == ".safetensors")
      files.emplace_back(entry.path().filename().string(), digest(entry.path(), true));
  std::sort(files.begin(), files.end());
  return files;
}

std::string first_difference(const std::vector<std::pair<std::string, std::string>>& a,
                             const std::vector<std::pair<std::string, std::string>>& b) {
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i >= a.size()) return b[i].first;
    if (i >= b.size() || a[i].first != b[i].first) return a[i].first;  // a file only one side has
    if (a[i].second != b[i].second) return a[i].first;
  }
  return "";
}

void check_same_files(const MpiSession& mpi, const char* verb, const std::string& model_dir,
                      const std::vector<std::string>& hosts) {
  if (mpi.world_size() == 1) return;
  const std::string mine = serialize(model_fingerprint(model_dir));
  const int size = mpi.world_size();
  // Every rank gets every listing (they are small), so that all reach the same verdict without another round.
  int length = int(mine.size());
  std::vector<int> lengths(static_cast<size_t>(size)), offsets(static_cast<size_t>(size));
  MPI_CHECK(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD));
  int total = 0;
  for (int r = 0; r < size; ++r) offsets[size_t(r)] = total, total += lengths[size_t(r)];
  std::string all(size_t(total), '\0');
  MPI_CHECK(MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                           MPI_COMM_WORLD));
  std::string version0;
  const auto files0 = parse(all.substr(0, size_t(lengths[0])), version0);
  for (int r = 1; r < size; ++r) {
    std::string version;
    const auto files = parse(all.substr(size_t(offsets[size_t(r)]), size_t(lengths[size_t(r)])), version);
    std::string what;
    if (version != version0)
      what = "meshlm versions differ between " + hosts[0] + " (" + version0 + ") and " + hosts[size_t(r)] + " (" +
             version + ")";
    else if (const std::string file = first_difference(files0, files); !file.empty())
      what = "model files differ between " + hosts[0] + " and " + hosts[size_t(r)] + ": " + file;
    if (what.empty()) continue;
    if (mpi.world_rank() == 0) {
      std::fprintf(stderr, "meshlm %s: error: %s (rank 0 and rank %d; the same model directory must hold the same "
                           "files on every host)\n", verb, what.c_str(), r);
      std::fflush(stderr);
    }
    throw AlreadyReported();
  }
}

}  // namespace meshlm
