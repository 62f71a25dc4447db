"""One benchmark job, start to end: pre-flight, model, build, measure, validate, record.

Every job is an MLflow run. Anything that goes wrong after the run is opened marks it FAILED
with its log, transcript, device logs and error attached; SIGINT/SIGTERM mark it KILLED the same way.
`UsageError`s (bad config, unknown board, an unreachable tracking store) are caught before any work
and never open a run. In a resumed sweep a job whose config already FINISHED under the same parent
is not run again.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unpu import console, steps
from unpu.artifacts import BuildContext, Firmware, FirmwareKind, QuantizedModel
from unpu.boards.base import Board, adapter_class, board_spec, make_board
from unpu.boards.catalog import runnable_boards
from unpu.boards.spec import BoardSpec
from unpu.cache import Cache
from unpu.codegen import CodegenError, read_model
from unpu.codegen.planner import plan_memory
from unpu.errors import Interrupted, UnpuError
from unpu.graph import GraphInfo, inspect_tflite
from unpu.measure import (
    Reference,
    check_identity,
    count_metrics,
    latency_metrics,
    run_windows,
    unchecked_identity,
    validate,
    window_metrics,
)
from unpu.meters.base import EnergyContext, Meter, MeterError
from unpu.models import ZOO
from unpu.models.loader import ModelFileError, check_model_file
from unpu.protocol import STAGES, Transcript
from unpu.quantize import MODES
from unpu.tracking import (
    DIGEST_TAG,
    RunRecorder,
    check_store,
    close_orphans,
    config_digest,
    finished_twin,
    git_commit,
    log_files,
    open_store,
    params_from_config,
    supersede,
)

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

def build_context(cfg: DictConfig) -> BuildContext:
    """What the board adapter may know of the job: not the job config itself."""
    return BuildContext(model_id=str(cfg.model.get("mlperf_id") or steps.model_id(cfg)),
                        post=str(cfg.model.post), cache=Cache(cfg.cache.dir),
                        timeout_s=float(cfg.bench.timeout_s),
                        lock_wait_s=float(cfg.bench.get("lock_wait_s", 900)),
                        calibration=lambda path: steps.samples(cfg, path, "calibration",
                                                                int(cfg.quant.calibration_samples)))


def preflight(cfg: DictConfig) -> tuple[Board, Meter | None]:
    """The board adapter and the meter (None for meter=none), or UsageError (one line)."""
    try:
        check_store(str(cfg.tracking.uri))
    except UnpuError as exc:
        raise UsageError(str(exc)) from None
    try:
        spec = board_spec(cfg.board)
    except UnpuError as exc:
        raise UsageError(str(exc)) from None
    if adapter_class(cfg.board) is None:
        raise UsageError(f"board '{spec.name}' (support: {spec.support.value}) cannot run yet: missing {spec.missing}; "
                         f"boards that run now: {', '.join(runnable_boards())}")
    if not cfg.meter.get("available", False):
        raise UsageError(f"meter={cfg.meter.name} cannot run yet: missing {cfg.meter.get('missing')}")
    _check_quant(cfg)
    _check_model(cfg)
    _check_bench(cfg.bench)
    try:
        board = make_board(cfg.board, build_context(cfg))
        board.check_environment()
    except UnpuError as exc:
        message = str(exc)
        raise UsageError(message if message.startswith("board=") else f"board={spec.name}: {message}") from None
    return board, _meter(cfg)


def _meter(cfg: DictConfig) -> Meter | None:
    if cfg.meter.get("adapter") is None:
        return None
    meter = instantiate(cfg.meter.adapter, cfg=cfg, _recursive_=False)
    try:
        meter.preflight()
    except MeterError as exc:
        raise UsageError(str(exc)) from None
    return meter


def _number(node: DictConfig, key: str, kind: type, low: float, where: str, strict: bool = False) -> None:
    """node[key] must be a finite `kind` >= low (> low if strict): else one line naming it."""
    value = node[key]
    try:
        number = kind(value)
        if isinstance(value, bool) or (kind is int and number != float(value)):
            raise ValueError
    except (TypeError, ValueError):
        raise UsageError(f"{where}.{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if not math.isfinite(number) or number < low or (strict and number == low):
        raise UsageError(f"{where}.{key} must be {'>' if strict else '>='} {low:g} and finite, got {value!r}")


def _check_quant(cfg: DictConfig) -> None:
    if cfg.quant.name not in MODES:
        raise UsageError(f"quant={cfg.quant.name} is not one of {', '.join(MODES)}")
    for key in ("calibration_samples", "heldout_samples"):
        _number(cfg.quant, key, int, 1, "quant")


def _check_model(cfg: DictConfig) -> None:
    """The model and the data it will be fed, before TensorFlow is imported (steps.check_inputs)."""
    model = cfg.model
    if model.source == "zoo" and model.name not in ZOO:
        raise UsageError(f"model={model.name} is not in the zoo ({', '.join(ZOO)})")
    if model.source != "zoo" and (OmegaConf.is_missing(model, "path") or not model.path):
        raise UsageError("model=file needs model.path=PATH (.tflite, .keras or .h5)")
    try:
        if model.source != "zoo":
            check_model_file(str(model.path))
        steps.check_inputs(cfg)
    except (ModelFileError, steps.ModelInputError, steps.DatasetError) as exc:
        raise UsageError(str(exc)) from None


def _check_bench(bench: DictConfig) -> None:
    for key, low in (("iterations", 1), ("windows", 1), ("warmup", 0), ("validation_inputs", 0)):
        _number(bench, key, int, low, "bench")
    _number(bench, "timeout_s", float, 0, "bench", strict=True)   # nan or inf would wait forever
    _number(bench, "min_window_s", float, 0, "bench")
    _number(bench, "lock_wait_s", float, 0, "bench")


# -- the job ----------------------------------------------------------------------------------------

def run_job(cfg: DictConfig, workdir: Path, parent_run_id: str | None = None) -> JobResult:
    if cfg.get("resume") and parent_run_id is None:
        raise UsageError("resume=<parent run id> continues a sweep: use it with -m")
    board, meter = preflight(cfg)
    digest = config_digest(cfg)
    store = _open_store(cfg)
    close_orphans(*store)
    resume = cfg.get("resume")
    if resume:
        done = _finished_before(cfg, store, parent_run_id, digest)
        if done is not None:
            return done
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"{board.spec.name}/{steps.model_id(cfg)}/{cfg.quant.name}"
    recorder = RunRecorder(str(cfg.tracking.uri), str(cfg.tracking.experiment), name, parent_run_id,
                           tags={**base_tags(cfg, board, meter), DIGEST_TAG: digest})
    if resume:
        supersede(*store, parent_run_id, digest, recorder.run_id)
    handler = _attach_log(workdir / "run.log")
    job = _Job(cfg, board, workdir, recorder, meter)
    status = "FAILED"
    try:
        job.run()
        status = "FINISHED"
        return JobResult(recorder.run_id, job.metrics, job.tags)
    except Interrupted as exc:
        status = "KILLED"
        log.error("run %s KILLED: %s", name, exc.reason)
        recorder.set_tags({"unpu.error": f"{exc.reason} during the job"})
        raise
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


def _open_store(cfg: DictConfig) -> tuple[Any, str]:
    try:
        return open_store(str(cfg.tracking.uri), str(cfg.tracking.experiment))
    except Exception as exc:  # passed check_store, then failed: a server that broke in between
        raise UsageError(f"cannot record to MLflow at {cfg.tracking.uri}: {_one_line(exc)}"[:400]) from None


def _finished_before(cfg: DictConfig, store: tuple[Any, str], parent_run_id: str | None, digest: str) -> JobResult | None:
    """In a resumed sweep: the earlier FINISHED run of this very config, which is not run again."""
    twin = finished_twin(*store, parent_run_id, digest)
    if twin is None:
        return None
    log.info("%s/%s/%s finished before in run %s: not run again", cfg.board.name, steps.model_id(cfg),
             cfg.quant.name, twin.info.run_id)
    return JobResult(twin.info.run_id, dict(twin.data.metrics), dict(twin.data.tags))


def record_rejected(cfg: DictConfig, parent_run_id: str | None, message: str) -> str:
    """A sweep job refused in pre-flight still shows in the sweep, as a FAILED child with the reason."""
    model = steps.model_id(cfg) if cfg.model.source == "zoo" or cfg.model.get("path") else "file"
    recorder = RunRecorder(str(cfg.tracking.uri), str(cfg.tracking.experiment),
                           f"{cfg.board.name}/{model}/{cfg.quant.name}", parent_run_id,
                           tags={"board": cfg.board.name, "model": model, "quant": cfg.quant.name,
                                 "support": str(cfg.board.get("support")), "unpu.kind": "job",
                                 "unpu.error": message[:4000], DIGEST_TAG: config_digest(cfg)})
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


def base_tags(cfg: DictConfig, board: Board, meter: Meter | None = None) -> dict[str, str]:
    spec: BoardSpec = board.spec
    return {
        "board": spec.name, "npu": spec.npu.name if spec.npu else "none", "model": steps.model_id(cfg),
        "quant": cfg.quant.name, "compiler": spec.toolchain.compiler, "runtime": spec.runtime,
        "support": spec.support.value, "source.latency": board.source_latency,
        "source.energy": meter.source if meter else "none", "meter": cfg.meter.name, "git_commit": git_commit(),
        "unpu.kind": "job",
        # a DVC bench stage (unpu.dvc_stages) passes the dvc.lock md5s of the model and binary it ran
        **{f"dvc.{k}": str(v) for k, v in (cfg.get("dvc") or {}).items() if v is not None},
    }


class _Job:
    def __init__(self, cfg: DictConfig, board: Board, workdir: Path, recorder: RunRecorder,
                 meter: Meter | None = None) -> None:
        self.cfg, self.board, self.workdir, self.recorder, self.meter = cfg, board, workdir, recorder, meter
        self.transcript = Transcript()
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = {}
        self.artifacts: list[tuple[str, Path]] = []
        self.firmware: Firmware | None = None   # its artifacts (device logs) are uploaded however the job ends
        self.graph: GraphInfo | None = None

    def run(self) -> None:
        cfg = self.cfg
        self.recorder.log_params(params_from_config(cfg))
        self.recorder.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")
        t0 = time.monotonic()
        model = steps.quantized_model(cfg, Cache(cfg.cache.dir))
        self._record_model(model, time.monotonic() - t0)
        self.board.preflight(model)
        firmware = self.firmware = self.board.build(model, self.workdir)
        self.metrics.update(firmware.metrics)
        self._tag({**firmware.tags, **unchecked_identity(firmware)})   # a running one: digest.firmware once it answered
        if firmware.kind is FirmwareKind.ESTIMATE:
            self._record_estimate(firmware)
            self._measure_energy(None)
        else:
            self._measure(model, firmware)
        self._derive_efficiency()
        self.recorder.log_metrics(self.metrics)
        self.recorder.set_tags(self.tags)
        self._require_exact_output()
        console.run_summary(f"{self.board.spec.name} · {model.name} · {cfg.quant.name}", self.metrics,
                            base_tags(cfg, self.board, self.meter) | self.tags, self.recorder.run_id,
                            str(cfg.tracking.uri))

    def _tag(self, tags: dict[str, Any]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items() if v is not None})
        self.recorder.set_tags(tags)

    def _record_model(self, model: QuantizedModel, seconds: float) -> None:
        self.graph = inspect_tflite(model.path.read_bytes())
        self.metrics.update({"model/params": model.params, "model/macs": self.graph.macs,
                             "memory/model": model.path.stat().st_size, **model.fidelity})
        self._tag({"digest.model": model.digest, "model.params_source": model.params_source,
                   "cache.quantized": "hit" if model.cache_hit else "miss",
                   "model.ops": ",".join(f"{k}:{v}" for k, v in sorted(self.graph.op_counts.items()))})
        self.metrics["time/model_step_s"] = seconds
        self._record_static_plan(model)
        self.artifacts.append(("model/" + model.path.name, model.path))
        log_path = model.path.parent / "quantize.log"
        if log_path.exists():
            self.artifacts.append(("model/quantize.log", log_path))

    def _record_static_plan(self, model: QuantizedModel) -> None:
        """The arena unpu's code generator would plan for this model, beside the runtime's own."""
        try:
            self.metrics["memory/arena_codegen"] = plan_memory(read_model(model.path.read_bytes())).arena_size
        except CodegenError as exc:
            self._tag({"codegen.unsupported": str(exc)[:500]})

    def _inputs(self, model: QuantizedModel, reference: Reference, count: int) -> list:
        samples = steps.samples(self.cfg, model.path, "validation", count)
        return [reference.input_spec.quantize(x) for x in samples]

    def _classification(self) -> bool:
        if self.cfg.model.source == "zoo":
            return ZOO[str(self.cfg.model.name)].task == "classification"
        out = self.graph.outputs[0].shape
        return len(out) == 2 and out[1] >= 2

    def _measure(self, model: QuantizedModel, firmware: Firmware) -> None:
        reference = Reference(model.path.read_bytes())
        if reference.sanitised:
            self._tag({"reference.sanitised": "; ".join(reference.sanitised)})
        n_val = int(self.cfg.bench.validation_inputs)
        inputs = self._inputs(model, reference, n_val + 1)
        timebase = self.board.timebase(firmware)
        with self.board.open(firmware, self.transcript, self.workdir) as client:
            self._tag(check_identity(client, firmware, self.board.context.model_id))
            measurement = run_windows(client, inputs[0].tobytes(), self.cfg.bench, timebase)
            self.metrics.update(self.board.device_metrics(client, firmware))
            self.metrics.update(latency_metrics(measurement))
            self.metrics.update(count_metrics(measurement, timebase))
            self._measure_energy(client)
            if n_val:
                self.metrics.update(validate(client, reference, inputs[1:], self._classification()))
        for stage in STAGES:
            self.metrics[f"cycles/{stage}"] = float(sorted(measurement.cycle_series(stage))[len(measurement.windows) // 2])
        for step, row in enumerate(window_metrics(measurement)):
            self.recorder.log_metrics(row, step=step)
        self._tag({"device.clock_hz": measurement.clock_hz, "device.timer": measurement.timer,
                   "flash.tool": self.board.spec.flash_tool,
                   "bench.iterations_per_window": measurement.windows[0].iterations,
                   **({"latency.method": timebase.method} if timebase.counts else {})})
        self.artifacts.extend(firmware.artifacts.items())

    def _measure_energy(self, client) -> None:
        """The meter's energy metrics, trace and plot (after the latency windows: the simulated
        meter models the times just measured, a live meter runs one more, pin-marked window)."""
        if self.meter is None:
            return
        title = f"{self.board.spec.name} · {steps.model_id(self.cfg)} · {self.cfg.quant.name}"
        result = self.meter.measure(EnergyContext(client, dict(self.metrics), self.workdir, title))
        self.metrics.update(result.metrics)
        self._tag({"source.energy": self.meter.source, **result.tags})
        self.artifacts.extend(result.artifacts.items())

    def _record_estimate(self, firmware: Firmware) -> None:
        """Estimate mode: no device ran; the compiler's estimate is the run's (only) latency."""
        self.metrics.update(self.board.estimate_metrics(firmware))
        self.artifacts.extend(firmware.artifacts.items())
        log.info("estimate mode: nothing was measured; latency is %s's estimate (source.latency=estimated)",
                 self.board.spec.toolchain.compiler)

    def _require_exact_output(self) -> None:
        diff = self.metrics.get("validation/max_abs_diff_lsb", self.metrics.get("validation/max_abs_diff", 0))
        if self.board.bit_exact and diff:
            raise ValidationFailed(
                f"device output differs from LiteRT's reference kernels by up to {diff:g} "
                f"({self.metrics.get('validation/mismatch_fraction', 0):.2%} of values); "
                f"{self.board.spec.name} must be bit-exact")

    def _derive_efficiency(self) -> None:
        """Spec vs reality: achieved GOP/s from the graph's MACs, its share of the board's peak, and
        how far the run's latency is from the compiler's estimate."""
        inference_us = self.metrics.get("latency/inference_us")
        if not inference_us or not self.metrics.get("model/macs"):
            return
        gops = 2 * self.metrics["model/macs"] / (inference_us * 1e-6) / 1e9
        self.metrics["perf/gops"] = gops
        peak, basis = self.board.spec.peak_ops()
        if peak:
            self.metrics["perf/peak_fraction"] = gops * 1e9 / peak
            self.metrics["perf/peak_gops"] = peak / 1e9
            self._tag({"perf.peak_basis": basis})
        estimate = self.metrics.get("estimate/latency_us")
        if estimate and self.board.source_latency != "estimated":
            self.metrics["estimate/ratio"] = inference_us / estimate

    def log_artifacts(self) -> None:
        """Everything the job produced so far: on failure too, when the device logs matter most."""
        transcript = self.workdir / "serial_transcript.txt"
        transcript.write_text(self.transcript.text())
        files = dict(self.artifacts)
        if self.firmware is not None:
            files.update(self.firmware.artifacts)
        files.update({"serial_transcript.txt": transcript, "run.log": self.workdir / "run.log"})
        try:
            log_files(self.recorder, files.items())
        except Exception as exc:  # never let artifact upload hide the job's own outcome
            log.warning("could not log artifacts: %s", exc)
