"""`pip install .` gives a library that declares what it needs: the wheel's dependencies, and the README's own-loop
example run from the installed wheel in a fresh virtual environment, away from the repository."""

import ast
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from test_readme import readme_block

from helpers import ROOT


def run(*args, **kwargs):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip install .` builds, from a copy of the sources (the build leaves build/ behind)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for part in ("synermix", "hydra_plugins"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", source)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", out, source)
    return next(out.glob("synermix-*.whl"))


def requirements(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def test_the_wheel_declares_the_library_and_its_extras(wheel):
    declared = requirements(wheel)
    core = {re.split(r"[<>=!; \[]", r)[0].lower() for r in declared if "extra ==" not in r}
    assert core == {"torch", "torchvision", "numpy", "omegaconf"}
    extras = {re.search(r'extra == "(\w+)"', r).group(1) for r in declared if "extra ==" in r}
    assert extras == {"experiments", "trackers", "saliency", "dev"}
    assert any(r.startswith("hydra-core") and 'extra == "experiments"' in r for r in declared)
    assert any(r.startswith("mlflow") and 'extra == "trackers"' in r for r in declared)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "synermix/method/loss.py" in names and "synermix/run/trackers/wandb.py" in names
    assert "synermix/py.typed" in names  # type checkers read the package's annotations (PEP 561)
    assert not any(n.startswith(("tests/", "benchmarks/", "scripts/")) for n in names)


def test_the_installed_wheel_runs_the_readme_example_elsewhere(wheel, tmp_path):
    env = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", env)
    python = env / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # the new environment sees this one's installed packages (torch, ...) but not its editable synermix
    (Path(site) / "project_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run(
        python, "-c", "import synermix.method.loss; print(synermix.method.loss.__file__)", cwd=work
    ).stdout.strip()
    assert Path(where).is_relative_to(env) and not Path(where).is_relative_to(ROOT)
    (work / "example.py").write_text(readme_block("own-loop"))
    proc = run(python, "example.py", cwd=work)
    assert 0 < float(re.search(r"loss ([0-9.]+) \(intra", proc.stdout).group(1)) < 5


def test_the_package_keeps_its_shape():
    """At most a dozen modules at the top of synermix/, and no function over 50 lines or 8 parameters (self and cls
    not counted): what the layering and the code style promise, checked on every module."""
    top = sorted(p.name for p in (ROOT / "synermix").glob("*.py"))
    assert len(top) <= 12, top
    long = []
    for path in sorted((ROOT / "synermix").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
                count = len([p for p in params if p.arg not in ("self", "cls")])
                lines = node.end_lineno - node.lineno + 1
                if lines > 50 or count > 8:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines, {count} params")
    assert not long, long
