#include "model/weights.h"

#include <cstring>

#include "core/check.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "kernels/affine_digits.h"
#include "kernels/qpanel.h"
#include "model/affine_weights.h"

namespace meshlm {
namespace {

class Loader {
 public:
  Loader(const WeightIndex& index, const ModelConfig& c, DType quantize_to, bool read,
         std::optional<Compute> panels_for)
      : index_(index), config_(c), quantize_to_(quantize_to), read_(read), panels_for_(panels_for) {}

  // Checks the tensor's full shape, then reads rows [rows.begin, rows.end) or columns [cols.begin, cols.end).
  // MLX affine-quantized matrices (a ".scales" beside the ".weight") stay packed.
  Matrix matrix(const std::string& name, std::vector<int64_t> shape, Range rows, Range cols) {
    if (const std::string module = affine_module(name); !module.empty()) return affine(module, -1, 0, shape, rows, cols);
    const TensorInfo& t = checked(name, shape);
    Matrix m;
    m.dtype = t.dtype;
    m.rows = rows.size();
    m.cols = cols.size();
    if (!read_) {  // sizes only
      const bool quantized = is_quantized(quantize_to_) && m.cols % kQBlock == 0;
      bytes_ += quantized ? packed_bytes(quantize_to_, m.rows, m.cols) : size_t(m.rows) * row_bytes(t.dtype, m.cols);
      return m;
    }
    m.bytes = read_window(index_, t, -1, rows, cols.begin, cols.end);
    convert(m);
    bytes_ += m.bytes.size();
    return m;
  }

  int kept_unquantized() const { return kept_; }

  Vector vector(const std::string& name, int64_t n, Range part) {
    const TensorInfo& t = checked(name, {n});
    if (!read_) return bytes_ += size_t(part.size()) * dtype_size(t.dtype), Vector();
    std::vector<uint8_t> raw(size_t(part.size()) * dtype_size(t.dtype));
    index_.file_of(name).read_rows(t, part.begin, part.end, raw.data());
    Vector v(size_t(part.size()));
    to_f32(raw.data(), t.dtype, v.data(), v.size());
    bytes_ += raw.size();
    return v;
  }

  // Expert `e` of a stacked [E, out, in] tensor (mlx-lm's switch_mlp), rows [rows) and columns [cols).
  Matrix expert(const std::string& name, int64_t e, int64_t E, std::vector<int64_t> shape, Range rows, Range cols) {
    if (const std::string module = affine_module(name); !module.empty()) return affine(module, e, E, shape, rows, cols);
    const TensorInfo& t = checked(name, {E, shape[0], shape[1]});
    Matrix m;
    m.dtype = t.dtype, m.rows = rows.size(), m.cols = cols.size();
    if (!read_) return bytes_ += size_t(m.rows) * row_bytes(t.dtype, m.cols), m;
    m.bytes = read_window(index_, t, e, rows, cols.begin, cols.end);
    convert(m);
    bytes_ += m.bytes.size();
    return m;
  }

  // A whole 2-D tensor as fp32 (routers: small, and kept exact on every rank); affine ones dequantized.
  std::vector<float> dense_f32(const std::string& name, int64_t rows, int64_t cols) {
    if (const std::string module = affine_module(name); !module.empty()) {
      bytes_ += size_t(rows * cols) * sizeof(float);
      const Matrix m = affine(module, -1, 0, {rows, cols}, {0, rows}, {0, cols}, /*count=*/false);
      std::vector<float> v(size_t(rows * cols));
      if (read_) affine_dequant_rows(m.view(), 0, rows, v.data());
      return v;
    }
    const TensorInfo& t = checked(name, {rows, cols});
    bytes_ += size_t(rows * cols) * sizeof(float);  // held as fp32
    if (!read_) return std::vector<float>(1);
    std::vector<uint8_t> raw(size_t(rows * cols) * dtype_size(t.dtype));
    index_.file_of(name).read_rows(t, 0, rows, raw.data());
    std::vector<float> v(size_t(rows * cols));
    to_f32(raw.data(), t.dtype, v.data(), v.size());
    return v;
  }

