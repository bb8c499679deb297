"""README's own-loop example runs as written."""

import re
import subprocess
import sys

from helpers import ROOT


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- readme-example: {marker} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README has no python block after <!-- readme-example: {marker} -->"
    return match.group(1)


def test_own_training_loop_example_runs_as_written(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_block("own-loop"))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loss = float(re.search(r"loss ([0-9.]+) \(intra", proc.stdout).group(1))
    assert 0 < loss < 5  # ln(4) = 1.39 at chance; a diverging example (lr too high) went past 10
