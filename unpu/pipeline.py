"""One benchmark job, start to end: pre-flight, model, build, measure, validate, record.

Every job is an MLflow run. Anything that goes wrong after the run is opened marks it FAILED
with its log, transcript and error attached; `UsageError`s (bad config, unknown board) are caught
before any work and never open a run.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("unpu")

class UsageError(Exception):
    """The job cannot start as configured; the message is one line for the user (exit code 2)."""


class ValidationFailed(RuntimeError):
    """A bit-exact board's output did not equal the reference."""


class JobFailed(Exception):
    """The job started and failed; it is recorded FAILED in MLflow."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass
class JobResult:
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


# -- pre-flight: nothing here builds, converts or imports TensorFlow ----------------------------------

def preflight(cfg: DictConfig):
    """The board adapter and the meter (None for meter=none), or UsageError (one line)."""
    board = cfg.board
    if board.get("adapter") is None:
        raise UsageError(
            f"board '{board.name}' (support: {board.support}) cannot run yet: missing {board.missing}; "
            f"boards that run now: {', '.join(runnable_boards())}")
    if not cfg.meter.get("available", False):
        raise UsageError(f"meter={cfg.meter.name} cannot run yet: missing {cfg.meter.get('missing')}")
    _check_quant(cfg)
    _check_model(cfg)
    _check_bench(cfg.bench)
    from hydra.utils import instantiate

    adapter = instantiate(board.adapter, cfg=cfg, _recursive_=False)
    from unpu.boards.base import BoardError

    try:
        adapter.check_environment()
    except BoardError as exc:
        raise UsageError(f"board={board.name}: {exc}") from None
    return adapter, _meter(cfg)


def _meter(cfg: DictConfig):
    if cfg.meter.get("adapter") is None:
        return None
    from hydra.utils import instantiate

    from unpu.meters.base import MeterError

    meter = instantiate(cfg.meter.adapter, cfg=cfg, _recursive_=False)
    try:
        meter.preflight()
    except MeterError as exc:
        raise UsageError(str(exc)) from None
    return meter


def runnable_boards() -> list[str]:
    """Boards whose YAML names an adapter, read from conf/board/ (no adapter module is imported)."""
    from unpu import config_dir

    board_dir = Path(config_dir()) / "board"
    return sorted(p.stem for p in board_dir.glob("*.yaml") if _names_adapter(p))


def _names_adapter(path: Path) -> bool:
    """The board YAML, or a board it extends through its defaults list, names an adapter."""
    conf = OmegaConf.load(path)
    if conf.get("adapter") is not None:
        return True
    bases = [d for d in conf.get("defaults") or [] if isinstance(d, str) and d != "_self_"]
    return any(_names_adapter(path.with_name(f"{base}.yaml")) for base in bases)


def _check_quant(cfg: DictConfig) -> None:
    from unpu.quantize import MODES

    if cfg.quant.name not in MODES:
        raise UsageError(f"quant={cfg.quant.name} is not one of {', '.join(MODES)}")
    for key in ("calibration_samples", "heldout_samples"):
        if int(cfg.quant[key]) < 1:
            raise UsageError(f"quant.{key} must be >= 1, got {cfg.quant[key]}")


def _check_model(cfg: DictConfig) -> None:
    model = cfg.model
    if model.source == "zoo":
        from unpu.models import ZOO

        if model.name not in ZOO:
            raise UsageError(f"model={model.name} is not in the zoo ({', '.join(ZOO)})")
        return
    if OmegaConf.is_missing(model, "path") or not model.path:
        raise UsageError("model=file needs model.path=PATH (.tflite, .keras or .h5)")
    from unpu.models.loader import ModelFileError, check_model_file

    try:
        check_model_file(str(model.path))
    except ModelFileError as exc:
        raise UsageError(str(exc)) from None


def _check_bench(bench: DictConfig) -> None:
    for key, low in (("iterations", 1), ("windows", 1), ("warmup", 0), ("validation_inputs", 0)):
        if int(bench[key]) < low:
            raise UsageError(f"bench.{key} must be >= {low}, got {bench[key]}")
    if float(bench.timeout_s) <= 0 or float(bench.min_window_s) < 0:
        raise UsageError("bench.timeout_s must be > 0 and bench.min_window_s >= 0")


def board_peak_ops(board: DictConfig) -> tuple[float | None, str]:
    """The board's peak ops/s: the NPU's from its YAML (or MAC/cycle x 2 x clock), else the CPU's if given."""
    npu = board.get("npu")
    if npu and npu.get("peak_ops_s"):
        return float(npu.peak_ops_s), f"{npu.name} peak_ops_s from the board YAML"
    if npu and npu.get("macs_per_cycle") and npu.get("clock_hz"):
        return 2.0 * float(npu.macs_per_cycle) * float(npu.clock_hz), f"{npu.name}: 2 x macs_per_cycle x clock_hz"
    cpu = board.get("cpu") or {}
    if cpu.get("peak_ops_s"):
        return float(cpu.peak_ops_s), f"{cpu.core} peak_ops_s from the board YAML"
    return None, ""


