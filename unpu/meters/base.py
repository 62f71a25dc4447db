"""What every power meter provides, and the part they share: trace → JLS file → analysis → plot.

A meter is chosen with `meter=<name>` (conf/meter/, `adapter._target_`). The pipeline calls
`preflight()` before any work (no device, no power model → one line, exit 2), then `measure()`
once the latency windows are done, with the open device link (None on boards that only estimate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unpu.meters.plot import plot_trace
from unpu.meters.trace import TraceError, analyze, write_jls

log = logging.getLogger(__name__)

STAGES = ("init", "input", "inference", "output", "post")


class MeterError(RuntimeError):
    """The meter cannot run as configured; the message is one line for the user."""


@dataclass
class EnergyContext:
    client: Any | None                 # the open DutClient, or None when nothing runs on a device
    metrics: dict[str, float]          # the run's metrics so far (latency/*, estimate/*)
    workdir: Path
    title: str = ""                    # board · model · quant, for the plot


@dataclass
class EnergyResult:
    metrics: dict[str, float]
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)


class Meter:
    source = "measured"

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.meter = cfg.meter

    @property
    def min_pulse_s(self) -> float:
        return float(self.meter.get("min_pulse_us") or 0.5) * 1e-6

    def preflight(self) -> None:
        """Raise MeterError when the meter cannot run (checked before any build or run)."""

    def measure(self, ctx: EnergyContext) -> EnergyResult:
        raise NotImplementedError

    def finish(self, trace, ctx: EnergyContext, iterations: int | None = None,
               write: bool = True) -> EnergyResult:
        """Analyse a trace the way `python -m unpu.meters.trace` does, and keep the file and a plot."""
        path = ctx.workdir / "energy" / "trace.jls"
        path.parent.mkdir(parents=True, exist_ok=True)
        if write:
            write_jls(trace, path)
        try:
            report = analyze(trace, iterations=iterations, min_pulse_s=self.min_pulse_s)
        except TraceError as exc:
            raise MeterError(f"power trace: {exc}") from None
        png = plot_trace(trace, report, path.with_name("power.png"),
                         title=f"{ctx.title} · meter={self.meter.name}")
        tags = {"energy.sample_rate_hz": f"{trace.sample_rate:g}",
                "energy.iterations": str(iterations or trace.meta.get("iterations", ""))}
        if report.note:   # no usable stage pin: the MLPerf window energy only
            log.warning("meter=%s: %s", self.meter.name, report.note)
            tags["energy.scope"] = f"window only: {report.note}"
        return EnergyResult(report.metrics(), tags, {"energy/trace.jls": path, "energy/power.png": png})
