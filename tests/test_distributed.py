"""Under torchrun N processes compute what one process computes: batches, views, L_intra and its gradients,
DDP's averaged gradients, evaluation (gloo, 2 CPU processes)."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F
from torch import nn

from benchmarks.agreement import AGREEMENT_RUN, compare_runs
from helpers import ROOT, tiny_model
from helpers.distributed import run_in_processes
from synermix.config.presets import preset_switches
from synermix.data.files import SeededBatches
from synermix.data.in_memory import AugmentSpec, InMemoryTrainStream, InMemoryTwoViewData
from synermix.data.stream import Batch, EvalStream
from synermix.method.intra import GlobalIntra, intra_class_loss
from synermix.method.loss import SynerMixLoss
from synermix.method.sampling import SupplementedBatchSampler, shard_bounds
from synermix.models import StagedClassifier
from synermix.seeding import RunSeeds, sample_seeds
from synermix.train.distributed import DistEnv, GlobalBatch
from synermix.train.evaluation import evaluate
from synermix.train.trainer import Trainer, TrainOptions

N, D, K, SEED = 11, 5, 3, 7  # 11 rows: parts of 6 and 5, so the parts' shares differ


def fixed_batch():
    """Features, labels and a head every process rebuilds identically."""
    g = torch.Generator().manual_seed(0)
    features = torch.randn(N, D, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2])
    torch.manual_seed(1)
    return features, labels, nn.Linear(D, K).double()


def _gathered_intra(rank, world):
    features, labels, head = fixed_batch()
    part = slice(*shard_bounds(N, world, rank))
    batch = GlobalBatch(DistEnv(world, rank, rank), N, torch.Generator().manual_seed(SEED))
    own = features[part].clone().requires_grad_(True)
    loss = intra_class_loss(head, *batch.gather(own, labels[part]), 2, batch.intra_generator, K)
    loss.backward()
    head_grad = head.weight.grad.clone()
    # The same loss from torch's autograd all_gather (parts padded to equal length), for the cross-check.
    theirs = features[part].clone().requires_grad_(True)
    with warnings.catch_warnings():  # deprecated in favour of a private API
        warnings.simplefilter("ignore", FutureWarning)
        copies = dist_fn.all_gather(F.pad(theirs, (0, 0, 0, batch.sizes[0] - theirs.shape[0])))
    gathered = torch.cat([c[:n] for c, n in zip(copies, batch.sizes)])
    intra_class_loss(head, gathered, labels, 2, torch.Generator().manual_seed(SEED), K).backward()
    return loss.item(), own.grad, theirs.grad, head_grad


def test_gathered_intra_class_loss_and_gradients_equal_the_single_process_ones(two_processes):
    features, labels, head = fixed_batch()
    whole = features.clone().requires_grad_(True)
    loss = intra_class_loss(head, whole, labels, 2, torch.Generator().manual_seed(SEED), K)
    loss.backward()
    for rank, (value, grad, torch_grad, head_grad) in enumerate(r["gathered"] for r in two_processes):
        part = slice(*shard_bounds(N, 2, rank))
        assert value == pytest.approx(loss.item(), abs=1e-12)
        # What reaches the parameters is the world-size-scaled gradient divided by DDP's average:
        torch.testing.assert_close(grad / 2, whole.grad[part], rtol=0, atol=1e-12)
        torch.testing.assert_close(grad, torch_grad, rtol=0, atol=1e-12)  # = torch's all_gather (sum of copies)
        torch.testing.assert_close(head_grad, head.weight.grad, rtol=0, atol=1e-12)  # every process: the whole


def _ddp_gradients(rank, world, preset, x_orig, x_aug, y):
    """The trainer's step under torchrun on this process's part (lr 0: the gradients are kept, weights unchanged)."""
    intra, inter, beta = preset_switches(preset)
    model, env = tiny_model(seed=3), DistEnv(world, rank, rank)
    loss = SynerMixLoss(intra, inter, beta, num_classes=K, intra_term=GlobalIntra(1, K))
    trainer = Trainer(
        model, loss, torch.optim.SGD(model.parameters(), lr=0.0), None, TrainOptions(RunSeeds(SEED), env=env)
    )
    part = slice(*shard_bounds(len(y), world, rank))
    values = trainer.run_step(Batch(0, x_orig[part], x_aug[part], y[part], len(y)))
    mean_total = values[0].clone()
    env.sum_(mean_total)
    return (mean_total / world).item(), {k: p.grad.clone() for k, p in model.named_parameters()}


@pytest.mark.parametrize("preset", ["intra", "intra_aug"])
def test_ddp_gradients_and_loss_equal_the_single_process_ones(two_processes, preset):
    x_orig, x_aug, y = _ddp_inputs()
    intra, inter, beta = preset_switches(preset)
    model = tiny_model(seed=3)
    generator = torch.Generator().manual_seed(RunSeeds(SEED).step(0, 0)[0])  # the single process's step 0 draws
    terms = SynerMixLoss(intra, inter, beta, num_classes=K)(model, x_orig, x_aug, y, generator)
    terms.total.backward()
    for total, grads in (r[preset] for r in two_processes):
        assert total == pytest.approx(terms.total.item(), rel=1e-6)
        for name, p in model.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-7, msg=name)


def _ddp_inputs():
    g = torch.Generator().manual_seed(5)
    x_orig, y = torch.randn(N, 4, generator=g), torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2])
    return x_orig, x_orig + 0.1 * torch.randn(N, 4, generator=g), y


KEEP = np.array([0, 3, 11, 12, 22])  # evaluation samples on both sides of the parts' border (12 | 11)


def _every_check(rank, world):
    """All two-process computations of this module in one spawn (starting processes costs seconds)."""
    return {
        "gathered": _gathered_intra(rank, world),
        **{preset: _ddp_gradients(rank, world, preset, *_ddp_inputs()) for preset in ("intra", "intra_aug")},
        "evaluation": _evaluate_part(rank, world, KEEP),
    }


@pytest.fixture(scope="module")
def two_processes():
    """What each of 2 gloo processes computed, in rank order."""
    return run_in_processes(_every_check, 2)


def _images(n=23, seed=0, size=2):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)
    return images, torch.randint(0, K, (n,), generator=g)


def _eval_model():
    torch.manual_seed(2)
    return StagedClassifier([("flat", nn.Flatten()), ("l1", nn.Linear(4, D))], nn.Linear(D, K), ("input",))


def _evaluate_part(rank, world, keep):
    images, labels = _images()
    stream = EvalStream(InMemoryTwoViewData(images, labels, [0.5], [0.25]), 4, num_replicas=world, rank=rank)
    return evaluate(_eval_model(), stream, keep=keep, dist_env=DistEnv(world, rank, rank))


def test_distributed_evaluation_equals_single_process_evaluation(two_processes):
    images, labels = _images()
    single = evaluate(_eval_model(), EvalStream(InMemoryTwoViewData(images, labels, [0.5], [0.25]), 4), keep=KEEP)
    for result in (r["evaluation"] for r in two_processes):
        assert result.accuracy == single.accuracy
        assert result.ece == pytest.approx(single.ece, abs=1e-12) and result.nll == pytest.approx(single.nll, rel=1e-12)
        np.testing.assert_array_equal(result.labels, single.labels)
        np.testing.assert_allclose(result.features, single.features, rtol=0, atol=1e-6)


def test_the_parts_of_a_step_are_the_single_process_views_cut_in_two():
    images, labels = _images(60, seed=1, size=8)
    data = InMemoryTwoViewData(images, labels, [0.5], [0.25], AugmentSpec(crop_padding=2, hflip=0.5, cutout=3))

    def stream(world, rank):
        sampler = SupplementedBatchSampler(labels.numpy(), 16, seed=3, num_replicas=world, rank=rank)
        return InMemoryTrainStream(data, sampler, RunSeeds(4, rank, world > 1), with_original=True)

    single = list(stream(1, 0).epoch(2))
    parts = [list(stream(2, r).epoch(2, start_step=1)) for r in range(2)]
    for b, whole in enumerate(single[1:]):
        left, right = parts[0][b], parts[1][b]
        assert left.step == right.step == whole.step and left.global_size == len(whole.y)
        for field in ("x_orig", "x_aug", "y"):
            torch.testing.assert_close(torch.cat((getattr(left, field), getattr(right, field))), getattr(whole, field))


def test_file_dataset_parts_carry_the_single_process_augmentation_seeds():
    labels = np.repeat(np.arange(6), 7)

    def seeded(world, rank):
        batches = SeededBatches(SupplementedBatchSampler(labels, 10, seed=2, num_replicas=world, rank=rank))
        batches.epoch_seed = 99
        return list(batches)

    whole, left, right = seeded(1, 0), seeded(2, 0), seeded(2, 1)
    assert [a + b for a, b in zip(left, right)] == whole
    assert [s for _, s in whole[0]] == sample_seeds(99, 0, len(whole[0]))


def _train(run_dir, *args, processes=1):
    """scripts/train.py in one process, or under torchrun in `processes` gloo processes."""
    launcher = (
        [sys.executable]
        if processes == 1
        else [str(Path(sys.executable).parent / "torchrun"), "--standalone", f"--nproc_per_node={processes}"]
    )
    proc = subprocess.run(
        [*launcher, str(ROOT / "scripts" / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_process_run_computes_what_one_process_computes(tmp_path):
    # benchmarks/agreement.py states the tolerances and why they hold on any kernel set (rounding, not a bug).
    args = [*AGREEMENT_RUN, "device=cpu"]
    _train(tmp_path / "one", *args)
    proc = _train(tmp_path / "two", *args, processes=2)
    agreement = compare_runs(tmp_path / "one", tmp_path / "two")
    assert agreement.holds, str(agreement)
    two = pd.read_csv(tmp_path / "two" / "metrics.csv")
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["final_acc"] == two["eval_acc"].iloc[-1]
    assert proc.stdout.count("final_acc (mean of last") == 1  # rank 0 alone reports and writes
    assert len(list((tmp_path / "two" / "tb").glob("events.out.tfevents.*"))) == 1


@pytest.mark.slow
def test_two_process_manifold_mixup_run_writes_one_set_of_results(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = _train(
        run_dir,
        "method=synermix_mm",
        "train.epochs=2",
        "train.average_last=1",
        "train.batch_size=64",
        "dataset.max_per_class=60",
        processes=2,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_completed"] == 2 and 0 <= summary["final_acc"] <= 100
    assert (run_dir / "metrics.csv").read_text().count("\n") == 3
    assert proc.stdout.count("final_acc (mean of last") == 1