  // Rows [rows) of the (out, in) matrix `name`, transposed to (in, rows.size()): MLA's W_kᵀ from kv_b_proj. 16-bit
  // and fp32 elements move as they are; an affine matrix is dequantized to fp32 first (its groups run along `in`).
  Matrix transposed(const std::string& name, int64_t out, int64_t in, Range rows) {
    Matrix src;
    const std::string module = affine_module(name);
    const bool affine = !module.empty();
    if (affine) {
      const auto [bits, group] = config_.affine.of(module);
      src = read_affine(index_, module, bits, group, -1, 0, out, in, rows, {0, in}, read_);
    } else {
      const TensorInfo& t = checked(name, {out, in});
      src.dtype = t.dtype, src.rows = rows.size(), src.cols = in;
      if (read_) src.bytes = read_window(index_, t, -1, rows, 0, in);
    }
    Matrix m;
    m.dtype = affine ? DType::kF32 : src.dtype;
    m.rows = in, m.cols = rows.size();
    const size_t es = dtype_size(m.dtype);
    if (!read_) {
      const bool quantized = is_quantized(quantize_to_) && m.cols % kQBlock == 0;
      bytes_ += quantized ? packed_bytes(quantize_to_, m.rows, m.cols) : size_t(m.rows) * row_bytes(m.dtype, m.cols);
      return m;
    }
    AlignedBytes dense;  // (rows, in) in m.dtype
    if (affine) {
      dense.resize(size_t(src.rows * in) * sizeof(float));
      affine_dequant_rows(src.view(), 0, src.rows, reinterpret_cast<float*>(dense.data()));
    } else {
      dense = std::move(src.bytes);
    }
    m.bytes.resize(size_t(m.rows * m.cols) * es);
    for (int64_t r = 0; r < src.rows; ++r)
      for (int64_t c = 0; c < in; ++c)
        std::memcpy(&m.bytes[size_t(c * m.cols + r) * es], &dense[size_t(r * in + c) * es], es);
    convert(m);
    bytes_ += m.bytes.size();
    return m;
  }

  // A SwiGLU MLP's slice [hid) of its intermediate size `inter` (gate/up by rows, down by columns).
  MlpWeights mlp(const std::string& gate, const std::string& up, const std::string& down, int64_t dim,
                 int64_t inter, Range hid) {
    MlpWeights m;
    m.gate = matrix(gate, {inter, dim}, hid, {0, dim});
    m.up = matrix(up, {inter, dim}, hid, {0, dim});
    m.down = matrix(down, {dim, inter}, {0, dim}, hid);
    return m;
  }

  uint64_t bytes() const { return bytes_; }

 private:
  // "X" when tensor "X.weight" is MLX affine-quantized (X.scales exists), else "".
  std::string affine_module(const std::string& name) const {
    const std::string suffix = ".weight";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return "";
    const std::string module = name.substr(0, name.size() - suffix.size());
    if (!index_.find(module + ".scales")) return "";
    MESH_CHECK(config_.affine.quantized(), index_.file_of(name).path(), ": tensor '", module,
               ".scales' marks an MLX-quantized matrix, but config.json has no \"quantization\" entry");
    return module;
  }

  Matrix affine(const std::string& module, int64_t e, int64_t E, const std::vector<int64_t>& shape, Range rows,
                Range cols, bool count = true) {
    const auto [bits, group] = config_.affine.of(module);
    Matrix m = read_affine(index_, module, bits, group, e, E, shape[0], shape[1], rows, cols, read_);
    if (count) bytes_ += affine_bytes(m);
    if (read_ && panels_for_ && count && affine_panels_pay(m.view(), *panels_for_)) affine_to_panel_matrix(m);
    return m;
  }

