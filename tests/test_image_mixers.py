"""SaliencyMix, ResizeMix and FMix: hand-made cases (a saliency peak placed by hand, boxes inside the image, a
mask whose share is lambda to one pixel), OpenCV's saliency as the default, lambda's distribution over many draws,
and exact resume on digits and an image folder with and without the intra-class term."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from helpers import make_cfg, metrics_without_time
from helpers.datasets import write_image_folder
from helpers.hooks import CrashAt
from synermix.method.mixers.fmix import FMix, binary_mask, fourier_noise
from synermix.method.mixers.resizemix import ResizeMix
from synermix.method.mixers.saliencymix import SaliencyMix, opencv_saliency_peaks
from synermix.run.training import run_training


def images(n=6, c=3, h=20, w=16, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_saliencymix_centres_each_box_on_its_partners_peak_and_pastes_the_partner():
    x, labels = images(), torch.arange(6)
    peaks = (torch.tensor([5, 0, 19, 10, 3, 12]), torch.tensor([8, 0, 15, 2, 9, 7]))  # placed by hand
    mixer = SaliencyMix(alpha=1.0, saliency=lambda batch: peaks)
    mix = mixer.draw(labels, torch.Generator().manual_seed(1), tuple(x.shape), ("input",))
    out = mix.apply(x)
    perm = (mix.partner_labels).tolist()  # labels are the indices: partner of sample i
    assert perm != list(range(6))
    for i, j in enumerate(perm):
        if i == j:  # its own partner: the pasted box changes nothing to see
            continue
        changed = (out[i] != x[i]).any(dim=0)
        rows, cols = torch.nonzero(changed, as_tuple=True)
        assert torch.equal(out[i][:, changed], x[j][:, changed])  # the partner's pixels, at the same place
        if rows.numel():
            cy, cx = int(peaks[0][j]), int(peaks[1][j])
            assert rows.min() <= cy <= rows.max() and cols.min() <= cx <= cols.max()  # box around the peak
            assert rows.min() >= 0 and rows.max() < 20 and cols.max() < 16
        assert float(mix.lam[i]) == pytest.approx(1 - int(changed.sum()) / (20 * 16), abs=1e-6)  # the share left


def test_saliencymix_default_peaks_are_opencvs_fine_grained_saliency():
    import cv2

    x = images(4, 3, 24, 24, seed=3)
    rows, cols = opencv_saliency_peaks(x)
    detector = cv2.saliency.StaticSaliencyFineGrained_create()
    for i in range(4):
        image = x[i]
        scaled = ((image - image.min()) / (image.max() - image.min()) * 255).round().to(torch.uint8)
        _, saliency = detector.computeSaliency(scaled.permute(1, 2, 0).numpy())
        assert (int(rows[i]), int(cols[i])) == np.unravel_index(saliency.argmax(), saliency.shape)
    grey_rows, _ = opencv_saliency_peaks(x[:, :1])
    assert grey_rows.shape == (4,)


def test_resizemix_pastes_the_whole_shrunk_partner_inside_the_image():
    x, labels = images(5, 3, 30, 40), torch.arange(5)
    generator = torch.Generator().manual_seed(2)
    for _ in range(50):
        mix = ResizeMix().draw(labels, generator, tuple(x.shape), ("input",))
        out = mix.apply(x)
        changed = (out != x).any(dim=1).any(dim=0)
        rows, cols = torch.nonzero(changed, as_tuple=True)
        top, left, bh, bw = (
            int(rows.min()),
            int(cols.min()),
            int(rows.max()) - int(rows.min()) + 1,
            int(cols.max()) - int(cols.min()) + 1,
        )
        assert 0 <= top and top + bh <= 30 and 0 <= left and left + bw <= 40
        assert float(mix.lam) == pytest.approx(1 - bh * bw / (30 * 40), abs=1e-6)
        partner = x[mix.partner_labels]
        expected = F.interpolate(partner, size=(bh, bw), mode="bilinear", antialias=True, align_corners=False)
        torch.testing.assert_close(out[:, :, top : top + bh, left : left + bw], expected)


def test_resizemix_scale_is_uniform_in_its_range():
    labels, generator = torch.arange(4), torch.Generator().manual_seed(0)
    lams = [float(ResizeMix().draw(labels, generator, (4, 3, 200, 200), ()).lam) for _ in range(2000)]
    side = np.sqrt(1 - np.array(lams))  # ~ tau, to int(200 * tau) / 200
    assert stats.kstest(side, stats.uniform(loc=0.1, scale=0.7).cdf).pvalue > 0.01
    with pytest.raises(ValueError, match=r"scale=\[0.9, 0.2\] is invalid"):
        ResizeMix(scale=(0.9, 0.2))


def test_fmix_mask_share_is_lambda_to_one_pixel_and_lambda_is_beta():
    labels, generator = torch.arange(4), torch.Generator().manual_seed(0)
    x = images(4, 3, 17, 23)
    shares = []
    for _ in range(1500):
        mix = FMix(alpha=0.7).draw(labels, generator, tuple(x.shape), ("input",))
        shares.append(float(mix.lam))
    assert stats.kstest(shares, stats.beta(0.7, 0.7).cdf).pvalue > 0.01  # lambda ~ Beta(alpha, alpha)
    noise = fourier_noise(17, 23, 3.0, torch.Generator().manual_seed(5))
    for lam in (0.0, 0.13, 0.5, 0.77, 1.0):
        mask = binary_mask(noise, lam)
        assert abs(float(mask.double().mean()) - lam) <= 0.5 / (17 * 23) + 1e-12
        assert bool((noise[mask].min() if mask.any() else np.inf) >= (noise[~mask].max() if (~mask).any() else -np.inf))
    mix = FMix().draw(labels, torch.Generator().manual_seed(9), tuple(x.shape), ("input",))
    out = mix.apply(x)
    own = (out == x).all(dim=1)[0]
    assert float(own.double().mean()) == pytest.approx(float(mix.lam), abs=1e-6)
    assert torch.equal(out[:, :, ~own], x[mix.partner_labels][:, :, ~own])


def test_fmix_noise_is_low_frequency():
    noise = fourier_noise(64, 64, 3.0, torch.Generator().manual_seed(0))
    power = torch.fft.fft2(noise).abs() ** 2
    freq = torch.sqrt(torch.fft.fftfreq(64)[:, None] ** 2 + torch.fft.fftfreq(64)[None, :] ** 2)
    assert float(power[freq < 0.1].mean()) > 100 * float(power[freq > 0.3].mean())


@pytest.mark.parametrize("mixer", [SaliencyMix, ResizeMix, FMix])
def test_the_same_generator_state_draws_the_same_mix(mixer):
    x, labels = images(6, 3, 12, 12), torch.arange(6) % 3
    a, b = (mixer().draw(labels, torch.Generator().manual_seed(4), tuple(x.shape), ("input",)) for _ in range(2))
    assert torch.equal(a.apply(x), b.apply(x)) and torch.equal(a.lam, b.lam)


@pytest.mark.parametrize(
    "method", ["saliencymix", "synermix_saliencymix", "resizemix", "synermix_resizemix", "fmix", "synermix_fmix"]
)
def test_each_new_preset_trains_and_resumes_exactly_on_digits(method, tmp_path):
    cfg = make_cfg(
        f"method={method}",
        "train.epochs=2",
        "train.average_last=1",
        "train.batch_size=64",
        "train.cohesion_samples=0",
        "dataset.max_per_class=40",
    )
    run_training(cfg, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, tmp_path / "cut", hooks=[CrashAt(epoch=2, step=2)])
    summary = run_training(cfg, tmp_path / "cut")
    assert metrics_without_time(tmp_path / "cut") == metrics_without_time(tmp_path / "full")
    assert summary["status"] == "complete" and summary["inter"] == method.replace("synermix_", "")


@pytest.mark.parametrize("inter", ["saliencymix", "resizemix", "fmix"])
def test_each_new_mixer_trains_with_and_without_the_intra_term_on_an_image_folder(inter, tmp_path):
    folder = write_image_folder(tmp_path / "data", train_per_class=6, test_per_class=2)
    for method in ("mixup", "synermix"):
        cfg = make_cfg(
            "dataset=image_folder",
            f"dataset.root={folder}",
            "dataset.image_size=24",
            "dataset.eval_resize=28",
            "model=cifar_resnet",
            f"method={method}",
            f"method.inter={inter}",
            "train.epochs=1",
            "train.batch_size=6",
            "train.cohesion_samples=0",
        )
        summary = run_training(cfg, tmp_path / method)
        assert summary["status"] == "complete" and summary["inter"] == inter
