"""Training recipes: schedules against torch's and timm's own, AdamW and its decay groups, gradient clipping (AMP
unscaled first), the EMA of the weights by hand, the mixing schedule's draws, random erasing and augmentation
policies, timm's normalisation, and the refusals; the full recipe's SIGKILL-resume: tests/test_recipe_resume.py."""

import math

import pytest
import torch
from timm.scheduler import CosineLRScheduler

from helpers import make_cfg, tiny_model
from synermix.data.augment import random_erasing
from synermix.errors import ConfigError
from synermix.method.loss import SynerMixLoss
from synermix.method.mixers.cutmix import CutMix
from synermix.method.mixers.mixup import MixUp
from synermix.method.mixers.schedule import MixSchedule
from synermix.seeding import RunSeeds
from synermix.train.ema import WeightEma
from synermix.train.hooks import MixingEpoch
from synermix.train.recipes import build_optimizer, build_scheduler
from synermix.train.trainer import Trainer, TrainOptions


def train_group(*overrides):
    return make_cfg(*overrides).train


def lrs(t, steps_per_epoch, steps):
    """The learning rate of each of `steps` scheduler periods (iterations or epochs)."""
    model = tiny_model()
    optimizer = build_optimizer(model, t)
    scheduler, per_step = build_scheduler(optimizer, t, steps_per_epoch)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out, per_step, scheduler, optimizer


