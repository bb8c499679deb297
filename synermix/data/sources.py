"""Readers for each dataset's standard on-disk layout -> train/test splits (arrays or file lists).

torchvision's dataset classes read one fixed folder name under `root` (and CIFAR's checks file
hashes), and return one transformed PIL view per item; here the same files are read with the
same conventions, so `dataset.root` may be the dataset folder itself or its parent, one decode
can feed both views, and small test fixtures in the same layout load. torchvision's classes are
used to download (`dataset.download=true`) wherever torchvision can.
"""
from __future__ import annotations

import gzip
import json
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from synermix.errors import DatasetFormatError, DatasetNotFound, describe


@dataclass
class ArraySplit:
    """A split held in memory: uint8 images (N, C, H, W) and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def subset(self, idx: np.ndarray) -> "ArraySplit":
        """The samples at `idx`."""
        return ArraySplit(self.images[idx], self.labels[idx])


@dataclass
class FileSplit:
    """A split of image files (decoded lazily) and int64 labels."""

    paths: List[str]
    labels: np.ndarray

    def subset(self, idx: np.ndarray) -> "FileSplit":
        """The samples at `idx`."""
        return FileSplit([self.paths[i] for i in idx], self.labels[idx])


@dataclass
class Source:
    """Both official splits of a dataset and its class names."""

    train: ArraySplit | FileSplit
    test: ArraySplit | FileSplit
    classes: List[str] = field(default_factory=list)


def not_found(name: str, root: Path, looked: Sequence[Path], layout: str, how: str) -> DatasetNotFound:
    """The one-paragraph error for a dataset that is not on disk."""
    where = ", ".join(str(p) for p in looked)
    return DatasetNotFound(
        f"{name} not found under dataset.root={root} (looked for {where}). Expected layout: {layout}. {how}"
    )


def _first_existing(candidates: Sequence[Path], marker: str) -> Optional[Path]:
    """The first candidate folder containing `marker`."""
    for c in candidates:
        if (c / marker).exists():
            return c
    return None


# What a dataset pickle may ask to rebuild: numpy arrays, dtypes and scalars (plus builtin containers,
# which need no lookup), and bytes as Python 3 writes them at protocol 2 (`_codecs.encode(str, "latin1")`, which
# torch's weights_only loader allows too). Anything else (a shell call, a builtin, ...) is refused before it runs.
SAFE_PICKLE_GLOBALS = {
    (module, name)
    for core in ("numpy.core", "numpy._core")
    for module, name in ((f"{core}.multiarray", "_reconstruct"), (f"{core}.multiarray", "scalar"),
                         (f"{core}.numeric", "_frombuffer"))
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("_codecs", "encode")}


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and builtin containers only."""

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a dataset pickle never needs")


def _unpickle(path: Path):
    """A dataset pickle, loaded with the restricted unpickler (no code from the file is executed)."""
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DatasetFormatError(
            f"{path} was refused: {exc}. Only numpy arrays and builtin containers are loaded from dataset "
            "pickles; replace the file with an official copy."
        ) from None
    except Exception as exc:
        raise DatasetFormatError(f"{path} is not a readable pickle of the expected format ({type(exc).__name__}: {exc}).") from None


def _verify_cifar100(base: Path) -> None:
    """Check the official CIFAR-100 files against torchvision's MD5 sums."""
    from torchvision.datasets import CIFAR100
    from torchvision.datasets.utils import calculate_md5

    for name, md5 in [*CIFAR100.train_list, *CIFAR100.test_list, (CIFAR100.meta["filename"], CIFAR100.meta["md5"])]:
        path = base / name
        if path.exists() and calculate_md5(str(path)) != md5:
            raise DatasetFormatError(
                f"{path} is not the official CIFAR-100 file (its MD5 is not torchvision's {md5}): it may be "
                "corrupt or tampered with. Re-download it (dataset.download=true), or set "
                "dataset.verify_md5=false for a copy you re-packed yourself."
            )


# ---------------------------------------------------------------- CIFAR-100 (python pickles)
def read_cifar100(root: Path, verify_md5: bool = True, **_) -> Source:
    """`cifar-100-python/{train,test,meta}` as torchvision downloads it (fine labels, 100 classes), checked
    against the official MD5 sums unless `verify_md5` is false."""
    base = _first_existing([root / "cifar-100-python", root], "train")
    if base is None:
        raise not_found(
            "CIFAR-100", root, [root / "cifar-100-python" / "train", root / "train"],
            "cifar-100-python/{train,test,meta} (the python pickles)",
            "Set dataset.download=true to fetch it with torchvision, or unpack cifar-100-python.tar.gz there.",
        )

    if verify_md5:
        _verify_cifar100(base)

    def split(name: str) -> ArraySplit:
        d = _unpickle(base / name)
        try:
            images = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(d["fine_labels"], dtype=np.int64)
        except (KeyError, ValueError) as exc:
            raise DatasetFormatError(f"{base / name} is not a CIFAR-100 pickle (no usable 'data'/'fine_labels': {exc}).") from None
        return ArraySplit(images, labels)

    meta = _unpickle(base / "meta") if (base / "meta").exists() else {}
    return Source(split("train"), split("test"), list(meta.get("fine_label_names", [])))


