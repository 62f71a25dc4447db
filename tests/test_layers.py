"""One direction for imports: import-linter checks the layer contract of pyproject.toml on the
package, and the same check fails on a copy of the package with one deliberate back-edge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())", "--config", str(REPO / "pyproject.toml"), "--no-cache"]


def _lint(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(LINT, cwd=package_parent, env=env, capture_output=True, text=True, timeout=300)


def test_the_tree_keeps_its_layers():
    out = _lint(REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_a_back_edge_breaks_the_contract(tmp_path):
    """A foundation module importing the pipeline (the highest layer below the CLI) is refused."""
    copy = tmp_path / "unpu"
    shutil.copytree(REPO / "unpu", copy, ignore=shutil.ignore_patterns("__pycache__"))
    graph = copy / "graph.py"
    graph.write_text(graph.read_text() + "\n\ndef _back_edge():\n    from unpu.pipeline import run_job  # noqa\n")
    out = _lint(tmp_path)
    assert out.returncode != 0, out.stdout[-2000:]
    assert "1 broken" in out.stdout and "unpu.graph is not allowed to import unpu.pipeline" in out.stdout
