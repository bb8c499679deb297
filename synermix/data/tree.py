"""An image tree on disk: its class folders and image files (directory symlinks followed at most once per real
directory, so a link loop neither repeats images nor hangs the scan), the data's fingerprint, and a check of
every file's image header before training."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

from synermix.errors import describe

BAD_IMAGE_ACTIONS = ("error", "skip")


def _image_extensions() -> Tuple[str, ...]:
    from torchvision.datasets.folder import IMG_EXTENSIONS  # torchvision: ~2 s, only on use

    return IMG_EXTENSIONS


def _files_under(folder: Path, seen: set) -> List[Path]:
    """Image files under `folder` in sorted order; a directory reached again through a symlink is skipped."""
    real = os.path.realpath(folder)
    if real in seen:
        return []
    seen.add(real)
    files: List[Path] = []
    extensions = _image_extensions()
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=True):
                files += _files_under(path, seen)
            elif entry.is_file(follow_symlinks=True) and entry.name.lower().endswith(extensions):
                files.append(path)
    return files


def image_files(folder: Path) -> List[Path]:
    """Every image file under `folder`, recursively, in sorted order (directory symlinks followed once)."""
    return _files_under(Path(folder), set())


def scan_classes(folder: Path) -> Tuple[List[str], List[Tuple[str, int]]]:
    """(sorted class folder names, [(image path, class index)]) as torchvision's ImageFolder orders them; a
    symlinked directory is followed once per real directory (`ln -s . c0/self` adds nothing)."""
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=True))
    seen: set = {os.path.realpath(folder)}
    samples = [(str(p), index) for index, name in enumerate(classes) for p in _files_under(folder / name, seen)]
    return classes, samples


def fingerprint(root: Optional[str]) -> str:
    """12 hex digits naming an image tree's contents: every image's path relative to `root` and its size in bytes
    (a directory walk, no decoding). `missing` when `root` is not a directory (the reader then says why)."""
    if not root or not Path(root).is_dir():
        return "missing"
    digest = hashlib.sha1()
    base = Path(root)
    for path in _files_under(base, set()):
        digest.update(f"{path.relative_to(base).as_posix()}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:12]


def _header_problem(path: str) -> Optional[str]:
    """Why the file at `path` is not a readable image (None when it is): Pillow opens its header and verifies
    it (PNG: every chunk's CRC, so truncation too); a JPEG that does not end with its end marker is decoded."""
    from PIL import Image  # Pillow: only where images are decoded

    try:
        with Image.open(path) as image:
            image.verify()
            jpeg = image.format == "JPEG"
        if jpeg:
            with open(path, "rb") as f:
                f.seek(-2, os.SEEK_END)
                complete = f.read(2) == b"\xff\xd9"
            if not complete:
                with Image.open(path) as image:
                    image.load()
    except Exception as exc:  # Pillow raises many types for bad files (OSError, SyntaxError, ValueError, ...)
        return describe(exc)
    return None


def bad_images(paths: List[str], workers: Optional[int] = None) -> List[Tuple[str, str]]:
    """[(path, problem)] of the files that are not readable images, checked in `workers` threads."""
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool:
        problems = list(pool.map(_header_problem, paths, chunksize=64))
    return [(p, problem) for p, problem in zip(paths, problems) if problem is not None]
