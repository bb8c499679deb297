"""The dataset registry: `dataset.name` -> its entry (a DatasetEntry: how to read it, and its facts), or your own
data set as `dataset._target_: my_module.MyDataset` (docs/extending.md). A data set is one file with its entry
(synermix/data/readers/) plus configs/dataset/<name>.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from synermix.config.checks import Check
from synermix.config.registry import Registry
from synermix.errors import DatasetNotFound

if TYPE_CHECKING:
    from synermix.data.sources import Source

DATASETS = Registry(
    "dataset",
    "dataset.name",
    {
        "digits": "synermix.data.digits:Digits",
        "cifar100": "synermix.data.readers.cifar100:Cifar100",
        "fashion_mnist": "synermix.data.readers.fashion_mnist:FashionMnist",
        "mini_imagenet": "synermix.data.readers.mini_imagenet:MiniImagenet",
        "food101": "synermix.data.readers.food101:Food101",
        "caltech256": "synermix.data.readers.caltech256:Caltech256",
        "oxford_pet": "synermix.data.readers.oxford_pet:OxfordPet",
        "image_folder": "synermix.data.image_folder:ImageFolder",
    },
    "dataset._target_=my_module.MyDataset",
)


class DatasetEntry:
    """A data set: `read(root, **options)` returns its Source (ArraySplit images are held in memory and augmented
    batch by batch; FileSplit paths are decoded by the DataLoader), and its facts below."""

    in_memory = False  # its images are held in memory as one tensor (ArraySplit)
    needs_root = True  # False: bundled with a library (dataset.root unused)
    counts_classes = False  # dataset.num_classes may be null: the number of classes read
    downloads = False  # dataset.download=true fetches it (`download`)
    torchvision_download: tuple[str, dict[str, Any]] | None = None  # the torchvision class and arguments that fetch it
    checks: tuple[Check, ...] = ()  # the checks of this data set's own keys (dataset.<key>)

    @classmethod
    def held_in_memory(cls, group: Any) -> bool:
        """Whether the `dataset` group's images are held in memory (an image folder: by its recipe)."""
        return cls.in_memory

    @staticmethod
    def read(root: Any, **options: Any) -> Source:
        """Both splits and the class names, from `root` (options: the dataset group's reader keys that are set)."""
        raise NotImplementedError

    @classmethod
    def download(cls, root: Path) -> None:
        """Fetch the data set into `root` (with torchvision's class `torchvision_download` names)."""
        if cls.torchvision_download is None:
            raise DatasetNotFound(f"dataset.download=true: {cls.__name__} cannot be downloaded; place it under {root}.")
        from torchvision import datasets  # torchvision: ~2 s, only to download

        name, arguments = cls.torchvision_download
        root.mkdir(parents=True, exist_ok=True)
        getattr(datasets, name)(str(root), download=True, **arguments)
