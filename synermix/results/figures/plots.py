"""Shared drawing: a grid of panels, bars with error bars, and writing figN.png + figN.csv atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import pandas as pd

from synermix.store.io import write_png_atomic, write_text_atomic


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib  # matplotlib: ~1 s, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: ~1 s, only when a figure is drawn

    return plt


def panel_grid(n: int, ncols: int = 4, size: Tuple[float, float] = (4.2, 3.4)):
    """A figure with `n` panels in rows of `ncols`: (figure, list of the n axes); spare cells hidden."""
    plt = pyplot()
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat: List = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def scenario_panels(data: pd.DataFrame, ncols: int = 4):
    """A panel per scenario of `data`, in first-seen order: (figure, [(axes, that scenario's rows), ...])."""
    keys = list(dict.fromkeys(data["scenario"]))
    fig, axes = panel_grid(len(keys), ncols)
    return fig, [(ax, data[data["scenario"] == key]) for ax, key in zip(axes, keys)]


def bars(ax, labels: Sequence[str], mean_values: Sequence[float], std_values: Sequence[float], colors=None) -> None:
    """One bar per label with a ±std error bar and the mean written above it; y-range fitted to the bars."""
    x = np.arange(len(labels))
    means, stds = np.asarray(mean_values, dtype=float), np.nan_to_num(np.asarray(std_values, dtype=float))
    ax.bar(x, np.nan_to_num(means), yerr=stds, capsize=3, color=colors)
    for xi, m, s in zip(x, means, stds):
        if not np.isnan(m):
            ax.text(xi, m + s, f"{m:.2f}", ha="center", va="bottom", fontsize=7)
    finite = means[~np.isnan(means)]
    if finite.size:
        lo, hi = float((finite - stds[~np.isnan(means)]).min()), float((finite + stds[~np.isnan(means)]).max())
        pad = max(0.5, 0.15 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(100.0, hi + 2 * pad))
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def method_colors(n: int):
    """n distinct colours from matplotlib's tab10 cycle."""
    cmap = pyplot().get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def save(fig, table: pd.DataFrame, out_dir: Path, name: str) -> Path:
    """Write out_dir/name.png and out_dir/name.csv (the plotted numbers); returns the PNG's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / f"{name}.csv", table.to_csv(index=False))
    fig.tight_layout()
    png = out_dir / f"{name}.png"
    write_png_atomic(png, fig)
    pyplot().close(fig)
    return png
