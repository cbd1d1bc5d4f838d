#!/usr/bin/env python3
"""Draws Fig. 24-style curves (throughput vs latency, one line per configuration, points
labelled with the batch size) from bench_parallel's JSON points as a plain SVG (no plotting
library needed), and prints the ratios: micro-batching gain per workload and batch size, and
TP 2 over one process on decode.

Points may carry a "round" (run_fig24.sh with ROUNDS > 1 runs every configuration once per
round, in the same order): each ratio is then taken within a round, between configurations
measured minutes apart, and printed as the median over the rounds with every round's value;
the plot shows each configuration's median point.

usage: plot_fig24.py points.jsonl out.svg
"""
import json
import sys
from collections import defaultdict

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def panel(points, x0, y0, w, h, title, colors):
    """SVG elements of one panel: axes from 0 to the max, a polyline per config."""
    out = []
    xmax = max(p["latency_ms"] for p in points) * 1.1
    ymax = max(p["throughput_tok_s"] for p in points) * 1.15
    px = lambda v: x0 + 60 + (w - 80) * v / xmax
    py = lambda v: y0 + h - 40 - (h - 70) * v / ymax
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + 18}" text-anchor="middle" '
               f'font-weight="bold">{title}</text>')
    out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(xmax)}" y2="{py(0)}" stroke="black"/>')
    out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(ymax)}" stroke="black"/>')
    for i in range(6):
        xv, yv = xmax * i / 5, ymax * i / 5
        out.append(f'<text x="{px(xv)}" y="{py(0) + 15}" text-anchor="middle" '
                   f'font-size="10">{xv:.0f}</text>')
        out.append(f'<text x="{px(0) - 5}" y="{py(yv) + 3}" text-anchor="end" '
                   f'font-size="10">{yv:.0f}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h - 8}" text-anchor="middle" font-size="11">'
               f'latency (ms: time to first token / time per output token)</text>')
    out.append(f'<text x="{x0 + 14}" y="{y0 + h / 2}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 {x0 + 14} {y0 + h / 2})">throughput (tokens/s)</text>')
    by_config = defaultdict(list)
    for p in points:
        by_config[p["config"]].append(p)
    for i, (cfg, ps) in enumerate(sorted(by_config.items())):
        c = colors[cfg]  # one color per configuration in every panel
        ps.sort(key=lambda p: p["batch"])
        pts = " ".join(f'{px(p["latency_ms"]):.1f},{py(p["throughput_tok_s"]):.1f}' for p in ps)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        for p in ps:
            out.append(f'<circle cx="{px(p["latency_ms"]):.1f}" '
                       f'cy="{py(p["throughput_tok_s"]):.1f}" r="3" fill="{c}"/>')
            out.append(f'<text x="{px(p["latency_ms"]) + 4:.1f}" '
                       f'y="{py(p["throughput_tok_s"]) - 4:.1f}" font-size="9">'
                       f'b{p["batch"]}</text>')
        # Legend in the lower right corner (the curves rise to the upper left).
        out.append(f'<text x="{x0 + w - 20}" y="{y0 + h - 110 + 14 * i}" font-size="11" '
                   f'text-anchor="end" fill="{c}">{cfg}</text>')
    return out


def median_points(raw):
    """One point per (config, workload, batch): the round with the median throughput."""
    groups = defaultdict(list)
    for p in raw:
        groups[(p["config"], p["workload"], p["batch"])].append(p)
    out = []
    for ps in groups.values():
        ps.sort(key=lambda p: p["throughput_tok_s"])
        out.append(ps[len(ps) // 2])
    return out


def main():
    raw = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
    points = median_points(raw)
    workloads = sorted({p["workload"] for p in points})
    colors = {cfg: COLORS[i % len(COLORS)]
              for i, cfg in enumerate(sorted({p["config"] for p in points}))}
    w, h = 520, 400
    body = []
    for i, wl in enumerate(workloads):
        body += panel([p for p in points if p["workload"] == wl], i * w, 0, w, h, colors=colors,
                      title=
                      f"{wl}-heavy" + (" (in 256, out 1)" if wl == "prefill"
                                       else " (in 16, out 32)"))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * len(workloads)}" '
           f'height="{h}" font-family="sans-serif">'
           f'<rect width="100%" height="100%" fill="white"/>' + "".join(body) + "</svg>\n")
    open(sys.argv[2], "w").write(svg)

    def by_round(cfg, wl, b):
        return {p.get("round", 1): p for p in raw
                if p["config"] == cfg and p["workload"] == wl and p["batch"] == b}

    def ratio(num, den, wl, b, field="throughput_tok_s"):
        """Per-round ratios num / den, formatted: median, then each round's value."""
        n, d = by_round(num, wl, b), by_round(den, wl, b)
        rs = sorted(n[r][field] / d[r][field] for r in n if r in d)
        if not rs:
            return None
        med = rs[len(rs) // 2] if len(rs) % 2 else (rs[len(rs) // 2 - 1] + rs[len(rs) // 2]) / 2
        if len(rs) == 1:
            return f"{med:.2f}x"
        return f"{med:.2f}x (median of {len(rs)} rounds: {' '.join(f'{r:.2f}' for r in rs)})"

    def find(cfg, wl, b):
        for p in points:
            if p["config"] == cfg and p["workload"] == wl and p["batch"] == b:
                return p
        return None

    print("micro-batching gain (pp 2, one thread per rank): throughput mb2 / mb1")
    for wl in workloads:
        for b in sorted({p["batch"] for p in points if p["workload"] == wl}):
            a, m = find("tp1-pp2-mb1-t1", wl, b), find("tp1-pp2-mb2-t1", wl, b)
            r = ratio("tp1-pp2-mb2-t1", "tp1-pp2-mb1-t1", wl, b)
            if a and m and r:
                print(f"  {wl:8s} batch {b:3d}: {r}"
                      f"  (latency {a['latency_ms']:.0f} -> {m['latency_ms']:.0f} ms)")
    print("pipeline vs one process with both cores (the 2-core ceiling): throughput pp2 / 1 proc")
    for wl in workloads:
        for b in sorted({p["batch"] for p in points if p["workload"] == wl}):
            m = ratio("tp1-pp2-mb2-t1", "tp1-pp1-mb1-t2", wl, b)
            o = ratio("tp1-pp1-mb1-t1", "tp1-pp1-mb1-t2", wl, b)
            if m:
                extra = f", 1 thread {o}" if o else ""
                print(f"  {wl:8s} batch {b:3d}: mb2 {m}{extra}")
    print("tensor parallel: decode throughput tp2 (1 thread/rank) / one process (2 threads)")
    for b in sorted({p["batch"] for p in points if p["workload"] == "decode"}):
        t = ratio("tp2-pp1-mb1-t1", "tp1-pp1-mb1-t2", "decode", b)
        if t:
            print(f"  decode   batch {b:3d}: {t}")


if __name__ == "__main__":
    main()
