"""Figure 12: w-RA synthesizing from original-view features (Eq. 8) vs augmented-view ones (w-RA(aug),
Eq. 7) at two betas, per scenario (e.g. with and without cutout)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd

from synermix.results.figures.accuracy import accuracy_rows, add_paired, markdown  # noqa: F401 (markdown: printed by scripts/figures.py)
from synermix.results.figures.plots import method_colors, save, scenario_panels
from synermix.results.figures.runs import FigureRuns

METHODS = ("intra", "intra_aug")


def versus_original_views(row: dict, scenario: List[dict]) -> Optional[dict]:
    """For w-RA(aug), w-RA at the same beta in the same scenario; else none."""
    if row["method"] != "intra_aug":
        return None
    return next((r for r in scenario if r["method"] == "intra" and r["beta"] == row["beta"]), None)


def table(runs: FigureRuns) -> Optional[pd.DataFrame]:
    """Test accuracy over the spec's seeds for both methods at each of the spec's betas, per scenario, w-RA(aug)
    paired by seed with w-RA at the same beta."""
    betas = runs.spec.options.get("betas", [0.1, 0.5])
    data = accuracy_rows(runs, ((s, m, b) for s in runs.spec.scenarios for b in betas for m in METHODS))
    return None if data is None else add_paired(data, "vs_original_views", versus_original_views)


def make(runs: FigureRuns, out_dir: Path) -> Optional[pd.DataFrame]:
    """Write fig12.png (per scenario: bars per beta, original vs augmented views) and fig12.csv."""
    data = table(runs)
    if data is None:
        return None
    fig, panels = scenario_panels(data, ncols=3)
    colors = method_colors(2)
    width = 0.38
    for ax, part in panels:
        betas = sorted(part["beta"].unique())
        x = np.arange(len(betas))
        for i, (method, name) in enumerate(zip(METHODS, ("original views (w-RA)", "augmented views (w-RA(aug))"))):
            rows = part[part["method"] == method].set_index("beta").reindex(betas)
            ax.bar(
                x + (i - 0.5) * width,
                rows["acc_mean"],
                width,
                yerr=rows["acc_std"].fillna(0),
                capsize=3,
                color=colors[i],
                label=name,
            )
        low = np.nanmin(part["acc_mean"] - part["acc_std"].fillna(0))
        high = np.nanmax(part["acc_mean"] + part["acc_std"].fillna(0))
        ax.set_ylim(max(0.0, low - max(0.5, 0.3 * (high - low))), min(100.0, high + max(0.5, 0.3 * (high - low))))
        ax.set_xticks(x)
        ax.set_xticklabels([f"beta={b:g}" for b in betas])
        ax.set_title(part["label"].iloc[0], fontsize=9)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(axis="y", alpha=0.3)
    panels[0][0].legend(fontsize=7)
    fig.suptitle(
        f"Figure 12: synthesizing from original vs augmented views\nmean ± std over {runs.spec.seeds} "
        f"seed(s), scale {runs.spec.scale}",
        fontsize=10,
    )
    save(fig, data, out_dir, "fig12")
    return data
