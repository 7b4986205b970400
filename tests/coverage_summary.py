#!/usr/bin/env python3
"""Per-crate and per-module coverage tables (Markdown) from `cargo llvm-cov report --json
--summary-only` (llvm-cov export's per-file summaries), for tests/coverage.sh and
docs/COVERAGE.md.

A crate is the first directory under the repository root (engine, s3d, …); a module is the
top-level module file of its src/ (src/store.rs, or src/identity/… counted as identity).

Usage: coverage_summary.py SUMMARY.json REPO_ROOT
"""

import json
import sys
from collections import defaultdict


def pct(covered, count):
    return f"{100.0 * covered / count:.1f} %" if count else "-"


def main():
    summary_path, root = sys.argv[1], sys.argv[2].rstrip("/") + "/"
    with open(summary_path) as f:
        data = json.load(f)["data"][0]
    # [lines count, lines covered, functions count, functions covered]
    crates = defaultdict(lambda: [0, 0, 0, 0])
    modules = defaultdict(lambda: [0, 0, 0, 0])
    for entry in data["files"]:
        name = entry["filename"]
        if not name.startswith(root):
            continue
        parts = name[len(root):].split("/")
        crate = parts[0]
        if len(parts) >= 3 and parts[1] == "src":
            module = parts[2][:-3] if parts[2].endswith(".rs") else parts[2]
        else:
            module = "/".join(parts[1:])
        s = entry["summary"]
        row = [s["lines"]["count"], s["lines"]["covered"],
               s["functions"]["count"], s["functions"]["covered"]]
        for table in (crates[crate], modules[(crate, module)]):
            for i, v in enumerate(row):
                table[i] += v

    def line(label, r):
        return (f"| {label} | {r[1]} / {r[0]} | {pct(r[1], r[0])} "
                f"| {r[3]} / {r[2]} | {pct(r[3], r[2])} |")

    head = "| {} | lines covered | lines | functions covered | functions |\n|---|---:|---:|---:|---:|"
    out = ["### Per crate", "", head.format("crate")]
    total = [0, 0, 0, 0]
    for crate in sorted(crates):
        out.append(line(f"`{crate}`", crates[crate]))
        total = [a + b for a, b in zip(total, crates[crate])]
    out.append(line("**total**", total))
    out += ["", "### Per module", "", head.format("module")]
    for crate, module in sorted(modules):
        out.append(line(f"`{crate}` {module}", modules[(crate, module)]))
    print("\n".join(out))


if __name__ == "__main__":
    main()
