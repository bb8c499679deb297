"""Label new images with a trained run: its model and final weights, its evaluation transform, batched; a CSV of
each image's top-k classes and probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from synermix.data import Loading, eval_stream, held_in_memory
from synermix.data.image_folder import decode_to_array
from synermix.data.sources import FileSplit
from synermix.data.tree import bad_images, image_files
from synermix.errors import ConfigError, RunError
from synermix.store.io import check_writable, spreadsheet_safe
from synermix.train.evaluation import autocast_context
from synermix.use.trained import TrainedRun


def input_files(inputs: Sequence[Path]) -> Tuple[List[Path], List[Tuple[str, str]]]:
    """(readable image files, [(unreadable file, why)]) of `inputs`: files, or folders searched recursively."""
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise RunError(f"Cannot predict: {', '.join(missing[:10])} not found (pass image files or folders).")
    files: List[Path] = []
    for path in map(Path, inputs):
        files += image_files(path) if path.is_dir() else [path]
    unreadable = bad_images([str(f) for f in files])
    skipped = {p for p, _ in unreadable}
    return [f for f in files if str(f) not in skipped], unreadable


def _split_for(trained: TrainedRun, files: List[Path]):
    """The files as the run's data would hold them: paths (file data sets), or decoded and resized pixels (data
    sets held in memory, e.g. digits or recipe=cifar)."""
    dataset = trained.cfg.dataset
    split = FileSplit([str(f) for f in files], np.zeros(len(files), dtype=np.int64))
    if held_in_memory(dataset):
        return decode_to_array(split, int(dataset.image_size), len(dataset.mean))
    return split


def check_output(out: Path, batch_size: int, topk: int, workers: int) -> None:
    """Refuse, before any image is read, a --batch-size/--topk below 1, --workers below 0, and an --out that is a
    folder or cannot be written (the predictions would be computed, then lost)."""
    found = [
        f"{flag}={value} is invalid: use an integer >= {least}"
        for flag, value, least in (("--batch-size", batch_size, 1), ("--topk", topk, 1), ("--workers", workers, 0))
        if value < least
    ]
    if Path(out).is_dir():
        found.append(f"--out={out} is a folder: name the CSV file to write, e.g. {Path(out) / 'predictions.csv'}")
    if found:
        raise ConfigError("Invalid arguments: " + "; ".join(found) + ".")
    check_writable(Path(out).parent, f"the predictions ({Path(out).name})", "Choose another --out.")


def csv_text(table: pd.DataFrame) -> str:
    """The predictions as CSV text, every path and class name safe to open in a spreadsheet."""
    safe = table.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = [spreadsheet_safe(str(v)) for v in safe[column]]
    return safe.to_csv(index=False)


@torch.no_grad()
def predict(
    trained: TrainedRun, files: List[Path], topk: int = 5, batch_size: int = 64, num_workers: int = 0
) -> pd.DataFrame:
    """One row per file: path, then class_1, prob_1, ..., class_k, prob_k (most probable first)."""
    classes = trained.classes
    if not 1 <= topk <= len(classes):
        raise ConfigError(f"--topk={topk} is invalid: the run has {len(classes)} classes, so use 1..{len(classes)}.")
    from tqdm import tqdm  # tqdm: only the prediction loop

    device = next(trained.model.parameters()).device
    loading = Loading(eval_batch_size=batch_size, num_workers=num_workers)
    stream = eval_stream(trained.cfg.dataset, _split_for(trained, files), loading, device)
    probs, indices = [], []
    with tqdm(total=len(files), unit="image", disable=len(files) <= batch_size) as bar:
        for x, _ in stream:
            with autocast_context(device, bool(trained.cfg.amp), str(trained.cfg.amp_dtype)):
                logits = trained.model(x)
            p, i = logits.float().softmax(dim=1).topk(topk, dim=1)
            probs.append(p.cpu())
            indices.append(i.cpu())
            bar.update(len(x))
    table: dict = {"path": [str(f) for f in files]}
    p, i = (torch.cat(t).numpy() if t else np.zeros((0, topk)) for t in (probs, indices))
    for rank in range(topk):
        table[f"class_{rank + 1}"] = [classes[int(k)] for k in i[:, rank]]
        table[f"prob_{rank + 1}"] = p[:, rank]
    return pd.DataFrame(table)
