#!/usr/bin/env bash
# Issue 14 item 7: one Markdown row per run of benchmarks/long_prompt_itl.sh (outputs
# concatenated, each run headed "=== NAME"): the streams' duration, median/mean/P99/max ITL and
# P99 TTFT, then the long prompts' mean TTFT.   benchmarks/long_prompt_itl_summary.sh OUT...
awk '
/^=== /{name=$0; sub(/^=== /,"",name); sub(/ \(load.*/,"",name); sec=""; next}
/^--- streams/{sec="s"; next}
/^--- long/{sec="l"; next}
sec=="s" && /Benchmark duration/{d=$NF}
sec=="s" && /Mean ITL/{mi=$NF}
sec=="s" && /Median ITL/{md=$NF}
sec=="s" && /P99 ITL/{p99=$NF}
sec=="s" && /Max ITL/{mx=$NF}
sec=="s" && /P99 TTFT/{st=$NF}
sec=="l" && /Mean TTFT/{lt=$NF; printf "| %-44s | %8s | %7s | %8s | %9s | %8s | %9s | %9s |\n", name, d, md, mi, p99, mx, st, lt}
' "$@"
