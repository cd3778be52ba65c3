#!/usr/bin/env python3
"""Writes bench/RESULTS.md to stdout from what scripts/bench_results measured (called by it).

    results_md.py WORK_DIR RESULTS_DIR REPS
"""
import csv
import datetime
import json
import subprocess
import sys


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()


def rows(path):
    return list(csv.DictReader(open(path)))


def table(rs):
    out = ["| layout | net | weights | ranks | threads | test | t/s | weights GB/s (% of read bw) | GFLOP/s (% of sgemm) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        n = r["prompt"] if r["test"] == "pp" else r["gen"]
        out.append(f"| {r['layout']} | {r['label'] or '-'} | {r['dtype']} | {r['ranks']} | {r['threads']} {r['isa']} | "
                   f"{r['test']}{n} b{int(float(r['batch']))} | {float(r['tps_mean']):.2f} ± {float(r['tps_sd']):.2f} | "
                   f"{float(r['achieved_gbps']):.2f} ({float(r['pct_bw']):.0f}% of {float(r['read_gbps']):.1f}) | "
                   f"{float(r['achieved_gflops']):.1f} ({float(r['pct_sgemm']):.0f}% of {float(r['sgemm_gflops']):.1f}) |")
    return "\n".join(out)


def kernels(path):
    data = json.load(open(path))
    ctx = data["context"]
    out = [f"Ceilings in this run: read bandwidth {float(ctx['read_gbps']):.2f} GB/s, sgemm "
           f"{float(ctx['sgemm_gflops']):.1f} GFLOP/s ({ctx['threads']} thread(s), {ctx['isa']} kernels). "
           "Mean of the repetitions.", "",
           "| benchmark | ms | weights GB/s | GFLOP/s | % of read bw | % of sgemm |", "|---|---|---|---|---|---|"]
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "mean":
            continue
        ms = b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        out.append(f"| {b['run_name']} | {ms:.3f} | {b['weight_GBps']:.2f} | {b['GFLOPps']:.1f} | "
                   f"{b['pct_of_bw']:.0f}% | {b['pct_of_sgemm']:.0f}% |")
    return "\n".join(out)


def comm(work):
    """All-reduce time per message size, one column per form, one table per link."""
    forms = ["mpi_f32", "mpi_iallreduce_f32", "ours_f32", "ours_bf16"]
    out = []
    for net, title in (("shm", "shared memory (one host)"), ("tb5", "vcluster tb5"), ("1gbe", "vcluster 1gbe")):
        try:
            data = json.load(open(f"{work}/comm-{net}.json"))
        except OSError:
            continue
        us = {}
        for b in data["benchmarks"]:
            name = b["run_name"].split("/")  # allreduce/<form>/bytes:N/iterations:K/real_time
            size = int(name[2].split(":")[1])
            scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b["time_unit"]]
            us[(name[1], size)] = b["real_time"] * scale
        sizes = sorted({k[1] for k in us})
        out += [f"**{title}** (µs per all-reduce of 2 ranks; bytes = the fp32 payload)", "",
                "| bytes | " + " | ".join(forms) + " |", "|---" * (len(forms) + 1) + "|"]
        for n in sizes:
            out.append(f"| {n} | " + " | ".join(f"{us[(f, n)]:.1f}" if (f, n) in us else "-" for f in forms) + " |")
        out.append("")
    return "\n".join(out)


def pick(rs, **want):
    for r in rs:
        if all(str(r[k]) == str(v) for k, v in want.items()):
            return r
    return None


