"""What the tests share: composing configs as `python -m unpu` does, running unpu in a subprocess,
a real `mlflow server`, adapters built the way the pipeline builds them. Everything is real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"


def compose(overrides: list[str], tmp: Path):
    """The job config as `python -m unpu` would compose it, with tracking and cache under tmp."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    base = [f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"cache.dir={tmp}/cache"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = hydra_compose("config", overrides=base + overrides, return_hydra_config=False)
    return cfg


def board_of(cfg):
    """The job's board adapter, as the pipeline makes it (its Spec checked, a narrow BuildContext)."""
    from unpu.boards.base import make_board
    from unpu.pipeline import build_context

    return make_board(cfg.board, build_context(cfg))


def board_for(overrides: list[str], tmp: Path):
    return board_of(compose(overrides, tmp))


def zoo_build(board: str, model: str, cache: Path, tmp: Path):
    """(config, quantized model, firmware): a zoo model quantized and built for a board, as a run does."""
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"board={board}", f"model={model}", f"cache.dir={cache}"], tmp)
    quantized = steps.quantized_model(cfg, Cache(cache))
    return cfg, quantized, board_of(cfg).build(quantized, tmp)


def run_unpu(args: list[str], cwd: Path, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m unpu ARGS` in a subprocess, from `cwd` (so mlflow.db/outputs land there)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "unpu", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int | None = None) -> set[int]:
    """Every live process below `pid` (default: this test process), by walking /proc: what a test
    started, and nothing another job on the machine runs."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class MlflowServer:
    """A real `mlflow server` (or `mlflow ui`) on 127.0.0.1, in its own process group."""

    def __init__(self, db: Path, artifacts: Path, command: str = "server") -> None:
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




def native_firmware(tflite: bytes, out: Path, post: str = "none", cflags: list[str] | None = None) -> Path:
    """The native port's firmware around a model (the C harness + its generated C), built in `out`."""
    from unpu.artifacts import BuildContext
    from unpu.boards.base import PORTS
    from unpu.boards.firmware import build_defines
    from unpu.boards.native import compile_native
    from unpu.cache import Cache
    from unpu.graph import inspect_tflite

    context = BuildContext("softmax10", post, Cache(out / "cache"), 10)
    defines = build_defines(context, "test", inspect_tflite(tflite).outputs[0])
    compile_native(tflite, out, defines, cflags or [], "gcc", PORTS / "native")
    return out / "firmware.elf"


def pty_device(argv: list[str], log: Path, what: str = "device"):
    """(DutClient, DeviceProcess) for a device process that announces its pty (host device, native)."""
    from unpu.boards.process import DeviceProcess
    from unpu.links import serial_port
    from unpu.protocol import DutClient, Transcript

    process = DeviceProcess(argv, log, what, stdout="pipe")
    try:
        client = DutClient(serial_port(process.read_line("pty ", 60), 115200), timeout_s=10,
                           transcript=Transcript(), check_alive=process.check_alive)
        client.connect()
    except BaseException:
        process.stop()
        raise
    return client, process


def own_processes(name: str) -> set[int]:
    """Live processes called `name` that this test started, however deep (an emulator a unpu
    subprocess launched, even if it outlived its parent): they carry the test's PYTEST_CURRENT_TEST
    in their environment. Other tests' and other users' processes do not count."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() != name:
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(b"PYTEST_CURRENT_TEST=" + test.encode()) for e in environ):
            found.add(int(proc.name))
    return found


def extra_board(tmp: Path, name: str, text: str) -> list[str]:
    """A board YAML outside the repository (as a user adding a board writes one): the overrides that
    make `board=<name>` find it through Hydra's search path."""
    root = tmp / "extra_conf"
    (root / "board").mkdir(parents=True, exist_ok=True)
    (root / "board" / f"{name}.yaml").write_text(text)
    return [f"hydra.searchpath=[file://{root}]", f"board={name}"]
