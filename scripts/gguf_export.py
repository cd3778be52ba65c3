#!/usr/bin/env python3
"""Writes a Hugging Face Llama checkpoint (safetensors, one file or an index of shards) as a GGUF file, so that
llama.cpp can run the same weights that meshlm runs (scripts/bench_llamacpp). Standard library only.

Matrices keep their stored dtype (BF16, F16 or F32); 1-D tensors (norms) become F32, as llama.cpp wants them.
q_proj and k_proj rows are permuted to llama.cpp's rotary layout (as its convert_hf_to_gguf.py does), so the file
computes what the checkpoint computes. A checkpoint without a tokenizer gets a placeholder sentencepiece vocabulary
of vocab_size tokens (<unk>, <s>, </s>, the 256 byte tokens, then t<i>): enough for benchmarks, which feed random
token ids.

    gguf_export.py MODEL_DIR OUT.gguf
"""
import json
import os
import struct
import sys

ALIGN = 32
DTYPES = {"F32": (0, 4), "F16": (1, 2), "BF16": (30, 2)}  # safetensors dtype: (ggml type, bytes per element)
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gguf_str(key) + struct.pack("<I", vtype)
    if vtype == T_STR:
        return out + gguf_str(value)
    if vtype == T_ARR:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        if etype == T_STR:
            return out + b"".join(gguf_str(x) for x in items)
        return out + struct.pack("<%d%s" % (len(items), {T_F32: "f", T_I32: "i"}[etype]), *items)
    return out + struct.pack({T_U32: "<I", T_F32: "<f", T_BOOL: "<?"}[vtype], value)


def read_tensors(model_dir):
    """name -> (path, dtype, shape, data offset, bytes) for every tensor of the checkpoint."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for name in files:
        path = os.path.join(model_dir, name)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for tname, t in header.items():
            if tname == "__metadata__":
                continue
            begin, end = t["data_offsets"]
            tensors[tname] = (path, t["dtype"], t["shape"], 8 + n + begin, end - begin)
    return tensors


def gguf_name(hf):
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    parts = hf.split(".")  # model.layers.N.<module>.weight
    if parts[:2] != ["model", "layers"]:
        return None
    layer, module = parts[2], ".".join(parts[3:])
    names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
             "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
             "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
             "mlp.down_proj.weight": "ffn_down.weight"}
    return "blk.%s.%s" % (layer, names[module]) if module in names else None


def to_f32(raw, dtype):
    if dtype == "F32":
        return raw
    n = len(raw) // 2
    halves = struct.unpack("<%dH" % n, raw)
    if dtype == "BF16":
        return struct.pack("<%dI" % n, *(h << 16 for h in halves))
    return struct.pack("<%df" % n, *struct.unpack("<%de" % n, raw))


def rotary_rows(raw, rows, heads):
    """HF's q/k rows (per head: first halves, then second halves) in llama.cpp's interleaved order."""
    row_bytes = len(raw) // rows
    hd = rows // heads
    out = []
    for h in range(heads):
        for i in range(hd // 2):
            for j in range(2):
                r = h * hd + j * (hd // 2) + i
                out.append(raw[r * row_bytes:(r + 1) * row_bytes])
    return b"".join(out)


def main(model_dir, out_path):
    c = json.load(open(os.path.join(model_dir, "config.json")))
    if c.get("model_type") != "llama":
        sys.exit("gguf_export: %s: model_type %r, only llama is supported" % (model_dir, c.get("model_type")))
    heads, kv_heads, dim = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"]), c["hidden_size"]
    head_dim = c.get("head_dim", dim // heads)
    vocab = c["vocab_size"]
    meta = [kv("general.architecture", T_STR, "llama"), kv("general.name", T_STR, os.path.basename(model_dir.rstrip("/"))),
            kv("general.alignment", T_U32, ALIGN),
            kv("llama.context_length", T_U32, c.get("max_position_embeddings", 4096)),
            kv("llama.embedding_length", T_U32, dim), kv("llama.block_count", T_U32, c["num_hidden_layers"]),
            kv("llama.feed_forward_length", T_U32, c["intermediate_size"]),
            kv("llama.attention.head_count", T_U32, heads), kv("llama.attention.head_count_kv", T_U32, kv_heads),
            kv("llama.attention.key_length", T_U32, head_dim), kv("llama.attention.value_length", T_U32, head_dim),
            kv("llama.rope.dimension_count", T_U32, head_dim), kv("llama.vocab_size", T_U32, vocab),
            kv("llama.rope.freq_base", T_F32, float(c.get("rope_theta", 10000.0))),
            kv("llama.attention.layer_norm_rms_epsilon", T_F32, float(c.get("rms_norm_eps", 1e-5)))]
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    tokens += ["t%d" % i for i in range(len(tokens), vocab)]
    types = [2, 3, 3] + [6] * 256 + [1] * (vocab - 259)  # unknown, control, byte, normal
    meta += [kv("tokenizer.ggml.model", T_STR, "llama"), kv("tokenizer.ggml.tokens", T_ARR, (T_STR, tokens[:vocab])),
             kv("tokenizer.ggml.scores", T_ARR, (T_F32, [0.0] * vocab)),
             kv("tokenizer.ggml.token_type", T_ARR, (T_I32, types[:vocab])),
             kv("tokenizer.ggml.bos_token_id", T_U32, c.get("bos_token_id", 1)),
             kv("tokenizer.ggml.eos_token_id", T_U32, c.get("eos_token_id", 2)),
             kv("tokenizer.ggml.add_bos_token", T_BOOL, True)]

    entries = []  # (gguf name, ggml type, dims innermost first, hf name, dtype, 1-d)
    for hf, (path, dtype, shape, off, size) in sorted(read_tensors(model_dir).items()):
        name = gguf_name(hf)
        if name is None:
            continue
        if dtype not in DTYPES:
            sys.exit("gguf_export: %s: tensor %s has dtype %s (expected F32, F16 or BF16)" % (path, hf, dtype))
        one_d = len(shape) == 1
        entries.append((name, 0 if one_d else DTYPES[dtype][0], list(reversed(shape)), hf, dtype, one_d))
    tensors = read_tensors(model_dir)
    infos, offset, sizes = [], 0, []
    for name, gtype, dims, hf, dtype, one_d in entries:
        n = 1
        for d in dims:
            n *= d
        size = n * (4 if one_d else DTYPES[dtype][1])
        infos.append(gguf_str(name) + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims) +
                     struct.pack("<IQ", gtype, offset))
        sizes.append(size)
        offset += (size + ALIGN - 1) // ALIGN * ALIGN
    with open(out_path, "wb") as out:
        out.write(b"GGUF" + struct.pack("<IQQ", 3, len(entries), len(meta)) + b"".join(meta) + b"".join(infos))
        out.write(b"\0" * (-out.tell() % ALIGN))
        for (name, gtype, dims, hf, dtype, one_d), size in zip(entries, sizes):
            path, _, shape, off, nbytes = tensors[hf]
            with open(path, "rb") as f:
                f.seek(off)
                raw = f.read(nbytes)
            if one_d:
                raw = to_f32(raw, dtype)
            elif name.endswith("attn_q.weight"):
                raw = rotary_rows(raw, shape[0], heads)
            elif name.endswith("attn_k.weight"):
                raw = rotary_rows(raw, shape[0], kv_heads)
            assert len(raw) == size, (name, len(raw), size)
            out.write(raw)
            out.write(b"\0" * (-out.tell() % ALIGN))
    print("gguf_export: %s: %d tensors, %.1f MB" % (out_path, len(entries), os.path.getsize(out_path) / 1e6),
          file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
