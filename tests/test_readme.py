"""The README is the front page: its Python example runs as written, and it stays short."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_python_example_runs_as_written(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    assert blocks, "the README has a Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "tensor([" in printed and "'grade_probs'" in printed  # two scores, then CoFInAl's parts


def test_the_readme_stays_a_front_page():
    assert len(README.splitlines()) < 150
    assert "pip install torch==2.13.0 && pip install -e '.[test]' && python -m pytest -q" in README
