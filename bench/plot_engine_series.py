"""Draws docs/engine_series.png from series of consecutive runs of bench/engine_dag.py, one file
per commit (docs/engine_series_<commit>.txt: lines `-- run N HH:MM:SS`, then the bench's rows;
`#` lines are comments). Each point is one run's ratio to the floor (the median of its rounds),
per shape and commit, the bar the series' median; crosses are the chain against its serial
floor. Needs matplotlib, which batchd does not depend on:

    python3 -m venv /tmp/plotenv && /tmp/plotenv/bin/pip install matplotlib
    /tmp/plotenv/bin/python bench/plot_engine_series.py 8e51fbd 4e4ed09 5bbb874
"""

import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

SHAPES = ("chain", "fanout", "layered")
COLOURS = ("#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e")
docs = Path(__file__).resolve().parents[1] / "docs"
commits = sys.argv[1:] or ["4e4ed09"]
fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=110)
width = 0.8 / len(commits)
for c, commit in enumerate(commits):
    ratios: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    serial: list[float] = []
    for line in (docs / f"engine_series_{commit}.txt").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] in SHAPES:
            ratios[fields[0]].append(float(fields[3]))
            if fields[0] == "chain":
                serial.append(float(fields[6]))
    colour = COLOURS[c % len(COLOURS)]
    runs = len(ratios["chain"])
    for i, shape in enumerate(SHAPES):
        x = i - 0.4 + width * (c + 0.5)
        ax.scatter([x] * runs, ratios[shape], color=colour, s=14,
                   label=f"{commit} ({runs} runs)" if i == 0 else None)
        ax.hlines(statistics.median(ratios[shape]), x - width / 3, x + width / 3, color=colour)
    ax.scatter([-0.4 + width * (c + 0.5) + width / 4] * runs, serial, color=colour, marker="x", s=14,
               label="chain vs its serial floor" if c == len(commits) - 1 else None)
ax.axhline(1.5, color="#d62728", linestyle="--", linewidth=1, label="target 1.5x")
ax.set_xticks(range(len(SHAPES)), ["chain", "fan-out", "layered"])
ax.set_ylabel("trigger to SUCCESS / floor")
ax.set_ylim(1.0, 2.0)
ax.set_title("1,000 `true` tasks, parallelism 2: consecutive runs per commit (bar: median)")
ax.legend(fontsize=7, loc="upper right")
fig.tight_layout()
fig.savefig(str(docs / "engine_series.png"))
