"""MLflow recording (docs/metrics.md): one run per job; a sweep gets a parent run.

The parent run is opened by `SweepCallback` before the first job and its id written to the sweep
directory, so jobs in other processes (joblib launcher) attach to it with the tag
`mlflow.parentRunId`. Runs are driven through `MlflowClient` (no global active run), so jobs in
one process cannot leak into each other. mlflow is imported lazily: `--help` and `--cfg` stay fast.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from unpu import console

log = logging.getLogger(__name__)

PARENT_FILE = ".mlflow_parent_run"
PARAM_MAX = 500  # longer values are truncated in params; the full config is an artifact
_BATCH = 100


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(data, list):
        return {prefix[:-1]: ",".join(map(str, data))} if prefix else {}
    return {prefix[:-1]: data}


def params_from_config(cfg: DictConfig) -> dict[str, str]:
    container = OmegaConf.to_container(cfg, resolve=True)
    params = {}
    for key, value in flatten(container).items():
        text = "null" if value is None else str(value)
        params[key] = text if len(text) <= PARAM_MAX else text[: PARAM_MAX - 3] + "..."
    return params


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    for _ in range(5):
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return client.create_experiment(name)
        except MlflowException:  # another process created it first
            time.sleep(0.2)
    raise RuntimeError(f"cannot create or find MLflow experiment {name!r}")


class RunRecorder:
    """One MLflow run: params, metrics (with steps), tags, artifacts, final status."""

    def __init__(self, uri: str, experiment: str, run_name: str, parent_run_id: str | None = None,
                 tags: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.client = _client(uri)
        exp = experiment_id(self.client, experiment)
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self.run_id = self.client.create_run(exp, run_name=run_name, tags=all_tags).info.run_id
        self.experiment_id = exp

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, metrics=items[i : i + _BATCH])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, tags=items[i : i + _BATCH])

    def log_artifact(self, path: str | Path, subdir: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), subdir)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)


def read_parent_run_id(sweep_dir: str | Path) -> str | None:
    path = Path(sweep_dir) / PARENT_FILE
    return path.read_text().strip() if path.exists() else None


BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper will launch (its own cartesian product), None if unknown
    (another sweeper, or a sweep such as glob() that needs Hydra's config loader to expand)."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    try:
        overrides = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
        return len(BasicSweeper.split_arguments(overrides, None)[0])
    except Exception:  # noqa: BLE001 - the count is only for display
        return None


def _job_label(config: DictConfig) -> str:
    path = OmegaConf.select(config, "model.path", default=None, throw_on_missing=False)
    model = config.model.name if config.model.source == "zoo" or not path else Path(str(path)).stem
    return f"{config.board.name} · {model} · {config.quant.name}"


class SweepCallback(Callback):
    """Opens the sweep's parent run before the jobs and closes it with a summary after them; shows
    job i of N while in-process (basic launcher) jobs run."""

    def __init__(self) -> None:
        self.recorder: RunRecorder | None = None
        self.progress = None
        self.progress_env: str | None = None  # UNPU_PROGRESS before the sweep set it to 0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # so ${hydra:runtime.cwd} in tracking.uri resolves
        tracking = config.tracking
        overrides = list(config.hydra.overrides.task)
        self.recorder = RunRecorder(str(tracking.uri), str(tracking.experiment),
                                    run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                    tags={"unpu.kind": "sweep", "git_commit": git_commit(), "unpu.pid": str(os.getpid()),
                                          "sweep.overrides": " ".join(overrides)[:PARAM_MAX]})
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(self.recorder.run_id)
        os.environ["UNPU_PARENT_RUN_ID"] = self.recorder.run_id
        log.info("sweep parent MLflow run %s", self.recorder.run_id)
        self._start_progress(config)

    def _start_progress(self, config: DictConfig) -> None:
        if config.hydra.launcher.get("_target_") != BASIC_LAUNCHER:
            self.progress_env = os.environ.get(console.PROGRESS_ENV, "")
            os.environ[console.PROGRESS_ENV] = "0"  # jobs in worker processes would draw over each other
            return
        self.progress = console.SweepProgress(sweep_size(config))
        self.progress.start()

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.progress_env:
            os.environ[console.PROGRESS_ENV] = self.progress_env
        elif self.progress_env is not None:
            os.environ.pop(console.PROGRESS_ENV, None)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.job_started(int(config.hydra.job.num) + 1, _job_label(config))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.job_finished()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        children = self.recorder.client.search_runs(
            [self.recorder.experiment_id], f"tags.mlflow.parentRunId = '{self.recorder.run_id}'", max_results=10000)
        statuses = [run.info.status for run in children]
        failed = sum(status != "FINISHED" for status in statuses)
        self.recorder.set_tags({"sweep.jobs": len(statuses), "sweep.failed_jobs": failed})
        self.recorder.log_metrics({"sweep/jobs": len(statuses), "sweep/failed_jobs": failed})
        self.recorder.finish("FAILED" if failed else "FINISHED")
        self._stop_progress()
        console.sweep_summary(self.recorder.run_id, len(statuses), failed, str(config.tracking.uri))
        os.environ.pop("UNPU_PARENT_RUN_ID", None)
        if failed:
            os.environ["UNPU_SWEEP_FAILED"] = str(failed)


def log_files(recorder: RunRecorder, files: Iterable[tuple[str, Path]]) -> None:
    """Log (artifact sub-path, file) pairs, skipping files that were never written."""
    for subpath, path in files:
        if path.exists():
            subdir = str(Path(subpath).parent) if "/" in subpath else None
            recorder.log_artifact(path, subdir)
