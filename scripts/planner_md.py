#!/usr/bin/env python3
"""The "planner" section of bench/RESULTS.md from scripts/bench_planner's files in bench/results.

    planner_md.py RESULTS_DIR LIMIT
"""
import glob
import json
import os
import re
import sys


def tok_s(path):
    j = json.load(open(path))
    return j["generated_tokens_per_s"], j["layout"]


def layout_name(lay):
    return f"tp {lay['tp']} x pp {lay['pp']} x dp {lay['dp']}" + (
        f" ({','.join(map(str, lay['layer_counts']))})" if lay["pp"] > 1 else "")


def main(results, limit):
    out = ["## Layout planner (vcluster, one core per node)", ""]
    out.append("Generated tokens/s of 64 requests (32-96 prompt tokens, 32 generated, batch 8 per replica) on the "
               "Llama-3.2-1B-geometry model (4 layers, bf16, 1.01 GB), `--threads 1` per rank, the automatic layout. "
               "The nodes share this machine's two cores and its memory bandwidth, so three nodes cannot go past two.")
    out += ["", "| link | hosts | layout chosen | tok/s | vs one host |", "|---|---|---|---|---|"]
    for profile in ("tb5", "1gbe"):
        one = None
        for n in (1, 2, 3):
            path = f"{results}/planner_run_fits_{profile}_{n}.json"
            if not os.path.exists(path):
                continue
            t, lay = tok_s(path)
            one = one or t
            out.append(f"| {profile} | {n} | {layout_name(lay)} | {t:.1f} | {t / one:.2f}x |")
    out += ["", f"With `--memory-limit {limit}` per host (one copy does not fit on a host): the planner's ranking "
            "(`meshlm plan`), its prediction, and each layout that fits run as a sweep.", "",
            "| link | hosts | layout | predicted tok/s | measured tok/s | measured / predicted | planner's rank | "
            "auto chose it |", "|---|---|---|---|---|---|---|---|"]
    for plan_path in sorted(glob.glob(f"{results}/planner_plan_*.json")):
        profile, n = re.match(r".*planner_plan_(\w+?)_(\d+)\.json", plan_path).groups()
        plan = json.load(open(plan_path))
        auto = json.load(open(f"{results}/planner_run_limit_{profile}_{n}_auto.json"))["layout"]
        measured = []
        for rank, row in enumerate(plan["rows"], 1):
            if not row["fits"]:
                continue
            tag = row["flags"].replace(" ", "_").replace(",", ".").replace("-", "")
            path = f"{results}/planner_run_limit_{profile}_{n}_{tag}.json"
            if not os.path.exists(path):
                continue
            t, lay = tok_s(path)
            chosen = auto["tp"] == row["tp"] and auto["pp"] == row["pp"]
            measured.append((t, chosen))
            out.append(f"| {profile} | {n} | {layout_name(lay)} | {row['tok_s']:.1f} | {t:.1f} | "
                       f"{t / row['tok_s']:.2f} | {rank} | {'yes' if chosen else ''} |")
        if measured:
            best = max(measured)[0]
            picked = [t for t, c in measured if c]
            if picked:
                out.append(f"| {profile} | {n} | *auto's choice / fastest measured* | | | "
                           f"{picked[0] / best:.2f} | | |")
    out += ["", "- Three nodes share this machine's two cores. The probe measures each rank's sgemm rate with all ranks "
            "running at once, but during tensor parallelism across three nodes the ranks waiting in an all-reduce "
            "spin on the cores the computing rank needs, which no real host does to another: expect the tp 3 "
            "predictions to be above the measurement there.", ""]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.stdout.write(main(*sys.argv[1:]))
