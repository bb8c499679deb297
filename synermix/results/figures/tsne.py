"""Figures 2 and 8: t-SNE of test-set penultimate features per method, with cohesion scores beside each."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.manifold import TSNE

from synermix.errors import RunError
from synermix.results.figures.plots import panel_grid, pyplot, save
from synermix.results.figures.runs import FigureRuns
from synermix.results.figures.spec import paper_name
from synermix.store.io import write_text_atomic
from synermix.store.rundir import CHECKPOINT, FEATURES, SUMMARY, RunDir
from synermix.train.cohesion import COHESION_COLUMNS, cohesion_metrics

TITLES = {
    "fig2": "Figure 2: t-SNE of test features — baseline, Manifold MixUp, SynerMix-Intra",
    "fig8": "Figure 8: t-SNE of test features per method",
}


def embed(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, PCA initialisation) of `features`; perplexity capped for small sets."""
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        np.asarray(features, dtype=np.float64)
    )


def load_features(run_dir: Path):
    """(features, labels) a finished run saved from its final evaluation."""
    path = Path(run_dir) / FEATURES
    if not path.exists():
        raise RunError(
            f"{path} is missing: the run finished without saving its final test features (runs "
            "made before features.npz existed, or with train.cohesion_samples=0). Delete "
            f"{Path(run_dir) / SUMMARY} and {Path(run_dir) / CHECKPOINT} to re-run it, or re-train "
            "with train.cohesion_samples > 0."
        )
    data = RunDir(run_dir).read_features()
    return data["features"], data["labels"]


def tables(runs: FigureRuns):
    """(points, scores): t-SNE coordinates per method, and each method's cohesion scores and accuracy,
    from the first test seed's run of the spec's scenario; (None, None) when only planning."""
    scenario = runs.spec.scenario
    points, scores = [], []
    for method in runs.spec.methods:
        result = runs.protocol(scenario, method)
        if result is None:
            continue
        test = next((t for t in result["test"] if t["final_acc"] is not None), None)
        if test is None:
            continue
        features, labels = load_features(Path(test["run_dir"]))
        xy = embed(features, seed=test["seed"])
        points.append(
            pd.DataFrame(
                {
                    "method": method,
                    "paper_name": paper_name(method),
                    "index": np.arange(len(labels)),
                    "label": labels,
                    "tsne_x": xy[:, 0],
                    "tsne_y": xy[:, 1],
                }
            )
        )
        scores.append(
            {
                "scenario": scenario.key,
                "label": scenario.label,
                "method": method,
                "paper_name": paper_name(method),
                "seed": test["seed"],
                "final_acc": test["final_acc"],
                "n_points": len(labels),
                **cohesion_metrics(features, labels),
            }
        )
    if runs.plan:
        return None, None
    return pd.concat(points, ignore_index=True) if points else pd.DataFrame(), pd.DataFrame(scores)


def make(runs: FigureRuns, out_dir: Path) -> Optional[pd.DataFrame]:
    """Write <fig>.png (one t-SNE panel per method, scores in its title), <fig>.csv (the points) and
    <fig>_scores.csv (silhouette, Calinski-Harabasz, Davies-Bouldin, centroid distances per method)."""
    points, scores = tables(runs)
    if points is None:
        return None
    methods = list(dict.fromkeys(points["method"])) if len(points) else []
    fig, axes = panel_grid(max(1, len(methods)), ncols=3, size=(4.4, 4.4))
    cmap = pyplot().get_cmap("tab10" if points["label"].nunique() <= 10 else "hsv")
    for ax, method in zip(axes, methods):
        part = points[points["method"] == method]
        score = scores[scores["method"] == method].iloc[0]
        ax.scatter(part["tsne_x"], part["tsne_y"], c=part["label"], cmap=cmap, s=6, linewidths=0)
        ax.set_title(
            f"{paper_name(method)}: acc {score.final_acc:.2f}%\n"
            f"silhouette {score.silhouette:.3f}  DB {score.davies_bouldin:.2f}  "
            f"CH {score.calinski_harabasz:.0f}\nintra/inter distance {score.cohesion_ratio:.3f}",
            fontsize=8,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"{TITLES[runs.spec.name]}\n{runs.spec.scenario.label}, scale {runs.spec.scale} "
        "(scores on the plotted features; silhouette/CH higher and DB/ratio lower = tighter classes)",
        fontsize=9,
    )
    save(fig, points, out_dir, runs.spec.name)
    write_text_atomic(
        Path(out_dir) / f"{runs.spec.name}_scores.csv",
        scores[
            ["scenario", "label", "method", "paper_name", "seed", "final_acc", "n_points", *COHESION_COLUMNS]
        ].to_csv(index=False),
    )
    return points
