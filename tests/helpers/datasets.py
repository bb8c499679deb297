"""Writers of tiny datasets in each dataset's exact on-disk layout (real pickles, IDX, JSON, CSV, JPEG files)."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def _jpeg(path: Path, rng: np.random.Generator, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)


def write_cifar100(root: Path, classes=(0, 5, 42, 99), train_per_class=6, test_per_class=3) -> Path:
    """root/cifar-100-python/{train,test,meta}: python pickles with 'data' (N, 3072) and 'fine_labels'."""
    rng = np.random.default_rng(0)
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    for name, n in (("train", train_per_class), ("test", test_per_class)):
        labels = [c for c in classes for _ in range(n)]
        d = {
            "data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8),
            "fine_labels": labels,
            "coarse_labels": [c // 5 for c in labels],
            "filenames": [f"img_{i}.png" for i in range(len(labels))],
            "batch_label": f"{name} batch",
        }
        with open(base / name, "wb") as f:
            pickle.dump(d, f)
    with open(base / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"class{i}" for i in range(100)], "coarse_label_names": []}, f)
    return root


def _idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_fashion_mnist(root: Path, per_class=5, test_per_class=2, torchvision_layout=False) -> Path:
    """The four IDX files: gzipped directly in root (Debian), or plain in root/FashionMNIST/raw (torchvision)."""
    rng = np.random.default_rng(1)
    folder = root / "FashionMNIST" / "raw" if torchvision_layout else root
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10), n)
        _idx(
            folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (labels.size, 28, 28)), not torchvision_layout
        )
        _idx(folder / f"{prefix}-labels-idx1-ubyte", labels, not torchvision_layout)
    return root


MINI_WNIDS = ("n01532829", "n01558993", "n01704323", "n01749939")


def write_mini_imagenet_pickles(root: Path, per_class=4, size=84) -> Path:
    """mini-imagenet-cache-{train,val,test}.pkl with 'image_data' and 'class_dict' (classes spread over the files)."""
    rng = np.random.default_rng(2)
    root.mkdir(parents=True, exist_ok=True)
    groups = {"train": MINI_WNIDS[:2], "val": MINI_WNIDS[2:3], "test": MINI_WNIDS[3:]}
    for part, wnids in groups.items():
        data = rng.integers(0, 256, (per_class * len(wnids), size, size, 3), dtype=np.uint8)
        class_dict = {w: list(range(i * per_class, (i + 1) * per_class)) for i, w in enumerate(wnids)}
        with open(root / f"mini-imagenet-cache-{part}.pkl", "wb") as f:
            pickle.dump({"image_data": data, "class_dict": class_dict}, f)
    return root


def write_mini_imagenet_csv(root: Path, per_class=4, size=(90, 90)) -> Path:
    """Ravi-Larochelle layout: {train,val,test}.csv (filename,label) + images/<file>.jpg."""
    rng = np.random.default_rng(3)
    groups = {"train": MINI_WNIDS[:2], "val": MINI_WNIDS[2:3], "test": MINI_WNIDS[3:]}
    for part, wnids in groups.items():
        rows = ["filename,label"]
        for w in wnids:
            for i in range(per_class):
                name = f"{w}{i:08d}.jpg"
                _jpeg(root / "images" / name, rng, size)
                rows.append(f"{name},{w}")
        (root / f"{part}.csv").write_text("\n".join(rows) + "\n")
    return root


FOOD_CLASSES = ("apple_pie", "baby_back_ribs", "baklava")


def write_food101(root: Path, train_per_class=4, test_per_class=2) -> Path:
    """root/food-101/images/<class>/<id>.jpg + meta/{train,test}.json + meta/classes.txt."""
    rng = np.random.default_rng(4)
    base = root / "food-101"
    meta: dict = {"train": {}, "test": {}}
    for c in FOOD_CLASSES:
        ids = [f"{c}/{100 + i}" for i in range(train_per_class + test_per_class)]
        meta["train"][c], meta["test"][c] = ids[:train_per_class], ids[train_per_class:]
        for item in ids:
            _jpeg(base / "images" / f"{item}.jpg", rng)
    (base / "meta").mkdir(parents=True)
    for split in ("train", "test"):
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta[split]))
    (base / "meta" / "classes.txt").write_text("\n".join(FOOD_CLASSES) + "\n")
    return root


CALTECH_CLASSES = ("001.ak47", "002.american-flag", "257.clutter")


def write_caltech256(root: Path, per_class=5) -> Path:
    """root/256_ObjectCategories/NNN.name/NNN_XXXX.jpg (plus a stray non-image file, as the real archive has)."""
    rng = np.random.default_rng(5)
    for c in CALTECH_CLASSES:
        num = c.split(".")[0]
        for i in range(per_class, 0, -1):  # written in reverse: the reader must sort
            _jpeg(root / "256_ObjectCategories" / c / f"{num}_{i:04d}.jpg", rng)
    (root / "256_ObjectCategories" / CALTECH_CLASSES[0] / "RENAME2").write_text("not an image")
    return root


PET_BREEDS = ("Abyssinian", "american_bulldog", "Bengal")


def write_oxford_pet(root: Path, train_per_class=4, test_per_class=2) -> Path:
    """root/images/<Breed>_<n>.jpg + root/annotations/{trainval,test}.txt ('name class species breed')."""
    rng = np.random.default_rng(6)
    lines: dict = {"trainval": [], "test": []}
    for k, breed in enumerate(PET_BREEDS, 1):
        for i in range(1, train_per_class + test_per_class + 1):
            name = f"{breed}_{i}"
            _jpeg(root / "images" / f"{name}.jpg", rng)
            species = 1 if breed[0].isupper() else 2
            lines["trainval" if i <= train_per_class else "test"].append(f"{name} {k} {species} {k}")
    (root / "annotations").mkdir(parents=True)
    for split, rows in lines.items():
        (root / "annotations" / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return root


def write_image_folder(
    root: Path, classes=("cat", "dog", "emu"), train_per_class=6, test_per_class=3, layout="split", size=(40, 30)
) -> Path:
    """ImageFolder trees: `split` root/train/<class>/*.jpg + root/test/<class>/*.jpg; `flat` root/<class>/*.jpg.
    File names are written in reverse order and in mixed case of extension (the reader must sort as torchvision)."""
    rng = np.random.default_rng(6)
    parts = {"train": train_per_class, "test": test_per_class} if layout == "split" else {"": train_per_class}
    for part, count in parts.items():
        for c in classes:
            for i in range(count, 0, -1):
                _jpeg(root / part / c / f"img_{i:03d}.{'JPG' if i % 2 else 'jpg'}", rng, size)
    return root
