"""Draws docs/engine_series.png from docs/engine_series.txt: consecutive runs of
bench/engine_dag.py on one commit (lines `-- run N HH:MM:SS`, then the bench's rows). Each
point is one run's ratio to the floor (the median of its rounds), per shape; the chain also
against its serial floor. Needs matplotlib, which batchd does not depend on:

    python3 -m venv /tmp/plotenv && /tmp/plotenv/bin/pip install matplotlib
    /tmp/plotenv/bin/python bench/plot_engine_series.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

docs = Path(__file__).resolve().parents[1] / "docs"
ratios: dict[str, list[float]] = {}
dag: dict[str, list[float]] = {}
for line in (docs / "engine_series.txt").read_text().splitlines():
    fields = line.split()
    if fields and fields[0] in ("chain", "fanout", "layered"):
        ratios.setdefault(fields[0], []).append(float(fields[3]))
        dag.setdefault(fields[0], []).append(float(fields[6]))
fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
for i, (shape, values) in enumerate(ratios.items()):
    ax.scatter([i] * len(values), values, color="#1f77b4", label="vs the floor" if i == 0 else None)
    ax.hlines(sorted(values)[len(values) // 2 - 1:len(values) // 2 + 1], i - 0.15, i + 0.15, color="#1f77b4")
ax.scatter([0.15] * len(dag["chain"]), dag["chain"], color="#1f77b4", marker="x", label="chain vs its serial floor")
ax.axhline(1.5, color="#d62728", linestyle="--", linewidth=1, label="target 1.5x")
ax.set_xticks(range(len(ratios)), ["chain", "fan-out", "layered"])
ax.set_ylabel("trigger to SUCCESS / floor")
ax.set_ylim(1.0, 2.0)
ax.set_title(f"1,000 `true` tasks, parallelism 2: {len(ratios['chain'])} consecutive runs, one commit")
ax.legend(fontsize=7, loc="upper right")
fig.tight_layout()
fig.savefig(str(docs / "engine_series.png"))
