"""Recorded-trace energy analysis (unpu.meters.trace): analytic captures, bounce, JLS files, CLI.

Every capture here is sampled from a continuous description (piecewise-linear power, pin events at
given times) and every expected number is that description's closed form, computed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from unpu.meters.trace import Trace, TraceError, analyze, pin_edges, read_jls, write_jls

REPO = Path(__file__).resolve().parent.parent
RATE = 1_000_000.0
V0 = 3.3
STAGE_NAMES = ("input", "inference", "output", "post")


@dataclass
class Seg:
    seconds: float
    p0: float                 # W at the start of the segment
    p1: float | None = None   # W at its end (linear in between); None: constant
    toggle: bool = False      # the stage pin toggles at the segment's start
    ts: bool = False          # the timestamp pin falls at the segment's start
    name: str = ""

    @property
    def energy(self) -> float:
        return (self.p0 + (self.p0 if self.p1 is None else self.p1)) / 2 * self.seconds


@dataclass
class Capture:
    segs: list[Seg]
    n: int
    w: int
    idle_w: float | None
    meta: dict = field(default_factory=dict)

    def stage_mean(self, name: str) -> tuple[float, float]:
        """Closed form: (mean energy J, mean duration s) of a stage over the timed inferences."""
        timed = [s for s in self.segs if s.name == f"timed:{name}"]
        assert len(timed) == self.n
        return sum(s.energy for s in timed) / self.n, sum(s.seconds for s in timed) / self.n

    def init(self) -> tuple[float, float]:
        (s,) = [s for s in self.segs if s.name == "init"]
        return s.energy, s.seconds

    def window(self) -> tuple[float, float]:
        """∫P and duration between the last two timestamp falls."""
        starts = np.cumsum([0.0] + [s.seconds for s in self.segs])
        falls = [i for i, s in enumerate(self.segs) if s.ts]
        a, b = falls[-2], falls[-1]
        return sum(s.energy for s in self.segs[a:b]), starts[b] - starts[a]


def ramp(stage: str, i: int) -> tuple[float, float | None]:
    """Power of a timed stage: steps between stages, ramps inside inference and post."""
    base = {"input": 0.020, "inference": 0.080, "output": 0.030, "post": 0.050}[stage]
    if stage == "inference":
        return base, base + 0.040 + 0.001 * (i % 3)
    if stage == "post":
        return base + 0.010, base
    return base, None


def capture(n: int = 20, w: int = 2, idle_s: float | None = 0.1, stage_us=(300, 2000, 200, 500),
            init_us: float = 5000, grid: bool = True, idle_w: float = 0.005) -> Capture:
    """`idle` then `infer N W` as the firmware drives its pins (docs/protocol.md)."""
    jitter = np.random.default_rng(7)

    def d(us: float) -> float:   # off the grid: durations that are not whole samples
        return us * 1e-6 if grid else (us + jitter.uniform(0.05, 0.95)) * 1e-6

    segs = [Seg(d(100), idle_w)]
    if idle_s is not None:
        segs += [Seg(d(5), idle_w, ts=True), Seg(idle_s, idle_w, name="idle"), Seg(d(5), idle_w, ts=True)]
    segs += [Seg(d(50), idle_w), Seg(init_us * 1e-6 if grid else d(init_us), 0.040, 0.060, toggle=True, name="init"),
             Seg(d(30), idle_w, toggle=True)]
    for kind, count in (("warm", w), ("timed", n)):
        if kind == "timed":
            segs += [Seg(d(20), idle_w), Seg(d(5), idle_w, ts=True)]
        for i in range(count):
            for stage, us in zip(STAGE_NAMES, stage_us):
                p0, p1 = ramp(stage, i)
                segs.append(Seg(d(us), p0, p1, toggle=True, name=f"{kind}:{stage}"))
    segs += [Seg(d(5), idle_w, ts=True), Seg(d(100), idle_w)]
    return Capture(segs, n, w, idle_w if idle_s is not None else None, {"iterations": n, "warmup": w})


def render(cap: Capture, noise: bool = True, seed: int = 1, drop: str | None = None) -> Trace:
    """Sample the capture at RATE; the grid is offset by half a sample so that whole-sample
    segments start and end between samples."""
    seconds = np.array([s.seconds for s in cap.segs])
    starts = np.concatenate(([0.0], np.cumsum(seconds))) - 0.5 / RATE
    t = np.arange(int(starts[-1] * RATE)) / RATE
    k = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(cap.segs) - 1)
    p0 = np.array([s.p0 for s in cap.segs])
    p1 = np.array([s.p0 if s.p1 is None else s.p1 for s in cap.segs])
    power = p0[k] + (p1[k] - p0[k]) * (t - starts[k]) / seconds[k]
    toggles = [starts[i] for i, s in enumerate(cap.segs) if s.toggle]
    falls = [starts[i] for i, s in enumerate(cap.segs) if s.ts]
    if drop == "toggle":        # a stage toggle inside the inference window
        del toggles[len(toggles) - 2 * cap.n]
    elif drop == "t_end":
        del falls[-1]
    elif drop == "t_start":
        del falls[-2]
    elif drop == "init":
        del toggles[:2]
    gpi1 = (np.searchsorted(np.array(toggles), t, side="right") % 2).astype(np.uint8)
    low = np.zeros(t.size, dtype=bool)
    for f in falls:   # low for 5 µs after each fall
        low |= (t >= f) & (t < f + 5e-6)
    rng = np.random.default_rng(seed)
    current, voltage = power / V0, np.full(t.size, V0)
    if noise:
        current = current + rng.normal(0, 0.01 * current.mean(), t.size)
        voltage = voltage + rng.normal(0, 0.005 * V0, t.size)
    return Trace(current, voltage, (~low).astype(np.uint8), gpi1, RATE, dict(cap.meta))


def expected(cap: Capture) -> dict[str, float]:
    """The closed forms, in the metric names and units of EnergyReport.metrics()."""
    out: dict[str, float] = {}
    e, s = cap.init()
    out["energy/init_uj"], out["trace/init_us"] = e * 1e6, s * 1e6
    for stage in STAGE_NAMES:
        e, s = cap.stage_mean(stage)
        out[f"energy/{stage}_uj"], out[f"trace/{stage}_us"] = e * 1e6, s * 1e6
    names = ("init",) + STAGE_NAMES
    out["energy/total_uj"] = sum(out[f"energy/{x}_uj"] for x in names)
    out["trace/total_us"] = sum(out[f"trace/{x}_us"] for x in names)
    e, s = cap.window()
    out["energy/window_uj"], out["trace/window_us"] = e / cap.n * 1e6, s / cap.n * 1e6
    out["power/active_mw"] = e / s * 1e3
    if cap.idle_w is not None:
        out["power/idle_mw"] = cap.idle_w * 1e3
        for x in names + ("total",):
            out[f"energy/{x}_net_uj"] = out[f"energy/{x}_uj"] - cap.idle_w * out[f"trace/{x}_us"]
    return out


def assert_close(got: dict[str, float], want: dict[str, float], rel: float) -> None:
    for key, value in want.items():
        # a net value is a small difference of two measured values: its error is the gross value's
        scale = abs(want[key.replace("_net", "")])
        assert got[key] == pytest.approx(value, rel=rel, abs=rel * scale), key


# ---- analytic captures --------------------------------------------------------------------------

def test_noiseless_grid_capture_hits_closed_forms_exactly():
    cap = capture()
    report = analyze(render(cap, noise=False))
    got = report.metrics()
    assert_close(got, expected(cap), rel=1e-6)
    def end_samples(s: Seg) -> tuple[float, float]:   # power at the first and last sample of a segment
        p1 = s.p0 if s.p1 is None else s.p1
        half = (p1 - s.p0) * 0.5 / (s.seconds * RATE)
        return s.p0 + half, p1 - half

    peak = max(max(end_samples(s)) for s in cap.segs if s.name.startswith("timed:"))
    assert got["power/peak_mw"] == pytest.approx(peak * 1e3, rel=1e-6)
    assert report.iterations == 20 and report.warmup == 2
    assert report.marks.stage_starts.shape == (20, 4)
    spans = report.spans()
    assert [name for name, *_ in spans[:3]] == ["idle", "init", "input"] and len(spans) == 2 + 4 * 20
    for stage in STAGE_NAMES:
        mean_s = np.mean([b - a for name, a, b in spans if name == stage])
        assert mean_s * 1e6 == pytest.approx(got[f"trace/{stage}_us"], rel=1e-9)


def test_metric_keys():
    got = analyze(render(capture(), noise=False)).metrics()
    stages = ("init", "input", "inference", "output", "post", "total")
    keys = ({f"energy/{s}_uj" for s in stages} | {f"energy/{s}_net_uj" for s in stages}
            | {f"trace/{s}_us" for s in stages}
            | {"energy/window_uj", "trace/window_us", "power/active_mw", "power/peak_mw", "power/idle_mw"})
    assert set(got) == keys
    no_idle = analyze(render(capture(idle_s=None), noise=False)).metrics()
    assert set(no_idle) == {k for k in keys if "_net_" not in k and k != "power/idle_mw"}


@pytest.mark.parametrize("seed", [1, 2])
def test_noisy_capture_within_0p1_percent(seed):
    cap = capture()
    assert_close(analyze(render(cap, seed=seed)).metrics(), expected(cap), rel=1e-3)


def test_constant_power_everywhere():
    cap = capture(n=10, w=1)
    for s in cap.segs:
        s.p0, s.p1 = 0.042, None
    cap.idle_w = 0.042
    got = analyze(render(cap, seed=3)).metrics()
    assert_close(got, expected(cap), rel=1e-3)
    assert got["power/active_mw"] == pytest.approx(42.0, rel=1e-3)
    assert got["energy/inference_net_uj"] == pytest.approx(0.0, abs=0.1)   # idle is at the same power


def test_off_grid_edges_within_0p1_percent():
    """Edges between arbitrary sample phases: each is placed to within half a sample."""
    cap = capture(n=40, stage_us=(1500, 3000, 1000, 1200), grid=False)
    assert_close(analyze(render(cap, seed=4)).metrics(), expected(cap), rel=1e-3)


def test_no_idle_window_no_net_values():
    cap = capture(idle_s=None)
    report = analyze(render(cap, noise=False))
    assert report.idle_mw is None and report.net_uj is None and report.marks.idle is None
    assert_close(report.metrics(), expected(cap), rel=1e-6)


# ---- pins: bounce and missing edges -------------------------------------------------------------

def test_pin_edges_debounce():
    pin = np.array([1, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1], dtype=np.uint8)
    idx, level = pin_edges(pin, 2)
    assert idx.tolist() == [7, 13] and level.tolist() == [0, 1]   # glitch at 3 dropped; bounce after 7 ignored
    idx, level = pin_edges(pin, 1)
    assert idx.tolist() == [3, 4, 7, 8, 9, 13]


def test_bounce_and_glitches_are_ignored():
    cap = capture()
    clean = render(cap)
    bouncy = render(cap)
    rng = np.random.default_rng(5)
    for pin in (bouncy.gpi0, bouncy.gpi1):
        edges = np.flatnonzero(np.diff(pin)) + 1
        pin[edges + 1] ^= 1                       # bounce: one sample back at the old level after each edge
        glitch = rng.choice(np.arange(10, pin.size - 10), 40, replace=False)
        glitch = glitch[np.abs(glitch[:, None] - edges[None, :]).min(axis=1) > 5]
        pin[glitch] ^= 1                          # 1-µs glitches, shorter than a 2-µs min_pulse
    assert analyze(bouncy, min_pulse_s=2e-6).metrics() == analyze(clean, min_pulse_s=2e-6).metrics()
    with pytest.raises(TraceError):               # with no debounce the glitches count
        analyze(bouncy, min_pulse_s=0)


def test_missing_stage_toggle():
    with pytest.raises(TraceError, match=r"expected 4·N = 80 stage toggles on gpi1 \(stage pin\).*found 79"):
        analyze(render(capture(), drop="toggle"))


def test_missing_timestamp_edge_with_idle():
    with pytest.raises(TraceError, match="3 falling edges.*one is missing"):
        analyze(render(capture(), drop="t_end"))


def test_missing_timestamp_edge_without_idle():
    with pytest.raises(TraceError, match=r"^need 2 falling edges on gpi0 \(timestamp pin\), found 1$"):
        analyze(render(capture(idle_s=None), drop="t_start"))


def test_missing_init_toggles():
    with pytest.raises(TraceError, match=r"expected 2 \+ 4·W = 10 stage toggles.*found 8"):
        analyze(render(capture(), drop="init"))
    trace = render(capture(w=0), drop="init")
    with pytest.raises(TraceError, match="^no init toggles: .*found 0$"):
        analyze(trace)


def test_wrong_iterations_and_missing_signals():
    trace = render(capture(), noise=False)
    with pytest.raises(TraceError, match="found 80 = 4·20: wrong iterations"):
        analyze(trace, iterations=10)
    del trace.meta["iterations"]
    with pytest.raises(TraceError, match="pass iterations"):
        analyze(trace)
    assert analyze(trace, iterations=20).iterations == 20
    for attr, what in (("voltage", "voltage"), ("gpi0", "gpi0")):
        broken = render(capture(), noise=False)
        setattr(broken, attr, None)
        with pytest.raises(TraceError, match=f"no {what}"):
            analyze(broken)
    trace.gpi1 = None   # no stage pin: the MLPerf window alone (below), not an error
    assert analyze(trace, iterations=20).note.startswith("per-stage energy needs the stage pin")


def test_nan_samples_are_an_error():
    trace = render(capture(), noise=False)
    trace.current[len(trace) // 2] = np.nan
    with pytest.raises(TraceError, match="NaN"):
        analyze(trace)


def record_as_driver(path: Path, signals: str, data: dict[str, np.ndarray], length: int,
                     skew: dict[str, int] | None = None, first: int = 0, notes: str | None = None) -> None:
    """Write `data` (topic → samples) with pyjoulescope_driver's own recorder, fed in blocks as the
    driver feeds it; `skew` starts a topic that many samples later, `first` is the first sample id."""
    from pyjls import time64
    from pyjoulescope_driver.record import Record

    class Driver:   # the recorder only subscribes/publishes; the samples are pushed below
        def subscribe(self, *args, **kwargs): pass
        def unsubscribe(self, *args, **kwargs): pass
        def publish(self, *args, **kwargs): pass

    skew = skew or {}
    record = Record(Driver(), "u/js220/000415", signals=signals)
    record.open(str(path), user_data=[(0, notes)] if notes else None)
    block, utc0 = 8192, time64.now()
    for b0 in range(0, length - max(skew.values(), default=0), block):
        for topic, x in data.items():
            start = b0 + skew.get(topic, 0)
            chunk = x[start:start + block]
            if topic.startswith("gpi"):
                chunk = np.packbits(chunk, bitorder="little")
            record._on_data(f"u/js220/000415/s/{topic}/!data", {
                "decimate_factor": 1, "sample_id": first + start, "sample_rate": int(RATE),
                "utc": utc0 + (first + start) * time64.SECOND // int(RATE), "data": chunk})
    record.close()


# ---- MLPerf Tiny style: the timestamp pin alone --------------------------------------------------

def window_integral_uj(back: Trace, n: int) -> float:
    """MLPerf Tiny's figure, computed here from the samples: Σ V·I over the samples from the
    second-last to the last falling edge of the timestamp pin (found here, not by unpu), ÷ rate ÷ N."""
    gpi0 = back.gpi0.astype(np.int8)
    falls = np.flatnonzero(np.diff(gpi0) == -1) + 1          # first sample at 0 after a 1
    a, b = falls[-2], falls[-1]
    power = back.current[a:b].astype(np.float64) * back.voltage[a:b].astype(np.float64)
    return float(power.sum()) / back.sample_rate / n * 1e6


@pytest.mark.parametrize("idle_s", [0.1, None])
def test_stage_pin_that_never_toggles_gives_the_mlperf_window(tmp_path, idle_s):
    """A capture recorded with the stage pin wired but idle (constant high), written as JLS by
    pyjls: the window energy ÷ N equals the sample integral between the timestamp edges."""
    cap = capture(n=20, w=2, idle_s=idle_s)
    trace = render(cap, seed=6)
    trace.gpi1 = np.ones(len(trace), dtype=np.uint8)
    back = read_jls(write_jls(trace, tmp_path / "mlperf.jls"))
    report = analyze(back)
    assert report.window_uj == pytest.approx(window_integral_uj(back, 20), rel=1e-9)
    e, s = cap.window()
    assert report.window_uj == pytest.approx(e / 20 * 1e6, rel=1e-3)   # and the closed form
    assert report.window_us == pytest.approx(s / 20 * 1e6, abs=1 / 20)  # within a sample over N
    assert report.energy_uj == {} and report.duration_us == {} and report.warmup is None
    assert report.note == ('per-stage energy needs the stage pin toggling at each stage (docs/protocol.md, "Pins"): '
                           "gpi1 (stage pin) never toggles in this capture, so only the MLPerf window energy is given")
    keys = {"energy/window_uj", "trace/window_us", "power/active_mw", "power/peak_mw"}
    assert set(report.metrics()) == keys | ({"power/idle_mw"} if idle_s else set())
    assert [name for name, *_ in report.spans()] == (["idle"] if idle_s else []) + ["window"]


def test_driver_recording_without_the_stage_pin(tmp_path):
    """pyjoulescope_driver's recorder with current, voltage and gpi[0] only, as an MLPerf Tiny
    energy setup wires one pin: the file has no gpi[1] and gives the window energy."""
    cap = capture(n=8, w=1, idle_s=None)
    trace = render(cap, seed=8)
    data = {"i": trace.current, "v": trace.voltage, "gpi/0": trace.gpi0}
    record_as_driver(tmp_path / "mlperf_drv.jls", "current,voltage,gpi[0]", data, len(trace))
    back = read_jls(tmp_path / "mlperf_drv.jls")
    assert back.gpi1 is None and back.gpi0 is not None
    report = analyze(back, iterations=8)
    assert report.window_uj == pytest.approx(window_integral_uj(back, 8), rel=1e-9)
    assert report.window_uj == pytest.approx(cap.window()[0] / 8 * 1e6, rel=1e-3)
    assert "the capture has no gpi1 (stage pin) signal" in report.note


def test_a_stage_pin_that_toggles_must_follow_the_contract():
    """Only a silent stage pin means 'no stage pin': one that toggles a few times is refused."""
    trace = render(capture(), noise=False)
    trace.gpi1 = np.ones(len(trace), dtype=np.uint8)
    trace.gpi1[len(trace) // 2:] = 0
    with pytest.raises(TraceError, match="expected 4·N = 80 stage toggles"):
        analyze(trace)


def test_recorded_meter_tags_a_window_only_capture(tmp_path):
    from helpers import compose
    from unpu.meters.base import EnergyContext
    from unpu.meters.recorded import RecordedTraceMeter

    trace = render(capture(n=10, w=1), seed=9)
    trace.gpi1 = None
    path = write_jls(trace, tmp_path / "mlperf.jls")
    cfg = compose(["meter=trace", f"meter.path={path}"], tmp_path)
    meter = RecordedTraceMeter(cfg)
    meter.preflight()
    result = meter.measure(EnergyContext(None, {}, tmp_path / "run", "native · resnet8 · int8"))
    assert result.metrics == analyze(read_jls(path)).metrics()
    assert "energy/inference_uj" not in result.metrics
    assert result.tags["energy.scope"].startswith("window only: per-stage energy needs the stage pin")
    assert (tmp_path / "run" / "energy" / "power.png").stat().st_size > 0


# ---- JLS files ----------------------------------------------------------------------------------

def test_jls_round_trip(tmp_path):
    import pyjls

    trace = render(capture())
    trace.current, trace.voltage = trace.current[:-3], trace.voltage[:-3]   # not a multiple of 8 samples
    trace.gpi0, trace.gpi1 = trace.gpi0[:-3], trace.gpi1[:-3]
    trace.meta.update({"board": "native", "model": "resnet8", "source": "simulated", "nested": {"a": [1, 2]},
                       "iterations": np.int64(20)})
    trace.start_utc = 1_790_000_000.25
    path = write_jls(trace, tmp_path / "t.jls")
    back = read_jls(path)
    for attr in ("current", "voltage", "gpi0", "gpi1"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(trace, attr))
        assert getattr(back, attr).dtype == getattr(trace, attr).dtype
    assert back.meta == trace.meta and back.sample_rate == trace.sample_rate
    assert back.start_utc == pytest.approx(trace.start_utc, abs=1e-6)
    assert analyze(back).metrics() == analyze(trace).metrics()
    with pyjls.Reader(str(path)) as r:
        names = {s.name: s for s in r.signals.values() if s.signal_type == pyjls.SignalType.FSR}
        assert set(names) == {"current", "voltage", "gpi[0]", "gpi[1]"}
        assert names["current"].units == "A" and names["voltage"].units == "V"
        assert names["gpi[0]"].data_type == pyjls.DataType.U1
        assert {s.sample_rate for s in names.values()} == {int(RATE)}
        assert r.sources[1].model == "UNPU" and r.sources[1].serial_number == "simulated"


def test_jls_keeps_a_fractional_sample_rate(tmp_path):
    trace = render(capture(n=4, w=0, idle_s=None), noise=False)
    trace.sample_rate = 333_333.3
    back = read_jls(write_jls(trace, tmp_path / "f.jls"))
    assert back.sample_rate == 333_333.3


def test_reads_pyjoulescope_driver_recording(tmp_path):
    """A file written by pyjoulescope_driver's own recorder (fed as the driver feeds it), whose
    signals start at different sample ids and which carries a power signal."""
    trace = render(capture(n=5, w=1, idle_s=0.002))
    data = {"i": trace.current, "v": trace.voltage, "p": trace.current * trace.voltage,
            "gpi/0": trace.gpi0, "gpi/1": trace.gpi1}
    record_as_driver(tmp_path / "drv.jls", "current,voltage,power,gpi[0],gpi[1]", data, len(trace),
                     skew={"i": 0, "v": 3, "p": 0, "gpi/0": 8, "gpi/1": 16}, first=5_000_000, notes="bench capture")
    back = read_jls(tmp_path / "drv.jls")
    assert back.meta == {"source": "jls", "device": "JS220-000415", "notes": "bench capture"}
    m = len(back)
    for attr in ("current", "voltage", "gpi0", "gpi1"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(trace, attr)[16:16 + m])
    assert analyze(back, iterations=5).metrics() == pytest.approx(analyze(trace).metrics(), rel=1e-9)


def test_read_errors(tmp_path):
    bad = tmp_path / "bad.jls"
    bad.write_bytes(b"not a jls file at all")
    with pytest.raises(TraceError, match="not a JLS v2 file"):
        read_jls(bad)
    with pytest.raises(TraceError, match="No such file"):
        read_jls(tmp_path / "missing.jls")
    only_current = Trace(np.ones(64, np.float32), None, None, None, RATE, {"iterations": 1})
    back = read_jls(write_jls(only_current, tmp_path / "i.jls"))
    assert back.voltage is None and back.gpi0 is None
    with pytest.raises(TraceError, match="no voltage"):
        analyze(back)


# ---- command line -------------------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "unpu.meters.trace", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_json_table_and_iterations(tmp_path):
    trace = render(capture())
    path = write_jls(trace, tmp_path / "c.jls")
    done = cli(str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == analyze(trace).metrics()
    done = cli(str(path), "--iterations", "10")
    assert done.returncode == 2 and "wrong iterations" in done.stderr
    del trace.meta["iterations"]
    path = write_jls(trace, tmp_path / "d.jls")
    done = cli(str(path), "--json", "--iterations", "20", "--min-pulse-us", "3")
    assert json.loads(done.stdout) == analyze(trace, iterations=20, min_pulse_s=3e-6).metrics()
    done = cli(str(path), "--iterations", "20")
    assert done.returncode == 0 and "inference" in done.stdout and "net µJ" in done.stdout


def test_cli_window_only_capture(tmp_path):
    trace = render(capture(n=20, w=2))
    trace.gpi1 = np.zeros(len(trace), dtype=np.uint8)
    path = write_jls(trace, tmp_path / "w.jls")
    done = cli(str(path))
    assert done.returncode == 0, done.stderr
    assert "window (MLPerf, last two timestamp edges)" in done.stdout and "net µJ" not in done.stdout
    lines = [ln for ln in done.stdout.splitlines() if "per-stage energy needs the stage pin" in ln]
    assert len(lines) == 1 and "never toggles" in lines[0]
    done = cli(str(path), "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == analyze(trace).metrics()
    assert len(done.stderr.strip().splitlines()) == 1 and "per-stage energy needs the stage pin" in done.stderr


@pytest.mark.parametrize("content", [b"garbage", b"jlsfmt\r\n" + bytes(200)])
def test_cli_corrupt_file(tmp_path, content):
    path = tmp_path / "corrupt.jls"
    path.write_bytes(content)
    done = cli(str(path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("trace: ")
    assert done.stdout == ""
