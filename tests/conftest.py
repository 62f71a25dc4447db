"""Shared fixtures. Everything here is real: real TFLite Micro, real pty, real MLflow (sqlite).
Helpers the tests import live in tests/helpers (a package, not this file)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def softmax_tflite(tmp_path_factory) -> Path:
    """A real int8 one-operator model (TFLite SOFTMAX over 10 values), built without TensorFlow."""
    from unpu.postproc import softmax_model

    path = tmp_path_factory.mktemp("models") / "softmax10.tflite"
    path.write_bytes(softmax_model(10, "int8", 0.1, 3))
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for the whole session so each model is converted once across tests."""
    return tmp_path_factory.mktemp("unpu_cache")


@pytest.fixture()
def fake_tools(tmp_path, monkeypatch):
    """Stand-ins for vendor tools that cannot be installed here: executables put first on PATH that
    append their argv (one JSON list per call, tool name first) to calls.jsonl, print `stdout`, run
    an optional Python `script` (to write the files the real tool would) and exit with `exit_code`.
    They prove which commands an adapter runs, in which order; never what a vendor tool outputs."""
    import json
    from types import SimpleNamespace

    bin_dir = tmp_path / "fake_bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.jsonl"

    def make(name: str, script: str = "", exit_code: int = 0, stdout: str = "") -> Path:
        path = bin_dir / name
        path.write_text(
            f"#!{sys.executable}\nimport json, os, sys\n"
            f"with open({str(log)!r}, 'a') as f:\n"
            f"    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + '\\n')\n"
            f"sys.stdout.write({stdout!r})\n{script}\nsys.exit({exit_code})\n")
        path.chmod(0o755)
        return path

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return SimpleNamespace(make=make, calls=calls, bin=bin_dir, log=log)
