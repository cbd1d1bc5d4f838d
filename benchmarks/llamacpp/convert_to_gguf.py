#!/usr/bin/python3
"""Convert a herd checkpoint (HF Llama layout, as `herd make-model` writes it) to
a GGUF file that llama.cpp loads, so both engines run the very same weights.

usage: convert_to_gguf.py --model DIR --output FILE.gguf [--llama-cpp /work/llama.cpp]

A compact stand-in for llama.cpp's convert_hf_to_gguf.py (LlamaModel), which
needs torch and transformers; the benchmark VMs only have Debian's numpy.
Weights keep their stored dtype (BF16 for herd's checkpoints); 1-D tensors
(norms) become F32 as llama.cpp expects.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--model", required=True, help="herd/HF model directory")
ap.add_argument("--output", required=True, help="output .gguf path")
ap.add_argument("--llama-cpp", default=os.environ.get("LLAMA_CPP_DIR", "/work/llama.cpp"),
                help="llama.cpp tree whose gguf-py is used (default /work/llama.cpp)")
args = ap.parse_args()

# gguf-py from the same tree as the binaries, so keys and tensor names match.
sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
import gguf  # noqa: E402


def load_json(name):
    with open(os.path.join(args.model, name), encoding="utf-8") as f:
        return json.load(f)


# --- safetensors: 8-byte header length, JSON header, raw little-endian data.
# Memory-mapped so a multi-GB checkpoint is not read into RAM up front.
ST_DTYPES = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}  # bf16 kept as raw bits


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in ST_DTYPES:
            sys.exit(f"{name}: unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        arr = data[start:end].view(ST_DTYPES[info["dtype"]]).reshape(info["shape"])
        yield name, info["dtype"], arr


if os.path.exists(os.path.join(args.model, "model.safetensors.index.json")):
    shards = sorted(set(load_json("model.safetensors.index.json")["weight_map"].values()))
else:
    shards = ["model.safetensors"]

cfg = load_json("config.json")
if cfg.get("model_type", "llama") != "llama":
    sys.exit(f"only llama checkpoints are supported, got model_type={cfg.get('model_type')}")
n_layer = cfg["num_hidden_layers"]
n_head = cfg["num_attention_heads"]
n_head_kv = cfg.get("num_key_value_heads", n_head)
head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
vocab_size = cfg["vocab_size"]

w = gguf.GGUFWriter(args.output, "llama")
w.add_name(os.path.basename(os.path.normpath(args.model)))
w.add_block_count(n_layer)
w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(cfg["hidden_size"])
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_head_count(n_head)
w.add_head_count_kv(n_head_kv)
w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
w.add_key_length(head_dim)
w.add_value_length(head_dim)
w.add_rope_dimension_count(head_dim)
w.add_vocab_size(vocab_size)
w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
w.add_quantization_version(gguf.GGML_QUANT_VERSION)

# --- tokenizer: byte-level BPE with the Llama 3 pre-tokenizer regex (what herd
# uses), i.e. llama.cpp's "gpt2" model with pre-tokenizer "llama-bpe".
tok = load_json("tokenizer.json")
tcfg = load_json("tokenizer_config.json") if os.path.exists(
    os.path.join(args.model, "tokenizer_config.json")) else {}
if tok["model"]["type"] != "BPE":
    sys.exit(f"only BPE tokenizers are supported, got {tok['model']['type']}")
added = {t["id"]: t for t in tok.get("added_tokens", [])}
reverse = {i: s for s, i in tok["model"]["vocab"].items()}
tokens, types = [], []
for i in range(vocab_size):
    if i in added:  # added tokens win over the BPE vocab, as in transformers
        t = added[i]
        tokens.append(t["content"])
        special = t["special"] or (t["content"].startswith("<|") and t["content"].endswith("|>"))
        types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
    elif i in reverse:
        tokens.append(reverse[i])
        types.append(gguf.TokenType.NORMAL)
    else:  # ids the tokenizer never produces (padding up to vocab_size)
        tokens.append(f"[PAD{i}]")
        types.append(gguf.TokenType.UNUSED)
# merges are "a b" strings in older tokenizer.json files, [a, b] pairs in newer ones
merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"].get("merges", [])]
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("llama-bpe")
w.add_token_list(tokens)
w.add_token_types(types)
if not merges:
    # llama.cpp refuses a BPE vocab without merges, and gguf-py cannot write an
    # empty array.  A byte-only vocab (herd's tiny test shape) has none, so give
    # it one merge of two special tokens: BPE symbols start as single
    # characters, so this pair can never occur and tokenization is unchanged.
    sp = [t["content"] for t in added.values() if " " not in t["content"]][:2]
    merges = [" ".join(sp)]
w.add_token_merges(merges)


def token_id(v):
    if isinstance(v, dict):
        v = v.get("content")
    ids = [i for i, t in added.items() if t["content"] == v]
    return ids[0] if ids else tok["model"]["vocab"].get(v)


bos = cfg.get("bos_token_id")
if bos is None and tcfg.get("bos_token") is not None:
    bos = token_id(tcfg["bos_token"])
# tokenizer_config's eos (<|eot_id|> for Llama 3) is the end-of-turn token;
# llama.cpp also marks the other <|...|> end tokens as end-of-generation by name.
eos = token_id(tcfg["eos_token"]) if tcfg.get("eos_token") is not None else None
if eos is None:
    eos = cfg.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) else eos
if bos is not None:
    w.add_bos_token_id(bos)
    # herd prepends BOS to every prompt; make llama.cpp do the same.
    w.add_add_bos_token(tcfg.get("add_bos_token", True))
if eos is not None:
    w.add_eos_token_id(eos)
w.add_add_eos_token(False)
if tcfg.get("chat_template"):
    w.add_chat_template(tcfg["chat_template"])

# --- tensors
def permute(x, heads):
    # HF stores q/k rows in rotate-half order; llama.cpp's rope wants the
    # original interleaved (GPT-J style pairs) order: LlamaModel.permute.
    return (x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:])
            .swapaxes(1, 2).reshape(x.shape))


GGML = {"BF16": gguf.GGMLQuantizationType.BF16, "F16": gguf.GGMLQuantizationType.F16,
        "F32": gguf.GGMLQuantizationType.F32}
name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
for shard in shards:
    for name, dtype, arr in read_safetensors(os.path.join(args.model, shard)):
        if name.endswith("rotary_emb.inv_freq"):
            continue
        new = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            sys.exit(f"cannot map tensor {name}")
        if name.endswith("q_proj.weight"):
            arr = permute(arr, n_head)
        elif name.endswith("k_proj.weight"):
            arr = permute(arr, n_head_kv)
        if arr.ndim <= 1:  # norms: llama.cpp's kernels want F32
            arr = (arr.astype(np.uint32) << 16).view(np.float32) if dtype == "BF16" else arr.astype(np.float32)
            dtype = "F32"
        w.add_tensor(new, np.ascontiguousarray(arr) if arr.ndim <= 1 else arr,
                     raw_shape=arr.shape, raw_dtype=GGML[dtype])

# Llama 3.1/3.2 rope scaling is applied by llama.cpp through a rope_freqs
# tensor of per-frequency divisors (LlamaModel.generate_extra_tensors).
rs = cfg.get("rope_scaling") or {}
if rs.get("rope_type", rs.get("type", "")).lower() == "llama3":
    base = cfg.get("rope_theta", 10000.0)
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor = rs.get("factor", 8.0)
    lo, hi = rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old_ctx = rs.get("original_max_position_embeddings", 8192)
    lo_wl, hi_wl = old_ctx / lo, old_ctx / hi
    factors = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < hi_wl:
            factors.append(1.0)
        elif wl > lo_wl:
            factors.append(factor)
        else:
            smooth = (old_ctx / wl - lo) / (hi - lo)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    w.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
elif rs:
    sys.exit(f"unsupported rope_scaling {rs}")

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file(progress=False)
w.close()
print(f"wrote {args.output}")