def test_cosine_with_warmup_steps_per_iteration_as_timms_scheduler():
    t = train_group(
        "train.scheduler=cosine",
        "train.epochs=6",
        "train.warmup_epochs=2",
        "train.lr=0.4",
        "train.min_lr=0.001",
        "train.warmup_start_factor=0.05",
    )
    spe = 7
    ours, per_step, *_ = lrs(t, spe, 6 * spe)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    timm_sched = CosineLRScheduler(
        reference,
        t_initial=4 * spe,
        lr_min=0.001,
        warmup_t=2 * spe,
        warmup_lr_init=0.05 * 0.4,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    expected = []
    for step in range(6 * spe):
        timm_sched.step_update(step)
        expected.append(reference.param_groups[0]["lr"])
    assert per_step and ours == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (("train.scheduler=step", "train.step_size=2", "train.gamma=0.5"), lambda e: 0.1 * 0.5 ** (e // 2)),
        (
            ("train.scheduler=step", "train.step_size=2", "train.gamma=0.5", "train.min_lr=0.02"),
            lambda e: max(0.1 * 0.5 ** (e // 2), 0.02),
        ),
        (
            (
                "train.scheduler=multistep",
                "train.milestones=[3,5]",
                "train.gamma=0.1",
                "train.warmup_epochs=2",
                "train.warmup_start_factor=0.25",
            ),
            lambda e: 0.1 * (0.25 + 0.75 * e / 2) if e < 2 else 0.1 * 0.1 ** ((e >= 3) + (e >= 5)),
        ),
        (
            (
                "train.scheduler=step",
                "train.step_size=3",
                "train.gamma=0.2",
                "train.warmup_epochs=1",
                "train.min_lr=0.001",
            ),
            lambda e: 0.1 * 0.01 if e < 1 else max(0.1 * 0.2 ** ((e - 1) // 3), 0.001),
        ),
    ],
)
def test_epoch_schedules_equal_their_closed_forms(overrides, expected):
    t = train_group("train.lr=0.1", "train.epochs=8", *overrides)
    ours, per_step, *_ = lrs(t, 5, 8)
    assert not per_step and ours == pytest.approx([expected(e) for e in range(8)], rel=1e-12)


@pytest.mark.parametrize("scheduler", ["cosine", "multistep"])
def test_a_restored_scheduler_continues_exactly(scheduler):
    t = train_group(
        f"train.scheduler={scheduler}",
        "train.milestones=[4]",
        "train.epochs=6",
        "train.warmup_epochs=2",
        "train.min_lr=0.0001",
    )
    whole, *_ = lrs(t, 3, 15)
    first, _, scheduler_a, optimizer_a = lrs(t, 3, 7)
    model = tiny_model()
    optimizer_b = build_optimizer(model, t)
    scheduler_b, _ = build_scheduler(optimizer_b, t, 3)
    optimizer_b.load_state_dict(optimizer_a.state_dict())
    scheduler_b.load_state_dict(scheduler_a.state_dict())
    rest = []
    for _ in range(8):
        rest.append(optimizer_b.param_groups[0]["lr"])
        optimizer_b.step()
        scheduler_b.step()
    assert first + rest == whole


def test_the_default_recipe_is_table_1s_sgd_and_steplr():
    t = train_group()
    model = tiny_model()
    optimizer = build_optimizer(model, t)
    scheduler, per_step = build_scheduler(optimizer, t, 10)
    assert type(optimizer) is torch.optim.SGD and len(optimizer.param_groups) == 1 and not per_step
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == (
        t.lr,
        t.momentum,
        t.weight_decay,
        False,
    )
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR and (scheduler.step_size, scheduler.gamma) == (
        t.step_size,
        t.gamma,
    )


def test_adamw_without_decay_on_norm_and_bias_parameters():
    t = train_group(
        "train.optimizer=adamw",
        "train.betas=[0.8,0.99]",
        "train.eps=1e-6",
        "train.weight_decay=0.05",
        "train.decay_norm_and_bias=false",
    )
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 2)
    )
    optimizer = build_optimizer(model, t)
    assert type(optimizer) is torch.optim.AdamW
    decay = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    assert decay == {id(model[0].weight), id(model[3].weight)}  # conv and linear weights; no bias, no norm
    assert all(g["betas"] == (0.8, 0.99) and g["eps"] == 1e-6 for g in optimizer.param_groups)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


@pytest.mark.parametrize("amp", [False, True])
def test_gradients_are_clipped_after_unscaling(amp):
    model = tiny_model(classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    options = TrainOptions(RunSeeds(0), amp=amp, amp_dtype="float16", clip_grad_norm=0.5)
    trainer = Trainer(
        model,
        SynerMixLoss("none", "none", 0.0, num_classes=3),
        optimizer,
        torch.optim.lr_scheduler.StepLR(optimizer, 1),
        options,
    )
    if amp:
        trainer.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    loss = model(torch.randn(8, 4)).pow(2).sum() * 100
    (loss if not amp else trainer.scaler.scale(loss)).backward()
    trainer._optimizer_step()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert float(norm) == pytest.approx(0.5, rel=1e-4)  # clipped in the loss's own units, not the scaled ones


class FakeTrainer:
    def __init__(self, model, steps_per_epoch=4):
        self.model, self.epoch, self.step, self.steps_per_epoch = model, 0, 0, steps_per_epoch
        self.options = TrainOptions(RunSeeds(0))


def test_ema_of_the_weights_by_hand():
    model = tiny_model()
    w0 = model.head.weight.detach().clone()
    ema, trainer, seen = WeightEma(model, decay=0.75, every=2), FakeTrainer(model), []
    for step in range(1, 5):
        with torch.no_grad():
            model.head.weight.add_(1.0)
        trainer.step = step
        ema.after_step(trainer)
        seen.append(model.head.weight.detach().clone())
    expected = 0.75 * (0.75 * w0 + 0.25 * seen[1]) + 0.25 * seen[3]  # updated after steps 2 and 4
    torch.testing.assert_close(ema.module.head.weight, expected, rtol=0, atol=1e-6)
    restored = WeightEma(tiny_model(seed=5), decay=0.75)
    restored.load_state_dict(ema.state_dict())
    torch.testing.assert_close(restored.module.head.weight, ema.module.head.weight, rtol=0, atol=0)


def test_mixing_schedule_draws_share_switch_and_turns_off():
    labels = torch.arange(8) % 4
    schedule = MixSchedule([MixUp(), CutMix()], mix_prob=0.8, switch_prob=0.25, off_epoch=3)
    generator = torch.Generator().manual_seed(0)
    draws = [schedule.draw(labels, generator, (8, 3, 8, 8), ("input",)) for _ in range(4000)]
    mixed = [d for d in draws if d is not None]
    assert abs(len(mixed) / 4000 - 0.8) < 0.03  # binomial sd 0.006
    again = torch.Generator().manual_seed(0)
    replay = [schedule.draw(labels, again, (8, 3, 8, 8), ("input",)) for _ in range(4000)]
    assert [d is None for d in replay] == [d is None for d in draws]  # the step's generator decides everything
    trainer = FakeTrainer(None)
    trainer.epoch = 3
    MixingEpoch(schedule).before_epoch(trainer)  # the hook the run adds for a mixer with set_epoch
    assert all(schedule.draw(labels, generator, (8, 3, 8, 8), ("input",)) is None for _ in range(50))
    schedule.set_epoch(2)
    assert any(schedule.draw(labels, generator, (8, 3, 8, 8), ("input",)) is not None for _ in range(50))


def test_the_switch_picks_the_second_mixer_with_its_probability():
    class Named:
        def __init__(self, name):
            self.name = name

        def draw(self, labels, generator, batch_shape, mix_points):
            return self.name

    schedule = MixSchedule([Named("mixup"), Named("cutmix")], switch_prob=0.3)
    generator = torch.Generator().manual_seed(1)
    picks = [schedule.draw(None, generator, (2, 3, 4, 4), ()) for _ in range(5000)]
    assert abs(picks.count("cutmix") / 5000 - 0.3) < 0.025


def test_random_erasing_share_area_and_fill():
    x = torch.ones(4000, 3, 20, 20)
    out = random_erasing(x, 0.4, torch.Generator().manual_seed(0))
    erased = (out == 0).any(dim=(1, 2, 3))
    assert abs(float(erased.float().mean()) - 0.4) < 0.03
    area = (out[erased] == 0).all(dim=1).float().mean(dim=(1, 2))
    assert float(area.min()) >= 0.02 * 0.5 and float(area.max()) <= 0.33 * 1.5 + 0.05  # rounding and clipping
    rows, cols = (out[erased][:, 0] == 0).any(dim=2), (out[erased][:, 0] == 0).any(dim=1)
    rectangle = ((out[erased][:, 0] == 0) == (rows[:, :, None] & cols[:, None, :])).all()
    assert bool(rectangle) and torch.equal(out[~erased], x[~erased])
    assert random_erasing(x, 0.0) is x


def test_policies_change_the_augmented_view_only_and_follow_the_seed():
    from synermix.data.files import eval_transform, train_transform

    image = torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8)
    plain, policy = (train_transform(24, 0.5, [0.5] * 3, [0.25] * 3, p, 0.5) for p in ("none", "trivialaugment"))
    views = []
    for transform in (plain, policy, policy):
        torch.manual_seed(7)
        views.append(transform(image))
    assert torch.equal(views[1], views[2]) and not torch.equal(views[0], views[1])
    torch.manual_seed(7)
    original = eval_transform(24, 28, [0.5] * 3, [0.25] * 3)(image)
    assert torch.equal(original, eval_transform(24, 28, [0.5] * 3, [0.25] * 3)(image))


def test_pretrained_timm_models_bring_their_normalisation_and_explicit_values_win():
    timm_cfg = ("dataset=image_folder", "dataset.root=/data", "model=timm", "model.arch=inception_v3")
    assert list(make_cfg(*timm_cfg, "model.pretrained=true").dataset.mean) == [0.5, 0.5, 0.5]
    assert list(make_cfg(*timm_cfg).dataset.mean) == [0.485, 0.456, 0.406]  # not pretrained: the data set's
    assert list(make_cfg(*timm_cfg, "model.pretrained=true", "dataset.std=[0.2,0.2,0.2]").dataset.std) == [0.2] * 3
    from synermix.models.normalization import resolve_auto_normalization

    cfg = make_cfg("dataset=image_folder", "dataset.root=/data", "dataset.mean=auto")
    with pytest.raises(ConfigError, match=r"dataset.mean=auto .* model.name=resnet18"):
        resolve_auto_normalization(cfg)
    cfg = make_cfg(*timm_cfg, "model.pretrained=true", "dataset.mean=auto", "dataset.std=auto")
    resolve_auto_normalization(cfg)
    assert (list(cfg.dataset.mean), list(cfg.dataset.std)) == ([0.5] * 3, [0.5] * 3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("train.warmup_epochs=-2",), r"train.warmup_epochs=-2 is invalid"),
        (("train.ema.decay=1.5",), r"train.ema.decay=1.5 is invalid: it must be null \(off\) or a number in \(0, 1\)"),
        (("method.mix_prob=1.2",), r"method.mix_prob=1.2 is invalid"),
        (
            ("dataset=image_folder", "dataset.root=/nowhere", "dataset.augment.policy=autoaug"),
            r"dataset.augment.policy='autoaug' is invalid",
        ),
        (("dataset.augment.policy=randaugment",), r"none for digits: it is held in memory"),
        (("method.mix_off_epoch=9",), r"method.mix_off_epoch=9 is past train.epochs=8"),
        (("method.switch_prob=0.5",), r"method.switch_prob=0.5 chooses between two mixers"),
        (("method.inter=[mixup,cutmix]",), r"names two mixers, so method.switch_prob"),
        (("train.clip_grad_norm=0",), r"train.clip_grad_norm=0 is invalid"),
        (("train.scheduler=cosine", "train.warmup_epochs=8"), r"train.warmup_epochs=8 is invalid"),
    ],
)
def test_bad_recipe_values_are_refused_before_any_data_is_read(overrides, message, tmp_path):
    from synermix.run.training import run_training

    with pytest.raises(ConfigError, match=message):
        run_training(make_cfg(*overrides), tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_unmixed_batches_of_a_schedule_are_plain_cross_entropy_and_intra_is_untouched():
    model = tiny_model(classes=3)
    x, y = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    plain = SynerMixLoss("original", "none", 0.3, num_classes=3)
    off = SynerMixLoss("original", MixSchedule([MixUp()], mix_prob=0.0), 0.3, num_classes=3)
    after_the_coin = torch.Generator().manual_seed(3)
    torch.rand((), generator=after_the_coin)  # the schedule's one draw (mix or not) comes first
    a = plain(model, x, x + 1, y, after_the_coin)
    b = off(model, x, x + 1, y, torch.Generator().manual_seed(3))
    assert torch.equal(a.inter, b.inter) and torch.equal(a.intra, b.intra)
    assert math.isfinite(float(b.total.detach()))
