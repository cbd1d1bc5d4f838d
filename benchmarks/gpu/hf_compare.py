#!/usr/bin/env python3
"""The Python half of benchmarks/gpu/device_session.sh: Hugging Face transformers / tokenizers
as the reference and the peer of herd, on the device machine (torch + transformers +
tokenizers, one GPU). Every subcommand writes one JSON file (--out) and prints a short
summary; without torch (or without a GPU) it runs what it can and says what it skipped, so
the CPU dry run exercises the same code paths up to the torch calls.

  logits     herd logits (cpu, and cuda when asked) vs LlamaForCausalLM fp32 and bf16 on the
             GPU: max |dlogit|, relative L2, top-1 agreement over every prompt position, and
             the first position where the greedy continuations differ.
  tokenizer  `tokenizers` encode vs `herd tokenize` (ids identical) on the llama3-bpe cases and
             a corpus; encode MB/s of both (herd's from bench_tokenizer, same ~4 MB text).
  roofline   device-to-device copy (GB/s, bytes read + written) and a bf16 GEMM (TFLOP/s)
             through torch (cuBLAS/cuBLASLt), CUDA-event medians.
  herdbench  herd bench offline (engine end to end) decode tok/s at the given batch sizes
             and prefill tok/s, the same workload shapes as the peer's.
  peer       transformers generate (bf16, static cache, greedy, eager) tokens/s: decode at
             the given batch sizes and a prefill, the same workload shapes as herd's.
  summarize  merges the JSON files of one session into summary.json and prints the table.
"""
import argparse
import json
import os
import subprocess
import sys
import time

try:
    import numpy as np
except ImportError:  # numpy comes with torch on the device; here it may be absent
    np = None


def have_torch_gpu():
    """(torch module or None, reason string)."""
    try:
        import torch
    except ImportError as e:
        return None, f"torch not importable ({e})"
    if not torch.cuda.is_available():
        return None, "torch has no CUDA device"
    return torch, ""


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    print(f"[hf_compare] wrote {path}")


def herd_tokenize(herd, tok_dir, text):
    r = subprocess.run([herd, "tokenize", "--tokenizer", tok_dir], input=text.encode(),
                       capture_output=True, check=True)
    return json.loads(r.stdout)


SEP = "\n__ggml_vocab_test__\n"


def herd_tokenize_cases(herd, tok_dir, cases):
    """Every case in one `herd tokenize --split` call (one tokenizer load). --special: special
    tokens' literal strings map to their ids, as `tokenizers` encode does by default."""
    r = subprocess.run([herd, "tokenize", "--tokenizer", tok_dir, "--special", "--split", SEP],
                       input="".join(c + SEP for c in cases).encode(), capture_output=True,
                       check=True)
    return json.loads(r.stdout)


def load_npy(path):
    return np.load(path) if np is not None else None


# ---------------------------------------------------------------------------------- logits
def compare(a, b, greedy_a, greedy_b):
    """Metrics of logits a against reference b ([positions, vocab]) and two continuations."""
    out = {}
    if a is not None and b is not None:
        a = a.astype(np.float64)
        b = b.astype(np.float64)
        d = np.abs(a - b)
        out["max_abs_dlogit"] = float(d.max())
        out["rel_l2"] = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
        out["ref_max_abs_logit"] = float(np.abs(b).max())
        out["top1_agree"] = float((a.argmax(-1) == b.argmax(-1)).mean())
        out["finite"] = bool(np.isfinite(a).all())
    n = min(len(greedy_a), len(greedy_b))
    first = next((i for i in range(n) if greedy_a[i] != greedy_b[i]), n)
    out["greedy_first_diff"] = first  # == greedy length when identical
    out["greedy_len"] = n
    return out


