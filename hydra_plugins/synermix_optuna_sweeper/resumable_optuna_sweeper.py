"""hydra-optuna-sweeper whose SQLite study continues where an interrupted search stopped (synermix.results.search).

`hydra/sweeper=optuna` selects it: the config registered below replaces the plugin's `optuna` entry with the
same options and SynerMix's defaults (maximise final_acc of validation runs, SQLite study under the sweep
directory, a log-uniform beta range, the run's seed for the sampler)."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class ResumableOptunaSweeper(OptunaSweeper):
    """OptunaSweeper (same options) that, before sweeping, re-queues trials an interrupted run left open and
    runs only the trials still owed: the same command, re-run, finishes the search instead of restarting it."""

    def sweep(self, arguments: List[str]) -> None:
        """Resume the study, then let hydra-optuna-sweeper run the remaining trials."""
        from synermix.results.search import open_study, resume

        impl = self.sweeper
        study = open_study(impl.storage, impl.study_name, impl._get_directions())
        if study.trials and hasattr(impl.sampler, "reseed_rng"):
            impl.sampler.reseed_rng()  # a resumed seeded sampler would repeat its first suggestions
        impl.n_trials = resume(study, impl.n_trials)
        return impl.sweep(arguments)


@dataclass
class ResumableOptunaSweeperConf(OptunaSweeperConf):
    """hydra-optuna-sweeper's options with SynerMix's defaults."""

    _target_: str = "hydra_plugins.synermix_optuna_sweeper.resumable_optuna_sweeper.ResumableOptunaSweeper"
    direction: Any = "maximize"  # final_acc
    storage: Optional[Any] = "sqlite:///${hydra.sweep.dir}/optuna.db"
    study_name: Optional[str] = "${dataset.name}-${model.name}-${method.name}-bs${train.batch_size}${run_tag}-${config_id:}"
    n_trials: int = 12
    n_jobs: int = 1  # trials launched at once (more with hydra/launcher=joblib)
    params: Optional[Dict[str, str]] = field(default_factory=lambda: {
        "phase": "val",  # scored on the stratified validation split, never on the test set
        "method.beta": "tag(log, interval(0.02, 0.8))",  # spans every preset's beta_grid (Sec. 4.1.3)
    })
    sampler: Any = field(default_factory=lambda: {"seed": "${seed}"})


def register() -> None:
    """Make `hydra/sweeper=optuna` this sweeper with these defaults (replacing the plugin's entry)."""
    ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=ResumableOptunaSweeperConf,
                                 provider="synermix")


class RegisterResumableOptuna(SearchPathPlugin):
    """Registers the config above once every plugin module has run. Hydra executes each plugin module anew
    while scanning, in sys.path order, so a registration at import time could be overwritten by
    hydra-optuna-sweeper's own; search path plugins are called after that scan, before any composition."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        """Leave the search path as it is; (re-)register the config."""
        register()


register()
