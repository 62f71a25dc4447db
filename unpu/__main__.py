"""`python -m unpu` / `unpu`: one benchmark job, or a sweep with -m (Hydra multirun).

Only Hydra and OmegaConf are imported here, so `--help` and `--cfg job` stay fast; TensorFlow,
MLflow and TFLite Micro load inside the job when it needs them.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from unpu import config_dir

log = logging.getLogger("unpu")


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _task(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from unpu.pipeline import JobFailed, UsageError, record_rejected, run_job
    from unpu.tracking import read_parent_run_id

    multirun = _is_multirun()
    hydra_cfg = HydraConfig.get()
    parent = os.environ.get("UNPU_PARENT_RUN_ID") or (read_parent_run_id(hydra_cfg.sweep.dir) if multirun else None)
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


def main() -> None:
    if sys.argv[1:2] == ["report"]:  # `unpu report ...`: not a Hydra job, so Hydra never sees these arguments
        from unpu.report import main as report_main

        sys.exit(report_main(sys.argv[2:]))
    _task()
    if os.environ.get("UNPU_SWEEP_FAILED"):
        sys.exit(1)


if __name__ == "__main__":
    main()
