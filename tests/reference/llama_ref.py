#!/usr/bin/env python3
"""Independent numpy forward pass of a Hugging Face Llama checkpoint directory.

Reads config.json and the safetensors files itself (header parsed here; no torch, no
safetensors package) and computes the logits of every position of one prompt with a plain,
unbatched, no-cache transformer: embedding, RMSNorm, rotate-half RoPE (Llama 3.1 scaling
when configured), grouped-query causal attention, SwiGLU, tied or untied LM head. Math is in
float64 from the stored weights (bf16/f16 upcast exactly), so it is the "truth" the engine's
logits are compared against.

    llama_ref.py MODEL_DIR --ids 1,2,3            -> {"logits": [[...vocab...], ...]}
    llama_ref.py MODEL_DIR --ids 1 --greedy 20    -> adds "generated": [20 greedy ids]
    llama_ref.py RM_DIR --ids 1,2,3 --score       -> {"scores": [...num_labels...]}

fbgemm_fp8 checkpoints (config.json quantization_config, F8_E4M3 `weight` + F32
`weight_scale` [out, 1]): a feed-forward projection with a weight_scale is the dequantized
weight (codes x row scale, E4M3 decoded from the OCP spec here), and its input is quantized
per token as fbgemm does at run time: scale = min(max|x_row|, activation_scale_ub) / 448,
x / scale rounded to the nearest E4M3 value (ties to even, saturating at +-448), times scale.
The activation rounding is done on float32 values (the engine's activation dtype) so that
both sides round the same numbers.

--bf16-activations mirrors the CPU backend's BF16 GEMM (kernels/cpu/linear_bf16.h, used for
BF16 weights where the CPU has AVX-512 BF16): the input of every linear whose weight is stored
as BF16 is first rounded to bfloat16 (from its float32 value, round-to-nearest-even); the
product itself stays float64.

A reward model (architectures LlamaForSequenceClassification) has `score.weight`
[num_labels, hidden] instead of lm_head; its score is that head applied to the final-normed
hidden state of the last token (transformers pools the last non-padding token; the prompt
here has no padding).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np


def e4m3_values():
    """The 256 E4M3FN code values from the spec: bias 7, 3 mantissa bits, exponent 0
    subnormal (m / 8 * 2^-6), S.1111.111 NaN, no infinities."""
    v = np.empty(256, dtype=np.float64)
    for c in range(256):
        s, e, m = c >> 7, (c >> 3) & 15, c & 7
        if e == 15 and m == 7:
            v[c] = np.nan
            continue
        mag = math.ldexp(m / 8.0, -6) if e == 0 else math.ldexp(1.0 + m / 8.0, e - 7)
        v[c] = -mag if s else mag
    return v


E4M3 = e4m3_values()
E4M3_POS = E4M3[:0x7F]  # codes 0 .. 0x7e: 0 .. 448, increasing


def round_to_e4m3(a):
    """Nearest E4M3 value, ties to the even code, saturating at +-448 (float64 out)."""
    a = np.asarray(a, dtype=np.float64)
    mag = np.minimum(np.abs(a), 448.0)
    hi = np.clip(np.searchsorted(E4M3_POS, mag, side="left"), 0, len(E4M3_POS) - 1)
    lo = np.maximum(hi - 1, 0)
    d_lo, d_hi = mag - E4M3_POS[lo], E4M3_POS[hi] - mag
    pick = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    return np.copysign(E4M3_POS[pick], a)


def quantize_activation_rows(x, ub):
    """fbgemm's dynamic per-token FP8 quantization of x [T, k], returned dequantized."""
    x32 = np.asarray(x, dtype=np.float32)
    amax = np.abs(x32).max(axis=-1, keepdims=True)
    if ub and ub > 0:
        amax = np.minimum(amax, np.float32(ub))
    scale = (amax / np.float32(448.0)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0))
    q = round_to_e4m3((x32 / safe).astype(np.float32))
    return np.where(scale > 0, q * scale.astype(np.float64), 0.0)


class Tensors:
    """name -> float64 array, upcast on access from memory-mapped files (so a checkpoint of
    a few GB needs only its largest tensor in float64 at a time)."""

    def __init__(self):
        self.raw = {}

    def add_file(self, path):
        mm = np.memmap(path, dtype=np.uint8, mode="r")
        if mm.size < 8:
            raise ValueError(f"{path}: too short")
        (n,) = struct.unpack("<Q", mm[:8].tobytes())
        header = json.loads(mm[8:8 + n].tobytes().decode("utf-8"))
        base = 8 + n
        for name, e in header.items():
            if name == "__metadata__":
                continue
            begin, end = e["data_offsets"]
            raw = mm[base + begin:base + end]
            dt = e["dtype"]
            if dt not in ("F32", "F16", "BF16", "F8_E4M3"):
                raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
            self.raw[name] = (raw, dt, tuple(e["shape"]))

    def __contains__(self, name):
        return name in self.raw

    def stored_dtype(self, name):
        return self.raw[name][1]

    def __getitem__(self, name):
        raw, dt, shape = self.raw[name]
        if dt == "F32":
            a = raw.view("<f4")
        elif dt == "F16":
            a = raw.view("<f2")
        elif dt == "F8_E4M3":
            return E4M3[np.asarray(raw)].reshape(shape)
        else:  # BF16: the top 16 bits of a float32
            a = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        return a.astype(np.float64).reshape(shape)


