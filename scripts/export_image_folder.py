#!/usr/bin/env python
"""Write an in-memory dataset (digits, Fashion-MNIST, CIFAR-100, mini-ImageNet) as an ImageFolder tree of PNGs:
OUT/train/<NN_class>/<i>.png and OUT/test/<NN_class>/<i>.png, class folders numbered so that torchvision's
sorted order (what dataset=image_folder uses) gives back the original labels.

    python scripts/export_image_folder.py fashion_mnist /usr/share/datasets/fashion-mnist outputs/fmnist_folder
    python scripts/train.py dataset=image_folder dataset.root=outputs/fmnist_folder dataset.recipe=cifar \\
        dataset.image_size=28 dataset.mean=[0.286,0.286,0.286] dataset.std=[0.353,0.353,0.353] method=synermix_cutmix
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf

from synermix.data import DATASETS, first_per_class
from synermix.data.sources import ArraySplit
from synermix.errors import SynerMixError

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "dataset"


def folder_names(classes) -> list:
    """NN_name per class: zero-padded label first (sorted order = label order), then a file-safe name."""
    width = len(str(len(classes) - 1))
    return [
        f"{i:0{width}d}_{re.sub(r'[^A-Za-z0-9._-]+', '-', str(c)).strip('-') or 'class'}" for i, c in enumerate(classes)
    ]


def export(split: ArraySplit, names: list, out: Path) -> int:
    """Every image of `split` as out/<class folder>/<index>.png (RGB or grayscale as stored); returns the count."""
    from PIL import Image

    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(split.images, split.labels)):
        pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        Image.fromarray(pixels).save(out / names[int(label)] / f"{i:06d}.png")
    return len(split.labels)


def main(argv=None) -> int:
    """Read the dataset with the repository's own reader and write both official splits as PNG folders."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=[n for n in DATASETS.names() if DATASETS.load(n).in_memory])
    parser.add_argument("root", help="the dataset's folder, as dataset.root (ignored for digits)")
    parser.add_argument("out", type=Path, help="folder to write train/ and test/ into (must not exist)")
    parser.add_argument("--max-per-class", type=int, default=None, help="only the first N images of each class")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"error: {args.out} exists; pass a new folder (nothing is overwritten).", file=sys.stderr)
        return 2
    if args.max_per_class is not None and args.max_per_class < 1:
        print(
            f"error: --max-per-class={args.max_per_class} is invalid: use an integer >= 1 (or leave it out for "
            "every image).",
            file=sys.stderr,
        )
        return 2
    cfg = OmegaConf.load(CONFIGS / f"{args.dataset}.yaml").dataset
    cfg.root = args.root
    from synermix.data import load_source
    from synermix.store.io import check_writable

    try:
        check_writable(args.out, "the exported image folder", "Choose another OUT.")
        source = load_source(cfg)
        write_splits(source, cfg, args.out, args.max_per_class)
    except SynerMixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"error: Cannot write the image folder {args.out}: {exc}. What was written so far is incomplete: "
            f"delete {args.out} and run the export again.",
            file=sys.stderr,
        )
        return 2
    return 0


def write_splits(source, cfg, out: Path, max_per_class) -> None:
    """Both official splits of `source` as out/train and out/test (the first `max_per_class` of each class)."""
    classes = source.classes or [str(i) for i in range(int(cfg.num_classes))]
    names = folder_names(classes)
    for split_name, split in (("train", source.train), ("test", source.test)):
        if max_per_class:
            split = split.subset(first_per_class(split.labels, max_per_class))
        count = export(split, names, out / split_name)
        print(f"{split_name}: {count} images in {len(names)} class folders under {out / split_name}")


if __name__ == "__main__":
    sys.exit(main())
