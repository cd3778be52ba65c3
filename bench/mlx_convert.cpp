// mlx_convert: writes an MLX affine-quantized copy of a float Hugging Face checkpoint, laid out as mlx_lm.convert -q
// lays it out, so that tests and benchmarks can use real geometries without downloads:
//   - every 2-D ".weight" whose input size is a multiple of the group (linears, embedding, lm_head, routers) becomes
//     U32 bit-stream rows + ".scales" + ".biases" in the model dtype; norms and biases stay as they are;
//   - per-expert MoE tensors are stacked into switch_mlp.{gate,up,down}_proj [E, out, in] (Mixtral's w1/w3/w2 too);
//   - DeepSeek-V3: the router mlp.gate stays in the model dtype, and kv_b_proj is split per head into embed_q
//     [H, r, dn] (its k_nope rows, transposed) and unembed_out [H, dv, r], quantized like stacked experts, as mlx-lm
//     writes it since Feb 2026 (--mla-kv-b keeps a quantized kv_b_proj, as older files have);
//   - config.json gets "quantization" and an identical "quantization_config";
//   - the file has no header padding and its tensors are not in name order, as MLX writes them.
// Quantization per group: bias = min, scale = (max - min) / (2^bits - 1), q = round((w - bias) / scale).
//
//   mlx_convert --model DIR --out DIR [--bits 4] [--group 64] [--mla-kv-b]
#include <cmath>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/weight_index.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

struct OutTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::vector<float> read_f32(const meshlm::WeightIndex& index, const meshlm::TensorInfo& t) {
  std::vector<uint8_t> raw(t.nbytes);
  index.file_of(t.name).read_rows(t, 0, t.rows(), raw.data());
  std::vector<float> v(size_t(t.numel()));
  meshlm::to_f32(raw.data(), t.dtype, v.data(), v.size());
  return v;
}

void put16(std::string& out, float v, meshlm::DType dt) {
  const uint16_t h = dt == meshlm::DType::kBF16 ? meshlm::f32_to_bf16(v) : meshlm::f32_to_f16(v);
  out.append(reinterpret_cast<const char*>(&h), 2);
}

// Rows (rows, in) of w quantized into out[name + ".weight" / ".scales" / ".biases"] (appended: stacking).
void quantize_rows(const float* w, int64_t rows, int64_t in, int bits, int group, meshlm::DType sdt, OutTensor& q,
                   OutTensor& s, OutTensor& b) {
  const uint32_t top = (1u << bits) - 1;
  std::vector<uint8_t> row(size_t(in * bits / 8), 0);
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(row.begin(), row.end(), 0);
    for (int64_t g = 0; g < in / group; ++g) {
      const float* x = w + r * in + g * group;
      float lo = x[0], hi = x[0];
      for (int k = 1; k < group; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
      const float scale = hi > lo ? (hi - lo) / float(top) : 1.0f;
      put16(s.bytes, scale, sdt);
      put16(b.bytes, lo, sdt);
      // The stored (rounded) scale and bias are what the reader will use: quantize against those.
      const float ss = sdt == meshlm::DType::kBF16 ? meshlm::bf16_to_f32(meshlm::f32_to_bf16(scale)) : scale;
      const float bb = sdt == meshlm::DType::kBF16 ? meshlm::bf16_to_f32(meshlm::f32_to_bf16(lo)) : lo;
      for (int k = 0; k < group; ++k) {
        const long v = std::lround((x[k] - bb) / ss);
        const uint32_t qv = uint32_t(std::clamp<long>(v, 0, long(top)));
        const uint64_t bit = uint64_t(g * group + k) * uint64_t(bits);
        for (int j = 0; j < bits; ++j)
          if ((qv >> j) & 1) row[(bit + uint64_t(j)) / 8] |= uint8_t(1u << ((bit + uint64_t(j)) % 8));
      }
    }
    q.bytes.append(reinterpret_cast<const char*>(row.data()), row.size());
  }
}

