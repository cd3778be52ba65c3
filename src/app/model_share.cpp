#include "app/model_share.h"

#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "comm/group.h"
#include "core/check.h"
#include "core/text_util.h"
#include "core/timer.h"
#include "io/weight_index.h"
#include "model/weights.h"

namespace meshlm {
namespace {

namespace fs = std::filesystem;
using Ranges = std::vector<SafetensorsFile::ByteRange>;

constexpr const char* kManifest = ".meshlm-present.json";  // in a partial copy: the byte ranges that are there
constexpr uint64_t kMaxSmallFile = 64ull << 20;            // larger non-safetensors files are not sent
constexpr int64_t kChunk = 4 << 20;                        // bytes per message of the transfer
constexpr int kTagWant = 51, kTagReply = 52, kTagChunk = 53;

bool is_safetensors(const fs::path& p) { return p.extension() == ".safetensors"; }

// A whole model: config.json and every safetensors file its index names, each consistent with its header.
bool complete(const std::string& dir) {
  try {
    if (!fs::exists(fs::path(dir) / "config.json") || fs::exists(fs::path(dir) / kManifest)) return false;
    const WeightIndex index(dir);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::vector<uint8_t> read_bytes(const fs::path& p, uint64_t limit) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> out(size_t(std::min<uint64_t>(fs::file_size(p), limit)));
  in.read(reinterpret_cast<char*>(out.data()), std::streamsize(out.size()));
  MESH_CHECK(in.good() || out.empty(), p.string(), ": cannot read");
  return out;
}

void write_bytes(const fs::path& p, const std::vector<uint8_t>& data) {
  const fs::path tmp = p.string() + ".part";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
    MESH_CHECK(out.good(), tmp.string(), ": cannot write");
  }
  fs::rename(tmp, p);
}

// The source's small files whole, and its safetensors files as size + header ([u64 length][JSON]).
std::vector<uint8_t> pack_model(const std::string& dir) {
  nlohmann::json j = {{"files", nlohmann::json::array()}, {"tensors", nlohmann::json::array()}};
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == kManifest) continue;
    const std::string name = e.path().filename().string();
    if (is_safetensors(e.path())) {
      const std::vector<uint8_t> head = read_bytes(e.path(), 8);
      MESH_CHECK(head.size() == 8, e.path().string(), ": not a safetensors file");
      uint64_t n = 0;
      for (int i = 7; i >= 0; --i) n = (n << 8) | head[size_t(i)];
      MESH_CHECK(n <= SafetensorsFile::kMaxHeaderBytes, e.path().string(), ": header too large");
      j["tensors"].push_back({{"name", name}, {"size", uint64_t(e.file_size())},
                              {"header", nlohmann::json::binary(read_bytes(e.path(), 8 + n))}});
    } else if (e.file_size() <= kMaxSmallFile) {
      j["files"].push_back({{"name", name}, {"data", nlohmann::json::binary(read_bytes(e.path(), kMaxSmallFile))}});
    }
  }
  return nlohmann::json::to_msgpack(j);
}

std::map<std::string, Ranges> read_manifest(const fs::path& dir) {
  std::map<std::string, Ranges> out;
  if (!fs::exists(dir / kManifest)) return out;
  const nlohmann::json j = read_json_file((dir / kManifest).string());
  for (auto& [name, list] : j.items())
    for (auto& r : list) out[name].push_back({r.at(0).get<uint64_t>(), r.at(1).get<uint64_t>()});
  return out;
}

void write_manifest(const fs::path& dir, const std::map<std::string, Ranges>& present) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, ranges] : present) {
    j[name] = nlohmann::json::array();
    for (const auto& r : ranges) j[name].push_back({r.begin, r.end});
  }
  const std::string text = j.dump();
  write_bytes(dir / kManifest, std::vector<uint8_t>(text.begin(), text.end()));
}

// Sorted, overlapping and touching ranges joined.
Ranges merged(Ranges r) {
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  Ranges out;
  for (const auto& x : r) {
    if (x.end <= x.begin) continue;
    if (!out.empty() && x.begin <= out.back().end) out.back().end = std::max(out.back().end, x.end);
    else out.push_back(x);
  }
  return out;
}

// `want` minus `have` (both merged).
Ranges minus(const Ranges& want, const Ranges& have) {
  Ranges out;
  size_t h = 0;
  for (auto w : want) {
    while (h < have.size() && have[h].end <= w.begin) ++h;
    for (size_t k = h; k < have.size() && have[k].begin < w.end; ++k) {
      if (have[k].begin > w.begin) out.push_back({w.begin, have[k].begin});
      w.begin = std::max(w.begin, have[k].end);
    }
    if (w.begin < w.end) out.push_back(w);
  }
  return out;
}

