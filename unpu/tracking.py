"""MLflow recording (docs/metrics.md, docs/runs.md): one run per job; a sweep gets a parent run
(opened by `unpu.sweep.SweepCallback`).

Runs are driven through `MlflowClient` (no global active run), so jobs in one process cannot leak
into each other. Every run carries who runs it (host, pid and the pid's start time), so a later
start can close runs whose process died without closing them (`close_orphans`), and a digest of
its job config, so a resumed sweep can skip what already finished. The store is checked before any
work (`check_store`: a few seconds at most, one line), and a new sqlite store is created under a
file lock so concurrent first runs do not race MLflow's schema migration. mlflow is imported
lazily: `--help` and `--cfg` stay fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import unquote, urlparse

import psutil
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from unpu.errors import UnpuError

log = logging.getLogger(__name__)

PARENT_FILE = ".mlflow_parent_run"
PARAM_MAX = 500  # longer values are truncated in params; the full config is an artifact
_BATCH = 100
STORE_CHECK_S = 3.0       # a tracking server that does not answer its health check in 3 s is down for us
SQLITE_BUSY_S = 5.0       # a store busy with another process's write is waited for this long
STORE_LOCK_S = 120.0      # creating a sqlite store (MLflow's migrations) takes a few seconds
DIGEST_TAG = "unpu.config_digest"
SUPERSEDED_TAG = "unpu.superseded_by"
# Not part of what a job measures: where it records, where its cache lives, the resume handle.
_DIGEST_EXCLUDES = ("hydra", "tracking", "cache", "resume")


class TrackingUnavailable(UnpuError):
    """The MLflow store cannot be reached or written; said before any work starts."""


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


def process_tags() -> dict[str, str]:
    """Who runs this run: enough for a later start on the same host to tell whether it still runs."""
    me = psutil.Process()
    return {"unpu.host": socket.gethostname(), "unpu.pid": str(me.pid), "unpu.pid_start": f"{me.create_time():.3f}"}


def config_digest(cfg: DictConfig) -> str:
    """SHA-256 of the resolved job config without where it is recorded or cached: two jobs with the
    same digest measure the same thing with the same settings."""
    keep = [key for key in cfg if key not in _DIGEST_EXCLUDES]
    container = OmegaConf.to_container(OmegaConf.masked_copy(cfg, keep), resolve=True)
    return hashlib.sha256(json.dumps(container, sort_keys=True, default=str).encode()).hexdigest()


# -- the store: checked first, created under a lock -------------------------------------------------

def sqlite_path(uri: str) -> Path | None:
    """sqlite:////abs/mlflow.db -> /abs/mlflow.db; sqlite:///rel.db -> rel.db (SQLAlchemy's form)."""
    prefix = "sqlite:///"
    return Path(unquote(uri[len(prefix):].split("?", 1)[0])) if uri.startswith(prefix) else None


def check_store(uri: str, timeout_s: float = STORE_CHECK_S) -> None:
    """Raise TrackingUnavailable (one line) unless the store can be written, within ~timeout_s."""
    problem = _store_problem(uri, timeout_s)
    if problem:
        raise TrackingUnavailable(f"cannot record to MLflow at {uri}: {problem}")


def _store_problem(uri: str, timeout_s: float) -> str | None:
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        return _server_problem(uri, timeout_s)
    db = sqlite_path(uri)
    if db is not None:
        return _sqlite_problem(db)
    if scheme in ("", "file"):
        return _directory_problem(Path(unquote(urlparse(uri).path) if scheme else uri))
    return None  # other stores (databricks, ...) are MLflow's business


def _server_problem(uri: str, timeout_s: float) -> str | None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as reply:
            return None if reply.status == 200 else f"its /health answered HTTP {reply.status}"
    except urllib.error.HTTPError as exc:
        return f"its /health answered HTTP {exc.code} (is this an MLflow tracking server?)"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer within {timeout_s:g} s ({reason})"


def _sqlite_problem(db: Path) -> str | None:
    """Try what MLflow will do: write in the directory (sqlite's journal), then take a write lock."""
    if not db.parent.is_dir():
        return f"directory {db.parent} does not exist"
    try:
        tempfile.TemporaryFile(dir=db.parent).close()
    except OSError as exc:
        return f"cannot write in {db.parent} (sqlite needs it for its journal): {exc.strerror}"
    if not db.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=SQLITE_BUSY_S)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
    except sqlite3.DatabaseError as exc:
        return f"{db} cannot be written ({exc})"
    return None


def _directory_problem(root: Path) -> str | None:
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing or root} is not writable"
    return None