// DeepSeek-V3's kv_b_proj (H·(dn + dv), r) as mlx-lm stores it: embed_q [H, r, dn] and unembed_out [H, dv, r].
void split_kv_b_proj(const meshlm::WeightIndex& index, const meshlm::TensorInfo& t, const ordered_json& config,
                     int bits, int group, std::map<std::string, OutTensor>& tensors) {
  const int64_t H = config.at("num_attention_heads"), dn = config.at("qk_nope_head_dim"), dv = config.at("v_head_dim");
  const int64_t r = config.at("kv_lora_rank");
  if (dn % group != 0 || r % group != 0) throw std::runtime_error(t.name + ": qk_nope_head_dim and kv_lora_rank must be "
                                                                  "multiples of --group to split kv_b_proj");
  const std::vector<float> w = read_f32(index, t);  // (H·(dn + dv), r)
  const std::string base = t.name.substr(0, t.name.size() - std::string("kv_b_proj.weight").size());
  const meshlm::DType sdt = t.dtype == meshlm::DType::kF16 ? meshlm::DType::kF16 : meshlm::DType::kBF16;
  for (const char* part : {"embed_q", "unembed_out"}) {
    const bool embed = std::string(part) == "embed_q";
    const int64_t rows = embed ? r : dv, in = embed ? dn : r;
    OutTensor& qw = tensors[base + part + ".weight"];
    OutTensor& sc = tensors[base + part + ".scales"];
    OutTensor& bi = tensors[base + part + ".biases"];
    std::vector<float> m(size_t(rows * in));
    for (int64_t h = 0; h < H; ++h) {
      const float* head = w.data() + h * (dn + dv) * r;  // k_nope rows (dn, r), then v rows (dv, r)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < in; ++j) m[size_t(i * in + j)] = embed ? head[j * r + i] : head[(dn + i) * r + j];
      quantize_rows(m.data(), rows, in, bits, group, sdt, qw, sc, bi);
    }
    qw.dtype = "U32", qw.shape = {H, rows, in * bits / 32};
    sc.dtype = bi.dtype = meshlm::dtype_name(sdt), sc.shape = bi.shape = {H, rows, in / group};
  }
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options o("mlx_convert", "Write an MLX affine-quantized copy of a float Hugging Face checkpoint.");
  o.add_options()("model", "Float checkpoint directory", cxxopts::value<std::string>())(
      "out", "Output directory", cxxopts::value<std::string>())(
      "bits", "2 | 3 | 4 | 5 | 6 | 8", cxxopts::value<int>()->default_value("4"))(
      "group", "32 | 64 | 128", cxxopts::value<int>()->default_value("64"))(
      "mla-kv-b", "DeepSeek-V3: keep kv_b_proj whole (older mlx-lm) instead of embed_q/unembed_out")(
      "h,help", "Show this help");
  try {
    const auto r = o.parse(argc, argv);
    if (r.count("help") || !r.count("model") || !r.count("out")) {
      std::printf("%s\n", o.help().c_str());
      return r.count("help") ? 0 : 2;
    }
    const fs::path src = r["model"].as<std::string>(), out = r["out"].as<std::string>();
    const int bits = r["bits"].as<int>(), group = r["group"].as<int>();
    if (bits < 2 || bits > 8 || bits == 7 || (group != 32 && group != 64 && group != 128))
      throw std::runtime_error("--bits must be 2, 3, 4, 5, 6 or 8 and --group 32, 64 or 128");
    fs::create_directories(out);
    for (const auto& e : fs::directory_iterator(src)) {
      const std::string name = e.path().filename().string();
      if (name.find(".safetensors") == std::string::npos && name != "config.json")
        fs::copy_file(e.path(), out / name, fs::copy_options::overwrite_existing);
    }
    ordered_json config = ordered_json::parse(std::ifstream(src / "config.json"));
    const bool deepseek = config.value("model_type", "") == "deepseek_v3" || config.value("model_type", "") == "kimi_k2";
    const bool split_kv_b = deepseek && !r.count("mla-kv-b");
    const ordered_json q = {{"group_size", group}, {"bits", bits}, {"mode", "affine"}};
    config["quantization"] = q;
    config["quantization_config"] = q;
    std::ofstream(out / "config.json") << config.dump(2) << "\n";

    const meshlm::WeightIndex index(src.string());
    std::map<std::string, OutTensor> tensors;
    const std::regex expert(R"((.*)\.experts\.(\d+)\.(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight)");
    const std::map<std::string, std::string> stacked_name = {{"w1", "gate_proj"}, {"w3", "up_proj"}, {"w2", "down_proj"},
                                                             {"gate_proj", "gate_proj"}, {"up_proj", "up_proj"},
                                                             {"down_proj", "down_proj"}};
    // Experts first gathered per stacked tensor, in expert order.
    std::map<std::string, std::map<int, const meshlm::TensorInfo*>> stacks;
    for (const meshlm::TensorInfo* t : index.all()) {
      std::smatch m;
      if (std::regex_match(t->name, m, expert)) {
        stacks[m[1].str() + ".switch_mlp." + stacked_name.at(m[3].str())][std::stoi(m[2].str())] = t;
        continue;
      }
      const auto ends = [&](const std::string& suffix) {
        return t->name.size() > suffix.size() && t->name.compare(t->name.size() - suffix.size(), suffix.size(), suffix) == 0;
      };
      if (split_kv_b && ends(".kv_b_proj.weight")) {
        split_kv_b_proj(index, *t, config, bits, group, tensors);
        continue;
      }
      const bool linear = t->shape.size() == 2 && ends(".weight") && t->shape[1] % group == 0 &&
                          t->name.find("norm") == std::string::npos && !(deepseek && ends(".mlp.gate.weight"));
      if (!t->is_float || !linear) {  // copied as stored
        std::vector<uint8_t> raw(t->nbytes);
        index.file_of(t->name).read_rows(*t, 0, t->rows(), raw.data());
        tensors[t->name] = {t->dtype_name, t->shape, std::string(raw.begin(), raw.end())};
        continue;
      }
      const std::string base = t->name.substr(0, t->name.size() - 7);
      const meshlm::DType sdt = t->dtype == meshlm::DType::kF16 ? meshlm::DType::kF16 : meshlm::DType::kBF16;
      OutTensor& qw = tensors[base + ".weight"];
      OutTensor& sc = tensors[base + ".scales"];
      OutTensor& bi = tensors[base + ".biases"];
      const std::vector<float> w = read_f32(index, *t);
      quantize_rows(w.data(), t->shape[0], t->shape[1], bits, group, sdt, qw, sc, bi);
      qw.dtype = "U32", qw.shape = {t->shape[0], t->shape[1] * bits / 32};
      sc.dtype = bi.dtype = meshlm::dtype_name(sdt), sc.shape = bi.shape = {t->shape[0], t->shape[1] / group};
    }
    for (auto& [base, experts] : stacks) {
      const meshlm::TensorInfo* first = experts.begin()->second;
      const int64_t E = int64_t(experts.size()), rows = first->shape[0], in = first->shape[1];
      if (in % group != 0) throw std::runtime_error(first->name + ": input size not a multiple of --group");
      const meshlm::DType sdt = first->dtype == meshlm::DType::kF16 ? meshlm::DType::kF16 : meshlm::DType::kBF16;
      OutTensor& qw = tensors[base + ".weight"];
      OutTensor& sc = tensors[base + ".scales"];
      OutTensor& bi = tensors[base + ".biases"];
      for (auto& [j, t] : experts) {
        const std::vector<float> w = read_f32(index, *t);
        quantize_rows(w.data(), rows, in, bits, group, sdt, qw, sc, bi);
      }
      qw.dtype = "U32", qw.shape = {E, rows, in * bits / 32};
      sc.dtype = bi.dtype = meshlm::dtype_name(sdt), sc.shape = bi.shape = {E, rows, in / group};
    }

    // One file, no padding, tensors in reverse name order (as MLX: any order, any offset).
    ordered_json header = ordered_json::object();
    std::string data;
    for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
      header[it->first] = {{"dtype", it->second.dtype}, {"shape", it->second.shape},
                           {"data_offsets", {data.size(), data.size() + it->second.bytes.size()}}};
      data += it->second.bytes;
    }
    header["__metadata__"] = {{"format", "mlx"}};
    const std::string h = header.dump();
    const uint64_t hlen = h.size();
    std::ofstream f(out / "model.safetensors", std::ios::binary);
    f.write(reinterpret_cast<const char*>(&hlen), 8);
    f << h << data;
    if (!f) throw std::runtime_error("cannot write " + (out / "model.safetensors").string());
    std::printf("mlx_convert: %s: %d-bit, groups of %d, %zu tensors (%zu stacked), %.1f MB\n", out.c_str(), bits, group,
                tensors.size(), stacks.size(), data.size() / 1e6);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlx_convert: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
