"""meter=joulescope: a live capture with a Joulescope JS220/JS110 (joulescope v1 API, docs/tool-facts.md).

Wiring: the Joulescope in series with the board's supply; GPI0 to the firmware's timestamp pin,
GPI1 to its stage pin (docs/protocol.md). One extra window per run, after the latency windows:
the capture starts, the device idles `idle MS%`, runs `infer N W%`, the capture stops; the samples
become a JLS v2 file and are analysed like any recorded trace. No device → one line, exit 2.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from unpu.meters.base import EnergyContext, EnergyResult, Meter, MeterError
from unpu.meters.trace import Trace

log = logging.getLogger(__name__)

FIELDS = ["current", "voltage", "current_lsb", "voltage_lsb"]
NO_DEVICE = ("meter=joulescope: no Joulescope found (joulescope.scan() saw no JS110/JS220 on USB); "
             "connect one, or use meter=simulated, or meter=trace meter.path=FILE.jls for a recording")


def parameter_plan(meter) -> list[tuple[str, Any]]:
    """Device parameters in the order they are set: the buffer before streaming settings, the
    GPI routing (v1: the current/voltage LSBs carry GPI0/GPI1) before any sample is taken."""
    return [("buffer_duration", float(meter.buffer_s)),
            ("sampling_frequency", int(meter.sample_rate_hz)),
            ("i_range", str(meter.i_range)),
            ("v_range", str(meter.v_range)),
            ("current_lsb", "gpi0"),
            ("voltage_lsb", "gpi1")]


def trace_from_samples(data: dict, sample_rate: float, meta: dict[str, Any]):
    """A Trace from the v1 `samples_get` dict (signals → {'value': array})."""
    signals = data["signals"]
    missing = [f for f in FIELDS if f not in signals]
    if missing:
        raise MeterError(f"meter=joulescope: the capture has no {', '.join(missing)}")
    current = np.asarray(signals["current"]["value"], dtype=np.float32)
    voltage = np.asarray(signals["voltage"]["value"], dtype=np.float32)
    finite = np.isfinite(current) & np.isfinite(voltage)
    if not finite.all():  # dropped USB samples arrive as NaN: fail rather than integrate around holes
        raise MeterError(f"meter=joulescope: {int((~finite).sum())} samples missing in the capture "
                         f"(USB drop-outs); rerun with a lower meter.sample_rate_hz")
    return Trace(current, voltage, np.asarray(signals["current_lsb"]["value"], dtype=np.uint8),
                 np.asarray(signals["voltage_lsb"]["value"], dtype=np.uint8), float(sample_rate), meta)


class JoulescopeMeter(Meter):
    source = "measured"

    def preflight(self) -> None:
        self._device()

    def _device(self):
        try:
            import joulescope
        except ImportError:
            raise MeterError("meter=joulescope needs the joulescope package (pip install joulescope==1.5.0)") from None
        devices = joulescope.scan(config="off")
        if not devices:
            raise MeterError(NO_DEVICE)
        if len(devices) > 1:
            raise MeterError(f"meter=joulescope: {len(devices)} Joulescopes found; unpu drives exactly one")
        return devices[0]

    def window(self) -> tuple[int, int]:
        bench = self.cfg.bench
        n = int(self.meter.iterations if self.meter.get("iterations") is not None else bench.iterations)
        w = int(self.meter.warmup if self.meter.get("warmup") is not None else bench.warmup)
        return n, w

    def measure(self, ctx: EnergyContext) -> EnergyResult:
        if ctx.client is None:
            raise MeterError("meter=joulescope measures a running device; this run has none (estimate mode)")
        device = self._device()
        n, w = self.window()
        with device:
            for name, value in parameter_plan(self.meter):
                device.parameter_set(name, value)
            data = self._capture(device, ctx.client, n, w)
        meta = {"iterations": n, "warmup": w, "source": "joulescope", "board": self.cfg.board.name,
                "device": str(device)}
        return self.finish(trace_from_samples(data, float(self.meter.sample_rate_hz), meta), ctx, iterations=n)

    def _capture(self, device, client, n: int, w: int) -> dict:
        settle_s = float(self.meter.settle_ms) * 1e-3
        device.start()
        try:
            time.sleep(settle_s)
            client.idle(int(self.meter.idle_ms))
            client.infer(n, w, timeout_s=float(self.cfg.bench.timeout_s))
            time.sleep(settle_s)
        finally:
            device.stop()
        start, end = device.stream_buffer.sample_id_range
        if end <= start:
            raise MeterError("meter=joulescope: the capture holds no samples")
        log.info("joulescope captured %d samples", end - start)
        return device.stream_buffer.samples_get(start, end, fields=FIELDS)