@contextlib.contextmanager
def _store_creation_lock(uri: str) -> Iterator[None]:
    """Two first runs on a new sqlite file would both run MLflow's schema migration: one waits."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    with FileLock(str(db) + ".lock", timeout=STORE_LOCK_S):
        yield


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
                 tags: dict[str, str] | None = None, run_id: str | None = None) -> None:
        """A new run, or with run_id an existing one re-opened (a resumed sweep's parent)."""
        self.uri, self.experiment = uri, experiment
        self.client, self.experiment_id = open_store(uri, experiment)
        if run_id is not None:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            self.set_tags(process_tags())
            return
        all_tags = {**process_tags(), **(tags or {})}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self.run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags).info.run_id

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


def open_store(uri: str, experiment: str) -> tuple[Any, str]:
    """(MlflowClient, experiment id), creating the store and the experiment if need be."""
    with _store_creation_lock(uri):   # MlflowClient creates (migrates) a sqlite store as it opens it
        db = sqlite_path(uri)
        if db is not None and not db.exists():
            _create_sqlite_store(db)
        client = _client(uri)
        return client, experiment_id(client, experiment)


def _create_sqlite_store(db: Path) -> None:
    """MLflow builds a new store's schema in a dozen migrations; done in a private file then moved
    into place, a creation that is interrupted or killed leaves no half-built store behind. Called
    under the creation lock, so leftovers of earlier creations are stale."""
    for stale in db.parent.glob(f".{db.name}.creating-*"):
        stale.unlink(missing_ok=True)
    private = db.with_name(f".{db.name}.creating-{os.getpid()}")
    try:
        _client(f"sqlite:///{private}").search_experiments(max_results=1)
        os.replace(private, db)
    finally:
        private.unlink(missing_ok=True)


# -- runs whose process died ------------------------------------------------------------------------

def close_orphans(client, experiment: str) -> list[str]:
    """Close as KILLED every RUNNING run of this host whose process is gone (killed with SIGKILL,
    out of memory, a crash in native code): their ids. Runs of other hosts are left alone."""
    host, closed = socket.gethostname(), []
    for run in client.search_runs([experiment], "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if tags.get("unpu.host") != host or "unpu.pid" not in tags or _process_alive(tags):
            continue
        if "unpu.error" not in tags:
            client.set_tag(run.info.run_id, "unpu.error",
                           f"orphaned: process {tags['unpu.pid']} on {host} ended without closing this run "
                           f"(found by process {os.getpid()} at {time.strftime('%Y-%m-%d %H:%M:%S')})")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    if closed:
        log.warning("closed %d run(s) left RUNNING by processes that died: %s", len(closed), ", ".join(closed))
    return closed


def _process_alive(tags: dict[str, str]) -> bool:
    try:
        process = psutil.Process(int(tags["unpu.pid"]))
        started = float(tags.get("unpu.pid_start", process.create_time()))
        return abs(process.create_time() - started) < 1.0   # else the pid was reused by another process
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


# -- a sweep's children, for resume -----------------------------------------------------------------

def children(client, experiment: str, parent_run_id: str, extra: str = "") -> list:
    query = f"tags.mlflow.parentRunId = '{parent_run_id}'" + (f" and {extra}" if extra else "")
    return client.search_runs([experiment], query, max_results=10000)


def current_children(client, experiment: str, parent_run_id: str) -> list:
    """The children that count: a rerun supersedes the failed or killed run it replaced."""
    return [run for run in children(client, experiment, parent_run_id) if SUPERSEDED_TAG not in run.data.tags]


def finished_twin(client, experiment: str, parent_run_id: str, digest: str):
    """A FINISHED child of the sweep with this config digest, or None."""
    found = children(client, experiment, parent_run_id,
                     f"tags.`{DIGEST_TAG}` = '{digest}' and attributes.status = 'FINISHED'")
    return found[0] if found else None


def supersede(client, experiment: str, parent_run_id: str, digest: str, new_run_id: str) -> None:
    """Mark the earlier unfinished children with this digest as replaced by new_run_id."""
    for run in children(client, experiment, parent_run_id, f"tags.`{DIGEST_TAG}` = '{digest}'"):
        if run.info.run_id != new_run_id and run.info.status != "FINISHED" and SUPERSEDED_TAG not in run.data.tags:
            client.set_tag(run.info.run_id, SUPERSEDED_TAG, new_run_id)


def read_parent_run_id(sweep_dir: str | Path) -> str | None:
    path = Path(sweep_dir) / PARENT_FILE
    return path.read_text().strip() if path.exists() else None


def log_files(recorder: RunRecorder, files: Iterable[tuple[str, Path]]) -> None:
    """Log (artifact sub-path, file) pairs, skipping files that were never written."""
    for subpath, path in files:
        if path.exists():
            subdir = str(Path(subpath).parent) if "/" in subpath else None
            recorder.log_artifact(path, subdir)