// Lacking rank: the small files written whole, each safetensors file made with its header at its size (kept when
// an earlier run's copy has the same size and header, with the ranges it already holds).
void unpack_model(const std::vector<uint8_t>& bundle, const fs::path& dir) {
  const nlohmann::json j = nlohmann::json::from_msgpack(bundle);
  fs::create_directories(dir);
  for (const auto& f : j["files"]) write_bytes(dir / f["name"].get<std::string>(), f["data"].get_binary());
  std::map<std::string, Ranges> present = read_manifest(dir), kept;
  for (const auto& t : j["tensors"]) {
    const std::string name = t["name"].get<std::string>();
    const std::vector<uint8_t>& header = t["header"].get_binary();
    const uint64_t size = t["size"].get<uint64_t>();
    const fs::path p = dir / name;
    if (fs::exists(p) && fs::file_size(p) == size && read_bytes(p, header.size()) == header) {
      kept[name] = present[name];
      continue;
    }
    write_bytes(p, header);
    fs::resize_file(p, size);  // sparse: the data section is a hole until its ranges arrive
    kept[name] = {{0, header.size()}};
  }
  write_manifest(dir, kept);
}

// The ranges this rank's slices read that its copy lacks, per file.
std::map<std::string, Ranges> missing_ranges(const std::string& dir, const ModelConfig& config,
                                             const ParallelLayout& layout, DType weight_dtype) {
  std::map<std::string, Ranges> reads;
  {
    const WeightIndex index(dir);
    index.record_reads(reads);
    load_weights(index, config, layout, weight_dtype);  // reads nothing: records what it would read
  }
  std::map<std::string, Ranges> present = read_manifest(dir), out;
  for (auto& [name, r] : reads) {
    Ranges need = minus(merged(r), merged(present[name]));
    if (!need.empty()) out[name] = std::move(need);
  }
  return out;
}

// fds[file], opened on first use (-1 when it cannot be).
int open_once(std::map<std::string, int>& fds, const std::string& dir, const std::string& file, int flags) {
  const auto it = fds.find(file);
  if (it != fds.end()) return it->second;
  return fds[file] = ::open((fs::path(dir) / file).c_str(), flags | O_CLOEXEC);
}

void close_all(std::map<std::string, int>& fds) {
  for (auto& [name, fd] : fds)
    if (fd >= 0) ::close(fd);
}

std::vector<uint8_t> chunk_buffer() { return std::vector<uint8_t>(size_t(kChunk) + 4); }  // [u32 CRC-32][bytes]

struct Piece {
  std::string file;
  uint64_t begin, end;
};

nlohmann::json want_json(const std::map<std::string, Ranges>& want) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [name, ranges] : want)
    for (const auto& r : ranges) j.push_back({name, r.begin, r.end});
  return j;
}

