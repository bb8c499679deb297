"""Running the scripts as a user does (a subprocess) and reading what a refusal printed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

from helpers import ROOT

SCRIPTS = ROOT / "scripts"
# One epoch of SynerMix on a few digits: the quickest run that trains, evaluates and finishes.
FAST = (
    "method=synermix",
    "train.epochs=1",
    "train.average_last=1",
    "train.batch_size=16",
    "dataset.max_per_class=6",
    "train.cohesion_samples=0",
)


def run_script(
    script: str, *args: str, cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """scripts/<script>.py with `args` in `cwd` (default: the repository): the finished process."""
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    environ.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(SCRIPTS / f"{script}.py"), *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
    )


def refusal(proc: subprocess.CompletedProcess) -> str:
    """The one paragraph a refused command printed (asserting exit code 2, no traceback and nothing else on
    stderr but that paragraph)."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"rc {proc.returncode}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert err.startswith("error: ") and "\n" not in err, err[-3000:]
    return err


def snapshot(folder: Path) -> Dict[Path, bytes]:
    """Every file under `folder` and its bytes (its hidden files, .hydra/ and train.log included)."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def tree(folder: Path) -> list:
    """Every path under `folder` (files and folders), relative to it."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def can_mount() -> bool:
    """Whether this machine lets a test mount a tmpfs in a private mount namespace (`unshare -m`, as root)."""
    if shutil.which("unshare") is None:
        return False
    import tempfile

    with tempfile.TemporaryDirectory() as where:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"], capture_output=True, timeout=30
        )
    return probe.returncode == 0


def in_private_mounts(script: str, cwd) -> None:
    """Run the shell `script` as root in a mount namespace of its own (what it mounts is gone when it ends)."""
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=cwd,
        timeout=600,
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def shell_script(name: str, *args: str) -> str:
    """scripts/<name>.py with `args` as one shell command (this interpreter)."""
    return " ".join(shlex.quote(a) for a in (sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args))