def hf_logits(torch, model_dir, dtype, prompts, greedy):
    """{prompt name: (logits [len, vocab] fp32 numpy, greedy continuation)}, one model load."""
    from transformers import LlamaForCausalLM
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        m = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype)
    except TypeError:  # transformers < 4.56 names it torch_dtype
        m = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=dtype)
    m = m.to("cuda").eval()
    res = {}
    with torch.no_grad():
        for name, prompt in prompts.items():
            t0 = time.time()
            out = m(torch.tensor([prompt], device="cuda"), use_cache=True)
            logits = out.logits[0].float().cpu().numpy()
            pkv = out.past_key_values
            nxt = int(out.logits[0, -1].argmax())
            cont = []
            for g in range(greedy):
                cont.append(nxt)
                if g + 1 == greedy:
                    break
                out = m(torch.tensor([[nxt]], device="cuda"), past_key_values=pkv,
                        use_cache=True)
                pkv = out.past_key_values
                nxt = int(out.logits[0, -1].argmax())
            res[name] = {"logits": logits, "greedy": cont, "seconds": time.time() - t0}
    del m
    torch.cuda.empty_cache()
    return res


def cmd_logits(a):
    work = a.work
    os.makedirs(work, exist_ok=True)
    res = {"model": a.name, "model_dir": a.model, "greedy": a.greedy, "prompts": [],
           "skipped": []}
    # Prompts: BOS + the start of a corpus text through herd's tokenizer (the model dir's),
    # and seeded random ordinary ids.
    with open(a.text, encoding="utf-8") as f:
        text = f.read()
    ids = herd_tokenize(a.herd, a.model, text[:4000])[: a.prompt_len - 1]
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    bos = cfg.get("bos_token_id", 128000)
    import random
    rng = random.Random(1234)
    top = min(cfg["vocab_size"], 128000)
    prompts = {"text": [bos] + ids, "random": [bos] + [rng.randrange(top) for _ in
                                                        range(a.prompt_len - 1)]}
    errors = 0
    torch, why = have_torch_gpu()
    if torch is None:
        res["skipped"].append(f"Hugging Face side: {why}")
    if np is None:
        res["skipped"].append("logit metrics: numpy not importable (greedy ids compared only)")
    hf = {}  # label -> {prompt name: run} ("*": the error for every prompt)
    if torch is not None:
        for label, dt in (("hf_fp32", torch.float32), ("hf_bf16", torch.bfloat16)):
            try:
                hf[label] = hf_logits(torch, a.model, dt, prompts, a.greedy)
            except Exception as e:  # record and go on: the other comparisons still count
                hf[label] = {"*": {"error": repr(e)[-2000:]}}
                print(f"[hf_compare] {label} failed: {e!r}")
    for pname, prompt in prompts.items():
        runs = {}
        for dev in a.devices.split(","):
            npy = os.path.join(work, f"{a.name}_{pname}_herd_{dev}.npy")
            t0 = time.time()
            r = subprocess.run([a.herd, "logits", "--model", a.model, "--device", dev,
                                "--prompt-ids", ",".join(map(str, prompt)),
                                "--greedy", str(a.greedy), "--out", npy],
                               capture_output=True, text=True)
            if r.returncode != 0:
                runs[f"herd_{dev}"] = {"error": r.stderr.strip()[-2000:]}
                print(f"[hf_compare] herd logits --device {dev} failed:\n{r.stderr[-2000:]}")
                continue
            j = json.loads(r.stdout)
            runs[f"herd_{dev}"] = {"logits": load_npy(npy), "greedy": j["greedy"],
                                   "seconds": time.time() - t0}
        for label, per_prompt in hf.items():
            runs[label] = per_prompt.get(pname, per_prompt.get("*"))
        errors += sum(1 for v in runs.values() if "error" in v)
        entry = {"prompt": pname, "prompt_len": len(prompt), "runs": {}, "pairs": {}}
        for k, v in runs.items():
            entry["runs"][k] = {kk: vv for kk, vv in v.items() if kk != "logits"}
        ok = {k: v for k, v in runs.items() if "error" not in v}
        pairs = [("herd_cpu", "hf_fp32"), ("herd_cuda", "hf_fp32"), ("herd_cuda", "hf_bf16"),
                 ("hf_bf16", "hf_fp32"), ("herd_cuda", "herd_cpu")]
        for x, y in pairs:
            if x in ok and y in ok:
                entry["pairs"][f"{x}_vs_{y}"] = compare(ok[x]["logits"], ok[y]["logits"],
                                                        ok[x]["greedy"], ok[y]["greedy"])
        res["prompts"].append(entry)
        for k, v in entry["pairs"].items():
            print(f"[hf_compare] {a.name:10s} {pname:6s} {k:24s} " +
                  " ".join(f"{kk}={vv:.4g}" if isinstance(vv, float) else f"{kk}={vv}"
                           for kk, vv in v.items()))
    res["errors"] = errors
    dump(a.out, res)
    return 1 if errors else 0


