#include "io/hdf5_writer.h"

#include <hdf5.h>

#include <filesystem>

#include "core/check.h"

namespace meshlm {

LogitsDump::LogitsDump(const std::string& path) : path_(path) { create(); }

void LogitsDump::create() {
  const std::string& path = path_;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // we report errors ourselves, in one line
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  MESH_CHECK(file_ >= 0, path, ": cannot create the HDF5 file");
  group_ = H5Gcreate2(file_, "logits", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  MESH_CHECK(group_ >= 0, path, ": cannot create group /logits");
}

LogitsDump::LogitsDump(const std::string& path, const std::set<std::string>& done_ids) : path_(path) {
  if (done_ids.empty()) {  // nothing to keep (a run killed before its first line may have left a damaged file)
    create();
    return;
  }
  MESH_CHECK(std::filesystem::exists(path), path, ": missing, but the output already holds ", done_ids.size(),
             " finished requests; resume without --dump-logits, or start the job afresh");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  MESH_CHECK(file_ >= 0, path, ": cannot open the earlier run's logits (not an HDF5 file, or damaged)");
  group_ = H5Gopen2(file_, "logits", H5P_DEFAULT);
  MESH_CHECK(group_ >= 0, path, ": has no group /logits; is it a --dump-logits file?");
  for (const std::string& id : done_ids)
    MESH_CHECK(H5Lexists(group_, id.c_str(), H5P_DEFAULT) > 0, path, ": has no /logits/", id,
               ", which the output already holds; resume without --dump-logits, or start the job afresh");
}

LogitsDump::~LogitsDump() {
  if (group_ >= 0) H5Gclose(group_);
  if (file_ >= 0) H5Fclose(file_);
}

std::string LogitsDump::invalid_name(const std::string& id) {
  if (id.find('/') != std::string::npos) return "contains '/'";
  if (id == ".") return "is \".\"";
  return "";
}

void LogitsDump::write(const std::string& id, const float* logits, int64_t n) {
  const std::string why = invalid_name(id);
  MESH_CHECK(why.empty(), path_, ": request id \"", id, "\" cannot name an HDF5 dataset: it ", why);
  if (H5Lexists(group_, id.c_str(), H5P_DEFAULT) > 0) H5Ldelete(group_, id.c_str(), H5P_DEFAULT);  // a re-run
  const hsize_t dims[1] = {hsize_t(n)};
  const hid_t space = H5Screate_simple(1, dims, nullptr);
  const hid_t ds = H5Dcreate2(group_, id.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const herr_t rc = ds >= 0 ? H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, logits) : -1;
  if (ds >= 0) H5Dclose(ds);
  H5Sclose(space);
  MESH_CHECK(rc >= 0, path_, ": cannot write dataset /logits/", id);
  H5Fflush(file_, H5F_SCOPE_LOCAL);
}

}  // namespace meshlm
