"""meter=trace: energy from a recorded JLS file instead of a live capture.

The run measures latency on its board as usual; energy comes from the analysis of `meter.path`
(a capture of the same board and model: unpu's own, or pyjoulescope_driver's recorder with GPI0/
GPI1 on the firmware's pins). The inference count comes from `meter.iterations`, else from the
file's metadata (unpu's captures store it). `source.energy` is `measured`, or `simulated` when the
file says a simulation made it. A capture in the MLPerf Tiny style, with the timestamp pin alone,
gives the MLPerf window energy only; the tag `energy.scope` then says that per-stage energy needs
the stage pin.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import OmegaConf

from unpu.meters.base import EnergyContext, EnergyResult, Meter, MeterError
from unpu.meters.trace import TraceError, read_jls


class RecordedTraceMeter(Meter):
    source = "measured"

    @property
    def path(self) -> Path:
        if OmegaConf.is_missing(self.meter, "path") or not self.meter.path:
            raise MeterError("meter=trace needs meter.path=FILE.jls (a recorded Joulescope trace)")
        return Path(str(self.meter.path))

    def preflight(self) -> None:
        if not self.path.is_file():
            raise MeterError(f"meter=trace: no such file {self.path}")
        try:
            self._trace = read_jls(self.path)
        except (TraceError, OSError, RuntimeError) as exc:
            raise MeterError(f"meter=trace: {self.path} is not a readable JLS trace: {exc}") from None
        if self._trace.meta.get("source") == "simulated":
            self.source = "simulated"

    def measure(self, ctx: EnergyContext) -> EnergyResult:
        if not hasattr(self, "_trace"):
            self.preflight()
        iterations = self.meter.get("iterations")
        result = self.finish(self._trace, ctx, iterations=int(iterations) if iterations else None, write=False)
        copy = ctx.workdir / "energy" / "trace.jls"
        shutil.copyfile(self.path, copy)
        result.artifacts["energy/trace.jls"] = copy
        result.tags["energy.trace_file"] = str(self.path)
        return result
