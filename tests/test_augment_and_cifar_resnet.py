"""The default model's stage split and mix points, and the batched augmentations."""

import pytest
import torch

from synermix.data.augment import cutout, normalize, random_crop, random_hflip
from synermix.models import cifar_resnet


def test_cifar_resnet_shapes_and_depth():
    model = cifar_resnet(num_classes=10, in_channels=1, depth=14, width=8)
    x = torch.randn(4, 1, 8, 8)
    assert model.features(x).shape == (4, 32)
    assert model(x).shape == (4, 10)
    assert model.mix_points == ("input", "layer1", "layer2")
    assert len(model.stages["layer1"]) == 2
    with pytest.raises(ValueError, match="6n\\+2"):
        cifar_resnet(10, depth=10)


def test_random_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[i], padded[i, :, dy : dy + 5, dx : dx + 5])
        ]
        assert matches
    offsets = []
    for seed in range(400):
        o = random_crop(torch.ones(1, 1, 4, 4), 1, torch.Generator().manual_seed(seed))
        offsets.append(int(o[0, 0, 0, :].sum() < 4) + int(o[0, 0, :, 0].sum() < 4))
    assert 0 < sum(offsets) < 800  # sometimes shifted, sometimes not


def test_flip_rate_and_cutout_area():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(8.0).repeat(4000, 1, 8, 1)
    flipped = random_hflip(x, 0.5, g)[:, 0, 0, 0] == 7
    assert abs(flipped.float().mean().item() - 0.5) < 0.03
    ones = torch.ones(2000, 1, 32, 32)
    holes = (cutout(ones, 16, g) == 0).sum(dim=(1, 2, 3)).float()
    assert holes.max() == 256 and holes.min() >= 64  # a 16x16 square clipped by at most half per side
    # Centre uniform over the image, axes independent: mean area = (mean clipped side length)^2.
    per_axis = sum(min(c + 8, 32) - max(c - 8, 0) for c in range(32)) / 32
    assert holes.mean().item() == pytest.approx(per_axis**2, rel=0.05)


def test_normalize():
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    torch.testing.assert_close(normalize(x, [0.5], [0.5]), torch.tensor([[[[-1.0, 1.0]]]]))


def test_crop_offsets_are_uniform_like_torchvisions_random_crop():
    # A single bright pixel at the centre moves by the crop offset; every offset in [-p, p]^2 equally likely.
    p, n = 2, 20000
    x = torch.zeros(n, 1, 9, 9)
    x[:, :, 4, 4] = 1
    out = random_crop(x, p, torch.Generator().manual_seed(0))
    flat = out.view(n, -1).argmax(dim=1)
    rows, cols = flat // 9, flat % 9
    counts = torch.bincount((rows - 2) * 5 + (cols - 2), minlength=25).float()
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    expected = n / 25
    assert ((counts - expected).abs() < 0.12 * expected).all(), counts


def test_cutout_blackens_pixels_before_normalisation_like_the_authors_transform():
    # Authors' order: ToTensor -> RandomCrop -> Flip -> Cutout -> Normalize. On a white batch with only
    # cutout on, the cut square must hold the normalised value of black, (0 - mean) / std, per channel.
    from synermix.data.in_memory import AugmentSpec, InMemoryTwoViewData

    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    white = torch.full((64, 3, 12, 12), 255, dtype=torch.uint8)
    data = InMemoryTwoViewData(white, torch.zeros(64, dtype=torch.long), mean, std, AugmentSpec(cutout=4))
    _, aug, _ = data.batch(torch.arange(64), torch.Generator().manual_seed(0))
    black = torch.tensor([-m / s for m, s in zip(mean, std)])
    white_norm = torch.tensor([(1 - m) / s for m, s in zip(mean, std)])
    for c in range(3):
        assert torch.unique(aug[:, c]).numel() == 2  # only white and the cut square's black
        torch.testing.assert_close(aug[:, c].min(), black[c])
        torch.testing.assert_close(aug[:, c].max(), white_norm[c])
    cut = aug[:, 0] < 0  # channel 0's black is negative, its white positive
    assert cut.sum(dim=(1, 2)).min() >= 4 and cut.sum(dim=(1, 2)).max() == 16
    assert torch.equal(cut, aug[:, 1] < 0) and torch.equal(cut, aug[:, 2] < 0)  # the same square on every channel