def main(work, results, reps):
    targets = rows(f"{results}/targets.csv")
    sweep = rows(f"{results}/sweep.csv")
    for r in targets + sweep:
        r["batch"] = str(int(float(r["batch"])))
    lines = []
    b1 = pick(targets, test="tg", batch="1", dtype="bfloat16")
    q8 = pick(targets, test="tg", batch="1", dtype="Q8_0")
    pp = pick(targets, test="pp", batch="1")
    b32 = pick(targets, test="tg", batch="32")
    check = lambda v, goal: "met" if v >= goal else "not met"
    if b1:
        lines.append(f"| batch-1 decode, 1.01 GB bf16 | {float(b1['pct_bw']):.0f}% of read bandwidth | >= 80% | "
                     f"{check(float(b1['pct_bw']), 80)} |")
    if pp:
        lines.append(f"| prefill, 512 tokens | {float(pp['pct_sgemm']):.0f}% of sgemm | >= 70% | "
                     f"{check(float(pp['pct_sgemm']), 70)} |")
    if b32:
        lines.append(f"| batch-32 decode | {float(b32['pct_sgemm']):.0f}% of sgemm | >= 70% | "
                     f"{check(float(b32['pct_sgemm']), 70)} |")
    for net in ("tb5", "1gbe"):
        one = pick(sweep, test="tg", batch="16", layout="tp 1 x pp 1 x dp 1")
        best = max((r for r in sweep if r["test"] == "tg" and r["batch"] == "16" and r["label"] == net
                    and r["ranks"] == "2"), key=lambda r: float(r["tps_mean"]), default=None)
        if one and best:
            ratio = float(best["tps_mean"]) / float(one["tps_mean"])
            goal = f"{check(ratio, 1.85)}" if net == "tb5" else ("met" if ratio >= 1 else "not met")
            lines.append(f"| 2 ranks vs 1 (one core each), {net}, tg b16 | {ratio:.2f}x ({best['layout']}) | "
                         f"{'>= 1.85x' if net == 'tb5' else '>= 1x'} | {goal} |")
    if q8 and b1:
        ratio = float(q8["tps_mean"]) / float(b1["tps_mean"])
        lines.append(f"| q8_0 batch-1 decode vs bf16 | {ratio:.2f}x | >= 1.7x | {check(ratio, 1.7)} |")
    acc = [l for l in open(f"{work}/quant_accuracy.txt") if "top-1 agreement" in l]
    for l in acc:
        dtype = l.split("]")[0].strip("[ ")
        pct = float(l.split("agreement ")[1].split("%")[0])
        goal = ">= 99%" if dtype == "q8_0" else "(reported)"
        lines.append(f"| {dtype} top-1 agreement with the goldens (teacher-forced) | {pct:.2f}% | {goal} | "
                     f"{check(pct, 99) if dtype == 'q8_0' else ''} |")

    cpu = sh("lscpu | sed -n 's/^Model name: *//p'")
    l3 = sh("lscpu | sed -n 's/^L3 cache: *//p'")
    mem = sh("free -g | awk '/Mem:/ {print $2}'")
    commit = sh(f"git -C {results} rev-parse --short HEAD 2>/dev/null")
    print(f"""# Benchmark results

Regenerated by `bash scripts/bench_results` on {datetime.date.today()} (commit {commit or 'unknown'}):
{cpu}, {sh('nproc')} cores, L3 {l3}, {mem} GiB, Open MPI {sh("ompi_info --version 2>/dev/null | head -1 | awk '{print $NF}'")},
OpenBLAS from Debian 12. Every percentage is against a ceiling measured in the same run, on the same ranks: streaming
read bandwidth (the faster of a plain sum and a four-rows-at-a-time read of 1 GiB) and OpenBLAS sgemm (512 x 2048 x 2048)
with as many threads as the kernels use. This is a shared virtual machine: absolute numbers drift by 5-10% between
runs, the ratios less. {reps} timed repetitions after a warm-up; t/s is mean ± sd.

The model throughout is `make_model --preset llama-3.2-1b --layers 4`: Llama-3.2-1B geometry truncated to 4 layers,
bf16, 1.01 GB, tied 128256 x 2048 head (half of the bytes).

## Targets (issue 5)

| target | measured | goal | |
|---|---|---|---|
""" + "\n".join(lines) + f"""

## One rank, all cores

`meshlm bench --tests pp --batch 1 --prompt 512`, `--tests tg --batch 1,32 --gen 16`, and
`--tests tg --batch 1 --gen 16 --weight-dtype q8_0`.

{table(targets)}

![against the ceilings](results/targets_roofline.png)

## Layouts on emulated links (`scripts/sweep`, one core per rank: `--threads 1`)

Two vcluster nodes, one rank each, for tp2 and pp2 (the "bf16 wire" rows: `--wire-dtype bf16`); tp1 runs on one node. `--tests pp --batch 1 --prompt 128` and
`--tests tg --batch 1,16 --gen 16`. Summed ceilings: each rank measures its own at the same time as the others.

{table(sweep)}

![throughput](results/sweep_throughput.png)
![against the ceilings](results/sweep_roofline.png)

## All-reduce through our Comm (`bench/bench_comm`, 2 ranks)

`mpi_f32`: MPI_Allreduce (the embedding's sum); `mpi_iallreduce_f32`: Open MPI's non-blocking form (start + wait);
`ours_f32` / `ours_bf16`: comm/async_allreduce.h, which the tensor-parallel layers use (`--wire-dtype f32|bf16`),
started and waited at once here (in the layers, each part's sum travels while the next part is computed).

{comm(work)}
## Kernels (`build/bench/bench_matmul --threads=N`)

`decode/*`: one step over 1 GiB of weights (4096 x 4096 matrices), beyond every cache. `batch/*`: one 2048 x 2048
matrix at n rows (cache-resident); `skinny_*` forces our SIMD kernel at every n, `matmul_*` is the default choice
(skinny kernel up to 32 rows, (convert +) sgemm above), `sgemm_f32_reference` is
OpenBLAS on fp32 weights.

### 1 thread

{kernels(f"{work}/kernels-1.json")}

### 2 threads

{kernels(f"{work}/kernels-2.json")}

Raw rows: `bench/results/*.csv` (and `.h5`, `/bench/<column>`).
""")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
