"""Closed-form quantities the paper plots (Figure 1)."""

from __future__ import annotations


def intra_class_pair_probability(num_classes: int, batch_size: int) -> float:
    """Probability that a random shuffle pairs an image with one of its own class (Figure 1).

    Labels are i.i.d. uniform over `num_classes`; the partner of image i is the image at position
    i of a uniformly random permutation of the batch. It is i itself with probability 1/B, and
    otherwise another image, of the same class with probability 1/K:
    p = 1/B + (1 - 1/B) / K.  (K=16, B=32 gives 9.2%, K=B=128 gives 1.6%, as in Sec. 1.)
    """
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    return 1.0 / batch_size + (1.0 - 1.0 / batch_size) / num_classes
