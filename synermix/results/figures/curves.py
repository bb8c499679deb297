"""Figures 7 and 11: test accuracy per epoch (mean ± std over seeds), with class cohesion per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd
from matplotlib.ticker import MaxNLocator

from synermix.results.figures.plots import method_colors, pyplot, save
from synermix.results.figures.runs import FigureRuns, read_metrics
from synermix.results.figures.spec import paper_name

COLUMNS = [
    "scenario",
    "label",
    "series",
    "method",
    "beta",
    "epoch",
    "n_seeds",
    "acc_mean",
    "acc_std",
    "cohesion_ratio_mean",
    "silhouette_mean",
]


def epoch_rows(scenario, series: str, method: str, result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Per-epoch mean/std over the test seeds of one protocol result (complete runs only)."""
    dirs = [t["run_dir"] for t in result["test"] if t["final_acc"] is not None]
    if not dirs:
        return []
    metrics = pd.concat([read_metrics(d) for d in dirs])
    stats = (
        metrics.groupby("epoch")
        .agg(
            n_seeds=("eval_acc", "size"),
            acc_mean=("eval_acc", "mean"),
            acc_std=("eval_acc", "std"),
            cohesion_ratio_mean=("cohesion_ratio", "mean"),
            silhouette_mean=("silhouette", "mean"),
        )
        .reset_index()
    )
    return [
        {
            "scenario": scenario.key,
            "label": scenario.label,
            "series": series,
            "method": method,
            "beta": result["chosen_beta"],
            **row,
        }
        for row in stats.to_dict("records")
    ]


def fig7_table(runs: FigureRuns) -> Optional[pd.DataFrame]:
    """Every scenario x method of the spec (the same runs as Figure 5's)."""
    rows = []
    for scenario in runs.spec.scenarios:
        for method in runs.spec.methods:
            result = runs.protocol(scenario, method)
            if result is not None:
                rows += epoch_rows(scenario, paper_name(method), method, result)
    return None if runs.plan else pd.DataFrame(rows, columns=COLUMNS)


def fig11_table(runs: FigureRuns) -> Optional[pd.DataFrame]:
    """w-RA with P = 1, 2, 3, 5 synthesized features per class (method.num_per_class), at the spec's beta."""
    values = runs.spec.options.get("values", [1, 2, 3, 5])
    beta = runs.spec.options.get("beta", 0.5)
    rows = []
    for scenario in runs.spec.scenarios:
        for p in values:
            result = runs.protocol(
                scenario, "intra", beta=beta, extra=[f"method.num_per_class={p}"], tag="" if p == 1 else f"_P{p}"
            )  # P=1 is the plain w-RA run
            if result is not None:
                rows += epoch_rows(scenario, f"P={p}", "intra", result)
    return None if runs.plan else pd.DataFrame(rows, columns=COLUMNS)


def draw(data: pd.DataFrame, title: str, with_cohesion: bool):
    """Accuracy curves per scenario (one column each); a second row of cohesion-ratio curves if asked."""
    plt = pyplot()
    scenarios = list(dict.fromkeys(data["scenario"]))
    nrows = 2 if with_cohesion else 1
    fig, axes = plt.subplots(nrows, len(scenarios), figsize=(5.2 * len(scenarios), 3.6 * nrows), squeeze=False)
    series = list(dict.fromkeys(data["series"]))
    colors = dict(zip(series, method_colors(len(series))))
    for col, key in enumerate(scenarios):
        part = data[data["scenario"] == key]
        for name, curve in part.groupby("series", sort=False):
            ax = axes[0][col]
            ax.plot(curve["epoch"], curve["acc_mean"], label=name, color=colors[name])
            ax.fill_between(
                curve["epoch"],
                curve["acc_mean"] - curve["acc_std"].fillna(0),
                curve["acc_mean"] + curve["acc_std"].fillna(0),
                color=colors[name],
                alpha=0.15,
            )
            if with_cohesion:
                axes[1][col].plot(curve["epoch"], curve["cohesion_ratio_mean"], label=name, color=colors[name])
        axes[0][col].set_title(part["label"].iloc[0], fontsize=9)
        axes[0][col].set_ylabel("test accuracy (%)")
        axes[0][col].grid(alpha=0.3)
        if with_cohesion:
            axes[1][col].set_ylabel("intra / inter-centroid distance\n(lower: tighter classes)")
            axes[1][col].grid(alpha=0.3)
        axes[-1][col].set_xlabel("epoch")
        for ax in axes[:, col]:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def make(runs: FigureRuns, out_dir: Path) -> Optional[pd.DataFrame]:
    """Write fig7 (accuracy + cohesion per epoch per method) or fig11 (accuracy per epoch per P)."""
    fig7 = runs.spec.name == "fig7"
    data = fig7_table(runs) if fig7 else fig11_table(runs)
    if data is None:
        return None
    title = (
        "Figure 7: test accuracy and feature cohesion per epoch"
        if fig7
        else f"Figure 11: w-RA with P linear interpolations per class (beta={runs.spec.options.get('beta', 0.5)})"
    )
    fig = draw(data, f"{title}\nmean ± std over {runs.spec.seeds} seed(s), scale {runs.spec.scale}", with_cohesion=fig7)
    save(fig, data, out_dir, runs.spec.name)
    return data
