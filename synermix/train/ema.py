"""An exponential moving average of the weights (train.ema): a hook that keeps timm's ModelEmaV3 of the model,
updated every `every` optimisation steps, carried in every checkpoint, and evaluated each epoch beside the raw
weights (eval_acc_ema, eval_ece_ema, eval_nll_ema)."""

from __future__ import annotations

from typing import Any, Dict

from torch import nn

from synermix.config.checks import Check, is_int, is_num
from synermix.train.hooks import Hook

# train.ema's keys: decay (null: off) and the update interval
EMA_CHECKS = (
    Check("decay", lambda v: v is None or (is_num(v) and 0 < v < 1), "null (off) or a number in (0, 1)"),
    Check("every", lambda v: is_int(v) and v >= 1, "an integer >= 1 (optimisation steps between updates)"),
)


class WeightEma(Hook):
    """ema = decay * ema + (1 - decay) * weights (parameters and floating-point buffers; integer buffers copied),
    after every `every`-th optimisation step of the run (counted across epochs, so a resume updates alike)."""

    state_key = "ema"

    def __init__(self, model: nn.Module, decay: float, every: int = 1) -> None:
        from timm.utils import ModelEmaV3  # timm: imported only by runs with an EMA

        self.ema = ModelEmaV3(model, decay=float(decay))
        self.every = int(every)

    @property
    def module(self) -> nn.Module:
        """The averaged model (a copy of the trained one's architecture)."""
        return self.ema.module

    def after_step(self, trainer) -> None:
        """Update the average at every `every`-th step of the run. Under torchrun the buffers (BatchNorm's running
        statistics, updated by each process on its part) are first made rank 0's, as DistributedDataParallel does
        before the next forward, so every process holds the same average."""
        if (trainer.epoch * trainer.steps_per_epoch + trainer.step) % self.every == 0:
            trainer.options.env.broadcast_(*(b for b in trainer.model.buffers() if b.is_floating_point()))
            self.ema.update(trainer.model)

    def state_dict(self) -> Dict[str, Any]:
        """The averaged weights."""
        return {"module": self.ema.module.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from a checkpoint's averaged weights."""
        self.ema.module.load_state_dict(state["module"])
