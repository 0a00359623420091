"""Draws docs/engine_ab.png from the first A/B table of docs/performance.md "Engine" (the ratios
are copied here by hand). Needs matplotlib, which batchd does not depend on:

    python3 -m venv /tmp/plotenv && /tmp/plotenv/bin/pip install matplotlib
    /tmp/plotenv/bin/python bench/plot_engine_ab.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

# bench/engine_ab.sh 81b5a50 3, 2026-12-06 09:21-09:24 UTC: per pair (old, new) ratio to the floor
runs = {
    "chain":   ([2.41, 2.57, 2.28], [1.73, 1.70, 1.89]),
    "fan-out": ([1.66, 1.67, 1.63], [1.48, 1.56, 1.39]),
    "layered": ([1.86, 1.90, 1.87], [1.67, 1.74, 1.71]),
}
dag = {"chain": ([1.71, 1.80, 1.56], [1.23, 1.20, 1.23])}
fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
x = range(len(runs))
for i, (shape, (old, new)) in enumerate(runs.items()):
    ax.scatter([i - 0.12] * 3, old, color="#999999", marker="o", label="session start (81b5a50)" if i == 0 else None)
    ax.scatter([i + 0.12] * 3, new, color="#1f77b4", marker="o", label="this session (6456633)" if i == 0 else None)
ax.scatter([0.12] * 3, dag["chain"][1], color="#1f77b4", marker="x", label="chain vs its serial floor (new)")
ax.axhline(1.5, color="#d62728", linestyle="--", linewidth=1, label="target 1.5x")
ax.set_xticks(list(x), list(runs))
ax.set_ylabel("trigger to SUCCESS / floor")
ax.set_ylim(1.0, 2.7)
ax.set_title("1,000 `true` tasks, parallelism 2: three alternated A/B pairs")
ax.legend(fontsize=7, loc="upper right")
fig.tight_layout()
fig.savefig(str(Path(__file__).resolve().parents[1] / "docs" / "engine_ab.png"))
