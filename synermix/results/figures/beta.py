"""Figure 10: final validation accuracy vs beta for w-RA, w-RA&ER(M) and w-RA&ER(MM); beta = 0 is the
method without its intra-class term (wo-RA&ER, w-ER(M), w-ER(MM) respectively)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from synermix.results.figures.plots import method_colors, save, scenario_panels
from synermix.results.figures.runs import FigureRuns
from synermix.results.figures.spec import paper_name

# method with an intra-class term -> the preset it reduces to at beta = 0
REDUCES_TO = {"intra": "baseline", "synermix": "mixup", "synermix_mm": "manifold_mixup"}
COLUMNS = ["scenario", "label", "method", "paper_name", "beta", "val_acc", "run_method"]


def table(runs: FigureRuns) -> Optional[pd.DataFrame]:
    """Validation runs (phase=val, the protocol's split and seed) over each method's beta_grid, plus beta=0."""
    rows = []
    for scenario in runs.spec.scenarios:
        for method, reference in REDUCES_TO.items():
            grid = runs.beta_grid(scenario, method)
            points = [(0.0, reference, runs.val(scenario, reference))]
            points += [(beta, method, runs.val(scenario, method, beta)) for beta in grid]
            rows += [
                {
                    "scenario": scenario.key,
                    "label": scenario.label,
                    "method": method,
                    "paper_name": paper_name(method),
                    "beta": beta,
                    "val_acc": acc,
                    "run_method": run_method,
                }
                for beta, run_method, acc in points
            ]
    return None if runs.plan else pd.DataFrame(rows, columns=COLUMNS)


def make(runs: FigureRuns, out_dir: Path) -> Optional[pd.DataFrame]:
    """Write fig10.png (one panel per scenario, a line per method) and fig10.csv."""
    data = table(runs)
    if data is None:
        return None
    fig, panels = scenario_panels(data)
    colors = method_colors(len(REDUCES_TO))
    for ax, part in panels:
        for color, method in zip(colors, REDUCES_TO):
            line = part[part["method"] == method].sort_values("beta")
            ax.plot(line["beta"], line["val_acc"], "o-", color=color, label=paper_name(method), markersize=4)
        ax.set_title(part["label"].iloc[0], fontsize=9)
        ax.set_xlabel("beta (0: without the intra-class term)")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
    panels[0][0].legend(fontsize=7)
    fig.suptitle(
        f"Figure 10: validation accuracy vs beta\n(stratified validation split), scale {runs.spec.scale}", fontsize=10
    )
    save(fig, data, out_dir, "fig10")
    return data
