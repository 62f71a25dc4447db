"""Measurement over the DUT protocol: timed windows, per-stage statistics and output validation.

One window is one `infer N W` command: the device re-initialises the runtime (`init`), runs W
warm-ups, then N timed inferences; `stages%` gives init once and the per-inference mean of
input/inference/output/post. Statistics are taken across windows (median, min, max, std), as the
MLPerf Tiny rules take the median of windows. Per-window values are kept for `step` logging. The
board's Timebase turns the device's timer into latency (instruction counts on an emulator).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from unpu import console
from unpu.artifacts import Firmware, FirmwareKind, Timebase
from unpu.boards.firmware import c_model_id
from unpu.graph import reference_interpreter
from unpu.protocol import STAGES, DeviceMismatch, DutClient, InferResult, StageTime

log = logging.getLogger(__name__)


@dataclass
class Window:
    iterations: int
    window_us: float
    stages: dict[str, StageTime]

    @property
    def total_us(self) -> float:
        return sum(self.stages[s].us for s in STAGES)


@dataclass
class Measurement:
    windows: list[Window] = field(default_factory=list)
    clock_hz: int = 0
    timer: str = ""

    def stage_series(self, stage: str) -> list[float]:
        if stage == "total":
            return [w.total_us for w in self.windows]
        return [w.stages[stage].us for w in self.windows]

    def cycle_series(self, stage: str) -> list[int]:
        return [w.stages[stage].cycles for w in self.windows]

    def ips_series(self) -> list[float]:
        return [w.iterations / (w.window_us * 1e-6) for w in self.windows if w.window_us > 0]


def summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()),
            "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def latency_metrics(m: Measurement) -> dict[str, float]:
    out: dict[str, float] = {}
    for stage in (*STAGES, "total"):
        s = summary(m.stage_series(stage))
        out[f"latency/{stage}_us"] = s["median"]
        for stat in ("min", "max", "std"):
            out[f"latency/{stage}_us_{stat}"] = s[stat]
    ips = m.ips_series()
    if ips:
        out["throughput/ips"] = float(np.median(ips))
    return out


def count_metrics(m: Measurement, timebase: Timebase) -> dict[str, float]:
    """`<counts>/<stage>` (e.g. instructions/inference): the timebase's count behind each latency,
    median over windows, rounded; min and max for inference."""
    if not timebase.counts:
        return {}
    out: dict[str, float] = {}
    for stage in (*STAGES, "total"):
        stages = STAGES if stage == "total" else (stage,)
        series = [timebase.count(sum(w.stages[s].cycles for s in stages), m.clock_hz) for w in m.windows]
        s = summary(series)
        out[f"{timebase.counts}/{stage}"] = round(s["median"])
        if stage == "inference":
            out[f"{timebase.counts}/inference_min"] = round(s["min"])
            out[f"{timebase.counts}/inference_max"] = round(s["max"])
    return out


def window_metrics(m: Measurement) -> list[dict[str, float]]:
    """Per-window values, logged with step = window index under `window/<metric>`.

    A key of their own keeps them from shadowing the median: MLflow shows a metric's value at its
    highest step.
    """
    rows = []
    for w in m.windows:
        row = {f"window/latency/{s}_us": w.stages[s].us for s in STAGES}
        row["window/latency/total_us"] = w.total_us
        if w.window_us > 0:
            row["window/throughput/ips"] = w.iterations / (w.window_us * 1e-6)
        rows.append(row)
    return rows


def run_windows(client: DutClient, input_bytes: bytes, bench: Any, timebase: Timebase | None = None) -> Measurement:
    timebase = timebase or Timebase()
    info = client.info()
    m = Measurement(clock_hz=info.clock_hz, timer=info.timer)
    client.load_input(input_bytes)
    windows = int(bench.windows)
    with console.window_progress(windows, long=float(bench.min_window_s) >= console.LONG_S) as progress:
        iterations = _iterations_for_window(client, bench)
        progress.sizing_done(iterations)
        for index in range(windows):
            result: InferResult = client.infer(iterations, int(bench.warmup), float(bench.timeout_s))
            stages = {name: replace(st, us=timebase.stage_us(st.cycles, info.clock_hz, st.us))
                      for name, st in client.stages().items()}
            m.windows.append(Window(iterations, timebase.window_us(result.window_us), stages))
            log.info("window %d/%d: inference %.1f us, total %.1f us", index + 1, windows,
                     stages["inference"].us, m.windows[-1].total_us)
            progress.advance(f"inference {stages['inference'].us:,.1f} µs")
    return m


def check_identity(client: DutClient, firmware: Firmware, model_id: str) -> dict[str, str]:
    """Which firmware and model the device says it runs (`info%` build id, `profile%` model), checked
    against the firmware unpu built and the model id it was built with (the board's BuildContext;
    firmware reports it C-safe): the tags to record, or DeviceMismatch with both values."""
    built_model = c_model_id(model_id)
    build = client.info().build
    model = client.profile().get("model", "")
    if build != firmware.build_id:
        said = f"build id {build!r}" if build else "no build id"
        raise DeviceMismatch(f"the device reports {said} in info%, but unpu built and flashed "
                             f"{firmware.build_id!r}: another firmware is running")
    if model != built_model:
        raise DeviceMismatch(f"the device reports model {model!r} in profile%, but the firmware was built "
                             f"for {built_model!r}")
    return {"device.build_id": build, "device.model": model, "digest.firmware": firmware.digest,
            "device.identity": "checked: info% build id and profile% model are the ones built"}


def unchecked_identity(firmware: Firmware) -> dict[str, str]:
    """The identity tags of a firmware no device will answer for: an ESTIMATE never runs, so there is
    no build id or model to ask for, and its digest is that of what the estimate was made from. None
    for a firmware that runs: `check_identity` records its digest once its device has answered."""
    if firmware.kind is not FirmwareKind.ESTIMATE:
        return {}
    return {"digest.firmware": firmware.digest,
            "device.identity": "not checked: ESTIMATE firmware, no device ran (nothing to report a build id)"}


def _iterations_for_window(client: DutClient, bench: Any) -> int:
    """bench.iterations, grown until a probe window lasts at least bench.min_window_s (MLPerf: 10 s)."""
    iterations = int(bench.iterations)
    target_s = float(bench.min_window_s)
    for _ in range(8):
        if target_s <= 0:
            break
        probe = client.infer(iterations, int(bench.warmup), float(bench.timeout_s))
        window_s = probe.window_us * 1e-6
        if window_s >= target_s:
            break
        per_inference_s = max(window_s / iterations, 1e-9)
        iterations = max(iterations + 1, math.ceil(1.1 * target_s / per_inference_s))
    return iterations


# -- validation against the LiteRT reference ---------------------------------------------------------

@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None
    zero_point: int | None

    def quantize(self, x: np.ndarray) -> np.ndarray:
        if self.dtype.kind == "f":
            return x.astype(self.dtype).reshape(self.shape)
        info = np.iinfo(self.dtype)
        q = np.round(x / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype).reshape(self.shape)


class Reference:
    """The quantized model in ai_edge_litert with TFLite's reference kernels (BUILTIN_REF)."""

    def __init__(self, model: bytes) -> None:
        # LiteRT gets a sanitised copy (unpu.graph.litert_compatible); `sanitised` says what changed
        self.interp, self.sanitised = reference_interpreter(model)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def tensor_spec(self, details: dict) -> TensorSpec:
        scale, zp = details["quantization"]
        return TensorSpec(tuple(int(d) for d in details["shape"]), np.dtype(details["dtype"]),
                          scale or None, zp if scale else None)

    @property
    def input_spec(self) -> TensorSpec:
        return self.tensor_spec(self.inp)

    @property
    def output_spec(self) -> TensorSpec:
        return self.tensor_spec(self.out)

    def run(self, x: np.ndarray) -> np.ndarray:
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        return self.interp.get_tensor(self.out["index"]).copy()


def validate(client: DutClient, reference: Reference, inputs: list[np.ndarray], classification: bool) -> dict[str, float]:
    """Device output vs the reference on each input: max |diff| (LSB) and top-1 agreement."""
    out_spec = reference.output_spec
    diffs, agree, mismatched, total = [], [], 0, 0
    for x in inputs:
        client.load_input(x.tobytes())
        client.infer(1, 0)
        device = np.frombuffer(client.output(), dtype=out_spec.dtype).reshape(out_spec.shape)
        expected = reference.run(x)
        delta = np.abs(device.astype(np.float64) - expected.astype(np.float64))
        diffs.append(float(delta.max()))
        mismatched, total = mismatched + int(np.count_nonzero(delta)), total + delta.size
        agree.append(int(np.argmax(device)) == int(np.argmax(expected)))
    key = "validation/max_abs_diff" if out_spec.dtype.kind == "f" else "validation/max_abs_diff_lsb"
    metrics = {key: max(diffs), "validation/inputs": float(len(inputs)),
               "validation/mismatch_fraction": mismatched / total}
    if classification:
        metrics["validation/top1_agree"] = float(np.mean(agree))
    return metrics