# ------------------------------------------------------------------------------- tokenizer
def read_cases(path):
    with open(path, encoding="utf-8") as f:
        s = f.read()
    cases = s.split(SEP)
    return cases[:-1] if cases and cases[-1] == "" else cases  # the file ends with SEP


def bench_text(files):
    base = ""
    for p in files:
        with open(p, encoding="utf-8") as f:
            base += f.read() + "\n"
    text = base
    while len(text.encode()) < (4 << 20):
        text += base
    return base, text


def cmd_tokenizer(a):
    res = {"tokenizer": a.tokenizer, "skipped": []}
    cases = read_cases(a.cases)
    base, text = bench_text(a.corpus)
    herd_cases, herd_base = (lambda r: (r[:-1], r[-1]))(
        herd_tokenize_cases(a.herd, a.tokenizer, cases + [base]))
    res["cases"] = len(cases)
    res["corpus_bytes"] = len(base.encode())
    res["bench_bytes"] = len(text.encode())
    # herd's speed: bench_tokenizer on the same files (it builds the same ~4 MB text).
    if a.bench_tokenizer and os.path.exists(a.bench_tokenizer):
        r = subprocess.run([a.bench_tokenizer, *a.corpus, "--tokenizer", a.tokenizer],
                           capture_output=True, text=True)
        res["herd_bench_tokenizer"] = r.stdout.strip()
        for line in r.stdout.splitlines():
            if "MB/s" in line:
                res.setdefault("herd_mb_s_lines", []).append(line.strip())
    else:
        res["skipped"].append("herd encode speed: bench_tokenizer not packed")
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        res["skipped"].append(f"Hugging Face tokenizers: not importable ({e})")
        print(f"[hf_compare] SKIP tokenizers comparison: {e}")
        dump(a.out, res)
        return
    tk = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    hf_cases = [tk.encode(c, add_special_tokens=False).ids for c in cases]
    mism = [i for i, (x, y) in enumerate(zip(herd_cases, hf_cases)) if x != y]
    res["cases_identical"] = len(cases) - len(mism)
    res["cases_mismatch"] = mism
    hb = tk.encode(base, add_special_tokens=False).ids
    res["corpus_identical"] = hb == herd_base
    res["corpus_tokens"] = len(hb)
    if hb != herd_base:
        i = next((k for k in range(min(len(hb), len(herd_base))) if hb[k] != herd_base[k]),
                 min(len(hb), len(herd_base)))
        res["corpus_first_diff"] = i
    tk.encode("warm up")
    secs = []
    for _ in range(5):
        t0 = time.perf_counter()
        tk.encode(text, add_special_tokens=False)
        secs.append(time.perf_counter() - t0)
    secs.sort()
    res["hf_tokenizers_mb_s_median"] = len(text.encode()) / 1e6 / secs[2]
    try:
        from transformers import PreTrainedTokenizerFast
        ft = PreTrainedTokenizerFast(tokenizer_file=os.path.join(a.tokenizer, "tokenizer.json"))
        secs = []
        for _ in range(3):
            t0 = time.perf_counter()
            ft(text, add_special_tokens=False)
            secs.append(time.perf_counter() - t0)
        secs.sort()
        res["hf_transformers_fast_mb_s_median"] = len(text.encode()) / 1e6 / secs[1]
    except Exception as e:
        res["skipped"].append(f"transformers fast tokenizer: {e!r}")
    print(f"[hf_compare] tokenizer: cases identical {res['cases_identical']}/{len(cases)}, "
          f"corpus identical {res['corpus_identical']}, tokenizers "
          f"{res['hf_tokenizers_mb_s_median']:.1f} MB/s")
    dump(a.out, res)


