#include "model/affine_weights.h"

#include <cstring>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/affine_int8.h"

namespace meshlm {
namespace {

size_t element_bytes(const TensorInfo& t) { return t.nbytes / size_t(std::max<int64_t>(1, t.numel())); }

void expect_shape(const WeightIndex& index, const TensorInfo& t, const std::vector<int64_t>& shape,
                  const std::string& why) {
  MESH_CHECK(t.shape == shape, index.file_of(t.name).path(), ": tensor '", t.name, "': expected shape ", shape_string(shape),
             why, ", got ", shape_string(t.shape));
}

}  // namespace

AlignedBytes read_window(const WeightIndex& index, const TensorInfo& t, int64_t slab, Range rows, int64_t c0,
                          int64_t c1, size_t pad) {
  const int64_t out_rows = t.shape.size() >= 2 ? t.shape[t.shape.size() - 2] : 1, first = slab < 0 ? 0 : slab * out_rows;
  AlignedBytes out(size_t(rows.size() * (c1 - c0)) * element_bytes(t) + pad, 0);
  index.file_of(t.name).read_block(t, first + rows.begin, first + rows.end, c0, c1, out.data());
  return out;
}

Matrix read_affine(const WeightIndex& index, const std::string& module, int bits, int group, int64_t slab,
                   int64_t n_slabs, int64_t out, int64_t in, Range rows, Range cols, bool read) {
  const TensorInfo& w = index.get(module + ".weight");
  const TensorInfo& s = index.get(module + ".scales");
  const TensorInfo& b = index.get(module + ".biases");
  const std::string& path = index.file_of(w.name).path();
  MESH_CHECK(w.dtype_name == "U32", path, ": tensor '", w.name, "': dtype ", w.dtype_name,
             " (MLX affine weights are U32 words, since '", s.name, "' exists)");
  MESH_CHECK(in % group == 0, path, ": tensor '", w.name, "': input size ", in, " is not a multiple of group_size ",
             group);
  MESH_CHECK(in * bits % 32 == 0, path, ": tensor '", w.name, "': ", in, " inputs of ", bits,
             " bits do not fill whole 32-bit words");
  std::vector<int64_t> lead;
  if (slab >= 0) lead.push_back(n_slabs);
  auto shape = [&](int64_t last) {
    std::vector<int64_t> v = lead;
    v.insert(v.end(), {out, last});
    return v;
  };
  const std::string how = " (" + std::to_string(in) + " inputs, " + std::to_string(bits) + "-bit, groups of " +
                          std::to_string(group) + ")";
  expect_shape(index, w, shape(in * bits / 32), how);
  for (const TensorInfo* t : {&s, &b}) {
    MESH_CHECK(t->is_float, index.file_of(t->name).path(), ": tensor '", t->name, "': dtype ", t->dtype_name,
               " is not F32, F16 or BF16");
    expect_shape(index, *t, shape(in / group), how);
  }
  Matrix m;
  m.dtype = DType::kAffine;
  m.rows = rows.size(), m.cols = cols.size();
  m.bits = bits, m.group = group;
  const int64_t g0 = cols.begin / group, g1 = (cols.end + group - 1) / group;
  m.phase = cols.begin - g0 * group, m.groups = g1 - g0;
  MESH_CHECK(s.dtype == b.dtype, index.file_of(b.name).path(), ": tensor '", b.name, "': dtype ", b.dtype_name,
             " differs from '", s.name, "' (", s.dtype_name, ")");
  m.param_dtype = s.dtype;
  if (!read) return m;

  // The words holding the slice's values, repacked into rows that start at bit 0.
  const int64_t w0 = cols.begin * bits / 32, w1 = (cols.end * bits + 31) / 32;
  const AlignedBytes words = read_window(index, w, slab, rows, w0, w1, 8);
  const size_t src_row = size_t(w1 - w0) * 4, dst_row = affine_row_bytes(m.cols, bits);
  const uint64_t bit0 = uint64_t(cols.begin * bits - w0 * 32);
  m.bytes.assign(size_t(m.rows) * dst_row + 8, 0);
  for (int64_t r = 0; r < m.rows; ++r) {
    const uint8_t* src = words.data() + size_t(r) * src_row;
    uint8_t* dst = m.bytes.data() + size_t(r) * dst_row;
    if (bit0 == 0 && src_row == dst_row) std::memcpy(dst, src, dst_row);
    else affine_repack(src, bit0, m.cols, bits, dst);
  }
  m.scales = read_window(index, s, slab, rows, g0, g1);  // kept in the file's dtype
  m.biases = read_window(index, b, slab, rows, g0, g1);
  return m;
}

void affine_to_panel_matrix(Matrix& m) {
  const WeightView w = m.view();
  const size_t pb = affine_panel_bytes(w.affine);
  const int64_t panels = (m.rows + kPanelRows - 1) / kPanelRows;
  AlignedBytes out(size_t(panels) * pb);
  ThreadPool& pool = kernel_pool();
  const int parts = int(std::min<int64_t>(pool.size(), panels));
  pool.run(parts, [&](int t) {
    const Share s = share_of(panels, parts, t);
    const int64_t r0 = s.begin * kPanelRows, r1 = std::min(m.rows, s.end * kPanelRows);
    if (r0 < r1) affine_to_panels(w, r0, r1, out.data() + size_t(s.begin) * pb);
  });
  m.bytes = std::move(out);
  m.scales = {}, m.biases = {};
  m.panels = true;
}

uint64_t affine_bytes(const Matrix& m) {
  return uint64_t(m.rows) * (affine_row_bytes(m.cols, m.bits) + 2 * dtype_size(m.param_dtype) * uint64_t(m.groups));
}

}  // namespace meshlm
