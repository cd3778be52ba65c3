// Reading weight slices that the plain row/column reads of io/safetensors.h cannot express on their own: one expert
// of a stacked [E, out, in] tensor (mlx-lm's switch_mlp), and MLX affine-quantized matrices (X.weight packed in U32
// words + X.scales + X.biases), whose column slices are cut out of the words and repacked (kernels/affine.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/weight_index.h"
#include "model/parallel_layout.h"
#include "model/weights.h"

namespace meshlm {

// Elements [rows) x [c0, c1) of a tensor viewed as (out, cols) (or of slab `slab` of its leading dimension when
// slab >= 0), in the stored dtype: (rows.size(), c1 - c0) plus `pad` zero bytes. Reads only those bytes.
AlignedBytes read_window(const WeightIndex& index, const TensorInfo& t, int64_t slab, Range rows, int64_t c0,
                          int64_t c1, size_t pad = 0);

// Rows [rows) and input columns [cols) of the affine matrix `module` (out x in, quantized with bits/group; expert
// `slab` of n_slabs when slab >= 0). Checks the three tensors' dtypes and shapes, naming the tensor. read = false
// checks only and leaves the matrix without data (its held bytes are then affine_bytes()).
Matrix read_affine(const WeightIndex& index, const std::string& module, int bits, int group, int64_t slab,
                   int64_t n_slabs, int64_t out, int64_t in, Range rows, Range cols, bool read);
// Repacks a read_affine matrix (affine_int8_ok) into the int8 kernel's panels, on the kernel threads.
void affine_to_panel_matrix(Matrix& m);
// Bytes a read_affine matrix holds.
uint64_t affine_bytes(const Matrix& m);

}  // namespace meshlm