# -- the job ----------------------------------------------------------------------------------------

def run_job(cfg: DictConfig, workdir: Path, parent_run_id: str | None = None) -> JobResult:
    from unpu import stages
    from unpu.tracking import RunRecorder

    board, meter = preflight(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"{cfg.board.name}/{stages.model_id(cfg)}/{cfg.quant.name}"
    try:
        recorder = RunRecorder(str(cfg.tracking.uri), str(cfg.tracking.experiment), name, parent_run_id,
                               tags=_base_tags(cfg, board, meter))
    except Exception as exc:  # unreachable server, unwritable database...
        raise UsageError(f"cannot record to MLflow at {cfg.tracking.uri}: {_one_line(exc)}"[:400]) from None
    handler = _attach_log(workdir / "run.log")
    job = _Job(cfg, board, workdir, recorder, meter)
    status = "FAILED"
    try:
        job.run()
        status = "FINISHED"
        return JobResult(recorder.run_id, job.metrics, job.tags)
    except Exception as exc:
        message = _one_line(exc)
        log.error("run %s FAILED: %s", name, message)
        log.debug("traceback:\n%s", traceback.format_exc())
        recorder.set_tags({"unpu.error": message[:4000]})
        recorder.log_text(traceback.format_exc(), "error.txt")
        raise JobFailed(message, recorder.run_id) from exc
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        job.log_artifacts()
        recorder.finish(status)


def record_rejected(cfg: DictConfig, parent_run_id: str | None, message: str) -> str:
    """A sweep job refused in pre-flight still shows in the sweep, as a FAILED child with the reason."""
    from unpu.tracking import RunRecorder

    model = str(cfg.model.name) if cfg.model.source == "zoo" else Path(str(cfg.model.get("path") or "file")).stem
    recorder = RunRecorder(str(cfg.tracking.uri), str(cfg.tracking.experiment),
                           f"{cfg.board.name}/{model}/{cfg.quant.name}", parent_run_id,
                           tags={"board": cfg.board.name, "model": model, "quant": cfg.quant.name,
                                 "support": cfg.board.support, "unpu.kind": "job", "unpu.error": message[:4000]})
    recorder.finish("FAILED")
    return recorder.run_id


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__module__.startswith(("builtins", "subprocess")) else text


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    return handler


def _base_tags(cfg: DictConfig, board, meter=None) -> dict[str, str]:
    from unpu import stages
    from unpu.tracking import git_commit

    npu = cfg.board.get("npu")
    return {
        "board": cfg.board.name, "npu": npu.name if npu else "none", "model": stages.model_id(cfg),
        "quant": cfg.quant.name, "compiler": cfg.board.toolchain.compiler, "support": cfg.board.support,
        "source.latency": board.source_latency, "source.energy": meter.source if meter else "none",
        "meter": cfg.meter.name, "git_commit": git_commit(),
        "unpu.kind": "job", "unpu.pid": str(os.getpid()),
        # a DVC bench stage (unpu.dvc_stages) passes the dvc.lock md5s of the model and binary it ran
        **{f"dvc.{k}": str(v) for k, v in (cfg.get("dvc") or {}).items() if v is not None},
    }


class _Job:
    def __init__(self, cfg: DictConfig, board, workdir: Path, recorder, meter=None) -> None:
        from unpu.protocol import Transcript

        self.cfg, self.board, self.workdir, self.recorder, self.meter = cfg, board, workdir, recorder, meter
        self.transcript = Transcript()
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = {}
        self.artifacts: list[tuple[str, Path]] = []

    def run(self) -> None:
        from unpu import stages
        from unpu.cache import Cache
        from unpu.tracking import params_from_config

        cfg = self.cfg
        self.recorder.log_params(params_from_config(cfg))
        self.recorder.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")
        t0 = time.monotonic()
        model = stages.quantized_model(cfg, Cache(cfg.cache.dir))
        self._record_model(model, time.monotonic() - t0)
        self.board.preflight(model)
        firmware = self.board.build(model, self.workdir)
        self.metrics.update(firmware.metrics)
        self._tag({"digest.firmware": firmware.digest, **firmware.tags})
        if firmware.extra.get("estimate_only"):
            self._record_estimate(firmware)
            self._measure_energy(None)
        else:
            self._measure(model, firmware)
        self._derive_efficiency()
        self.recorder.log_metrics(self.metrics)
        self.recorder.set_tags(self.tags)
        self._require_exact_output()
        from unpu import console

        console.run_summary(f"{cfg.board.name} · {model.name} · {cfg.quant.name}",
                            self.metrics, _base_tags(cfg, self.board, self.meter) | self.tags, self.recorder.run_id,
                            str(cfg.tracking.uri))

    def _tag(self, tags: dict[str, Any]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items() if v is not None})
        self.recorder.set_tags(tags)

    def _record_model(self, model, seconds: float) -> None:
        from unpu.graph import inspect_tflite

        graph = inspect_tflite(model.path.read_bytes())
        self.graph = graph
        meta = model.meta
        self.metrics.update({"model/params": meta["params"], "model/macs": graph.macs,
                             "memory/model": model.path.stat().st_size})
        self.metrics.update(meta.get("fidelity") or {})
        self._tag({"digest.model": model.digest, "model.params_source": meta.get("params_source"),
                   "cache.quantized": "hit" if meta.get("cache_hit") else "miss",
                   "model.ops": ",".join(f"{k}:{v}" for k, v in sorted(graph.op_counts.items()))})
        self.metrics["time/model_stage_s"] = seconds
        self._record_static_plan(model)
        self.artifacts.append(("model/" + model.path.name, model.path))
        log_path = model.path.parent / "quantize.log"
        if log_path.exists():
            self.artifacts.append(("model/quantize.log", log_path))

    def _record_static_plan(self, model) -> None:
        """The arena unpu's code generator would plan for this model, beside the runtime's own."""
        from unpu.codegen import CodegenError, read_model
        from unpu.codegen.planner import plan_memory

        try:
            self.metrics["memory/arena_codegen"] = plan_memory(read_model(model.path.read_bytes())).arena_size
        except CodegenError as exc:
            self._tag({"codegen.unsupported": str(exc)[:500]})

    def _inputs(self, reference, count: int):
        from hydra.utils import instantiate

        spec = reference.input_spec
        if self.cfg.model.source == "zoo":
            from unpu.models import ZOO

            shape_or_spec = ZOO[str(self.cfg.model.name)]
        else:
            shape_or_spec = tuple(spec.shape[1:])
        samples = instantiate(self.cfg.dataset).samples(shape_or_spec, count, "validation")
        return [spec.quantize(x) for x in samples]

    def _classification(self) -> bool:
        if self.cfg.model.source == "zoo":
            from unpu.models import ZOO

            return ZOO[str(self.cfg.model.name)].task == "classification"
        out = self.graph.outputs[0].shape
        return len(out) == 2 and out[1] >= 2

    def _measure(self, model, firmware) -> None:
        from unpu.measure import Reference, latency_metrics, run_windows, validate, window_metrics

        reference = Reference(model.path.read_bytes())
        n_val = int(self.cfg.bench.validation_inputs)
        inputs = self._inputs(reference, n_val + 1)
        with self.board.open(firmware, self.transcript, self.workdir) as client:
            profile = client.profile()
            measurement = run_windows(client, inputs[0].tobytes(), self.cfg.bench)
            self.metrics.update(self.board.device_metrics(client, firmware))
            self.metrics.update(latency_metrics(measurement))
            self.metrics.update(self.board.measurement_metrics(measurement, self.metrics))
            self._measure_energy(client)
            if n_val:
                self.metrics.update(validate(client, reference, inputs[1:], self._classification()))
        for stage in ("init", "input", "inference", "output", "post"):
            self.metrics[f"cycles/{stage}"] = float(sorted(measurement.cycle_series(stage))[len(measurement.windows) // 2])
        for step, row in enumerate(window_metrics(measurement)):
            self.recorder.log_metrics(row, step=step)
        self._tag({"device.clock_hz": measurement.clock_hz, "device.timer": measurement.timer,
                   "device.model": profile.get("model"), "bench.iterations_per_window": measurement.windows[0].iterations})
        self.artifacts.extend(firmware.artifacts.items())

    def _measure_energy(self, client) -> None:
        """The meter's energy metrics, trace and plot (after the latency windows: the simulated
        meter models the times just measured, a live meter runs one more, pin-marked window)."""
        if self.meter is None:
            return
        from unpu import stages
        from unpu.meters.base import EnergyContext

        title = f"{self.cfg.board.name} · {stages.model_id(self.cfg)} · {self.cfg.quant.name}"
        result = self.meter.measure(EnergyContext(client, dict(self.metrics), self.workdir, title))
        self.metrics.update(result.metrics)
        self._tag({"source.energy": self.meter.source, **result.tags})
        self.artifacts.extend(result.artifacts.items())

    def _record_estimate(self, firmware) -> None:
        """Estimate mode: no device ran; the compiler's estimate is the run's (only) latency."""
        self.metrics.update(self.board.estimate_metrics(firmware))
        self.artifacts.extend(firmware.artifacts.items())
        log.info("estimate mode: nothing was measured; latency is %s's estimate (source.latency=estimated)",
                 self.cfg.board.toolchain.compiler)

    def _require_exact_output(self) -> None:
        diff = self.metrics.get("validation/max_abs_diff_lsb", self.metrics.get("validation/max_abs_diff", 0))
        if self.board.bit_exact and diff:
            raise ValidationFailed(
                f"device output differs from LiteRT's reference kernels by up to {diff:g} "
                f"({self.metrics.get('validation/mismatch_fraction', 0):.2%} of values); {self.cfg.board.name} must be bit-exact")

    def _derive_efficiency(self) -> None:
        """Spec vs reality: achieved GOP/s from the graph's MACs, its share of the board's peak, and
        how far the run's latency is from the compiler's estimate."""
        inference_us = self.metrics.get("latency/inference_us")
        if not inference_us or not self.metrics.get("model/macs"):
            return
        gops = 2 * self.metrics["model/macs"] / (inference_us * 1e-6) / 1e9
        self.metrics["perf/gops"] = gops
        peak, basis = board_peak_ops(self.cfg.board)
        if peak:
            self.metrics["perf/peak_fraction"] = gops * 1e9 / peak
            self.metrics["perf/peak_gops"] = peak / 1e9
            self._tag({"perf.peak_basis": basis})
        estimate = self.metrics.get("estimate/latency_us")
        if estimate and self.board.source_latency != "estimated":
            self.metrics["estimate/ratio"] = inference_us / estimate

    def log_artifacts(self) -> None:
        from unpu.tracking import log_files

        transcript = self.workdir / "serial_transcript.txt"
        transcript.write_text(self.transcript.text())
        try:
            log_files(self.recorder, [*self.artifacts, ("serial_transcript.txt", transcript),
                                      ("run.log", self.workdir / "run.log")])
        except Exception as exc:  # never let artifact upload hide the job's own outcome
            log.warning("could not log artifacts: %s", exc)