def round_to_bf16(a):
    """float32 value of a, rounded to the nearest bfloat16 (ties to even); finite inputs."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def read_checkpoint(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = Tensors()
    for name in files:
        tensors.add_file(os.path.join(model_dir, name))
    return tensors


def rope_inv_freq(cfg, head_dim):
    """transformers' default + llama3 rope parameters, in float32 like torch."""
    base = np.float32(cfg.get("rope_theta", 10000.0))
    exponent = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
    inv = (np.float32(1.0) / np.power(base, exponent)).astype(np.float32)
    rs = cfg.get("rope_scaling")
    if not rs or rs.get("rope_type", rs.get("type")) in (None, "default"):
        return inv
    assert rs.get("rope_type", rs.get("type")) == "llama3", rs
    factor = np.float32(rs["factor"])
    low = np.float32(rs["low_freq_factor"])
    high = np.float32(rs["high_freq_factor"])
    old_ctx = np.float32(rs["original_max_position_embeddings"])
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    wavelen = np.float32(2 * math.pi) / inv
    scaled = np.where(wavelen > low_wavelen, inv / factor, inv).astype(np.float32)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (np.float32(1) - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half_rope(x, positions, inv_freq):
    """x: [T, heads, head_dim]; rotates pairs (i, i + head_dim/2)."""
    angles = positions[:, None].astype(np.float64) * inv_freq.astype(np.float64)[None, :]
    cos = np.concatenate([np.cos(angles)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(angles)] * 2, axis=-1)[:, None, :]
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


class LlamaRef:
    def __init__(self, model_dir, bf16_activations=False):
        self.bf16_activations = bf16_activations
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = cfg = json.load(f)
        self.w = read_checkpoint(model_dir)
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads", self.heads)
        self.head_dim = cfg.get("head_dim") or self.hidden // self.heads
        self.layers = cfg["num_hidden_layers"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.inv_freq = rope_inv_freq(cfg, self.head_dim)
        self.tied = cfg.get("tie_word_embeddings", False)
        q = cfg.get("quantization_config") or {}
        if q and q.get("quant_method") != "fbgemm_fp8":
            raise ValueError(f"unsupported quant_method {q.get('quant_method')}")
        self.act_ub = float(q.get("activation_scale_ub", 1200.0)) if q else 0.0

    def linear(self, x, name):
        """x @ W^T; an fbgemm_fp8 module (NAME.weight_scale present) dequantizes W row-wise and
        quantizes x per token first."""
        return self.matmul(x, name + ".weight")

    def matmul(self, x, weight_name):
        """x @ W^T for the stored tensor weight_name (see linear for FP8 modules)."""
        w = self.w[weight_name]
        scale_name = weight_name[:-len("weight")] + "weight_scale"
        if weight_name.endswith(".weight") and scale_name in self.w:
            w = w * self.w[scale_name]  # [out, in] * [out, 1]
            x = quantize_activation_rows(x, self.act_ub)
        elif self.bf16_activations and self.w.stored_dtype(weight_name) == "BF16":
            x = round_to_bf16(x)
        return x @ w.T

    def logits(self, ids):
        w, hd = self.w, self.head_dim
        T = len(ids)
        pos = np.arange(T)
        x = w["model.embed_tokens.weight"][np.asarray(ids)]  # whole table upcast once
        group = self.heads // self.kv_heads
        mask = np.triu(np.full((T, T), -np.inf), k=1)
        for l in range(self.layers):
            p = f"model.layers.{l}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            q = self.matmul(h, p + "self_attn.q_proj.weight").reshape(T, self.heads, hd)
            k = self.matmul(h, p + "self_attn.k_proj.weight").reshape(T, self.kv_heads, hd)
            v = self.matmul(h, p + "self_attn.v_proj.weight").reshape(T, self.kv_heads, hd)
            q = rotate_half_rope(q, pos, self.inv_freq)
            k = rotate_half_rope(k, pos, self.inv_freq)
            out = np.empty((T, self.heads, hd))
            for head in range(self.heads):
                kv = head // group
                s = (q[:, head, :] @ k[:, kv, :].T) / math.sqrt(hd) + mask
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                s /= s.sum(axis=-1, keepdims=True)
                out[:, head, :] = s @ v[:, kv, :]
            x = x + self.matmul(out.reshape(T, self.heads * hd), p + "self_attn.o_proj.weight")
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            gate = self.linear(h, p + "mlp.gate_proj")
            up = self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(gate / (1.0 + np.exp(-gate)) * up, p + "mlp.down_proj")
        x = rms_norm(x, w["model.norm.weight"], self.eps)
        if "score.weight" in w:  # LlamaForSequenceClassification
            return self.matmul(x, "score.weight")
        return self.matmul(x, "model.embed_tokens.weight" if self.tied else "lm_head.weight")

    def scores(self, ids):
        """The sequence-classification scores: the head on the last token, [num_labels]."""
        if "score.weight" not in self.w:
            raise ValueError("not a reward model: no score.weight")
        return self.logits(ids)[-1]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--ids", required=True, help="comma-separated prompt token ids")
    ap.add_argument("--greedy", type=int, default=0,
                    help="also generate this many tokens greedily (full recompute per token)")
    ap.add_argument("--score", action="store_true",
                    help="reward model: print only the last token's scores")
    ap.add_argument("--bf16-activations", action="store_true",
                    help="round the input of each BF16-weight linear to bfloat16 (herd's CPU "
                         "BF16 GEMM)")
    args = ap.parse_args(argv)
    ids = [int(t) for t in args.ids.split(",") if t.strip()]
    if not ids:
        ap.error("--ids is empty")
    model = LlamaRef(args.model_dir, args.bf16_activations)
    if args.score:
        json.dump({"scores": model.scores(ids).tolist()}, sys.stdout)
        sys.stdout.write("\n")
        return
    result = {"logits": model.logits(ids).tolist()}
    if args.greedy > 0:
        seq = list(ids)
        for _ in range(args.greedy):
            seq.append(int(np.argmax(model.logits(seq)[-1])))
        result["generated"] = seq[len(ids):]
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
