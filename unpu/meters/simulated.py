"""meter=simulated: the power trace a Joulescope would record, synthesized from the stage timings
the device just reported and the board's power model (board.power), then analysed by the very
code that analyses real captures. For CI and demos; every number it yields is `simulated`.

The synthetic capture follows the pin contract of docs/protocol.md: an idle window between two
timestamp pulses, then init between two stage-pin toggles, W warm-ups and N timed inferences with
a toggle at the start of every stage, and timestamp pulses before and after the N inferences.
A stage shorter than the trace can resolve (two samples) is drawn that wide at proportionally
lower power, so its gross energy is kept; its net energy (idle x drawn width subtracted) is then
low, and the stage is named in the tag `energy.widened_stages`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from unpu.meters.base import STAGES, EnergyContext, EnergyResult, Meter, MeterError
from unpu.meters.trace import Trace

log = logging.getLogger(__name__)

GAP_S = 20e-6          # host/UART time between commands and stages, at idle power
EDGE_SAMPLES = 2       # the narrowest pulse or stage the synthetic trace renders


@dataclass
class PowerModel:
    supply_v: float
    idle_mw: float
    active_mw: dict[str, float]
    noise_mw: float

    @classmethod
    def from_board(cls, board) -> "PowerModel":
        power = board.get("power") or {}
        missing = [k for k in ("supply_v", "idle_mw", "active_mw") if power.get(k) is None]
        if missing:
            raise MeterError(f"meter=simulated needs board.power.{', board.power.'.join(missing)} for "
                             f"{board.name} (conf/board/{board.name}.yaml has none)")
        active = power.active_mw
        if isinstance(active, (int, float)):
            stages = {s: float(active) for s in STAGES}
        else:
            gaps = [s for s in STAGES if active.get(s) is None]
            if gaps:
                raise MeterError(f"board.power.active_mw of {board.name} has no figure for {', '.join(gaps)}")
            stages = {s: float(active[s]) for s in STAGES}
        return cls(float(power.supply_v), float(power.idle_mw), stages, float(power.get("noise_mw") or 0.0))


@dataclass
class Segment:
    seconds: float
    power_mw: float
    pin: str = ""      # "ts": a timestamp pulse (gpi0 low); "toggle": the stage pin toggles at its start
    name: str = ""


class SimulatedMeter(Meter):
    source = "simulated"

    def preflight(self) -> None:
        PowerModel.from_board(self.cfg.board)

    def measure(self, ctx: EnergyContext) -> EnergyResult:
        model = PowerModel.from_board(self.cfg.board)
        stage_s = {s: max(float(ctx.metrics.get(f"latency/{s}_us", 0.0)), 0.0) * 1e-6 for s in STAGES}
        if ctx.client is None:  # an estimate-only board: the power model times the estimate, no trace
            return self._estimate_only(model, stage_s)
        n, w = int(self.meter.iterations), int(self.meter.warmup)
        segments = window_segments(model, stage_s, n, w, float(self.meter.idle_ms) * 1e-3)
        rate = self._rate(segments)
        trace, widened = render(segments, rate, model, int(self.meter.seed),
                                min_width_s=max(EDGE_SAMPLES / rate, 2 * self.min_pulse_s))
        trace.meta.update({"iterations": n, "warmup": w, "source": "simulated", "board": self.cfg.board.name,
                           "power_model": {"supply_v": model.supply_v, "idle_mw": model.idle_mw,
                                           "active_mw": model.active_mw, "noise_mw": model.noise_mw},
                           "widened_stages": widened})
        result = self.finish(trace, ctx, iterations=n)
        result.tags["energy.widened_stages"] = ",".join(widened) or "none"
        result.tags["energy.method"] = "simulated trace: board power model x reported stage times"
        return result

    def _rate(self, segments: list[Segment]) -> float:
        total_s = sum(s.seconds for s in segments)
        rate = float(self.meter.sample_rate_hz)
        cap = int(self.meter.max_samples)
        if total_s * rate > cap:
            log.info("simulated trace of %.2f s rendered at %.0f S/s (meter.max_samples=%d)", total_s, cap / total_s, cap)
            rate = cap / total_s
        return rate

    def _estimate_only(self, model: PowerModel, stage_s: dict[str, float]) -> EnergyResult:
        seconds = stage_s["inference"]
        if not seconds:
            raise MeterError("meter=simulated: the run has no inference time to model")
        energy_uj = model.active_mw["inference"] * seconds * 1e3
        net_uj = (model.active_mw["inference"] - model.idle_mw) * seconds * 1e3
        return EnergyResult({"energy/inference_uj": energy_uj, "energy/inference_net_uj": net_uj,
                             "power/active_mw": model.active_mw["inference"], "power/idle_mw": model.idle_mw},
                            {"energy.method": "board power model x estimated inference latency (no trace)"})


def window_segments(model: PowerModel, stage_s: dict[str, float], n: int, w: int, idle_s: float) -> list[Segment]:
    """The capture of `idle MS%` then `infer N W%`, as the firmware drives its pins."""
    idle = model.idle_mw
    segs = [Segment(GAP_S * 5, idle), Segment(1e-6, idle, "ts"), Segment(idle_s, idle, name="idle"),
            Segment(1e-6, idle, "ts"), Segment(GAP_S, idle),
            Segment(stage_s["init"], model.active_mw["init"], "toggle", "init"), Segment(GAP_S, idle, "toggle")]
    inference = [Segment(stage_s[s], model.active_mw[s], "toggle", s) for s in STAGES[1:]]
    segs += inference * w
    segs += [Segment(1e-6, idle, "ts")] + inference * n + [Segment(1e-6, idle, "ts"), Segment(GAP_S * 5, idle)]
    return segs


def render(segments: list[Segment], rate: float, model: PowerModel, seed: int,
           min_width_s: float) -> tuple["object", list[str]]:
    """Sample the segments at `rate`: power, current = P/V with seeded noise, and the two pins."""
    widened = sorted({s.name for s in segments if s.name in STAGES and s.seconds < min_width_s})
    seconds = np.array([max(s.seconds, min_width_s) for s in segments])
    counts = np.maximum(np.round(seconds * rate).astype(np.int64), 1)
    true_s = np.array([s.seconds for s in segments])
    is_stage = np.array([s.name in STAGES for s in segments])
    # energy-preserving: a stage drawn wider (or rounded to whole samples) keeps P x its true time
    scale = np.where(is_stage, true_s * rate / counts, 1.0)
    power_w = np.repeat(np.array([s.power_mw for s in segments]) * 1e-3 * scale, counts)
    rng = np.random.default_rng(seed)
    current = power_w / model.supply_v
    if model.noise_mw:
        current = current + rng.normal(0.0, model.noise_mw * 1e-3 / model.supply_v, current.size)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    gpi0 = np.ones(current.size, dtype=np.uint8)
    for start, count, seg in zip(starts, counts, segments):
        if seg.pin == "ts":
            gpi0[start:start + count] = 0
    toggles = np.zeros(current.size, dtype=np.uint8)
    toggles[[start for start, seg in zip(starts, segments) if seg.pin == "toggle"]] = 1
    gpi1 = (np.cumsum(toggles) % 2).astype(np.uint8)
    voltage = np.full(current.size, model.supply_v, dtype=np.float32)
    return Trace(current.astype(np.float32), voltage, gpi0, gpi1, rate, {}), widened