  const TensorInfo& checked(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorInfo& t = index_.get(name);
    MESH_CHECK(t.is_float, index_.file_of(name).path(), ": tensor '", name, "': dtype ", t.dtype_name,
               " is not supported (expected F32, F16 or BF16",
               config_.torch_dtype.empty() ? "" : "; config torch_dtype is " + config_.torch_dtype, ")");
    MESH_CHECK(t.shape == shape, index_.file_of(name).path(), ": tensor '", name, "': expected shape ",
               shape_string(shape), " from config.json, got ", shape_string(t.shape));
    return t;
  }

  // The read matrix into quantize_to_: q8_0 / q4_0 panels, or bf16 for an f16 one.
  void convert(Matrix& m) {
    if (is_quantized(quantize_to_)) return quantize(m);
    if (quantize_to_ != DType::kBF16 || m.dtype != DType::kF16) return;
    auto* h = reinterpret_cast<uint16_t*>(m.bytes.data());  // in place: both 2 bytes
    const int64_t n = int64_t(m.bytes.size() / 2);
    ThreadPool& pool = kernel_pool();
    const int parts = pool.members(double(n));
    pool.run(parts, [&](int t) {
      const Share s = share_of(n, parts, t);
      for (int64_t i = s.begin; i < s.end; ++i) h[i] = f32_to_bf16(f16_to_f32(h[i]));
    });
    m.dtype = DType::kBF16;
  }

  // Sixteen rows at a time into quantize_to_ panels (kernels/qpanel.h), so no fp32 copy of the whole matrix is made;
  // the panels shared among the kernel threads (a q4_0 load spent most of its time here on one core).
  void quantize(Matrix& m) {
    if (m.cols % kQBlock != 0) {
      ++kept_;
      return;
    }
    const size_t in_row = row_bytes(m.dtype, m.cols), out_panel = panel_bytes(quantize_to_, m.cols);
    AlignedBytes out(packed_bytes(quantize_to_, m.rows, m.cols));
    const int64_t panels = (m.rows + kPanelRows - 1) / kPanelRows;
    ThreadPool& pool = kernel_pool();
    const int parts = int(std::min<int64_t>(pool.size(), panels));
    pool.run(parts, [&](int t) {
      std::vector<float> rows(size_t(kPanelRows * m.cols));  // (16, cols)
      const Share share = share_of(panels, parts, t);
      for (int64_t r = share.begin * kPanelRows; r < std::min(m.rows, share.end * kPanelRows); r += kPanelRows) {
        const int64_t n = std::min(kPanelRows, m.rows - r);
        to_f32(m.bytes.data() + size_t(r) * in_row, m.dtype, rows.data(), size_t(n * m.cols));
        quantize_panel(quantize_to_, rows.data(), n, m.cols, out.data() + size_t(r / kPanelRows) * out_panel);
      }
    });
    m.bytes = std::move(out);
    m.dtype = quantize_to_;
  }

