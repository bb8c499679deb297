"""Every scripts/train.py and scripts/protocol.py command that README.md and docs/ show composes, resolves and adds no
key nothing reads — for each config group value it names with a placeholder (`dataset=<name>`); and
`--cfg job --resolve` prints the resolved configuration of every dataset and model in configs/."""

import re
import shlex
from typing import List, Tuple

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from omegaconf import OmegaConf

from helpers import CONFIG_DIR, ROOT
from helpers.cli import run_script
from synermix.cli.preflight import added_key_problems

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"(?:\.venv/bin/)?python scripts/(train|protocol)\.py((?:\\\n|[^\n`|])*)")
GROUPS = {"<name>": "dataset"}  # a placeholder and the config group whose every value it stands for
OWN_CODE = ("my_module.", "mypackage.")  # the docs' examples of a user's own module: composed, not imported


def group_values(group: str) -> List[str]:
    """Every option of a config group (its YAML files)."""
    return sorted(p.stem for p in (ROOT / "configs" / group).glob("*.yaml"))


def doc_commands() -> List[Tuple[str, str, Tuple[str, ...]]]:
    """(where, script, arguments) of every command the docs show, placeholders expanded, comments and `...` cut."""
    found = []
    for doc in DOCS:
        for match in COMMAND.finditer(doc.read_text()):
            line = match.group(2).replace("\\\n", " ").split("  #")[0].split(" # ")[0]
            args = [a for a in shlex.split(line) if a != "..."]
            if any(a.startswith("--") for a in args):  # --help, --cfg: printed, not composed
                continue
            for placeholder, group in GROUPS.items():
                if any(placeholder in a for a in args):
                    for value in group_values(group):
                        found.append((doc.name, match.group(1), tuple(a.replace(placeholder, value) for a in args)))
                    break
            else:
                found.append((doc.name, match.group(1), tuple(args)))
    return found


def one_job(args: Tuple[str, ...]) -> List[str]:
    """A sweep's first job (the first value of each choice; a search space, which only the sweeper reads, left out)."""
    chosen = []
    for override in OverridesParser.create().parse_overrides([a for a in args if a != "-m"]):
        value = override.value()
        if isinstance(value, ChoiceSweep):
            chosen.append(f"{override.get_key_element()}={next(override.sweep_string_iterator())}")
        elif not override.is_sweep_override():
            chosen.append(override.input_line)
    return chosen


COMMANDS = doc_commands()


def test_the_docs_show_commands_to_check():
    assert len(COMMANDS) >= 25 and {s for _, s, _ in COMMANDS} == {"train", "protocol"}
    assert sum("dataset=cifar100" in a for _, _, a in COMMANDS if "--cfg" not in a) >= 2


@pytest.mark.parametrize("where,script,args", COMMANDS, ids=[f"{w}: {' '.join(a)[:80]}" for w, _, a in COMMANDS])
def test_a_documented_command_composes_and_resolves(where, script, args):
    overrides = one_job(args)
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name=script, overrides=overrides, return_hydra_config=True)
    assert added_key_problems(cfg, overrides) == []
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    if not any(own in a for a in args for own in OWN_CODE):
        assert OmegaConf.to_yaml(task, resolve=True)


@pytest.mark.parametrize("dataset", group_values("dataset"))
def test_cfg_job_resolve_prints_every_dataset_with_every_model(dataset, tmp_path):
    given = [f"dataset.root={tmp_path}"] if dataset == "image_folder" else []  # its fingerprint reads the folder
    for model in group_values("model"):
        with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
            cfg = compose(config_name="train", overrides=[f"dataset={dataset}", f"model={model}", *given])
        text = OmegaConf.to_yaml(cfg, resolve=True)
        mean = OmegaConf.create(text).dataset.mean
        assert len(mean) in (1, 3) and all(0 < m < 1 for m in mean), (dataset, model, mean)
    proc = run_script(
        "train", f"dataset={dataset}", *given, "--cfg", "job", "--resolve"
    )  # the command itself, once a dataset
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"name: {dataset}" in proc.stdout and "${" not in proc.stdout
