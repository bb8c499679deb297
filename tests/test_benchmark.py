"""The benchmark's references are faithful and every section of the benchmark runs end to end (tiny sizes, in
`make test`, so a change of the stream, the step or the loss that breaks `make bench` fails CI)."""

import numpy as np
import torch

from benchmarks.sections import PerSampleTwoView, intra_class_loss_loop, run_all
from helpers import tiny_model
from synermix.data.in_memory import AugmentSpec
from synermix.method.intra import intra_class_loss


def test_loop_reference_equals_the_vectorised_intra_loss():
    model = tiny_model(classes=5)
    f = model.features(torch.randn(12, 4))
    y = torch.tensor([0, 3, 3, 1, 0, 4, 4, 4, 1, 0, 3, 1])
    a = intra_class_loss(model.head, f, y, 2, torch.Generator().manual_seed(8), num_classes=5)
    b = intra_class_loss_loop(model.head, f, y, 2, torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b)


def test_per_sample_reference_views_have_the_batched_shapes():
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    ds = PerSampleTwoView(images, np.arange(4), (0.5,) * 3, (0.5,) * 3, AugmentSpec(4, 0.5, 16))
    orig, aug, label = ds[2]
    assert orig.shape == aug.shape == (3, 32, 32) and label == 2
    torch.testing.assert_close(orig, torch.from_numpy(images[2]).float() / 255 * 2 - 1)


def test_quick_benchmark_runs_and_writes_its_table(tmp_path):
    lines = []
    rows = run_all(quick=True, out_csv=tmp_path / "bench.csv", log=lines.append)
    sections = {r.section for r in rows}
    assert {"loader", "step cifar_resnet", "step resnet18", "epoch", "files", "accuracy"} <= sections
    assert all(r.value > 0 for r in rows if r.unit in ("img/s", "ms/step", "s"))
    assert (tmp_path / "bench.csv").read_text().startswith("section,name,value,unit,ratio,target,passed,low,high")
    timed = [r for r in rows if r.reps]  # every timed figure carries its spread
    assert timed and all(r.low <= r.value <= r.high for r in timed)
    assert "value (median [min, max])" in lines[-1] and "ratio (median [min, max])" in lines[-1]