  const WeightIndex& index_;
  const ModelConfig& config_;
  DType quantize_to_;
  bool read_;  // false: check names and shapes and count bytes, read nothing
  std::optional<Compute> panels_for_;
  uint64_t bytes_ = 0;
  int kept_ = 0;
};

// Router (whole, fp32), this rank's experts (whole or a slice of each), and the shared expert's slice.
MoeWeights load_moe(Loader& load, const WeightIndex& index, const ModelConfig& c, const ParallelLayout& l,
                    const std::string& p) {
  const MoeConfig& m = c.moe;
  const int64_t dim = c.dim;
  const std::string block = p + (m.mixtral_names ? "block_sparse_moe." : "mlp.");
  MoeWeights w;
  w.router = load.dense_f32(block + "gate.weight", m.n_experts, dim);
  if (m.grouped) w.score_bias = load.vector(block + "gate.e_score_correction_bias", m.n_experts, {0, m.n_experts});
  const uint64_t before = load.bytes();
  const std::string stacked = block + "switch_mlp.";  // mlx-lm: [E, out, in] tensors, gate = w1, up = w3, down = w2
  const bool is_stacked = index.find(stacked + "gate_proj.weight") != nullptr;
  for (int64_t e = l.experts.begin; e < l.experts.end; ++e) {
    const std::string x = block + "experts." + std::to_string(e) + ".";
    if (is_stacked) {
      const int64_t E = m.n_experts, I = m.expert_dim;
      const Range hid = l.expert_hidden, all{0, dim};
      w.experts.push_back({load.expert(stacked + "gate_proj.weight", e, E, {I, dim}, hid, all),
                           load.expert(stacked + "up_proj.weight", e, E, {I, dim}, hid, all),
                           load.expert(stacked + "down_proj.weight", e, E, {dim, I}, all, hid)});
    } else {
      w.experts.push_back(m.mixtral_names
                              ? load.mlp(x + "w1.weight", x + "w3.weight", x + "w2.weight", dim, m.expert_dim,
                                         l.expert_hidden)
                              : load.mlp(x + "gate_proj.weight", x + "up_proj.weight", x + "down_proj.weight", dim,
                                         m.expert_dim, l.expert_hidden));
    }
  }
  w.expert_bytes = load.bytes() - before;
  if (m.shared_expert_dim > 0) {
    const std::string x = block + (m.grouped ? "shared_experts." : "shared_expert.");
    w.shared = load.mlp(x + "gate_proj.weight", x + "up_proj.weight", x + "down_proj.weight", dim,
                        m.shared_expert_dim, l.shared_hidden);
    if (m.shared_gated()) w.shared_gate = load.dense_f32(block + "shared_expert_gate.weight", 1, dim);
  }
  return w;
}

// DeepSeek-V3 attention of this rank's heads: the latent projections whole, q_b/q rows, kv_b and o_proj by head.
// kv_b_proj (H·(dn + dv), r) may be stored split per head as embed_q [H, r, dn] and unembed_out [H, dv, r] (mlx-lm).
void load_mla(Loader& load, const WeightIndex& index, const ModelConfig& c, const ParallelLayout& l,
              const std::string& p, LayerWeights& L) {
  const MlaConfig& a = c.mla;
  const int64_t dim = c.dim, H = c.n_heads, r = a.kv_lora, dn = a.nope, dv = a.v, qk = a.qk();
  const Range all_dim{0, dim}, q_rows{l.q_heads.begin * qk, l.q_heads.end * qk};
  const std::string s = p + "self_attn.";
  if (a.q_lora > 0) {
    L.mla.q_a = load.matrix(s + "q_a_proj.weight", {a.q_lora, dim}, {0, a.q_lora}, all_dim);
    L.mla.q_a_norm = load.vector(s + "q_a_layernorm.weight", a.q_lora, {0, a.q_lora});
    L.q_proj = load.matrix(s + "q_b_proj.weight", {H * qk, a.q_lora}, q_rows, {0, a.q_lora});
  } else {
    L.q_proj = load.matrix(s + "q_proj.weight", {H * qk, dim}, q_rows, all_dim);
  }
  L.mla.kv_a = load.matrix(s + "kv_a_proj_with_mqa.weight", {a.latent(), dim}, {0, a.latent()}, all_dim);
  L.mla.kv_a_norm = load.vector(s + "kv_a_layernorm.weight", r, {0, r});
  const bool split = index.find(s + "embed_q.weight") != nullptr;
  for (int64_t h = l.q_heads.begin; h < l.q_heads.end; ++h) {
    if (split) {
      L.mla.embed_q.push_back(load.expert(s + "embed_q.weight", h, H, {r, dn}, {0, r}, {0, dn}));
      L.mla.unembed_out.push_back(load.expert(s + "unembed_out.weight", h, H, {dv, r}, {0, dv}, {0, r}));
    } else {
      const int64_t first = h * (dn + dv);
      L.mla.embed_q.push_back(load.transposed(s + "kv_b_proj.weight", H * (dn + dv), r, {first, first + dn}));
      L.mla.unembed_out.push_back(
          load.matrix(s + "kv_b_proj.weight", {H * (dn + dv), r}, {first + dn, first + dn + dv}, {0, r}));
    }
  }
  L.o_proj = load.matrix(s + "o_proj.weight", {dim, H * dv}, all_dim, {l.q_heads.begin * dv, l.q_heads.end * dv});
}

// Llama/Qwen attention of this rank's heads: q/k/v by output rows, o_proj by input columns.
void load_attention(Loader& load, const ModelConfig& c, const ParallelLayout& l, const std::string& p,
                    LayerWeights& L) {
  const int64_t dim = c.dim, hd = c.head_dim, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  const Range all_dim{0, dim};
  const Range q_rows{l.q_heads.begin * hd, l.q_heads.end * hd}, kv_rows{l.kv_heads.begin * hd, l.kv_heads.end * hd};
  L.q_proj = load.matrix(p + "self_attn.q_proj.weight", {q_dim, dim}, q_rows, all_dim);
  L.k_proj = load.matrix(p + "self_attn.k_proj.weight", {kv_dim, dim}, kv_rows, all_dim);
  L.v_proj = load.matrix(p + "self_attn.v_proj.weight", {kv_dim, dim}, kv_rows, all_dim);
  if (c.qkv_bias) {
    L.q_bias = load.vector(p + "self_attn.q_proj.bias", q_dim, q_rows);
    L.k_bias = load.vector(p + "self_attn.k_proj.bias", kv_dim, kv_rows);
    L.v_bias = load.vector(p + "self_attn.v_proj.bias", kv_dim, kv_rows);
  }
  if (c.qk_norm) {
    L.q_norm = load.vector(p + "self_attn.q_norm.weight", hd, {0, hd});
    L.k_norm = load.vector(p + "self_attn.k_norm.weight", hd, {0, hd});
  }
  L.o_proj = load.matrix(p + "self_attn.o_proj.weight", {dim, q_dim}, all_dim, q_rows);
  if (c.o_bias) L.o_bias = load.vector(p + "self_attn.o_proj.bias", dim, all_dim);
}

}  // namespace

ModelWeights load_weights(const WeightIndex& index, const ModelConfig& c, const ParallelLayout& l, DType quantize_to,
                          bool read, std::optional<Compute> panels_for) {
  Loader load(index, c, quantize_to, read, panels_for);
  ModelWeights w;
  const int64_t dim = c.dim;
  const Range all_dim{0, dim};
  if (l.first_stage() || (l.last_stage() && c.tie_embeddings))
    w.embed_tokens = load.matrix("model.embed_tokens.weight", {c.vocab_size, dim}, l.vocab, all_dim);
  for (int64_t i = l.layers.begin; i < l.layers.end; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights L;
    L.input_layernorm = load.vector(p + "input_layernorm.weight", dim, all_dim);
    if (c.mla.on()) load_mla(load, index, c, l, p, L);
    else load_attention(load, c, l, p, L);
    L.post_attention_layernorm = load.vector(p + "post_attention_layernorm.weight", dim, all_dim);
    const Range hid = l.hidden;
    if (c.moe_layer(i)) {
      L.moe = load_moe(load, index, c, l, p);
      w.layers.push_back(std::move(L));
      continue;
    }
    L.mlp = load.mlp(p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight", dim,
                     c.hidden_dim, hid);
    if (c.mlp_bias) {
      L.gate_bias = load.vector(p + "mlp.gate_proj.bias", c.hidden_dim, hid);
      L.up_bias = load.vector(p + "mlp.up_proj.bias", c.hidden_dim, hid);
      L.down_bias = load.vector(p + "mlp.down_proj.bias", dim, all_dim);
    }
    w.layers.push_back(std::move(L));
  }
  if (l.last_stage()) {
    w.norm = load.vector("model.norm.weight", dim, all_dim);
    if (!c.tie_embeddings) w.lm_head = load.matrix("lm_head.weight", {c.vocab_size, dim}, l.vocab, all_dim);
  }
  w.bytes = load.bytes();
  w.kept_unquantized = load.kept_unquantized();
  return w;
}

}  // namespace meshlm
