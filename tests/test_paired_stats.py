"""Paired comparisons over seeds: hand-computed cases, scipy as the reference, and the report's gains table."""

import numpy as np
import pytest
from scipy import stats

from helpers import write_summary as write
from synermix.results.paired import NA, difference_stats, paired_difference, synergy_margin
from synermix.results.report import format_gains, gains, load_summaries, summarize


def test_constant_and_zero_differences_and_too_few_pairs():
    a = {0: 80.0, 1: 81.0, 2: 83.0}
    const = paired_difference(a, {s: v - 1.5 for s, v in a.items()})
    assert (const["n"], const["mean"], const["ci_low"], const["ci_high"], const["p"]) == (3, 1.5, 1.5, 1.5, 0.0)
    assert const["significant"] is True
    zero = paired_difference(a, dict(a))
    assert (zero["mean"], zero["p"], zero["significant"]) == (0.0, 1.0, False)
    one_missing = paired_difference(a, {0: 79.0, 1: 80.0})  # seed 2 has no partner: dropped, 2 pairs left
    assert one_missing["n"] == 2 and one_missing["mean"] == pytest.approx(1.0)
    lonely = paired_difference(a, {2: 70.0})
    assert lonely["n"] == 1 and all(lonely[k] == NA for k in ("mean", "ci_low", "ci_high", "p", "significant"))


def test_t_interval_and_p_equal_scipys_paired_test():
    rng = np.random.default_rng(3)
    a = rng.normal(80, 1, 5)
    b = a - rng.normal(0.4, 0.5, 5)
    ours = paired_difference(dict(enumerate(a)), dict(enumerate(b)))
    assert ours["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    d = a - b
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((low, high)) and ours["interval"] == "t"


def test_ten_or_more_pairs_use_a_bootstrap_interval():
    d = np.random.default_rng(1).normal(0.5, 1.0, 12)
    res = difference_stats(d)
    assert res["interval"] == "bootstrap" and res["ci_low"] < d.mean() < res["ci_high"]
    assert res == difference_stats(d)  # seeded: the same interval every time
    assert res["p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)


def test_synergy_margin_is_paired_over_the_seeds_all_four_share():
    base, intra, inter = {0: 70.0, 1: 71.0, 2: 72.0}, {0: 72.0, 1: 73.0, 2: 74.0}, {0: 73.0, 1: 74.0, 2: 75.0}
    combo = {0: 76.0, 1: 77.5, 2: 78.0, 3: 90.0}  # seed 3 has no partners
    margin = synergy_margin(combo, intra, inter, base)  # per seed: 1.0, 1.5, 1.0
    assert margin["n"] == 3 and margin["mean"] == pytest.approx(3.5 / 3)


def test_gains_table_carries_paired_columns_and_na_below_two_seeds(tmp_path):
    accs = {
        "baseline": 70.0,
        "intra": 72.0,
        "mixup": 73.0,
        "manifold_mixup": 71.0,
        "synermix": 74.0,
        "synermix_mm": 72.5,
    }
    for seed in range(3):
        for method, acc in accs.items():
            noise = 0.3 * seed if method != "synermix" else 0.3 * seed + 0.1 * seed
            write(tmp_path, method, seed, acc + noise, beta=0.1)
    g = gains(summarize(load_summaries(tmp_path))).set_index("variant")
    m = g.loc["M"]
    assert m.vs_intra_pairs == 3 and m.vs_intra_diff == pytest.approx(2.1) and m.vs_intra_significant
    assert m.vs_best_diff == pytest.approx(m.vs_inter_diff)  # mixup (73) is the better component
    assert m.synergy_margin_pairs == 3 and m.synergy_margin_diff == pytest.approx(74.4 - 72.3 - 73.3 + 70.3)
    cell = format_gains(g.reset_index()).set_index("variant").loc["M", "vs w-RA (paired)"]
    assert cell.startswith("+2.10 [") and cell.endswith("*")
    single = tmp_path / "one"
    for method, acc in accs.items():
        write(single, method, 0, acc, beta=0.1)
    one = gains(summarize(load_summaries(single))).set_index("variant").loc["M"]
    assert one.vs_intra_diff == NA and one.vs_intra_p == NA and one.vs_intra_significant == NA
    assert format_gains(gains(summarize(load_summaries(single)))).iloc[0]["vs w-RA (paired)"] == "n/a (1 pair)"


def test_figure_rows_pair_by_seed_with_the_row_they_are_compared_with():
    import pandas as pd

    from synermix.results.figures.views import add_paired, versus_original_views

    def row(method, beta, accs, seeds="0;1;2"):
        return {
            "scenario": "s",
            "method": method,
            "beta": beta,
            "n_seeds": len(accs),
            "accs": ";".join(map(str, accs)),
            "seeds": seeds,
        }

    data = pd.DataFrame(
        [
            row("intra", 0.1, [80, 81, 82]),
            row("intra_aug", 0.1, [79, 80.5, 80]),
            row("intra", 0.5, [70, 71, 72]),
            row("intra_aug", 0.5, [71, 72], seeds="0;2"),
        ]
    )
    out = add_paired(data, "vs_original_views", versus_original_views).set_index(["method", "beta"])
    first = out.loc[("intra_aug", 0.1)]
    diffs = np.array([-1.0, -0.5, -2.0])
    assert first["vs_original_views_pairs"] == 3 and first["vs_original_views_diff"] == pytest.approx(diffs.mean())
    assert first["vs_original_views_p"] == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
    second = out.loc[("intra_aug", 0.5)]  # seeds 0 and 2 pair with w-RA's seeds 0 and 2: +1, 0
    assert second["vs_original_views_pairs"] == 2 and second["vs_original_views_diff"] == pytest.approx(0.5)
    assert out.loc[("intra", 0.1), "vs_original_views_diff"] == NA


def test_gains_table_has_the_cutmix_variant_when_its_runs_exist(tmp_path):
    accs = {"baseline": 70.0, "intra": 72.0, "cutmix": 73.5, "synermix_cutmix": 74.5}
    for seed in range(3):
        for method, acc in accs.items():
            write(tmp_path, method, seed, acc + 0.2 * seed * (method == "synermix_cutmix"), beta=0.1)
    g = gains(summarize(load_summaries(tmp_path))).set_index("variant")
    assert list(g.index) == ["C"]  # no MixUp / Manifold MixUp runs here: only SynerMix(C) vs its components
    c = g.loc["C"]
    assert c.inter_acc == pytest.approx(73.5) and c.vs_best_diff == pytest.approx(74.5 + 0.2 - 73.5)
