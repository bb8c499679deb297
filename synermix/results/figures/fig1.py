"""Figure 1: probability that a shuffle pairs an image with its own class, vs classes and batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synermix.results.analysis import intra_class_pair_probability

NUM_CLASSES = (2, 4, 8, 16, 32, 64, 128, 256)
BATCH_SIZES = (16, 32, 64, 128)
TRIALS = {"smoke": 500, "cpu": 20_000, "paper": 20_000}  # shuffles simulated per point


def simulate(num_classes: int, batch_size: int, trials: int, rng: np.random.Generator) -> float:
    """Fraction of (image, partner) pairs of the same class over `trials` random batches and shuffles."""
    labels = rng.integers(0, num_classes, (trials, batch_size))
    perm = np.argsort(rng.random((trials, batch_size)), axis=1)
    return float((labels == np.take_along_axis(labels, perm, axis=1)).mean())


def table(scale: str = "cpu", seed: int = 0) -> pd.DataFrame:
    """num_classes, batch_size, analytic and simulated probability for the figure's grid."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "num_classes": k,
            "batch_size": b,
            "analytic": intra_class_pair_probability(k, b),
            "simulated": simulate(k, b, TRIALS[scale], rng),
            "trials": TRIALS[scale],
        }
        for b in BATCH_SIZES
        for k in NUM_CLASSES
    ]
    return pd.DataFrame(rows)


def make(out_dir: Path, scale: str = "cpu") -> pd.DataFrame:
    """Write fig1.csv and fig1.png under `out_dir`; returns the table."""
    import matplotlib  # matplotlib: ~1 s, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: ~1 s, only when a figure is drawn

    data = table(scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    data.to_csv(out_dir / "fig1.csv", index=False)
    fig, ax = plt.subplots(figsize=(6, 4))
    for b, group in data.groupby("batch_size"):
        (line,) = ax.plot(group["num_classes"], 100 * group["analytic"], label=f"batch {b}")
        ax.plot(group["num_classes"], 100 * group["simulated"], "o", color=line.get_color(), markersize=4)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of classes")
    ax.set_ylabel("intra-class mixup probability (%)")
    ax.set_title("Figure 1: same-class pairs in a MixUp shuffle\n(lines: closed form; dots: simulated)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "fig1.png", dpi=150)
    plt.close(fig)
    return data
