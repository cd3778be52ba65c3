#!/usr/bin/env python3
"""Writes the MLX affine section of bench/RESULTS.md to stdout from what scripts/bench_mlx measured.

    mlx_md.py RESULTS_DIR REPS
"""
import datetime
import sys

from results_md import pick, rows, sh, table


def main(results, reps):
    one = rows(f"{results}/mlx_one_rank.csv")
    for r in one:
        r["batch"] = str(int(float(r["batch"])))
    tg = {r["dtype"]: r for r in one if r["test"] == "tg"}
    check = lambda v, goal: "met" if v >= goal else "not met"
    lines = []
    bf16 = tg.get("bfloat16")
    for dtype, name in (("mlx4 g64", "MLX 4-bit"), ("mlx8 g64", "MLX 8-bit")):
        r = tg.get(dtype)
        if r:
            lines.append(f"| {name} batch-1 decode, packed bytes | {float(r['pct_bw']):.0f}% of read bandwidth | "
                         f">= 80% | {check(float(r['pct_bw']), 80)} |")
    if bf16 and "mlx4 g64" in tg:
        ratio = float(tg["mlx4 g64"]["tps_mean"]) / float(bf16["tps_mean"])
        lines.append(f"| MLX 4-bit vs bf16 decode | {ratio:.2f}x | >= 3x | {check(ratio, 3)} |")
    pp4 = pick(one, test="pp", dtype="mlx4 g64")
    if pp4:
        lines.append(f"| MLX 4-bit prefill, 512 tokens | {float(pp4['pct_sgemm']):.0f}% of sgemm | >= 65% | "
                     f"{check(float(pp4['pct_sgemm']), 65)} |")
    speed = []
    for dtype in ("bfloat16", "Q8_0", "Q4_0", "mlx8 g64", "mlx4 g64"):
        r = tg.get(dtype)
        if r and bf16:
            speed.append(f"| {dtype} | {float(r['size_gb']):.2f} | {float(r['tps_mean']):.1f} | "
                         f"{float(r['tps_mean']) / float(bf16['tps_mean']):.2f}x |")
    print(f"""## MLX affine weights (issue 12)

`bash scripts/bench_mlx` on {datetime.date.today()} (commit {sh(f"git -C {results} rev-parse --short HEAD")}), {reps}
timed repetitions. Model: `make_model --preset llama-3.2-1b --layers 4` (bf16), and `mlx_convert --bits 4|8 --group 64`
copies of it (embedding and head quantized too). The GB/s column counts the bytes each holds: packed words plus fp32
scales and biases for MLX. `--weight-dtype q8_0|q4_0` quantize the bf16 model at load.

| target | measured | goal | |
|---|---|---|---|
""" + "\n".join(lines) + """

| weights | GB | decode t/s, batch 1 | vs bf16 |
|---|---|---|---|
""" + "\n".join(speed) + f"""

{table(one)}
""")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
