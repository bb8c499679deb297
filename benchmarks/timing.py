"""Timing with a reported spread: round-robin repetitions after a warm-up, min / median / max of each figure."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import torch


@dataclass
class Row:
    """One figure of the benchmark table: `value` is the median over `reps` repetitions, `low`/`high` their min and
    max; `ratio` (median) and `ratio_low`/`ratio_high` likewise, each repetition's ratio taken within its round."""

    section: str
    name: str
    value: float
    unit: str
    ratio: Optional[float] = None
    target: str = ""
    passed: Optional[bool] = None
    low: Optional[float] = None
    high: Optional[float] = None
    ratio_low: Optional[float] = None
    ratio_high: Optional[float] = None
    reps: Optional[int] = None

    @classmethod
    def of(
        cls, section: str, name: str, samples: Sequence[float], unit: str, ratios: Optional[Sequence[float]] = None
    ) -> "Row":
        """A row from repeated measurements (and the per-round ratios to a reference, if any)."""
        row = cls(
            section, name, statistics.median(samples), unit, low=min(samples), high=max(samples), reps=len(samples)
        )
        if ratios:
            row.ratio, row.ratio_low, row.ratio_high = statistics.median(ratios), min(ratios), max(ratios)
        return row

    def check(self, target: str, passed: bool) -> "Row":
        """Attach a target and whether the median met it."""
        self.target, self.passed = target, bool(passed)
        return self


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so wall time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def drain(make: Callable[..., Iterable[Any]], *args: Any) -> None:
    """Consume everything make(*args) yields (one timed pass over a data pipeline)."""
    for _ in make(*args):
        pass


def round_robin(
    jobs: Dict[str, Callable[[], Any]], reps: int, warmup: int = 1, device: torch.device = torch.device("cpu")
) -> Dict[str, List[float]]:
    """Seconds of each job over `reps` rounds (after `warmup` untimed rounds); every round runs every job once,
    in turn, so a drift of the machine's speed hits all of them alike and per-round ratios cancel it."""
    seconds: Dict[str, List[float]] = {name: [] for name in jobs}
    for rnd in range(warmup + reps):
        for name, job in jobs.items():
            sync(device)
            start = time.perf_counter()
            job()
            sync(device)
            if rnd >= warmup:
                seconds[name].append(time.perf_counter() - start)
    return seconds


def per_round(samples: Sequence[float], reference: Sequence[float], invert: bool = False) -> List[float]:
    """Ratios sample / reference within each round (reference / sample with `invert`, for rates)."""
    return [(r / s) if invert else (s / r) for s, r in zip(samples, reference)]


def format_table(rows: List[Row]) -> str:
    """The printed table: each value and ratio as median [min, max] over its repetitions."""
    import pandas as pd

    def spread(median, low, high, digits: int) -> str:
        if median is None:
            return ""
        if low is None:
            return f"{median:.{digits}f}"
        return f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    table = pd.DataFrame(
        {
            "section": [r.section for r in rows],
            "name": [r.name for r in rows],
            "value (median [min, max])": [
                f"{spread(r.value, r.low, r.high, 1 if r.value >= 100 else 3)} {r.unit}" for r in rows
            ],
            "reps": [r.reps or "" for r in rows],
            "ratio (median [min, max])": [spread(r.ratio, r.ratio_low, r.ratio_high, 2) for r in rows],
            "target": [r.target for r in rows],
            "met": ["" if r.passed is None else ("yes" if r.passed else "NO") for r in rows],
        }
    )
    with pd.option_context("display.max_colwidth", 90, "display.width", 250):
        return table.to_string(index=False)


def write_csv(rows: List[Row], path) -> None:
    """The table's rows as CSV at `path` (folders created)."""
    from pathlib import Path

    import pandas as pd

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([r.__dict__ for r in rows]).to_csv(path, index=False)
