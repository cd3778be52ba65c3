// Reads a 1-D float dataset back from HDF5 (tests only).
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

namespace meshlm::test {

inline std::vector<float> read_h5_floats(const std::string& path, const std::string& dataset) {
  std::vector<float> out;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return out;
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  if (d >= 0) {
    const hid_t s = H5Dget_space(d);
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(s) == 1) {
      H5Sget_simple_extent_dims(s, &n, nullptr);
      out.resize(n);
      H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
    }
    H5Sclose(s);
    H5Dclose(d);
  }
  H5Fclose(f);
  return out;
}

}  // namespace meshlm::test
