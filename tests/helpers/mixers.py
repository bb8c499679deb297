"""User mixers for tests, named by `method.inter={_target_:helpers.mixers.<Class>}`."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from synermix.method.mixers import Mix


class WrongPointMixer:
    """A mixer whose draw picks a mix point no model has (a user's bug the loss must name)."""

    def draw(
        self,
        labels: Tensor,
        generator: Optional[torch.Generator],
        batch_shape: Tuple[int, ...],
        mix_points: Sequence[str],
    ) -> Mix:
        """Mixes nothing, at the point 'nowhere'."""
        return Mix("nowhere", lambda x: x, labels, torch.ones(len(labels)))
