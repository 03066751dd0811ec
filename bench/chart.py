#!/usr/bin/python3
"""chart.py - the ratio flaxkv / :memory: per workload, from build/bench --csv.

USAGE
    build/bench --csv > build/bench.csv
    /usr/bin/python3 bench/chart.py build/bench.csv [bench/ratios.png]

Reads the "ratio" rows of the CSV (kind,workload,system,value,...) whose
system is "memory": flaxkv's median ns/op divided by the :memory: table's, as
the report prints them (a buffered read against the table's point read; a
figure whose correctness check failed has no ratio), and draws one horizontal
bar per workload on a log scale with the line at 1.0x (left of it flaxkv is
faster).  Needs Debian's python3-matplotlib (apt-get install
python3-matplotlib).
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402


LABELS = {
    "insert_autocommit": "1 insert, autocommit",
    "insert_autocommit_flush": "1 insert, autocommit + flush",
    "insert_1txn": "2 insert, 1 txn",
    "insert_1txn_flush": "2 insert, 1 txn + flush",
    "read_buffered": "3 point read, buffered",
    "read_flushed": "3 point read, flushed",
    "scan_count": "4 scan count(*)",
    "scan_order_by": "4 scan ORDER BY key",
    "vectors_write_flush": "5 vectors write + flush",
    "vectors_read": "5 vectors read",
    "join": "6 join 10k rows",
    "update_autocommit": "7 update 10%, autocommit",
    "delete_autocommit": "8 delete 10%, autocommit",
    "hot_keys_1thread": "9 hot keys, 1 thread",
    "hot_keys_4threads": "9 hot keys, 4 threads",
}


def ratios(path):
    """[(label, ratio)] in the order of the CSV: its "ratio" rows against :memory:."""
    out = []
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    # make echoes its commands on stdout too: the CSV starts at its header
    start = next((i for i, line in enumerate(lines) if line.startswith("kind,")), len(lines))
    for row in csv.DictReader(lines[start:]):
        if row.get("kind") == "ratio" and row.get("system") == "memory":
            w = row["workload"]
            out.append((LABELS.get(w, w.replace("_", " ")), float(row["value"])))
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: chart.py BENCH.csv [OUT.png]")
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(os.path.dirname(__file__), "ratios.png")
    data = ratios(sys.argv[1])
    if not data:
        sys.exit("chart.py: no workload with both a flaxkv and a :memory: figure in " + sys.argv[1])
    names = [w for w, _ in data][::-1]
    values = [r for _, r in data][::-1]
    colors = ["#2a9d48" if r <= 1.0 else "#d1495b" for r in values]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(data) + 1.6))
    ax.barh(names, values, color=colors)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    for y, r in enumerate(values):
        ax.text(r, y, f" {r:.2f}x", va="center", fontsize=8)
    lo, hi = min(values + [1.0]), max(values + [1.0])
    ax.set_xlim(lo / 1.6, hi * 2.2)
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo / 1.6 <= t <= hi * 2.2]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("flaxkv ns/op  /  :memory: ns/op   (log scale; < 1: flaxkv faster)")
    ax.set_title("flaxkv vs. the same table in :memory: (median of the run's repetitions)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