# -------------------------------------------------------------------------------- roofline
def median_ms(torch, fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2], ts


def cmd_roofline(a):
    torch, why = have_torch_gpu()
    if torch is None:
        print(f"[hf_compare] SKIP roofline: {why}")
        dump(a.out, {"skipped": [f"roofline: {why}"]})
        return
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    n = 1 << 30  # bf16 elements: 2 GiB per buffer
    src = torch.empty(n, dtype=torch.bfloat16, device="cuda").normal_()
    dst = torch.empty_like(src)
    ms, ts = median_ms(torch, lambda: dst.copy_(src), 20)
    res["copy_bytes_read_plus_written"] = 4 * n
    res["copy_ms_median"] = ms
    res["copy_ms_spread"] = [ts[0], ts[-1]]
    res["bandwidth_gb_s"] = 4 * n / (ms * 1e-3) / 1e9
    del src, dst
    torch.cuda.empty_cache()
    m = k = nn = 8192
    sets = [(torch.randn(m, k, dtype=torch.bfloat16, device="cuda"),
             torch.randn(k, nn, dtype=torch.bfloat16, device="cuda")) for _ in range(3)]
    i = [0]

    def gemm():
        x, y = sets[i[0] % 3]
        i[0] += 1
        torch.matmul(x, y)

    ms, ts = median_ms(torch, gemm, 30)
    res["gemm_shape"] = [m, k, nn]
    res["gemm_ms_median"] = ms
    res["gemm_ms_spread"] = [ts[0], ts[-1]]
    res["bf16_tflop_s"] = 2 * m * k * nn / (ms * 1e-3) / 1e12
    print(f"[hf_compare] roofline: copy {res['bandwidth_gb_s']:.0f} GB/s, bf16 GEMM "
          f"{res['bf16_tflop_s']:.0f} TFLOP/s ({res['device']})")
    dump(a.out, res)


# ------------------------------------------------------------------------------------ peer
def cmd_peer(a):
    torch, why = have_torch_gpu()
    res = {"model": a.name, "model_dir": a.model, "prompt_len": a.prompt_len, "new": a.new,
           "runs": [], "skipped": []}
    if torch is None:
        res["skipped"].append(f"transformers peer: {why}")
        print(f"[hf_compare] SKIP transformers peer ({a.name}): {why}")
        dump(a.out, res)
        return
    from transformers import LlamaForCausalLM
    try:
        m = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16)
    except TypeError:
        m = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16)
    m = m.to("cuda").eval()
    import transformers
    res["transformers"] = transformers.__version__
    deadline = time.time() + a.budget_s
    g = torch.Generator(device="cpu").manual_seed(5)

    def gen(batch, new):
        ids = torch.randint(0, 128000, (batch, a.prompt_len), generator=g).to("cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            m.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                       max_new_tokens=new, min_new_tokens=new, pad_token_id=0,
                       cache_implementation="static")
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    try:
        gen(1, 4)  # warm-up: kernels, handles
        for b in [int(x) for x in a.batches.split(",")]:
            if time.time() > deadline:
                res["skipped"].append(f"batch {b}: out of time")
                continue
            t1 = gen(b, 1)
            tn = gen(b, a.new)
            r = {"batch": b, "seconds_new_1": t1, f"seconds_new_{a.new}": tn,
                 "decode_tok_s": b * (a.new - 1) / max(tn - t1, 1e-9)}
            res["runs"].append(r)
            print(f"[hf_compare] peer {a.name} batch {b}: decode {r['decode_tok_s']:.0f} tok/s")
            dump(a.out, res)  # what is done survives a timeout of the step
        if a.prefill and time.time() < deadline:
            ids = torch.randint(0, 128000, (1, a.prefill), generator=g).to("cuda")
            with torch.no_grad():
                ms, ts = median_ms(torch, lambda: m(ids, use_cache=False, logits_to_keep=1), 5)
            res["prefill"] = {"tokens": a.prefill, "ms_median": ms,
                              "tok_s": a.prefill / (ms * 1e-3)}
            print(f"[hf_compare] peer {a.name} prefill {a.prefill}: "
                  f"{res['prefill']['tok_s']:.0f} tok/s")
    except Exception as e:
        res["error"] = repr(e)[-2000:]
        print(f"[hf_compare] peer {a.name} failed: {e!r}")
    dump(a.out, res)
    return 1 if "error" in res else 0


