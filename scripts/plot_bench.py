#!/usr/bin/env python3
"""Plots of a `meshlm bench` / scripts/sweep CSV: tokens/s by batch size, and each row against its ceilings.

    /usr/bin/python3 scripts/plot_bench.py sweep.csv OUT_DIR      (python3-matplotlib from Debian)
Writes OUT_DIR/throughput.png and OUT_DIR/roofline.png.
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out):
    rows = list(csv.DictReader(open(path)))
    if not rows:
        sys.exit(f"{path}: no rows")
    series = defaultdict(list)  # (test, label, layout) -> [(batch, t/s, sd)]
    for r in rows:
        series[(r["test"], r["label"], r["layout"])].append(
            (int(float(r["batch"])), float(r["tps_mean"]), float(r["tps_sd"])))

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, test, title in ((axes[0], "pp", "prefill (pp)"), (axes[1], "tg", "decode (tg)")):
        for (t, label, layout), points in sorted(series.items()):
            if t != test:
                continue
            points.sort()
            ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                        marker="o", capsize=3, label=f"{layout} ({label})" if label else layout)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequences per replica")
        ax.set_ylabel("tokens/s")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out}/throughput.png", dpi=110)

    fig, ax = plt.subplots(figsize=(12, 4.5))
    names = [f"{r['test']} b{int(float(r['batch']))}\n{r['layout'].replace(' x ', '')}\n{r['label']}" for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [float(r["pct_bw"]) for r in rows], width=0.4, label="% of read bandwidth")
    ax.bar([i + 0.2 for i in x], [float(r["pct_sgemm"]) for r in rows], width=0.4, label="% of sgemm rate")
    ax.axhline(80, color="gray", lw=0.8, ls="--")
    ax.axhline(70, color="gray", lw=0.8, ls=":")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, fontsize=6)
    ax.set_ylabel("% of the ceiling measured in the same run")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{out}/roofline.png", dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
