"""Training hooks: small objects the trainer calls at fixed points, and the stop request they share.

Each gets the trainer, typed as `TrainerView`: what a hook may read, and the calls it may make. Order, for every
hook in registration order (the metrics first, then the built-in hooks: the EMA of the weights and the mixing
schedule where configured, the periodic checkpoint, the recorder that writes each epoch, the trackers; then `hooks`
of the config, then those passed to `run_training`):
  before_epoch(trainer) before each epoch's first step (also the first epoch of a resumed run)
  after_step(trainer)   after each optimisation step (trainer.step steps of epoch trainer.epoch (0-based) done)
  after_epoch(trainer)  after an epoch (trainer.epoch epochs done; trainer.last_epoch holds its stats)
  after_train(trainer)  once every epoch is done
A hook may raise to end the run; `trainer.stop.request(...)` ends it after the current step with a checkpoint
instead; `trainer.checkpoint()` writes one now. Extra hooks come from the config as
`hooks.<name>: {_target_: module.Class, ...}`. A hook with a `state_key` has its `state_dict()` in every
checkpoint (under that key) and gets it back through `load_state_dict` when the run resumes.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Protocol, Sequence

from synermix.config.registry import Registry, target_of
from synermix.errors import ConfigError, describe

log = logging.getLogger(__name__)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)  # SIGUSR2: SLURM/submitit's pre-emption notice


class StopFlag:
    """Set by SIGTERM/SIGINT/SIGUSR2 while installed (or by `request`): the loop finishes its step,
    checkpoints and exits. After a SIGUSR2 the handler installed before ours (submitit's requeue) is
    called once the checkpoint is written, so a pre-empted job is requeued with nothing lost."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None

    def __call__(self) -> bool:
        return self.signum is not None

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask the loop to stop after the current step, as if `signum` had arrived."""
        self.signum = signum

    @contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        """Catch the stop signals for the duration (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):
            if self.signum is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C stops at once
            self.signum = signum
            log.warning("Received %s: stopping after the current step.", signal.Signals(signum).name)

        old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            previous = old[signal.SIGUSR2]
            if self.signum == signal.SIGUSR2 and callable(previous):
                log.warning("Checkpoint written; handing SIGUSR2 to the handler installed before (requeue).")
                previous(signal.SIGUSR2, None)


class TrainerView(Protocol):
    """What a hook may read of the trainer (synermix.train.trainer.Trainer), and the two calls it may make."""

    @property
    def epoch(self) -> int:
        """Epochs done (0-based index of the running epoch during one)."""

    @property
    def step(self) -> int:
        """Steps done in the running epoch."""

    @property
    def steps_per_epoch(self) -> int:
        """Steps of a full epoch."""

    @property
    def epoch_start(self) -> float:
        """time.perf_counter() at the running epoch's start (before a resume too)."""

    @property
    def model(self) -> Any:
        """The model being trained (features, head, mix points)."""

    @property
    def optimizer(self) -> Any:
        """Its optimizer."""

    @property
    def options(self) -> Any:
        """The trainer's TrainOptions (seeds, amp, the process group)."""

    @property
    def last_epoch(self) -> Any:
        """The last finished epoch's EpochStats (None before the first)."""

    @property
    def metrics(self) -> Any:
        """The metrics channel (synermix.train.metrics.EpochLog): the rows so far."""

    @property
    def stop(self) -> StopFlag:
        """The stop request: `stop.request()` ends the run after the step, with a checkpoint."""

    @property
    def run_dir(self) -> Optional[Path]:
        """The run directory, where a hook may leave files of its own (None without one)."""

    def checkpoint(self) -> None:
        """Write a checkpoint of this exact point."""

    def state_dict(self) -> Dict[str, Any]:
        """Everything a resume needs (what a checkpoint holds)."""


class Hook:
    """Base class: override the calls you need (each gets the trainer)."""

    state_key: Optional[str] = None  # set (unique) by a hook whose state a checkpoint must carry

    def state_dict(self) -> Dict[str, Any]:
        """What a checkpoint keeps of this hook (with a state_key)."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from a checkpoint's `state_dict()`."""

    def before_epoch(self, trainer: TrainerView) -> None:
        """Before each epoch's first step."""

    def after_step(self, trainer: TrainerView) -> None:
        """After each optimisation step."""

    def after_epoch(self, trainer: TrainerView) -> None:
        """After an epoch's row is recorded and checkpointed."""

    def after_train(self, trainer: TrainerView) -> None:
        """After the run completed."""


class Hooks(Hook):
    """Several hooks called in order."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks: List[Hook] = list(hooks)

    def state_dict(self) -> Dict[str, Any]:
        """{state_key: state} of the hooks that have a state_key."""
        return {h.state_key: h.state_dict() for h in self.hooks if h.state_key}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Hand each hook with a state_key its part of `state` (a hook absent from it keeps its fresh state)."""
        for hook in self.hooks:
            if hook.state_key and hook.state_key in state:
                hook.load_state_dict(state[hook.state_key])

    def before_epoch(self, trainer: TrainerView) -> None:
        """Each hook's before_epoch."""
        for hook in self.hooks:
            hook.before_epoch(trainer)

    def after_step(self, trainer: TrainerView) -> None:
        """Each hook's after_step."""
        for hook in self.hooks:
            hook.after_step(trainer)

    def after_epoch(self, trainer: TrainerView) -> None:
        """Each hook's after_epoch."""
        for hook in self.hooks:
            hook.after_epoch(trainer)

    def after_train(self, trainer: TrainerView) -> None:
        """Each hook's after_train."""
        for hook in self.hooks:
            hook.after_train(trainer)


class PeriodicCheckpoint(Hook):
    """Checkpoint inside an epoch every `every` steps (train.checkpoint_every_steps), so a kill loses less."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, trainer: TrainerView) -> None:
        """Save the partial epoch at every multiple of `every` (the epoch's end has its own checkpoint)."""
        if self.every and trainer.step % self.every == 0 and trainer.step < trainer.steps_per_epoch:
            trainer.checkpoint()


class MixingEpoch(Hook):
    """Tells a mixer with `set_epoch(epoch)` (synermix.method.mixers.schedule.MixSchedule) each epoch before it
    starts."""

    def __init__(self, mixer) -> None:
        self.mixer = mixer

    def before_epoch(self, trainer: TrainerView) -> None:
        """The coming epoch (0-based)."""
        self.mixer.set_epoch(trainer.epoch)


# the hooks a config names by name (`hooks.<label>: {name: periodic_checkpoint, every: 100}`); your own by _target_
HOOKS = Registry(
    "hook",
    "hooks.<name>",
    {"periodic_checkpoint": "synermix.train.hooks:PeriodicCheckpoint"},
    "hooks.mine={_target_:my_module.MyHook}",
)


def entries_from_config(specs: Any, registry: Registry, base: type, group: str) -> List[Any]:
    """Instantiate the `<group>.<label>` entries of a config (a name of `registry`, a mapping with `name` and
    arguments, or one with `_target_`), in label order; ConfigError naming a bad one."""
    built = []
    for label in sorted(specs or {}):
        spec = specs[label]
        try:
            entry = registry.build(spec)
        except Exception as exc:
            shown = target_of(spec) or (spec.get("name") if hasattr(spec, "keys") else spec)
            raise ConfigError(
                f"Invalid configuration: {group}.{label}={shown!r} cannot be instantiated ({describe(exc)}); it must "
                f"be {registry.allowed()}, naming a {base.__module__}.{base.__name__} subclass and its arguments."
            ) from None
        if not isinstance(entry, base):
            raise ConfigError(
                f"Invalid configuration: {group}.{label} made a {type(entry).__name__}, not a "
                f"{base.__module__}.{base.__name__}."
            )
        built.append(entry)
    return built


def hooks_from_config(specs: Optional[Dict[str, Any]]) -> List[Hook]:
    """The `hooks.<name>` entries of the config (Hydra's instantiate for `_target_`), in name order."""
    return entries_from_config(specs, HOOKS, Hook, "hooks")
