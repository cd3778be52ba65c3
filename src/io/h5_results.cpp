#include "io/h5_results.h"

#include <hdf5.h>

#include <filesystem>

#include "core/check.h"
#include "io/h5_append.h"

namespace meshlm {
namespace {

// The whole 1-D dataset `name` of an open file, converted to mem_type; ok becomes false if it cannot be read.
template <typename T>
std::vector<T> read_all(hid_t file, const char* name, hid_t mem_type, bool& ok) {
  std::vector<T> out;
  const hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return ok = false, out;
  const hid_t space = H5Dget_space(ds);
  hsize_t n = 0;
  ok = ok && H5Sget_simple_extent_ndims(space) == 1 && H5Sget_simple_extent_dims(space, &n, nullptr) >= 0;
  out.resize(ok ? n : 0);
  if constexpr (std::is_same_v<T, std::string>) {
    std::vector<char*> raw(out.size());
    const hid_t type = H5Dget_type(ds);
    ok = ok && H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) >= 0;
    for (size_t i = 0; ok && i < raw.size(); ++i) out[i] = raw[i] ? raw[i] : "";
    if (ok) H5Dvlen_reclaim(type, space, H5P_DEFAULT, raw.data());
    H5Tclose(type);
  } else {
    ok = ok && (out.empty() || H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0);
  }
  H5Sclose(space);
  H5Dclose(ds);
  return out;
}

// The rows of an earlier run's file (in file order) and its logprobs_k. Throws Error if it cannot be read whole.
std::vector<ResultRow> read_rows(const std::string& path, int& logprobs_k) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  MESH_CHECK(file >= 0, path, ": cannot open the earlier run's results (not an HDF5 file, or damaged)");
  logprobs_k = 0;
  if (H5Aexists(file, "logprobs_k") > 0) {
    const hid_t attr = H5Aopen(file, "logprobs_k", H5P_DEFAULT);
    if (attr < 0 || H5Aread(attr, H5T_NATIVE_INT, &logprobs_k) < 0) logprobs_k = -1;
    if (attr >= 0) H5Aclose(attr);
  }
  bool ok = logprobs_k >= 0;
  const auto ids = read_all<std::string>(file, "requests/id", 0, ok);
  const auto finish = read_all<std::string>(file, "requests/finish_reason", 0, ok);
  const auto prompt = read_all<int32_t>(file, "requests/prompt_tokens", H5T_NATIVE_INT32, ok);
  const auto completion = read_all<int32_t>(file, "requests/completion_tokens", H5T_NATIVE_INT32, ok);
  const auto offset = read_all<int64_t>(file, "requests/token_offset", H5T_NATIVE_INT64, ok);
  const auto queue = read_all<double>(file, "requests/queue_s", H5T_NATIVE_DOUBLE, ok);
  const auto ttft = read_all<double>(file, "requests/ttft_s", H5T_NATIVE_DOUBLE, ok);
  const auto decode = read_all<double>(file, "requests/decode_s", H5T_NATIVE_DOUBLE, ok);
  const auto tokens = read_all<int32_t>(file, "tokens", H5T_NATIVE_INT32, ok);
  std::vector<float> chosen, top_values;
  std::vector<int32_t> top_ids;
  if (logprobs_k > 0) {
    chosen = read_all<float>(file, "logprobs/chosen", H5T_NATIVE_FLOAT, ok);
    top_ids = read_all<int32_t>(file, "logprobs/top_ids", H5T_NATIVE_INT32, ok);
    top_values = read_all<float>(file, "logprobs/top_values", H5T_NATIVE_FLOAT, ok);
  }
  H5Fclose(file);
  MESH_CHECK(ok, path, ": cannot read the earlier run's results (not a meshlm --h5 file, or damaged)");
  const size_t n = ids.size(), k = size_t(logprobs_k);
  bool same = finish.size() == n && prompt.size() == n && completion.size() == n && offset.size() == n &&
              queue.size() == n && ttft.size() == n && decode.size() == n;
  same = same && (k == 0 || (chosen.size() == tokens.size() && top_ids.size() == tokens.size() * k &&
                             top_values.size() == top_ids.size()));
  std::vector<ResultRow> rows;
  for (size_t i = 0; same && i < n; ++i) {
    const size_t at = size_t(offset[i]), m = size_t(completion[i]);
    same = offset[i] >= 0 && completion[i] >= 0 && at + m <= tokens.size();
    if (!same) break;
    ResultRow& r = rows.emplace_back();
    r.id = ids[i], r.finish_reason = finish[i], r.prompt_tokens = prompt[i];
    r.queue_s = queue[i], r.ttft_s = ttft[i], r.decode_s = decode[i];
    r.tokens.assign(tokens.begin() + long(at), tokens.begin() + long(at + m));
    if (k == 0) continue;
    r.chosen_logprob.assign(chosen.begin() + long(at), chosen.begin() + long(at + m));
    r.top_ids.assign(top_ids.begin() + long(at * k), top_ids.begin() + long((at + m) * k));
    r.top_logprobs.assign(top_values.begin() + long(at * k), top_values.begin() + long((at + m) * k));
  }
  MESH_CHECK(same, path, ": the earlier run's results do not fit together (datasets of different lengths)");
  return rows;
}

}  // namespace

