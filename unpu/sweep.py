"""A sweep (`python -m unpu -m ...`): its parent run, its plan, resume, and what an interrupt leaves.

`SweepCallback` (conf/config.yaml, `hydra.callbacks`) runs around Hydra's sweep. Before any run is
opened it checks the tracking store and composes every job's config, so a sweep Hydra would refuse
halfway (`quant=int8,int4`) is refused whole, in one line, with nothing recorded. It then opens the
parent run (or re-opens it: `+resume=<parent run id>`) and writes its id to the sweep directory so
jobs in other processes (joblib launcher) attach to it. When the sweep ends the parent is closed
with a summary; when it is interrupted (`__main__` calls `interrupted`), the jobs that never ran
are recorded as KILLED children and the parent is closed KILLED, so a resume knows what is left.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from unpu import console
from unpu.errors import UnpuError
from unpu.tracking import (
    DIGEST_TAG,
    PARAM_MAX,
    PARENT_FILE,
    RunRecorder,
    check_store,
    children,
    close_orphans,
    config_digest,
    current_children,
    git_commit,
    open_store,
    sqlite_path,
)

log = logging.getLogger(__name__)

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
PARENT_ENV = "UNPU_PARENT_RUN_ID"

ACTIVE: SweepCallback | None = None   # the sweep this process runs, for the interrupt handler


class ResumeError(UnpuError):
    """`resume=` does not name a sweep this tracking store knows."""


class SweepRefused(BaseException):
    """The sweep cannot start (its store, a job's config, the resume handle); nothing was recorded.
    A BaseException because Hydra turns a callback's Exceptions into warnings and carries on."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class PlannedJob:
    num: int
    board: str
    model: str
    quant: str
    digest: str

    @property
    def label(self) -> str:
        return f"{self.board} · {self.model} · {self.quant}"


def job_names(config: DictConfig) -> tuple[str, str, str]:
    """(board, model, quant) as a person reads them: a model file by its file name."""
    path = OmegaConf.select(config, "model.path", default=None, throw_on_missing=False)
    model = config.model.name if config.model.source == "zoo" or not path else Path(str(path)).stem
    return str(config.board.name), str(model), str(config.quant.name)


def job_overrides(config: DictConfig, loader: Any = None) -> list[list[str]] | None:
    """Each job's overrides, in the basic sweeper's order (its cartesian product); None for other
    sweepers, which expand their own jobs."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(params + list(config.hydra.overrides.task))
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def sweep_size(config: DictConfig) -> int | None:
    try:
        jobs = job_overrides(config)
    except Exception:  # noqa: BLE001 - e.g. glob() needs Hydra's config loader; the count is only for display
        return None
    return None if jobs is None else len(jobs)


def plan(config: DictConfig) -> list[PlannedJob] | None:
    """Every job of the sweep composed now, inside the running Hydra app: an invalid one raises
    Hydra's error here, before anything is recorded."""
    loader = GlobalHydra.instance().config_loader()
    jobs = job_overrides(config, loader)
    if jobs is None:
        return None
    planned = []
    for overrides in jobs:
        job = loader.load_sweep_config(config, overrides)
        planned.append(PlannedJob(len(planned), *job_names(job), config_digest(job)))
    return planned


class SweepCallback(Callback):
    """The parent run around a sweep; job i of N on the console while in-process jobs run."""

    def __init__(self) -> None:
        self.recorder: RunRecorder | None = None
        self.jobs: list[PlannedJob] | None = None
        self.uri = ""
        self.started_ms = 0
        self.progress = None
        self.progress_env: str | None = None  # UNPU_PROGRESS before the sweep set it to 0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global ACTIVE
        HydraConfig.instance().set_config(config)  # so ${hydra:runtime.cwd} in tracking.uri resolves
        self.uri, experiment = str(config.tracking.uri), str(config.tracking.experiment)
        resume = OmegaConf.select(config, "resume", default=None)
        try:
            check_store(self.uri)
            self.jobs = plan(config)
            self.started_ms = int(time.time() * 1000)
            client, experiment_id = open_store(self.uri, experiment)
            close_orphans(client, experiment_id)
            self.recorder = self._reopen(experiment, str(resume)) if resume else self._open(config, experiment)
        except Exception as exc:
            raise SweepRefused(exc) from exc
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(self.recorder.run_id)
        os.environ[PARENT_ENV] = self.recorder.run_id
        ACTIVE = self
        log.info("sweep parent MLflow run %s%s", self.recorder.run_id, " (resumed)" if resume else "")
        self._start_progress(config)

    def _open(self, config: DictConfig, experiment: str) -> RunRecorder:
        overrides = " ".join(config.hydra.overrides.task)[:PARAM_MAX]
        return RunRecorder(self.uri, experiment, run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
                           tags={"unpu.kind": "sweep", "git_commit": git_commit(), "sweep.overrides": overrides})

    def _reopen(self, experiment: str, run_id: str) -> RunRecorder:
        from mlflow.exceptions import MlflowException

        db = sqlite_path(self.uri)
        if db is not None and not db.exists():
            raise ResumeError(f"resume={run_id}: no such run in {self.uri} (the store does not exist)")
        client, experiment_id = open_store(self.uri, experiment)
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise ResumeError(f"resume={run_id}: no such run in {self.uri}") from None
        if run.data.tags.get("unpu.kind") != "sweep" or run.info.experiment_id != experiment_id:
            raise ResumeError(f"resume={run_id} is not the parent run of a sweep in experiment {experiment!r}")
        recorder = RunRecorder(self.uri, experiment, "", run_id=run_id)
        resumes = int(run.data.tags.get("sweep.resumes", "0")) + 1
        recorder.set_tags({"sweep.resumes": resumes, "git_commit": git_commit()})
        if "unpu.error" in run.data.tags:   # the interrupt that stopped it is history now
            recorder.client.delete_tag(run_id, "unpu.error")
        return recorder

    def _start_progress(self, config: DictConfig) -> None:
        if config.hydra.launcher.get("_target_") != BASIC_LAUNCHER:
            self.progress_env = os.environ.get(console.PROGRESS_ENV, "")
            os.environ[console.PROGRESS_ENV] = "0"  # jobs in worker processes would draw over each other
            return
        self.progress = console.SweepProgress(None if self.jobs is None else len(self.jobs))
        self.progress.start()

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        if self.progress_env:
            os.environ[console.PROGRESS_ENV] = self.progress_env
        elif self.progress_env is not None:
            os.environ.pop(console.PROGRESS_ENV, None)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.job_started(int(config.hydra.job.num) + 1, " · ".join(job_names(config)))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.job_finished()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        jobs, failed = self._summarise()
        self.recorder.finish("FAILED" if failed else "FINISHED")
        self._end()
        console.sweep_summary(self.recorder.run_id, jobs, failed, self.uri)
        if failed:
            os.environ["UNPU_SWEEP_FAILED"] = str(failed)

    def interrupted(self, reason: str) -> None:
        """Record the jobs that never ran as KILLED children, close the parent KILLED."""
        if self.recorder is None:
            return
        for job in self._never_ran():
            record_not_run(self.recorder, job, reason)
        self._summarise()
        self.recorder.set_tags({"unpu.error": reason})
        self.recorder.finish("KILLED")
        self._end()

    def _never_ran(self) -> list[PlannedJob]:
        client, recorder = self.recorder.client, self.recorder
        runs = children(client, recorder.experiment_id, recorder.run_id)
        done = {run.data.tags.get(DIGEST_TAG) for run in runs
                if run.info.status == "FINISHED" or run.info.start_time >= self.started_ms}
        return [job for job in self.jobs or [] if job.digest not in done]

    def _summarise(self) -> tuple[int, int]:
        runs = current_children(self.recorder.client, self.recorder.experiment_id, self.recorder.run_id)
        failed = sum(run.info.status != "FINISHED" for run in runs)
        self.recorder.set_tags({"sweep.jobs": len(runs), "sweep.failed_jobs": failed})
        self.recorder.log_metrics({"sweep/jobs": len(runs), "sweep/failed_jobs": failed})
        return len(runs), failed

    def _end(self) -> None:
        global ACTIVE
        self._stop_progress()
        os.environ.pop(PARENT_ENV, None)
        ACTIVE = None


def record_not_run(parent: RunRecorder, job: PlannedJob, reason: str) -> None:
    """A job the sweep never reached, visible among its children (and rerun by a resume)."""
    child = RunRecorder(parent.uri, parent.experiment, f"{job.board}/{job.model}/{job.quant}", parent.run_id,
                        tags={"board": job.board, "model": job.model, "quant": job.quant, "unpu.kind": "job",
                              DIGEST_TAG: job.digest, "unpu.error": f"not run: {reason}"})
    child.finish("KILLED")
