"""Shared fixtures. Everything here is real: real TFLite Micro, real pty, real MLflow (sqlite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"


@pytest.fixture(scope="session")
def softmax_tflite(tmp_path_factory) -> Path:
    """A real int8 one-operator model (TFLite SOFTMAX over 10 values), built without TensorFlow."""
    from unpu.postproc import softmax_model

    path = tmp_path_factory.mktemp("models") / "softmax10.tflite"
    path.write_bytes(softmax_model(10, "int8", 0.1, 3))
    return path


def compose(overrides: list[str], tmp: Path):
    """The job config as `python -m unpu` would compose it, with tracking and cache under tmp."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    base = [f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"cache.dir={tmp}/cache"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = hydra_compose("config", overrides=base + overrides, return_hydra_config=False)
    return cfg


def run_unpu(args: list[str], cwd: Path, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m unpu ARGS` in a subprocess, from `cwd` (so mlflow.db/outputs land there)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "unpu", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for the whole session so each model is converted once across tests."""
    return tmp_path_factory.mktemp("unpu_cache")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real `mlflow server` (or `mlflow ui`) on 127.0.0.1, in its own process group."""

    def __init__(self, db: Path, artifacts: Path, command: str = "server") -> None:
        import signal  # noqa: F401

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "mlflow", command, "--backend-store-uri", f"sqlite:///{db}",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        if command == "server":
            args += ["--artifacts-destination", str(artifacts)]
        self.log = open(db.parent / f"mlflow-{command}.log", "wb")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, cwd=db.parent)

    def wait(self, timeout: float = 90) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow exited: {(Path(self.log.name)).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow did not answer /health in time")

    def api(self, path: str, body: dict | None = None) -> dict:
        import json
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.log.close()


def search_runs(server: "MlflowServer", experiment: str = "unpu") -> list[dict]:
    exp = server.api(f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}")["experiment"]
    body = {"experiment_ids": [exp["experiment_id"]], "max_results": 1000}
    return server.api("/api/2.0/mlflow/runs/search", body).get("runs", [])


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def metrics_of(run: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


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
