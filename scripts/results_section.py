#!/usr/bin/env python3
"""Puts a markdown section into bench/RESULTS.md between <!-- NAME --> and <!-- /NAME --> (appended when absent), so
that scripts/bench_moe and scripts/bench_mlx can each refresh their own part.

    results_section.py RESULTS_MD NAME SECTION_FILE
"""
import os
import sys


def main(path, name, section_file):
    section = open(section_file).read()
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{begin}\n{section}{end}\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    open(path, "w").write(text)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
