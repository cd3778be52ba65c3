// Growing 1-D HDF5 datasets: created empty with no size limit (in chunks), then extended by appends. Used by the
// --h5 results and by `meshlm bench --h5`. Handles are HDF5 hid_t values, held as int64_t so that this header does
// not pull in hdf5.h.
#pragma once
#include <cstdint>
#include <string>

namespace meshlm {

// Opens dataset `name` under loc, or creates it empty with file type `type`. Throws Error naming path.
int64_t open_or_create_dataset(int64_t loc, const std::string& name, int64_t type, const std::string& path);
// Appends n values of mem_type to ds. Throws Error naming path.
void append_values(int64_t ds, int64_t mem_type, const void* data, uint64_t n, const std::string& path);
// A variable-length UTF-8 string type (close it with H5Tclose).
int64_t utf8_string_type();

}  // namespace meshlm
