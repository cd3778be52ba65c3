#!/usr/bin/env python3
"""Writes the mixture-of-experts section of bench/RESULTS.md to stdout from what scripts/bench_moe measured.

    moe_md.py RESULTS_DIR REPS
"""
import datetime
import json
import sys

from results_md import pick, rows, sh, table


def main(results, reps):
    one = rows(f"{results}/moe_one_rank.csv")
    sweep = rows(f"{results}/moe_sweep.csv")
    for r in one + sweep:
        r["batch"] = str(int(float(r["batch"])))
    check = lambda v, goal: "met" if v >= goal else "not met"
    lines = []
    b1, b16 = pick(one, test="tg", batch="1"), pick(one, test="tg", batch="16")
    if b1:
        lines.append(f"| batch-1 decode, bytes actually read | {float(b1['pct_bw']):.0f}% of read bandwidth | >= 75% | "
                     f"{check(float(b1['pct_bw']), 75)} |")
    if b1 and b16:
        ratio = float(b16["tps_mean"]) / float(b1["tps_mean"])
        lines.append(f"| batch-16 vs batch-1 decode throughput | {ratio:.2f}x | >= 3x | {check(ratio, 3)} |")
    base = pick(sweep, test="tg", batch="16", layout="tp 1 x pp 1 x dp 1")
    two = [r for r in sweep if r["test"] == "tg" and r["batch"] == "16" and r["ranks"] == "2"]
    best = max(two, key=lambda r: float(r["tps_mean"]), default=None)
    if base and best:
        ratio = float(best["tps_mean"]) / float(base["tps_mean"])
        lines.append(f"| 2 tb5 hosts vs 1 (one core each), tg b16 | {ratio:.2f}x ({best['layout']}) | >= 1.7x | "
                     f"{check(ratio, 1.7)} |")

    # experts vs tensor: tok/s by batch from the sweep, bytes and expert load from generate
    split_rows = []
    for split in ("experts", "tensor"):
        tps = []
        for b in ("1", "16", "64"):
            r = pick(sweep, test="tg", batch=b, layout=f"tp 2 x pp 1 x dp 1 (moe {split})")
            tps.append(f"{float(r['tps_mean']):.1f}" if r else "-")
        g = json.load(open(f"{results}/moe_generate_{split}.json"))
        sent = sum(r["bytes_sent"] for r in g["ranks"]) / 1e6
        share = g["expert_load"]["busiest_rank_share"]
        split_rows.append(f"| {split} | " + " | ".join(tps) + f" | {g['generated_tokens_per_s']:.1f} | {sent:.1f} | "
                          f"{100 * share:.1f}% |")
    same = open(f"{results}/moe_generate_same_tokens").read().strip()
    one_tps = [pick(sweep, test="tg", batch=b, layout="tp 1 x pp 1 x dp 1") for b in ("1", "16", "64")]
    one_line = "| one host | " + " | ".join(f"{float(r['tps_mean']):.1f}" if r else "-" for r in one_tps) + " | | | |"

    print(f"""## Mixture of experts (issue 11)

`bash scripts/bench_moe` on {datetime.date.today()} (commit {sh(f"git -C {results} rev-parse --short HEAD")}), {reps}
timed repetitions. Model: `make_model --preset moe-1b`, Mixtral layout, 4 layers, dim 2048, 8 experts of 2048, top 2,
vocab 32000, bf16, 1.15 GB (0.27 B of the 0.58 B parameters active per token). The GB/s column counts the bytes
actually read: every step's attention, routers and head, plus each routed expert once per step that uses it (each rank
counts its own experts' reads).

| target | measured | goal | |
|---|---|---|---|
""" + "\n".join(lines) + f"""

### One rank, all cores (`meshlm bench --tests tg --batch 1,16,64 --gen 16`)

{table(one)}

### Two vcluster tb5 hosts, one core each (`scripts/sweep --layouts "tp1 tp2-experts tp2-tensor pp2"`)

{table(sweep)}

### `--moe-split experts` vs `tensor` (tp2 on two tb5 hosts)

tok/s from the sweep above (decode); generate: 64 requests of 9 prompt and 16 generated tokens at `--max-batch 16`,
generated tok/s, MB sent by both ranks, and the busiest rank's share of the group's expert work (even: 50%). The two
modes' outputs were {'identical' if same == 'same' else 'NOT identical'}.

| split | tg b1 | tg b16 | tg b64 | generate tok/s | sent MB | busiest rank |
|---|---|---|---|---|---|---|
{one_line}
""" + "\n".join(split_rows) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