# ------------------------------------------------------------------------------- herdbench
def cmd_herdbench(a):
    """herd bench offline (engine end to end: scheduler, host sampling) at each batch size:
    decode tok/s = batch * (new - 1) / (t(new) - t(1)), so prefill and the first step cancel;
    prefill tok/s = tokens / t(one prompt, max_tokens 1)."""
    res = {"model": a.name, "model_dir": a.model, "device": a.device,
           "prompt_len": a.prompt_len, "new": a.new, "decode": [], "skipped": [], "errors": []}
    deadline = time.time() + a.budget_s
    base = [a.herd, "bench", "offline", "--model", a.model, "--device", a.device,
            "--workload", "throughput", "--json", "--kv-cache-gb", str(a.kv_cache_gb),
            "--max-num-seqs", "256", "--no-prefix-caching"]

    def run(extra, what):
        left = deadline - time.time()
        if len(res["errors"]) >= 2:  # the same cause (no device, a crash) would repeat
            res["skipped"].append(f"{what}: not run after two failures")
            return None
        if left < 5:
            res["skipped"].append(f"{what}: out of time")
            return None
        try:
            r = subprocess.run(base + extra, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            res["errors"].append(f"{what}: timed out after {left:.0f} s")
            return None
        if r.returncode != 0:
            res["errors"].append(f"{what}: exit {r.returncode}: {r.stderr.strip()[-1500:]}")
            print(f"[hf_compare] herd bench {what} failed: {r.stderr.strip()[-1500:]}")
            return None
        return json.loads(r.stdout)["run"]

    if a.prefill:
        r = run(["--prompts", "1", "--prompt-len", str(a.prefill), "--max-tokens", "1",
                 "--max-num-batched-tokens", str(a.prefill)], f"prefill {a.prefill}")
        if r:
            res["prefill"] = {"tokens": a.prefill, "seconds": r["seconds"],
                              "tok_s": a.prefill / r["seconds"]}
            print(f"[hf_compare] herd {a.device} {a.name} prefill {a.prefill}: "
                  f"{res['prefill']['tok_s']:.0f} tok/s")
    for b in [int(x) for x in a.batches.split(",")]:
        common = ["--prompts", str(b), "--prompt-len", str(a.prompt_len),
                  "--max-num-batched-tokens", str(max(2048, b))]
        r1 = run(common + ["--max-tokens", "1"], f"batch {b} new 1")
        rn = run(common + ["--max-tokens", str(a.new)], f"batch {b} new {a.new}") if r1 else None
        if r1 and rn:
            d = {"batch": b, "seconds_new_1": r1["seconds"], f"seconds_new_{a.new}": rn["seconds"],
                 "steps": rn["steps"], "preemptions": rn["preemptions"],
                 "decode_tok_s": b * (a.new - 1) / max(rn["seconds"] - r1["seconds"], 1e-9)}
            res["decode"].append(d)
            dump(a.out, res)  # what is done survives a timeout of the step
            print(f"[hf_compare] herd {a.device} {a.name} batch {b}: decode "
                  f"{d['decode_tok_s']:.0f} tok/s")
    dump(a.out, res)
    return 1 if res["errors"] else 0


# ------------------------------------------------------------------------------- summarize
def model_costs(model_dir):
    """Bytes of weights one decode step reads (bf16) and matmul FLOPs per token."""
    c = json.load(open(os.path.join(model_dir, "config.json")))
    h, i, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim") or h // nh
    per_layer = h * nh * hd * 2 + h * nkv * hd * 2 + 3 * h * i
    params = L * per_layer + c["vocab_size"] * h  # linears + lm_head (embedding is a lookup)
    return {"matmul_params": params, "weight_bytes_bf16": 2 * params, "layers": L,
            "q_heads": nh, "head_dim": hd}


def cmd_summarize(a):
    parts = {}
    for name in sorted(os.listdir(a.work)):
        if name.endswith(".json") and name.startswith("part_"):
            try:
                parts[name[5:-5]] = json.load(open(os.path.join(a.work, name)))
            except Exception as e:
                parts[name[5:-5]] = {"error": f"unreadable: {e!r}"}
    roof = parts.get("roofline", {})
    bw = roof.get("bandwidth_gb_s")
    fl = roof.get("bf16_tflop_s")
    table = []
    for key, v in parts.items():
        if not key.startswith("herdbench_"):
            continue
        model_dir = v.get("model_dir")
        costs = model_costs(model_dir) if model_dir and os.path.exists(
            os.path.join(model_dir, "config.json")) else None
        v["costs"] = costs
        label = f"herd {v.get('device')} {v['model']}"
        for r in v.get("decode", []):
            if costs and bw and fl:
                # Memory floor: every weight once per step (KV reads not counted); compute
                # floor: 2 FLOPs per matmul parameter per token.
                mem = r["batch"] * bw * 1e9 / costs["weight_bytes_bf16"]
                cmp_ = fl * 1e12 / (2 * costs["matmul_params"])
                r["roofline_tok_s"] = min(mem, cmp_)
                r["fraction_of_roofline"] = r["decode_tok_s"] / r["roofline_tok_s"]
            table.append((label, f"decode b={r['batch']}", r["decode_tok_s"],
                          r.get("roofline_tok_s")))
        p = v.get("prefill")
        if p:
            if costs and fl:
                T = p["tokens"]
                flops = 2 * costs["matmul_params"] * T + \
                    2 * costs["layers"] * costs["q_heads"] * costs["head_dim"] * T * T
                p["roofline_tok_s"] = T / (flops / (fl * 1e12))
                p["fraction_of_roofline"] = p["tok_s"] / p["roofline_tok_s"]
            table.append((label, f"prefill {p['tokens']}", p["tok_s"],
                          p.get("roofline_tok_s")))
        peer = parts.get("peer_" + v["model"], {})
        for r in peer.get("runs", []):
            table.append((v["model"], f"transformers decode b={r['batch']}",
                          r["decode_tok_s"], None))
        if "prefill" in peer:
            table.append((v["model"], f"transformers prefill {peer['prefill']['tokens']}",
                          peer["prefill"]["tok_s"], None))
    steps = []
    if os.path.exists(a.steps):
        for line in open(a.steps):
            f = line.rstrip("\n").split("\t")
            if len(f) >= 4:
                steps.append({"step": f[0], "status": f[1], "seconds": float(f[2]),
                              "note": f[3]})
    summary = {"steps": steps, "roofline": roof, "parts": parts}
    dump(a.out, summary)
    print("\n==== device session summary")
    for s in steps:
        print(f"  {s['status']:8s} {s['seconds']:7.1f}s  {s['step']:28s} {s['note']}")
    if bw or fl:
        print(f"  roofline: copy {bw or float('nan'):.0f} GB/s, bf16 GEMM "
              f"{fl or float('nan'):.0f} TFLOP/s")
    for k, v in parts.items():
        if k.startswith("logits_"):
            for p in v.get("prompts", []):
                for pair, m in p.get("pairs", {}).items():
                    print(f"  {v['model']:10s} {p['prompt']:6s} {pair:24s} "
                          f"max|d|={m.get('max_abs_dlogit', float('nan')):.4g} "
                          f"top1={m.get('top1_agree', float('nan')):.3f} "
                          f"greedy_same={m['greedy_first_diff']}/{m['greedy_len']}")
        if k == "tokenizer" and "cases_identical" in v:
            print(f"  tokenizer: cases {v['cases_identical']}/{v['cases']} identical, corpus "
                  f"identical {v['corpus_identical']}, HF tokenizers "
                  f"{v['hf_tokenizers_mb_s_median']:.1f} MB/s; herd: "
                  f"{'; '.join(v.get('herd_mb_s_lines', []))}")
    for model, what, val, roofv in table:
        rs = f"  roofline {roofv:10.0f} ({val / roofv:5.1%})" if roofv else ""
        print(f"  {model:20s} {what:28s} {val:10.0f} tok/s{rs}")
    for k, v in parts.items():
        if not isinstance(v, dict):
            continue
        for s in v.get("skipped", []):
            print(f"  SKIPPED ({k}): {s}")
        errs = v.get("errors") if isinstance(v.get("errors"), list) else []
        if v.get("error"):
            errs = errs + [v["error"]]
        for p in v.get("prompts", []):
            errs = errs + [f"{p['prompt']} {r}: {x['error']}" for r, x in p["runs"].items()
                           if "error" in x]
        for e in errs:
            print(f"  ERROR ({k}): {e.splitlines()[-1] if e else e}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("logits")
    q.add_argument("--herd", required=True)
    q.add_argument("--model", required=True)
    q.add_argument("--name", required=True)
    q.add_argument("--text", required=True, help="text whose start is one prompt")
    q.add_argument("--devices", default="cpu,cuda")
    q.add_argument("--prompt-len", type=int, default=32)
    q.add_argument("--greedy", type=int, default=64)
    q.add_argument("--work", required=True)
    q.add_argument("--out", required=True)
    q = sub.add_parser("tokenizer")
    q.add_argument("--herd", required=True)
    q.add_argument("--tokenizer", required=True)
    q.add_argument("--cases", required=True)
    q.add_argument("--corpus", nargs="+", required=True)
    q.add_argument("--bench-tokenizer", default="")
    q.add_argument("--out", required=True)
    q = sub.add_parser("roofline")
    q.add_argument("--out", required=True)
    q = sub.add_parser("peer")
    q.add_argument("--model", required=True)
    q.add_argument("--name", required=True)
    q.add_argument("--batches", default="1,32,128,256")
    q.add_argument("--prompt-len", type=int, default=128)
    q.add_argument("--new", type=int, default=65)
    q.add_argument("--prefill", type=int, default=4096)
    q.add_argument("--budget-s", type=float, default=120)
    q.add_argument("--out", required=True)
    q = sub.add_parser("herdbench")
    q.add_argument("--herd", required=True)
    q.add_argument("--model", required=True)
    q.add_argument("--name", required=True)
    q.add_argument("--device", default="cuda")
    q.add_argument("--batches", default="1,32,128,256")
    q.add_argument("--prompt-len", type=int, default=128)
    q.add_argument("--new", type=int, default=65)
    q.add_argument("--prefill", type=int, default=4096)
    q.add_argument("--kv-cache-gb", type=float, default=16)
    q.add_argument("--budget-s", type=float, default=120)
    q.add_argument("--out", required=True)
    q = sub.add_parser("summarize")
    q.add_argument("--work", required=True)
    q.add_argument("--steps", required=True)
    q.add_argument("--out", required=True)
    a = p.parse_args()
    return {"logits": cmd_logits, "tokenizer": cmd_tokenizer, "roofline": cmd_roofline,
     "peer": cmd_peer, "herdbench": cmd_herdbench, "summarize": cmd_summarize}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