H5Results::H5Results(const std::string& path, const std::map<std::string, std::string>& attributes, int logprobs_k)
    : path_(path), logprobs_k_(logprobs_k) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // we report errors ourselves, in one line
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  MESH_CHECK(file_ >= 0, path, ": cannot create the HDF5 file");
  group_ = H5Gcreate2(file_, "requests", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  str_type_ = utf8_string_type();
  for (const auto& [key, value] : attributes) {
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file_, key.c_str(), str_type_, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* text = value.c_str();
    const herr_t rc = attr >= 0 ? H5Awrite(attr, str_type_, &text) : -1;
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    MESH_CHECK(rc >= 0, path, ": cannot write attribute ", key);
  }
  for (const char* name : {"id", "finish_reason"}) ds_[name] = dataset(std::string("requests/") + name, str_type_);
  for (const char* name : {"prompt_tokens", "completion_tokens"})
    ds_[name] = dataset(std::string("requests/") + name, H5T_STD_I32LE);
  ds_["token_offset"] = dataset("requests/token_offset", H5T_STD_I64LE);
  for (const char* name : {"queue_s", "ttft_s", "decode_s"})
    ds_[name] = dataset(std::string("requests/") + name, H5T_IEEE_F64LE);
  ds_["tokens"] = dataset("tokens", H5T_STD_I32LE);
  if (logprobs_k_ > 0) {
    const hid_t group = H5Gcreate2(file_, "logprobs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(group);
    ds_["chosen"] = dataset("logprobs/chosen", H5T_IEEE_F32LE);
    ds_["top_ids"] = dataset("logprobs/top_ids", H5T_STD_I32LE);
    ds_["top_values"] = dataset("logprobs/top_values", H5T_IEEE_F32LE);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file_, "logprobs_k", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const int32_t k = logprobs_k_;
    const herr_t rc = attr >= 0 ? H5Awrite(attr, H5T_NATIVE_INT32, &k) : -1;
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    MESH_CHECK(rc >= 0, path, ": cannot write attribute logprobs_k");
  }
}

H5Results::~H5Results() {
  for (auto& [name, ds] : ds_) H5Dclose(ds);
  if (str_type_ >= 0) H5Tclose(str_type_);
  if (group_ >= 0) H5Gclose(group_);
  if (file_ >= 0) H5Fclose(file_);
}

int64_t H5Results::dataset(const std::string& name, int64_t type) {
  return open_or_create_dataset(file_, name, type, path_);
}

void H5Results::extend(int64_t ds, int64_t type, const void* data, uint64_t n) {
  append_values(ds, type, data, n, path_);
}

std::unique_ptr<H5Results> H5Results::resume(const std::string& path,
                                             const std::map<std::string, std::string>& attributes, int logprobs_k,
                                             const std::set<std::string>& keep_ids) {
  if (keep_ids.empty()) return std::make_unique<H5Results>(path, attributes, logprobs_k);  // nothing to keep
  MESH_CHECK(std::filesystem::exists(path), path, ": missing, but the output already holds ", keep_ids.size(),
             " finished requests; resume without --h5, or start the job afresh");
  int earlier_k = 0;
  std::vector<ResultRow> rows = read_rows(path, earlier_k);
  MESH_CHECK(earlier_k == logprobs_k, path, ": written with --logprobs ", earlier_k, "; resume with the same");
  std::set<std::string> found;
  std::erase_if(rows, [&](const ResultRow& r) { return !keep_ids.count(r.id) || !found.insert(r.id).second; });
  for (const std::string& id : keep_ids)
    MESH_CHECK(found.count(id), path, ": has no row for request \"", id, "\", which the output already holds; "
               "resume without --h5, or start the job afresh");
  // Written beside it and renamed over it, so that a kill now leaves the earlier file whole.
  auto out = std::make_unique<H5Results>(path + ".resume", attributes, logprobs_k);
  for (const ResultRow& r : rows) out->append(r, false);
  H5Fflush(hid_t(out->file_), H5F_SCOPE_LOCAL);
  std::error_code ec;
  std::filesystem::rename(path + ".resume", path, ec);
  MESH_CHECK(!ec, path, ": cannot replace it with the resumed results: ", ec.message());
  out->path_ = path;
  return out;
}

void H5Results::append(const ResultRow& row, bool flush) {
  const char* id = row.id.c_str();
  const char* finish = row.finish_reason.c_str();
  const int32_t completion = int32_t(row.tokens.size());
  const int64_t offset = int64_t(tokens_);
  extend(ds_["id"], str_type_, &id, 1);
  extend(ds_["finish_reason"], str_type_, &finish, 1);
  extend(ds_["prompt_tokens"], H5T_NATIVE_INT32, &row.prompt_tokens, 1);
  extend(ds_["completion_tokens"], H5T_NATIVE_INT32, &completion, 1);
  extend(ds_["token_offset"], H5T_NATIVE_INT64, &offset, 1);
  extend(ds_["queue_s"], H5T_NATIVE_DOUBLE, &row.queue_s, 1);
  extend(ds_["ttft_s"], H5T_NATIVE_DOUBLE, &row.ttft_s, 1);
  extend(ds_["decode_s"], H5T_NATIVE_DOUBLE, &row.decode_s, 1);
  extend(ds_["tokens"], H5T_NATIVE_INT32, row.tokens.data(), row.tokens.size());
  if (logprobs_k_ > 0) {
    MESH_CHECK(row.chosen_logprob.size() == row.tokens.size() &&
                   row.top_ids.size() == row.tokens.size() * size_t(logprobs_k_) &&
                   row.top_logprobs.size() == row.top_ids.size(),
               path_, ": logprobs of request ", row.id, " do not match its tokens");
    extend(ds_["chosen"], H5T_NATIVE_FLOAT, row.chosen_logprob.data(), row.chosen_logprob.size());
    extend(ds_["top_ids"], H5T_NATIVE_INT32, row.top_ids.data(), row.top_ids.size());
    extend(ds_["top_values"], H5T_NATIVE_FLOAT, row.top_logprobs.data(), row.top_logprobs.size());
  }
  tokens_ += row.tokens.size();
  ++rows_;
  if (flush) H5Fflush(hid_t(file_), H5F_SCOPE_LOCAL);
}

}  // namespace meshlm
