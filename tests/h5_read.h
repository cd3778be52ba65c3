// Reads 1-D datasets and string attributes back from HDF5 (tests only). Each returns an empty result when the
// file or the object is missing.
#pragma once
#include <hdf5.h>

#include <functional>
#include <string>
#include <vector>

namespace meshlm::test {

// Opens path read-only (HDF5's own error printing off), runs fn on the file, closes it. False if it cannot open.
inline bool with_h5_file(const std::string& path, const std::function<void(hid_t)>& fn) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return false;
  fn(f);
  H5Fclose(f);
  return true;
}

// Opens dataset `name` in path and runs fn(dataset, its dataspace, its element count) when it is 1-D.
inline void with_h5_dataset(const std::string& path, const std::string& name,
                            const std::function<void(hid_t, hid_t, hsize_t)>& fn) {
  with_h5_file(path, [&](hid_t f) {
    const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
    if (d < 0) return;
    const hid_t s = H5Dget_space(d);
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(s) == 1) {
      H5Sget_simple_extent_dims(s, &n, nullptr);
      fn(d, s, n);
    }
    H5Sclose(s);
    H5Dclose(d);
  });
}

// A 1-D numeric dataset converted to T (mem_type: H5T_NATIVE_FLOAT, H5T_NATIVE_INT32, H5T_NATIVE_DOUBLE ...).
template <typename T>
std::vector<T> read_h5_array(const std::string& path, const std::string& dataset, hid_t mem_type) {
  std::vector<T> out;
  with_h5_dataset(path, dataset, [&](hid_t d, hid_t, hsize_t n) {
    out.resize(n);
    H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  });
  return out;
}

inline std::vector<float> read_h5_floats(const std::string& path, const std::string& dataset) {
  return read_h5_array<float>(path, dataset, H5T_NATIVE_FLOAT);
}

// A 1-D variable-length string dataset.
inline std::vector<std::string> read_h5_strings(const std::string& path, const std::string& dataset) {
  std::vector<std::string> out;
  with_h5_dataset(path, dataset, [&](hid_t d, hid_t s, hsize_t n) {
    const hid_t t = H5Dget_type(d);
    std::vector<char*> raw(n);
    if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) >= 0) {
      for (char* c : raw) out.emplace_back(c ? c : "");
      H5Dvlen_reclaim(t, s, H5P_DEFAULT, raw.data());
    }
    H5Tclose(t);
  });
  return out;
}

// The names of the links in a group (e.g. the datasets of /logits), in name order.
inline std::vector<std::string> read_h5_names(const std::string& path, const std::string& group) {
  std::vector<std::string> out;
  with_h5_file(path, [&](hid_t f) {
    H5Literate_by_name(f, group.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
                       [](hid_t, const char* name, const H5L_info_t*, void* names) -> herr_t {
                         static_cast<std::vector<std::string>*>(names)->emplace_back(name);
                         return 0;
                       },
                       &out, H5P_DEFAULT);
  });
  return out;
}

// A scalar variable-length string attribute of the root group.
inline std::string read_h5_root_attribute(const std::string& path, const std::string& name) {
  std::string out;
  with_h5_file(path, [&](hid_t f) {
    const hid_t a = H5Aopen(f, name.c_str(), H5P_DEFAULT);
    if (a < 0) return;
    const hid_t t = H5Aget_type(a);
    char* text = nullptr;
    if (H5Aread(a, t, &text) >= 0 && text) {
      out = text;
      H5free_memory(text);
    }
    H5Tclose(t);
    H5Aclose(a);
  });
  return out;
}

}  // namespace meshlm::test
