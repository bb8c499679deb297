"""Paired statistics over seeds: runs of two methods with the same seed share initialisation and batches, so
their accuracy differences are compared seed by seed (mean difference, 95% CI, paired t-test)."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import numpy as np

NA = "n/a"
LEVEL = 0.95  # confidence level of the intervals; `significant` means p < 1 - LEVEL
BOOTSTRAP_FROM = 10  # from this many pairs on, the interval is a percentile bootstrap instead of a t-interval
BOOTSTRAP_RESAMPLES = 10_000


def difference_stats(diffs: Sequence[float]) -> Dict[str, Any]:
    """n, mean, 95% CI (t-interval; percentile bootstrap from BOOTSTRAP_FROM values on) and the two-sided
    one-sample t-test p-value of `diffs` against 0 (= the paired t-test); fewer than two values: n/a."""
    from scipy import stats  # scipy's import costs ~1 s: only reports pay it

    d = np.asarray(list(diffs), dtype=float)
    n = int(d.size)
    if n < 2:
        return {"n": n, "mean": NA, "ci_low": NA, "ci_high": NA, "p": NA, "significant": NA, "interval": NA}
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:  # every pair differs by the same amount: no spread, the test degenerates to certainty
        p = 0.0 if mean != 0.0 else 1.0
        low = high = mean
        interval = "t"
    elif n >= BOOTSTRAP_FROM:
        res = stats.bootstrap(
            (d,),
            np.mean,
            confidence_level=LEVEL,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            random_state=np.random.default_rng(0),
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
        interval = "bootstrap"
    else:
        half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * sd / np.sqrt(n)
        low, high = mean - half, mean + half
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
        interval = "t"
    return {
        "n": n,
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "p": p,
        "significant": bool(p < 1 - LEVEL),
        "interval": interval,
    }


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> Dict[str, Any]:
    """difference_stats of a[seed] - b[seed] over the seeds both have (a seed missing on one side is dropped)."""
    seeds = sorted(set(a) & set(b))
    return difference_stats([a[s] - b[s] for s in seeds])


def synergy_margin(
    combo: Mapping[int, float], intra: Mapping[int, float], inter: Mapping[int, float], base: Mapping[int, float]
) -> Dict[str, Any]:
    """difference_stats of the per-seed synergy margin (combo - base) - (intra - base) - (inter - base) over the
    seeds all four have: > 0 where SynerMix gains more than its two components' gains added."""
    seeds = sorted(set(combo) & set(intra) & set(inter) & set(base))
    return difference_stats([combo[s] - intra[s] - inter[s] + base[s] for s in seeds])


def describe(stats: Mapping[str, Any]) -> str:
    """One cell for a printed table: 'mean [low, high] p=… *' (* significant), or 'n/a (n pairs)'."""
    if stats["mean"] == NA:
        return f"{NA} ({stats['n']} pair{'s' if stats['n'] != 1 else ''})"
    star = " *" if stats["significant"] else ""
    return f"{stats['mean']:+.2f} [{stats['ci_low']:+.2f}, {stats['ci_high']:+.2f}] p={stats['p']:.3f}{star}"
