"""Result collection: mean ± std over seeds, incomplete runs counted, paper order of methods."""
import json

import pytest

from synermix.results import format_table, load_summaries, summarize


def write(root, method, seed, acc, status="complete", beta=0.1):
    d = root / method / f"seed{seed}"
    d.mkdir(parents=True)
    summary = dict(dataset="digits", model="m", batch_size=32, method=method, beta=beta, phase="test",
                   seed=seed, final_acc=acc, status=status)
    (d / "summary.json").write_text(json.dumps(summary))


def test_summarize_groups_seeds_and_flags_incomplete(tmp_path):
    write(tmp_path, "synermix", 0, 90.0)
    write(tmp_path, "synermix", 1, 92.0)
    write(tmp_path, "synermix", 2, 50.0, status="running")
    write(tmp_path, "baseline", 0, 88.0, beta=0)
    table = summarize(load_summaries(tmp_path))
    assert table["method"].tolist() == ["baseline", "synermix"]
    row = table.set_index("method").loc["synermix"]
    assert row.final_acc_mean == pytest.approx(91.0)
    assert row.final_acc_std == pytest.approx(2 ** 0.5)  # sample std of (90, 92)
    assert (row.n_seeds, row.n_incomplete) == (2, 1)
    view = format_table(table).set_index("method")
    assert view.loc["synermix", "final_acc (%)"] == "91.00 ± 1.41"
    assert view.loc["baseline", "final_acc (%)"] == "88.00"


def test_empty_folder_gives_empty_table(tmp_path):
    assert summarize(load_summaries(tmp_path)).empty
