"""Every run ends in a final state, and nothing is lost: real `python -m unpu` processes on the host
board (TFLite Micro in a device process), a real sqlite MLflow store, real signals.

- SIGINT in a sweep: the running child, the parent and the jobs never reached end KILLED with the
  reason, exit 130, one line; `+resume=<parent>` reruns exactly what did not finish.
- SIGTERM in a run: KILLED, exit 143, the device process stopped.
- SIGKILL: the run stays RUNNING until the next start on this host closes it as orphaned.
- Two first runs at once on a new store both finish, each in its own directory.
- A sweep Hydra would refuse halfway, an unusable store, bad bench values: one line, exit 2, nothing
  recorded. A run that fails mid-measurement still uploads its device log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, own_processes, run_unpu

TINY = ["board=host", "model=file"]  # plus model.path: a one-operator model, no TensorFlow conversion


@pytest.fixture()
def tiny(softmax_tflite) -> list[str]:
    return [*TINY, f"model.path={softmax_tflite}"]


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "UNPU_PROGRESS": "0", "UNPU_CACHE_DIR": str(tmp / "cache")}


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unpu", *args], cwd=cwd, env=_env(cwd), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _runs(db: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("unpu")
    return [] if exp is None else sorted(client.search_runs([exp.experiment_id], max_results=1000),
                                          key=lambda r: r.info.start_time)


def _wait_for_running_job(db: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    """Until a job run is RUNNING (the job is past pre-flight and recording), then a little longer
    so the signal lands inside the measurement."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if db.exists() and any(r.info.status == "RUNNING" and r.data.tags.get("unpu.kind") == "job" for r in _runs(db)):
            time.sleep(2)
            return
        time.sleep(0.5)
    raise AssertionError("no job run became RUNNING")


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _one_unpu_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("unpu: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


# -- signals ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigint_mid_sweep_closes_every_run_then_resume_finishes_it(tmp_path, tiny):
    db = tmp_path / "mlflow.db"
    sweep = ["-m", *tiny, "bench.windows=1", "bench.min_window_s=8,0.01,0.02"]
    proc = _start(sweep, tmp_path)
    _wait_for_running_job(db, proc)
    code, err = _stop(proc, signal.SIGINT)
    assert code == 130
    assert _one_unpu_line(err).startswith("unpu: interrupted by SIGINT: stopped, runs closed KILLED; resume with:")
    assert own_processes("python") == set()          # the host device process was stopped

    runs = _runs(db)
    assert [r.info.status for r in runs] == ["KILLED"] * 4   # parent, the running job, two never reached
    parent, running, *never = runs
    assert parent.data.tags["unpu.kind"] == "sweep" and parent.data.tags["unpu.error"] == "interrupted by SIGINT"
    assert running.data.tags["unpu.error"] == "interrupted by SIGINT during the job"
    for job in never:
        assert job.data.tags["unpu.error"] == "not run: interrupted by SIGINT"
        assert job.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert len({r.data.tags["unpu.config_digest"] for r in runs[1:]}) == 3

    resumed = run_unpu([*sweep, f"+resume={parent.info.run_id}"], tmp_path, env=_env(tmp_path), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = {r.info.run_id: r for r in _runs(db)}
    assert runs[parent.info.run_id].info.status == "FINISHED"
    assert runs[parent.info.run_id].data.tags["sweep.resumes"] == "1"
    assert "unpu.error" not in runs[parent.info.run_id].data.tags
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    current = [r for r in children if "unpu.superseded_by" not in r.data.tags]
    assert sorted(r.info.status for r in current) == ["FINISHED"] * 3
    superseded = [r for r in children if "unpu.superseded_by" in r.data.tags]
    assert {r.info.run_id for r in superseded} == {running.info.run_id, *(j.info.run_id for j in never)}
    assert runs[parent.info.run_id].data.tags["sweep.failed_jobs"] == "0"

    again = run_unpu([*sweep, f"+resume={parent.info.run_id}"], tmp_path, env=_env(tmp_path), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("not run again") == 3       # every job finished before: nothing reruns
    assert len(_runs(db)) == len(runs)


@pytest.mark.slow
def test_sigterm_kills_the_run_and_stops_the_device(tmp_path, tiny):
    db = tmp_path / "mlflow.db"
    proc = _start([*tiny, "bench.min_window_s=20"], tmp_path)
    _wait_for_running_job(db, proc)
    code, err = _stop(proc, signal.SIGTERM)
    assert code == 143
    assert _one_unpu_line(err) == "unpu: interrupted by SIGTERM: stopped, runs closed KILLED"
    assert own_processes("python") == set()
    (run,) = _runs(db)
    assert run.info.status == "KILLED" and run.data.tags["unpu.error"] == "interrupted by SIGTERM during the job"
    artifacts = {f.path for f in _artifacts(db, run.info.run_id)}
    assert {"run.log", "serial_transcript.txt", "device"} <= artifacts


@pytest.mark.slow
def test_sigkill_leaves_an_orphan_that_the_next_start_closes(tmp_path, tiny):
    db = tmp_path / "mlflow.db"
    proc = _start([*tiny, "bench.min_window_s=30"], tmp_path)
    _wait_for_running_job(db, proc)
    proc.kill()
    proc.communicate(timeout=60)
    (orphan,) = _runs(db)
    assert orphan.info.status == "RUNNING"              # nothing could close it
    out = run_unpu(tiny, tmp_path, env=_env(tmp_path), timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = {r.info.run_id: r for r in _runs(db)}
    closed = runs[orphan.info.run_id]
    assert closed.info.status == "KILLED"
    assert closed.data.tags["unpu.error"].startswith(f"orphaned: process {proc.pid} on ")
    assert "closed 1 run(s) left RUNNING by processes that died" in out.stdout + out.stderr


def _artifacts(db: Path, run_id: str) -> list:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{db}").list_artifacts(run_id)


# -- concurrency ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_first_runs_at_once_share_a_new_store(tmp_path, tiny):
    """MLflow migrates a new sqlite store on first use: without the creation lock, two first runs
    race and (3 times out of 3 before) one dies. Twice, on two fresh stores."""
    for attempt in range(2):
        db = tmp_path / f"store{attempt}.db"
        args = [*tiny, f"tracking.uri=sqlite:///{db}"]
        procs = [_start(args, tmp_path) for _ in range(2)]
        outs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
        assert [r.info.status for r in _runs(db)] == ["FINISHED", "FINISHED"]
        assert not list(tmp_path.glob(f".store{attempt}.db.creating-*"))
    run_dirs = sorted(p.name for p in (tmp_path / "outputs").glob("*/*"))
    assert len(run_dirs) == 4 and len(set(run_dirs)) == 4      # the pid in the name: one directory each


# -- refused in one line, before anything is recorded -------------------------------------------------

@pytest.mark.slow   # over 5 s: the developers' fast tier stays under 3 minutes
def test_a_sweep_hydra_would_refuse_halfway_is_refused_whole(tmp_path, softmax_tflite):
    out = run_unpu(["-m", *TINY, f"model.path={softmax_tflite}", "quant=int8,int4"], tmp_path, timeout=300)
    assert out.returncode == 2
    assert _one_unpu_line(out.stderr).startswith("unpu: In 'config': Could not find 'quant/int4'")
    assert _runs(tmp_path / "mlflow.db") == []


def test_closed_port_tracking_is_refused_in_seconds(tmp_path, tiny):
    from helpers import free_port

    t0 = time.monotonic()
    out = run_unpu([*tiny, f"tracking.uri=http://127.0.0.1:{free_port()}"], tmp_path, timeout=120)
    elapsed = time.monotonic() - t0
    assert out.returncode == 2
    line = _one_unpu_line(out.stderr)
    assert "cannot record to MLflow at http://127.0.0.1:" in line and "Connection refused" in line
    assert elapsed < 5, elapsed      # was 249 s of MLflow's retries


@pytest.mark.parametrize(("uri", "says"), [
    ("sqlite:////nonexistent/dir/mlflow.db", "directory /nonexistent/dir does not exist"),
    ("sqlite:////proc/sys/mlflow.db", "cannot write in /proc/sys"),
    ("NOT_SQLITE", "cannot be written (file is not a database)"),
])
def test_unusable_sqlite_store_is_one_line(tmp_path, tiny, uri, says):
    if uri == "NOT_SQLITE":
        (tmp_path / "junk.db").write_text("not a database\n" * 200)
        uri = f"sqlite:///{tmp_path}/junk.db"
    out = run_unpu([*tiny, f"tracking.uri={uri}"], tmp_path, timeout=120)
    assert out.returncode == 2
    line = _one_unpu_line(out.stderr)
    assert line.startswith(f"unpu: cannot record to MLflow at {uri}: ") and says in line, line


@pytest.mark.parametrize(("override", "says"), [
    ("bench.iterations=abc", "bench.iterations must be an integer, got 'abc'"),
    ("bench.windows=1.5", "bench.windows must be an integer, got 1.5"),
    ("bench.timeout_s=nan", "bench.timeout_s must be > 0 and finite, got nan"),
    ("bench.timeout_s=inf", "bench.timeout_s must be > 0 and finite, got inf"),
    ("bench.min_window_s=-1", "bench.min_window_s must be >= 0 and finite, got -1"),
])
def test_bad_bench_value_is_one_line(tmp_path, tiny, override, says):
    out = run_unpu([*tiny, override], tmp_path, timeout=120)
    assert out.returncode == 2
    assert _one_unpu_line(out.stderr) == f"unpu: {says}"
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow   # over 5 s: the developers' fast tier stays under 3 minutes
def test_resume_needs_a_sweep_and_a_known_parent(tmp_path, tiny):
    single = run_unpu([*tiny, "+resume=0123abcd"], tmp_path, timeout=120)
    assert single.returncode == 2
    assert _one_unpu_line(single.stderr) == "unpu: resume=<parent run id> continues a sweep: use it with -m"
    unknown = run_unpu(["-m", *tiny, "+resume=0123abcd"], tmp_path, timeout=120)
    assert unknown.returncode == 2
    assert _one_unpu_line(unknown.stderr).startswith(f"unpu: resume=0123abcd: no such run in sqlite:///{tmp_path}/mlflow.db")


# -- what a failed run keeps ------------------------------------------------------------------------

@pytest.mark.slow
def test_a_run_failing_mid_measurement_uploads_its_device_log(tmp_path, tiny):
    """A window longer than the link timeout: the run fails inside the measurement, when the
    device's log is what a user needs, and it is uploaded with the transcript."""
    out = run_unpu([*tiny, "bench.min_window_s=6", "bench.timeout_s=1"], tmp_path, env=_env(tmp_path), timeout=600)
    assert out.returncode == 1
    (run,) = _runs(tmp_path / "mlflow.db")
    assert run.info.status == "FAILED" and "within the timeout" in run.data.tags["unpu.error"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert [f.path for f in client.list_artifacts(run.info.run_id, "device")] == ["device/device_stderr.log"]
    transcript = Path(client.download_artifacts(run.info.run_id, "serial_transcript.txt", str(tmp_path)))
    assert "> infer" in transcript.read_text()
