"""`python -m unpu` / `unpu`: one benchmark job, or a sweep with -m (Hydra multirun).
`unpu report ...` writes a sweep's report; `unpu boards` lists the boards.

TensorFlow, MLflow and TFLite Micro load inside the job when it needs them, so `--help` and
`--cfg job` stay fast. A configuration error (a misspelt key, a wrong type, an unknown choice) is
one line, exit 2; HYDRA_FULL_ERROR=1 shows Hydra's own report instead.

SIGINT (Ctrl-C) and SIGTERM stop the job where it is: the device is stopped, the running job's
MLflow run and the sweep's parent are closed KILLED with the reason, the jobs a sweep never reached
are recorded KILLED too (so `+resume=<parent run id>` reruns them), and the process exits 130 or
143 with one line. A second signal during that clean-up is ignored.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from unpu import config_dir, sweep
from unpu.cli import boards_main
from unpu.errors import Interrupted
from unpu.pipeline import JobFailed, UsageError, record_rejected, run_job
from unpu.report import main as report_main
from unpu.tracking import read_parent_run_id

log = logging.getLogger("unpu")
FULL_ERROR = "HYDRA_FULL_ERROR"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

OmegaConf.register_new_resolver("pid", os.getpid, replace=True)   # conf/config.yaml: one directory per process


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _task(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    parent = os.environ.get(sweep.PARENT_ENV) or (read_parent_run_id(hydra_cfg.sweep.dir) if multirun else None)
    try:
        result = run_job(cfg, Path(hydra_cfg.runtime.output_dir), parent)
    except UsageError as exc:
        print(f"unpu: {exc}", file=sys.stderr)
        if multirun:
            try:
                record_rejected(cfg, parent, str(exc))
            except Exception as record_exc:  # e.g. the tracking server itself is the problem
                print(f"unpu: could not record the rejected job: {record_exc}", file=sys.stderr)
                os.environ["UNPU_SWEEP_FAILED"] = "1"
            return None
        sys.exit(2)
    except JobFailed as exc:
        print(f"unpu: run FAILED ({cfg.board.name}/{cfg.model.name}/{cfg.quant.name}): {exc} "
              f"[MLflow run {exc.run_id}]", file=sys.stderr)
        if multirun:
            return None
        sys.exit(1)
    return result.metrics.get("latency/total_us")


def config_error(exc: BaseException) -> str:
    """Hydra's and OmegaConf's several-line composition errors as one line."""
    parts = []
    for err in (exc, exc.__cause__):
        if err is None:
            continue
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), None)
        text = " ".join(ln for ln in lines if not ln.startswith(("full_key:", "object_type=", "reference_type=",
                                                                   "Config search path", "provider=")))
        parts.append(text + (f" ({key})" if key and key not in text else ""))
    return "; ".join(dict.fromkeys(p for p in parts if p))


def _run_hydra() -> None:
    own_errors = FULL_ERROR not in os.environ
    if own_errors:
        os.environ[FULL_ERROR] = "1"   # Hydra raises instead of printing its report: we say it in one line
    try:
        _task()
    except (HydraException, OmegaConfBaseException) as exc:
        if not own_errors:
            raise
        print(f"unpu: {config_error(exc)}", file=sys.stderr)
        sys.exit(2)
    except sweep.SweepRefused as refused:   # before any run: the store, a job's config, the resume handle
        cause = refused.cause
        config_like = isinstance(cause, (HydraException, OmegaConfBaseException))
        print(f"unpu: {config_error(cause) if config_like else cause}", file=sys.stderr)
        sys.exit(2)
    finally:
        if own_errors:
            os.environ.pop(FULL_ERROR, None)


def _raise_interrupted(signum: int, frame: object) -> None:
    for sig in STOP_SIGNALS:   # the clean-up below must not be interrupted in turn
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def _stop_signals_raise() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(exc: Interrupted) -> None:
    """The running job closed its own run on the way out; close the sweep, say it in one line."""
    active = sweep.ACTIVE
    if active is not None:
        try:
            active.interrupted(exc.reason)
        except Exception as record_exc:  # noqa: BLE001 - the store may be what is failing
            print(f"unpu: could not close the sweep's parent run: {record_exc}", file=sys.stderr)
    where = f"; resume with: python -m unpu -m ... +resume={active.recorder.run_id}" if active and active.recorder else ""
    print(f"unpu: {exc.reason}: stopped, runs closed KILLED{where}", file=sys.stderr)
    sys.exit(128 + exc.signum)


def main() -> None:
    command = sys.argv[1:2]
    if command == ["report"]:  # not Hydra jobs: Hydra never sees these arguments
        sys.exit(report_main(sys.argv[2:]))
    if command == ["boards"]:
        sys.exit(boards_main(sys.argv[2:]))
    try:
        with _stop_signals_raise():
            _run_hydra()
    except Interrupted as exc:
        _interrupted(exc)
    if os.environ.get("UNPU_SWEEP_FAILED"):
        sys.exit(1)


if __name__ == "__main__":
    main()