# ---------------------------------------------------------------- Fashion-MNIST (IDX files)
def read_idx(path: Path) -> np.ndarray:
    """An IDX (MNIST-format) file, gzip-compressed or not, as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
        if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 3:
            raise ValueError(f"magic bytes {data[:4].hex()} are not an unsigned-byte IDX header")
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetFormatError(f"{path} is not a readable IDX file ({type(exc).__name__}: {exc}).") from None


def read_fashion_mnist(root: Path, **_) -> Source:
    """The four IDX files, `.gz` or not, in `root` (Debian's package) or `root/FashionMNIST/raw` (torchvision)."""
    folders = [root, root / "FashionMNIST" / "raw"]

    def find(stem: str) -> Path:
        for folder in folders:
            for name in (stem + ".gz", stem):
                if (folder / name).is_file():
                    return folder / name
        raise not_found(
            "Fashion-MNIST", root, [f / (stem + "[.gz]") for f in folders],
            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
            "(optionally .gz) directly in the root or in FashionMNIST/raw/",
            "Install Debian's package (apt-get install dataset-fashion-mnist; root /usr/share/datasets/fashion-mnist) "
            "or set dataset.download=true.",
        )

    def split(prefix: str) -> ArraySplit:
        images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise DatasetFormatError(f"Fashion-MNIST {prefix} images {images.shape} and labels {labels.shape} do not match.")
        return ArraySplit(images[:, None], labels)

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    return Source(split("train"), split("t10k"), classes)


# ---------------------------------------------------------------- per-class train/test cut
def split_per_class(
    labels: np.ndarray, train_per_class: int, test_per_class: int, class_names: Sequence[str], name: str
) -> Tuple[np.ndarray, np.ndarray]:
    """Per class, in the given order: the first `train_per_class` indices train, the next `test_per_class` test."""
    train, test = [], []
    for c in range(len(class_names)):
        idx = np.flatnonzero(labels == c)
        if idx.size < train_per_class + test_per_class:
            raise DatasetFormatError(
                f"{name}: class {class_names[c]!r} has {idx.size} images, fewer than the "
                f"{train_per_class} train + {test_per_class} test the split needs "
                "(dataset.train_per_class / dataset.test_per_class)."
            )
        train.append(idx[:train_per_class])
        test.append(idx[train_per_class : train_per_class + test_per_class])
    return np.concatenate(train), np.concatenate(test)


# ---------------------------------------------------------------- mini-ImageNet
MINI_LAYOUT = (
    "either mini-imagenet-cache-{train,val,test}.pkl (dicts with 'image_data' (N,84,84,3) uint8 and "
    "'class_dict' {wnid: [indices]}) or the Ravi-Larochelle train.csv/val.csv/test.csv (filename,label) + images/"
)


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` in RGB; a 16-bit grey image (Pillow's modes I;16* and I) is scaled to 8 bits (65535 -> 255), where
    Pillow's own conversion would clip every value above 255 to white. A mode-I image whose values all fit in 8 bits
    is taken as 8-bit."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def open_rgb(path) -> Image.Image:
    """The image at `path` decoded to RGB with Pillow (16-bit grey scaled, see `to_rgb`); a corrupt or missing file
    names itself."""
    try:
        with Image.open(path) as image:
            return to_rgb(image)
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise DatasetFormatError(f"Cannot decode image {path} ({describe(exc)}).") from None


def _decode_resized(path: Path, size: int) -> np.ndarray:
    image = open_rgb(path)
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


MINI_SPLITS = ("table1", "authors")
AUTHORS_SHUFFLE_SEED = 100  # the authors' MLclf call: random.seed(100), then random.shuffle of all images
AUTHORS_TRAIN_RATIO = 0.8   # ... and the first 80% of the shuffled pool train, the rest test


def authors_mini_imagenet_split(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """(train, test) indices into the pooled images as the authors' MLclf split makes them: Python's
    `random.seed(100); random.shuffle` of all `n` images, the first floor(0.8 n) train (not stratified)."""
    order = list(range(n))
    random.Random(AUTHORS_SHUFFLE_SEED).shuffle(order)  # = random.seed(100); random.shuffle(order)
    cut = int(np.floor(n * AUTHORS_TRAIN_RATIO))
    return np.asarray(order[:cut], dtype=np.int64), np.asarray(order[cut:], dtype=np.int64)


def _mini_from_pickles(pkls: Sequence[Path]) -> Tuple[np.ndarray, List[str]]:
    images, wnids = [], []
    for p in pkls:
        d = _unpickle(p)
        try:
            data = np.asarray(d["image_data"], dtype=np.uint8)
            owner = np.full(len(data), None, dtype=object)
            for wnid, idx in d["class_dict"].items():
                owner[np.asarray(idx)] = wnid
        except (KeyError, TypeError, IndexError) as exc:
            raise DatasetFormatError(f"{p} is not a mini-ImageNet cache pickle ({type(exc).__name__}: {exc}).") from None
        if any(w is None for w in owner):
            raise DatasetFormatError(f"{p}: some images of 'image_data' belong to no class of 'class_dict'.")
        images.append(data)
        wnids += list(owner)
    return np.concatenate(images), wnids


def _mini_from_csvs(root: Path, csvs: Sequence[Path], image_size: int) -> Tuple[np.ndarray, List[str]]:
    images, wnids = [], []
    for p in csvs:
        lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
        if not lines or lines[0].replace(" ", "") != "filename,label":
            raise DatasetFormatError(f"{p} does not start with the header 'filename,label'.")
        for ln in lines[1:]:
            fname, wnid = ln.split(",")[:2]
            images.append(_decode_resized(root / "images" / fname, image_size))
            wnids.append(wnid)
    return np.stack(images), wnids


def read_mini_imagenet(
    root: Path, image_size: int = 84, train_per_class: int = 500, test_per_class: int = 100, split: str = "table1", **_
) -> Source:
    """All 100 classes pooled in file order (train, val, test; classes sorted by WordNet id), then split:
    `table1` per class the first 500 train / next 100 test; `authors` the authors' shuffled 80/20 cut."""
    parts = ("train", "val", "test")
    pkls = [root / f"mini-imagenet-cache-{p}.pkl" for p in parts]
    csvs = [root / f"{p}.csv" for p in parts]
    if all(p.is_file() for p in pkls):
        data, wnids = _mini_from_pickles(pkls)
    elif all(p.is_file() for p in csvs) and (root / "images").is_dir():
        data, wnids = _mini_from_csvs(root, csvs, image_size)
    else:
        raise not_found(
            "mini-ImageNet", root, [*pkls, *csvs, root / "images"], MINI_LAYOUT,
            "torchvision cannot download it; obtain it from the few-shot-learning releases and unpack it there.",
        )
    data = data.transpose(0, 3, 1, 2)
    if data.shape[-1] != image_size:
        data = np.stack([_resize_array(im, image_size) for im in data])
    classes = sorted(set(wnids))
    lookup = {w: i for i, w in enumerate(classes)}
    labels = np.array([lookup[w] for w in wnids], dtype=np.int64)
    if split == "authors":
        tr, te = authors_mini_imagenet_split(len(labels))
    else:
        tr, te = split_per_class(labels, train_per_class, test_per_class, classes, "mini-ImageNet")
    return Source(ArraySplit(data[tr], labels[tr]), ArraySplit(data[te], labels[te]), classes)


def _resize_array(image_chw: np.ndarray, size: int) -> np.ndarray:
    im = Image.fromarray(image_chw.transpose(1, 2, 0)).resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


# ---------------------------------------------------------------- Food-101
def read_food101(root: Path, **_) -> Source:
    """`food-101/images/<class>/<id>.jpg` + `meta/{train,test}.json`: the official split (classes sorted)."""
    base = _first_existing([root / "food-101", root], "meta/train.json")
    if base is None:
        raise not_found(
            "Food-101", root, [root / "food-101" / "meta" / "train.json", root / "meta" / "train.json"],
            "food-101/images/<class>/<id>.jpg with food-101/meta/{train.json,test.json,classes.txt}",
            "Set dataset.download=true to fetch it with torchvision, or unpack food-101.tar.gz there.",
        )

    def split(name: str, classes: Optional[List[str]] = None) -> Tuple[FileSplit, List[str]]:
        path = base / "meta" / f"{name}.json"
        try:
            meta: Dict[str, List[str]] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetFormatError(f"{path} is not a readable Food-101 split file ({exc}).") from None
        classes = classes or sorted(meta)
        lookup = {c: i for i, c in enumerate(classes)}
        paths, labels = [], []
        for cls, items in meta.items():
            if cls not in lookup:
                raise DatasetFormatError(f"{path} lists class {cls!r} that train.json does not have.")
            paths += [str(base / "images" / f"{item}.jpg") for item in items]
            labels += [lookup[cls]] * len(items)
        return FileSplit(paths, np.array(labels, dtype=np.int64)), classes

    train, classes = split("train")
    test, _ = split("test", classes)
    return Source(train, test, classes)


# ---------------------------------------------------------------- Caltech-256
def read_caltech256(root: Path, train_per_class: int = 60, test_per_class: int = 20, **_) -> Source:
    """`256_ObjectCategories/NNN.name/NNN_XXXX.jpg`; per class (sorted files) first 60 train, next 20 test."""
    base = _first_existing([root / "caltech256", root], "256_ObjectCategories")
    if base is None:
        raise not_found(
            "Caltech-256", root, [root / "256_ObjectCategories", root / "caltech256" / "256_ObjectCategories"],
            "256_ObjectCategories/NNN.name/NNN_XXXX.jpg (257 class folders including 257.clutter)",
            "Set dataset.download=true to fetch it with torchvision, or unpack 256_ObjectCategories.tar there.",
        )
    folder = base / "256_ObjectCategories"
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    paths, labels = [], []
    for i, c in enumerate(classes):
        files = sorted(p.name for p in (folder / c).iterdir() if p.suffix.lower() == ".jpg")
        paths += [str(folder / c / f) for f in files]
        labels += [i] * len(files)
    labels = np.array(labels, dtype=np.int64)
    tr, te = split_per_class(labels, train_per_class, test_per_class, classes, "Caltech-256")
    split = FileSplit(paths, labels)
    return Source(split.subset(tr), split.subset(te), classes)


# ---------------------------------------------------------------- Oxford-IIIT Pet
def read_oxford_pet(root: Path, **_) -> Source:
    """`images/<Name>_<n>.jpg` + `annotations/{trainval,test}.txt` (name, class id 1-37, species, breed id)."""
    base = _first_existing([root / "oxford-iiit-pet", root], "annotations/trainval.txt")
    if base is None:
        raise not_found(
            "Oxford-IIIT Pet", root,
            [root / "annotations" / "trainval.txt", root / "oxford-iiit-pet" / "annotations" / "trainval.txt"],
            "images/<Breed>_<n>.jpg and annotations/{trainval.txt,test.txt}",
            "Set dataset.download=true to fetch it with torchvision, or unpack images.tar.gz and annotations.tar.gz there.",
        )
    names: Dict[int, str] = {}

    def split(name: str) -> FileSplit:
        path = base / "annotations" / f"{name}.txt"
        paths, labels = [], []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            try:
                image_id, class_id = fields[0], int(fields[1])
            except (IndexError, ValueError):
                raise DatasetFormatError(f"{path}:{n}: expected '<image> <class id> <species> <breed id>', got {line!r}.") from None
            names[class_id - 1] = image_id.rsplit("_", 1)[0].replace("_", " ")
            paths.append(str(base / "images" / f"{image_id}.jpg"))
            labels.append(class_id - 1)
        return FileSplit(paths, np.array(labels, dtype=np.int64))

    train, test = split("trainval"), split("test")
    return Source(train, test, [names[i] for i in sorted(names)])


# ---------------------------------------------------------------- downloads (torchvision)
def download(name: str, root: Path) -> None:
    """Fetch `name` into `root` with torchvision's dataset class (raises if torchvision cannot)."""
    from torchvision import datasets as tvd

    fetchers: Dict[str, Callable[[], object]] = {
        "cifar100": lambda: tvd.CIFAR100(str(root), train=True, download=True),
        "fashion_mnist": lambda: tvd.FashionMNIST(str(root), train=True, download=True),
        "food101": lambda: tvd.Food101(str(root), split="train", download=True),
        "caltech256": lambda: tvd.Caltech256(str(root), download=True),
        "oxford_pet": lambda: tvd.OxfordIIITPet(str(root), split="trainval", download=True),
    }
    if name not in fetchers:
        raise DatasetNotFound(f"dataset.download=true: torchvision cannot download {name}; place it under {root} by hand.")
    root.mkdir(parents=True, exist_ok=True)
    fetchers[name]()


READERS: Dict[str, Callable[..., Source]] = {
    "cifar100": read_cifar100,
    "fashion_mnist": read_fashion_mnist,
    "mini_imagenet": read_mini_imagenet,
    "food101": read_food101,
    "caltech256": read_caltech256,
    "oxford_pet": read_oxford_pet,
}
