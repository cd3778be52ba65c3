#include "io/h5_append.h"

#include <hdf5.h>

#include "core/check.h"

namespace meshlm {

int64_t open_or_create_dataset(int64_t loc, const std::string& name, int64_t type, const std::string& path) {
  if (H5Lexists(hid_t(loc), name.c_str(), H5P_DEFAULT) > 0) {
    const hid_t ds = H5Dopen2(hid_t(loc), name.c_str(), H5P_DEFAULT);
    MESH_CHECK(ds >= 0, path, ": cannot open dataset /", name);
    return ds;
  }
  const hsize_t dims[1] = {0}, max[1] = {H5S_UNLIMITED}, chunk[1] = {1024};
  const hid_t space = H5Screate_simple(1, dims, max);
  const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(plist, 1, chunk);
  const hid_t ds = H5Dcreate2(hid_t(loc), name.c_str(), hid_t(type), space, H5P_DEFAULT, plist, H5P_DEFAULT);
  H5Pclose(plist);
  H5Sclose(space);
  MESH_CHECK(ds >= 0, path, ": cannot create dataset /", name);
  return ds;
}

void append_values(int64_t ds, int64_t mem_type, const void* data, uint64_t n, const std::string& path) {
  if (n == 0) return;
  const hid_t old_space = H5Dget_space(hid_t(ds));
  hsize_t size[1] = {0};
  H5Sget_simple_extent_dims(old_space, size, nullptr);
  H5Sclose(old_space);
  const hsize_t grown[1] = {size[0] + n}, start[1] = {size[0]}, count[1] = {n};
  herr_t rc = H5Dset_extent(hid_t(ds), grown);
  const hid_t space = H5Dget_space(hid_t(ds));
  rc = rc >= 0 ? H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr) : rc;
  const hid_t mem = H5Screate_simple(1, count, nullptr);
  rc = rc >= 0 ? H5Dwrite(hid_t(ds), hid_t(mem_type), mem, space, H5P_DEFAULT, data) : rc;
  H5Sclose(mem);
  H5Sclose(space);
  MESH_CHECK(rc >= 0, path, ": cannot append to a dataset");
}

int64_t utf8_string_type() {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

}  // namespace meshlm
