"""Pictures of one evaluation: the confusion matrix and the reliability diagram (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from synermix.results.figures.plots import pyplot
from synermix.store.io import write_png_atomic

NAMED_TICKS = 100  # up to this many classes every row and column is labelled with its class name


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], path: Path, title: str) -> None:
    """The confusion matrix, each row (true class) normalised to the share of its images, class names on both axes
    (up to NAMED_TICKS classes; beyond, every k-th), counts written in the cells of small matrices."""
    plt = pyplot()
    n = len(classes)
    support = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, support, out=np.zeros(confusion.shape, dtype=float), where=support > 0)
    side = min(max(5.0, 0.22 * n + 2.5), 26.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's images")
    step = 1 if n <= NAMED_TICKS else int(np.ceil(n / NAMED_TICKS))
    ticks = np.arange(0, n, step)
    font = max(4.0, min(10.0, 360.0 / max(n, 1)))
    ax.set_xticks(ticks)
    ax.set_xticklabels([classes[int(i)] for i in ticks], rotation=90, fontsize=font)
    ax.set_yticks(ticks)
    ax.set_yticklabels([classes[int(i)] for i in ticks], fontsize=font)
    if n <= 20:
        for (i, j), count in np.ndenumerate(confusion):
            if count:
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="white" if shares[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    write_png_atomic(path, fig)
    plt.close(fig)


def plot_reliability(
    count: np.ndarray, confidence: np.ndarray, correct: np.ndarray, ece: float, path: Path, title: str
) -> None:
    """Accuracy against mean confidence per equal-width confidence bin (bar width: the bin), the diagonal of perfect
    calibration, the gap shaded, and the share of images per bin below."""
    plt = pyplot()
    bins = len(count)
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    seen = count > 0
    accuracy = np.divide(correct, count, out=np.zeros(bins), where=seen)
    mean_conf = np.divide(confidence, count, out=centres.copy(), where=seen)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.2, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centres[seen], accuracy[seen], width=1 / bins, edgecolor="black", color="#4c72b0", label="accuracy")
    top.bar(
        centres[seen],
        (mean_conf - accuracy)[seen],
        bottom=accuracy[seen],
        width=1 / bins,
        color="#dd8452",
        alpha=0.5,
        edgecolor="#dd8452",
        label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"{title}\nECE {100 * ece:.2f}% ({bins} bins)", fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, count / max(count.sum(), 1), width=1 / bins, color="gray", edgecolor="black")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence (top-1 softmax probability)")
    bottom.set_ylabel("share of images")
    fig.tight_layout()
    write_png_atomic(path, fig)
    plt.close(fig)
