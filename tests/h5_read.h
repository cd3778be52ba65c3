// Reads 1-D datasets and string attributes back from HDF5 (tests only).
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

namespace meshlm::test {

// A 1-D numeric dataset converted to T (mem_type: H5T_NATIVE_FLOAT, H5T_NATIVE_INT32, H5T_NATIVE_DOUBLE ...).
template <typename T>
std::vector<T> read_h5_array(const std::string& path, const std::string& dataset, hid_t mem_type) {
  std::vector<T> out;
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
      H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
    }
    H5Sclose(s);
    H5Dclose(d);
  }
  H5Fclose(f);
  return out;
}

inline std::vector<float> read_h5_floats(const std::string& path, const std::string& dataset) {
  return read_h5_array<float>(path, dataset, H5T_NATIVE_FLOAT);
}

// A 1-D variable-length string dataset.
inline std::vector<std::string> read_h5_strings(const std::string& path, const std::string& dataset) {
  std::vector<std::string> out;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return out;
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  if (d >= 0) {
    const hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(s, &n, nullptr);
    std::vector<char*> raw(n);
    if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) >= 0) {
      for (char* c : raw) out.emplace_back(c ? c : "");
      H5Dvlen_reclaim(t, s, H5P_DEFAULT, raw.data());
    }
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
  }
  H5Fclose(f);
  return out;
}

// A scalar variable-length string attribute of the root group.
inline std::string read_h5_root_attribute(const std::string& path, const std::string& name) {
  std::string out;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return out;
  const hid_t a = H5Aopen(f, name.c_str(), H5P_DEFAULT);
  if (a >= 0) {
    const hid_t t = H5Aget_type(a);
    char* text = nullptr;
    if (H5Aread(a, t, &text) >= 0 && text) {
      out = text;
      H5free_memory(text);
    }
    H5Tclose(t);
    H5Aclose(a);
  }
  H5Fclose(f);
  return out;
}

}  // namespace meshlm::test