// Source: checks the rank's request against its own files, then streams the bytes in order, kChunk at a time, each
// chunk [u32 CRC-32][bytes], and last a status (empty: all read). After a read error it still sends every chunk
// (zeros), so that the receiver is never left waiting, and names the error in the status.
void serve(Group& world, const std::string& dir, int to) {
  std::vector<uint8_t> in;
  world.recv_bytes(in, to, kTagWant);
  std::vector<Piece> pieces;
  std::string error;
  try {
    const nlohmann::json j = nlohmann::json::from_msgpack(in);
    for (const auto& p : j) {
      const std::string name = p.at(0).get<std::string>();
      const uint64_t begin = p.at(1), end = p.at(2);
      const fs::path path = fs::path(dir) / name;
      MESH_CHECK(name.find('/') == std::string::npos && is_safetensors(path) && fs::exists(path) && begin < end &&
                     end <= fs::file_size(path), "rank ", to, " asked for bytes [", begin, ", ", end, ") of '", name,
                 "', which ", dir, " does not have");
      pieces.push_back({name, begin, end});
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  world.send(error.data(), int64_t(error.size()), to, kTagReply);
  if (!error.empty()) return;
  std::map<std::string, int> fds;
  // Two chunk buffers: one is read and checksummed while the other is on its way.
  std::vector<uint8_t> buffers[2] = {chunk_buffer(), chunk_buffer()};
  MPI_Request sending[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  int current = 0;
  int64_t filled = 0;
  const auto flush = [&] {
    std::vector<uint8_t>& chunk = buffers[current];
    const uint32_t crc = uint32_t(crc32(0L, chunk.data() + 4, uInt(filled)));
    std::memcpy(chunk.data(), &crc, 4);
    sending[current] = world.isend(chunk.data(), filled + 4, to, kTagChunk);
    current ^= 1;
    Group::wait(sending[current]);
    filled = 0;
  };
  for (const Piece& p : pieces) {
    const int fd = open_once(fds, dir, p.file, O_RDONLY);
    for (uint64_t at = p.begin; at < p.end;) {
      const int64_t n = std::min<int64_t>(kChunk - filled, int64_t(p.end - at));
      uint8_t* to_fill = buffers[current].data() + 4 + filled;
      if (error.empty() && (fd < 0 || ::pread(fd, to_fill, size_t(n), off_t(at)) != n))
        error = dir + "/" + p.file + ": read failed at byte " + std::to_string(at);
      if (!error.empty()) std::memset(to_fill, 0, size_t(n));
      filled += n, at += uint64_t(n);
      if (filled == kChunk) flush();
    }
  }
  if (filled > 0) flush();
  for (MPI_Request& r : sending) Group::wait(r);
  close_all(fds);
  world.send(error.data(), int64_t(error.size()), to, kTagReply);
}

// Lacking rank: asks for `want`, writes every chunk where it belongs. Receives every chunk even after an error (so
// the source is never left blocked), then throws it.
uint64_t receive(Group& world, const std::string& dir, int from, const std::map<std::string, Ranges>& want) {
  const std::vector<uint8_t> ask = nlohmann::json::to_msgpack(want_json(want));
  world.send(ask.data(), int64_t(ask.size()), from, kTagWant);
  std::vector<uint8_t> in;
  world.recv_bytes(in, from, kTagReply);
  MESH_CHECK(in.empty(), "rank ", from, " cannot send the model: ", std::string(in.begin(), in.end()));
  std::string error;  // the first thing that went wrong here
  uint64_t received = 0;
  std::vector<Piece> pieces;
  uint64_t total = 0;
  for (const auto& [name, ranges] : want)
    for (const auto& r : ranges) pieces.push_back({name, r.begin, r.end}), total += r.end - r.begin;
  size_t piece = 0;
  uint64_t at = pieces.empty() ? 0 : pieces[0].begin;
  std::map<std::string, int> fds;
  // Every chunk but the last is full, so their number is known: the next one is already being received while this
  // one is checked and written.
  const uint64_t chunks = (total + uint64_t(kChunk) - 1) / uint64_t(kChunk);
  std::vector<uint8_t> buffers[2] = {chunk_buffer(), chunk_buffer()};
  MPI_Request receiving[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  const auto post = [&](uint64_t chunk) {
    if (chunk < chunks)
      MPI_CHECK(MPI_Irecv(buffers[chunk % 2].data(), int(kChunk) + 4, MPI_BYTE, from, kTagChunk, world.raw(),
                          &receiving[chunk % 2]));
  };
  post(0);
  for (uint64_t chunk = 0; chunk < chunks; ++chunk) {
    MPI_Status status;
    MPI_CHECK(MPI_Wait(&receiving[chunk % 2], &status));
    post(chunk + 1);
    int count = 0;
    MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &count));
    const std::vector<uint8_t>& in = buffers[chunk % 2];
    const size_t size = size_t(count);
    MESH_CHECK(size >= 4 && size - 4 <= total - received, "malformed chunk of the model from rank ", from);
    uint32_t crc = 0;
    std::memcpy(&crc, in.data(), 4);
    if (error.empty() && crc != uint32_t(crc32(0L, in.data() + 4, uInt(size - 4))))
      error = "a chunk of the model from rank " + std::to_string(from) + " failed its CRC-32 check";
    for (size_t off = 4; off < size;) {
      const Piece& p = pieces[piece];
      const size_t n = size_t(std::min<uint64_t>(p.end - at, size - off));
      const int fd = error.empty() ? open_once(fds, dir, p.file, O_WRONLY) : -1;
      if (error.empty() && (fd < 0 || ::pwrite(fd, in.data() + off, n, off_t(at)) != ssize_t(n)))
        error = dir + "/" + p.file + ": cannot write: " + std::strerror(errno);
      off += n, at += n, received += n;
      if (at == p.end && ++piece < pieces.size()) at = pieces[piece].begin;
    }
  }
  for (auto& [name, fd] : fds)
    if (fd >= 0 && error.empty() && ::fsync(fd) != 0) error = dir + "/" + name + ": fsync failed";
  close_all(fds);
  MESH_CHECK(received == total, "the model from rank ", from, " came ", total - received, " bytes short");
  world.recv_bytes(in, from, kTagReply);  // the source's status
  MESH_CHECK(in.empty(), "rank ", from, " could not send the model: ", std::string(in.begin(), in.end()));
  MESH_CHECK(error.empty(), error);
  std::map<std::string, Ranges> present = read_manifest(dir);
  for (const auto& [name, ranges] : want) {
    Ranges& r = present[name];
    r.insert(r.end(), ranges.begin(), ranges.end());
    r = merged(r);
  }
  write_manifest(dir, present);
  return received;
}

// A temporary copy's directory, removed when the process ends normally.
struct TemporaryDir {
  fs::path path;
  ~TemporaryDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

}  // namespace

ModelSource share_model_files(const MpiSession& mpi, const char* verb, const std::string& model_dir,
                              const std::string& cache_dir) {
  ModelSource out;
  out.dir = model_dir;
  // A partial copy an earlier run made: the cache, or --model itself when it is one.
  fs::path copy = cache_dir;
  if (copy.empty() || !fs::exists(copy / kManifest))
    copy = fs::exists(fs::path(model_dir) / kManifest) ? fs::path(model_dir) : fs::path();
  const int mine[2] = {complete(model_dir) ? 1 : 0, copy.empty() ? 0 : 1};
  std::vector<int> all(size_t(2 * mpi.world_size()));
  MPI_CHECK(MPI_Allgather(mine, 2, MPI_INT, all.data(), 2, MPI_INT, MPI_COMM_WORLD));
  for (int r = 0; r < mpi.world_size(); ++r) {
    if (all[size_t(2 * r)]) out.source = out.source < 0 ? r : out.source;
    else out.lacking.push_back(r);
    out.partial_copies |= all[size_t(2 * r + 1)] != 0;
  }
  if (out.lacking.empty()) {
    out.source = -1;
    return out;
  }
  if (out.source < 0) {
    // No rank can send: ranks with a partial copy read from it (fetch_slices checks that it holds what they need);
    // the others load as they are, and loading names what is wrong with their files.
    out.lacking.clear();
    out.fetch = !copy.empty();
    if (out.fetch) out.dir = copy.string();
    return out;
  }
  Group world(MPI_COMM_WORLD);
  std::vector<uint8_t> bundle;
  mpi.all_or_none(verb, [&] {
    if (mpi.world_rank() == out.source) bundle = pack_model(model_dir);
  });
  world.bcast_bytes(bundle, out.source);
  out.fetch = !mine[0];
  mpi.all_or_none(verb, [&] {
    if (!out.fetch) return;
    static TemporaryDir temporary;
    fs::path dir = copy.empty() ? fs::path(cache_dir) : copy;
    if (dir.empty()) {
      temporary.path = fs::temp_directory_path() / ("meshlm-model-" + std::to_string(::getpid()));
      dir = temporary.path;
    }
    try {
      unpack_model(bundle, dir);
    } catch (const fs::filesystem_error& e) {
      fail(dir.string(), ": cannot hold the model's files (", e.code().message(), ")",
           cache_dir.empty() ? "" : "; give --model-cache a directory this host can write");
    }
    out.dir = dir.string();
  });
  return out;
}

FetchStats fetch_slices(const MpiSession& mpi, const char* verb, const ModelSource& source, const ModelConfig& config,
                        const ParallelLayout& layout, DType weight_dtype) {
  FetchStats st;
  if (source.lacking.empty() && !source.partial_copies) return st;
  std::map<std::string, Ranges> want;
  mpi.all_or_none(verb, [&] {
    if (!source.fetch) return;
    want = missing_ranges(source.dir, config, layout, weight_dtype);
    uint64_t missing = 0;
    for (const auto& [name, ranges] : want)
      for (const auto& r : ranges) missing += r.end - r.begin;
    MESH_CHECK(source.source >= 0 || missing == 0, source.dir, " is a partial copy (--model-cache) that lacks ",
               missing, " bytes this layout reads, and no rank has the whole model to send them");
  });
  Group world(MPI_COMM_WORLD);
  for (int r : source.lacking) {
    mpi.all_or_none(verb, [&] {
      const Timer t;
      if (mpi.world_rank() == r) st.bytes = receive(world, source.dir, source.source, want);
      else if (mpi.world_rank() == source.source) serve(world, source.dir, r);
      if (mpi.world_rank() == r) st.seconds = t.seconds();
    });
  }
  return st;
}

}  // namespace meshlm
