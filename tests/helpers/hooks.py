"""Training hooks the tests inject (through `hooks.<name>` on the command line or run_training's `hooks`)."""

from __future__ import annotations

import os
import signal
import time

import torch

from synermix.train.hooks import Hook


class PauseAt(Hook):
    """After step `step` of epoch `epoch` (both 1-based), write `paused` in the run dir and wait (up to
    `timeout` s, or until a stop signal) so a test can kill the process at a known point."""

    def __init__(self, epoch: int, step: int, timeout: float = 120.0) -> None:
        self.epoch, self.step, self.timeout = epoch, step, timeout

    def after_step(self, trainer) -> None:
        if (trainer.epoch + 1, trainer.step) != (self.epoch, self.step):
            return
        (trainer.run_dir / "paused").write_text(f"{self.epoch}:{self.step}\n")
        deadline = time.monotonic() + self.timeout
        while not trainer.stop() and time.monotonic() < deadline:
            time.sleep(0.05)


class SignalAt(Hook):
    """Send `signum` (SIGUSR2: submitit's pre-emption signal) to this process after step `step` of epoch `epoch`
    (1-based), once per run directory (a `signalled` file remembers it across the requeue)."""

    def __init__(self, epoch: int, step: int, signum: int = int(signal.SIGUSR2)) -> None:
        self.epoch, self.step, self.signum = epoch, step, signum

    def after_step(self, trainer) -> None:
        marker = trainer.run_dir / "signalled"
        if (trainer.epoch + 1, trainer.step) == (self.epoch, self.step) and not marker.exists():
            marker.write_text(f"{self.epoch}:{self.step}\n")
            os.kill(os.getpid(), self.signum)


class CrashAt(Hook):
    """Raise KeyboardInterrupt after step `step` of epoch `epoch` (1-based): a crash at a known point."""

    def __init__(self, epoch: int, step: int = 1) -> None:
        self.epoch, self.step = epoch, step

    def after_step(self, trainer) -> None:
        if (trainer.epoch + 1, trainer.step) == (self.epoch, self.step):
            raise KeyboardInterrupt


class Trains(Hook):
    """Counts the training steps taken (a finished run re-entered must take none)."""

    def __init__(self) -> None:
        self.steps = 0

    def after_step(self, trainer) -> None:
        self.steps += 1


class CrashAfterEpoch(Hook):
    """Raise KeyboardInterrupt once epoch `epoch` (1-based) is recorded and checkpointed."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_epoch(self, trainer) -> None:
        if trainer.epoch == self.epoch:
            raise KeyboardInterrupt


class PoisonWeights(Hook):
    """After step `step` of epoch `epoch` (1-based), set the model's first weight to NaN."""

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def after_step(self, trainer) -> None:
        if (trainer.epoch + 1, trainer.step) == (self.epoch, self.step):
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("nan")


class EmaDigest(Hook):
    """After training, write this process's EMA weights (the run's WeightEma hook) to ema_rank<RANK>.pt in the run
    dir, so a test can compare what every process holds."""

    def after_train(self, trainer) -> None:
        ema = next(h for h in trainer.hooks.hooks if getattr(h, "state_key", None) == "ema")
        torch.save(ema.state_dict(), trainer.run_dir / f"ema_rank{os.environ.get('RANK', '0')}.pt")
