#!/usr/bin/env bash
# Layouts side by side on emulated links: tp1 (one host), tp2, pp2 without and with micro-batching (two hosts),
# for each vcluster profile. One rank per host, one BLAS thread per rank. Prints a markdown table from the
# --metrics-json of each run. Needs root (vcluster) and a built tree.
#
#   bash bench/parallel_layouts.sh [--model DIR] [--profiles "tb5 1gbe"] [--requests 16] [--prompt 16] [--gen 16]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${MESHLM_SHARED:-$root/../shared}"
vc="$shared/cluster/vcluster"
model="" profiles="tb5 1gbe" requests=16 prompt=16 gen=16 batch=16
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --profiles) profiles="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work="$(mktemp -d)"
trap '"$vc" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if [ -z "$model" ]; then  # Llama-3.2-1B geometry truncated to 4 layers, bf16 (~1 GB)
  model="$work/model"
  "$root/build/bench/make_model" --out "$model" --preset llama-3.2-1b --layers 4 >&2
fi
python3 - "$requests" "$prompt" "$gen" > "$work/prompts.jsonl" <<'PY'
import json, sys
n, p, g = map(int, sys.argv[1:])
for i in range(n):
    print(json.dumps({"id": f"b{i}", "prompt_ids": [(i * 37 + k * 11) % 1000 + 3 for k in range(p)], "max_tokens": g}))
PY
"$vc" up 2 --profile none >/dev/null
echo "| profile | layout | ranks | gen tok/s | total tok/s | wall s | compute s (max rank) | comm s (max rank) | sent MB (sum) |"
echo "|---|---|---|---|---|---|---|---|---|"
for profile in $profiles; do
  "$vc" profile "$profile" >/dev/null
  while read -r name np flags; do
    out="$work/$profile-$name"
    # shellcheck disable=SC2086
    timeout -k 5 1200 "$vc" mpirun -np "$np" -x OPENBLAS_NUM_THREADS=1 "$root/build/meshlm" generate --model "$model" \
      --prompts "$work/prompts.jsonl" --output "$out.jsonl" --batch-size "$batch" --metrics-json "$out.json" $flags \
      < /dev/null 2> "$out.err" || { echo "run $profile $name failed:" >&2; tail -5 "$out.err" >&2; continue; }
    cmp -s "$out.jsonl" "$work/$profile-tp1.jsonl" || echo "warning: $profile $name output differs from tp1" >&2
    python3 - "$out.json" "$profile" "$name" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
r = m["ranks"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {len(r)} | {m['generated_tokens_per_s']:.1f} | {m['total_tokens_per_s']:.1f} | "
      f"{m['seconds']:.2f} | {max(x['compute_s'] for x in r):.2f} | {max(x['comm_s'] for x in r):.2f} | "
      f"{sum(x['bytes_sent'] for x in r) / 1e6:.1f} |")
PY
  done <<'RUNS'
tp1 1 --tp 1 --pp 1
tp2 2 --tp 2 --pp 1
pp2_1mb 2 --tp 1 --pp 2 --micro-batches 1
pp2 2 --tp 1 --pp 2
RUNS
done
