"""Energy per stage from a power trace with the firmware's two pins (docs/protocol.md, "Pins").

    python -m unpu.meters.trace FILE.jls [--iterations N] [--min-pulse-us X] [--json]

The pin contract: gpi0 (timestamp pin) is high and falls at each `m-lap-us` point, twice per
`infer N W` window (t_start, t_end) and twice per `idle MS` window. gpi1 (stage pin) toggles at the
start and the end of init and at the start of every stage of every inference (W warm-ups, then N
timed ones), so [t_start, t_end) holds exactly 4·N toggles. A capture holds an optional idle window
(the first two timestamp edges when there are four or more) and one infer window (the last two).

A capture in the MLPerf Tiny style has only the timestamp pin (no gpi1, or a gpi1 that never
toggles): it gives the MLPerf figure alone, the energy between the last two timestamp edges ÷ N, and
says that per-stage energy needs the stage pin. A stage pin that toggles must follow the contract.

Integration rule: exact sample sums. Sample i stands for the interval [i - ½, i + ½) sample
periods, and an edge first seen at sample i is placed at i - ½, so the stage windows tile the
capture without gap or overlap, a stage's energy is Σ V·I over its samples ÷ rate and its
duration is its sample count ÷ rate. This is the midpoint rule: exact for power that is constant or
linear within a stage.

Debounce: a run of a pin level shorter than `min_pulse_s` is a glitch and is dropped; a real edge
is placed at the end of the last stable (long enough) run before it, so bounce that follows an
edge does not move it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from rich.console import Console
from rich.table import Table

from unpu import __version__

log = logging.getLogger(__name__)

STAGES = ("init", "input", "inference", "output", "post")
# Pin runs shorter than this are bounce. The firmware's timestamp pulse is >= 1 us, which at a
# Joulescope's 1 MS/s can be a single sample: the default must keep one-sample pulses.
DEFAULT_MIN_PULSE_S = 0.5e-6
PER_INFERENCE = STAGES[1:]
TIMESTAMP_PIN = "gpi0 (timestamp pin)"
STAGE_PIN = "gpi1 (stage pin)"

# JLS layout (the same as pyjoulescope_driver's recorder with signals current,voltage,gpi[0],gpi[1]).
JLS_SOURCE_ID = 1
JLS_SIGNALS = (  # (signal_id, name, Trace attribute, data type, units)
    (1, "current", "current", "f32", "A"),
    (2, "voltage", "voltage", "f32", "V"),
    (3, "gpi[0]", "gpi0", "u1", ""),
    (4, "gpi[1]", "gpi1", "u1", ""),
)
JLS_META_CHUNK = 0x0A5       # user-data chunk_meta of unpu's JSON envelope (12 bits; 0 = UI notes)
JLS_NOTES_CHUNK = 0
JLS_BLOCK = 1 << 20          # samples per write/read call (a multiple of 8 for the packed u1 pins)
JLS_UTC_INTERVAL_S = 60      # a sample_id → UTC entry every minute, as the recorder writes them
_JLS_MAGIC = b"jlsfmt\r\n"
_CHUNK = 1 << 16             # samples per step of the power integration (fits in cache)


class TraceError(ValueError):
    """The trace cannot be analysed; the message is one line for the user."""


@dataclass
class Trace:
    """A capture: current (A) and voltage (V) as float32, the two pins as uint8 0/1.

    A signal the file does not hold is None; `analyze` says which one it needs.
    """
    current: np.ndarray | None
    voltage: np.ndarray | None
    gpi0: np.ndarray | None
    gpi1: np.ndarray | None
    sample_rate: float
    meta: dict = field(default_factory=dict)
    start_utc: float | None = None    # POSIX time of sample 0, when known

    def __post_init__(self) -> None:
        for name, dtype in (("current", np.float32), ("voltage", np.float32), ("gpi0", np.uint8), ("gpi1", np.uint8)):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value, dtype=dtype).reshape(-1))
        lengths = {name: len(getattr(self, name)) for name in ("current", "voltage", "gpi0", "gpi1")
                   if getattr(self, name) is not None}
        if len(set(lengths.values())) > 1:
            raise TraceError(f"trace signals differ in length: {lengths}")
        if not self.sample_rate > 0:
            raise TraceError(f"trace sample rate must be > 0, got {self.sample_rate}")
        self.sample_rate = float(self.sample_rate)

    def __len__(self) -> int:
        for name in ("current", "voltage", "gpi0", "gpi1"):
            if getattr(self, name) is not None:
                return len(getattr(self, name))
        return 0


@dataclass
class Marks:
    """Where the analysis cut the capture, as sample indices (an edge at i lies at i - ½)."""
    window: tuple[int, int]                # t_start, t_end: the last two timestamp edges
    init: tuple[int, int] | None           # None (and no stage_starts): a capture without the stage pin
    idle: tuple[int, int] | None
    stage_starts: np.ndarray | None        # (N, 4): input, inference, output, post of each timed inference


@dataclass
class EnergyReport:
    iterations: int
    warmup: int | None                     # warm-ups seen on the stage pin (None without it)
    sample_rate: float
    energy_uj: dict[str, float]            # gross; init once, the others the mean per timed inference; + total
    duration_us: dict[str, float]          # same rows, from the stage pin; both empty without it
    window_uj: float                       # MLPerf: ∫P between the last two timestamp edges ÷ N
    window_us: float                       # that window's duration ÷ N
    active_mw: float                       # mean power over the inference window
    peak_mw: float                         # highest sample of V·I inside the inference window
    idle_mw: float | None
    marks: Marks
    note: str | None = None                # why there is no per-stage energy (the stage pin), else None

    @property
    def net_uj(self) -> dict[str, float] | None:
        """Gross minus idle power × the stage's duration (µJ), when the capture has an idle window."""
        if self.idle_mw is None:
            return None
        return {s: e - self.idle_mw * self.duration_us[s] * 1e-3 for s, e in self.energy_uj.items()}

    def spans(self) -> list[tuple[str, float, float]]:
        """(name, start s, end s) of the idle window, init and every timed stage, for plots."""
        def t(index: int) -> float:
            return (index - 0.5) / self.sample_rate

        m = self.marks
        out = [("idle", t(m.idle[0]), t(m.idle[1]))] if m.idle else []
        if m.stage_starts is None:
            return out + [("window", t(m.window[0]), t(m.window[1]))]
        out.append(("init", t(m.init[0]), t(m.init[1])))
        starts = m.stage_starts.reshape(-1)
        ends = np.append(starts[1:], m.window[1])
        names = PER_INFERENCE * m.stage_starts.shape[0]
        out += [(name, t(a), t(b)) for name, a, b in zip(names, starts.tolist(), ends.tolist())]
        return out

    def metrics(self) -> dict[str, float]:
        m = {f"energy/{s}_uj": e for s, e in self.energy_uj.items()}
        m["energy/window_uj"] = self.window_uj
        m["power/active_mw"] = self.active_mw
        m["power/peak_mw"] = self.peak_mw
        m.update({f"trace/{s}_us": d for s, d in self.duration_us.items()})
        m["trace/window_us"] = self.window_us
        if self.idle_mw is not None:
            m["power/idle_mw"] = self.idle_mw
            m.update({f"energy/{s}_net_uj": e for s, e in self.net_uj.items()})
        return {k: float(v) for k, v in m.items()}


# ---- analysis -----------------------------------------------------------------------------------

def min_samples(min_pulse_s: float, sample_rate: float) -> int:
    """Runs of fewer samples than this are glitches (their duration is < min_pulse_s)."""
    return max(1, math.ceil(min_pulse_s * sample_rate - 1e-9))


def pin_edges(pin: np.ndarray, min_run: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Debounced edges of a 0/1 pin: (sample index of each edge, the level after it).

    Runs shorter than `min_run` samples are dropped; an edge between two stable runs of different
    levels is placed at the end of the earlier one.
    """
    pin = np.asarray(pin)
    change = np.flatnonzero(pin[1:] != pin[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [pin.size]))
    stable = np.flatnonzero(ends - starts >= min_run)
    levels = (pin[starts[stable]] != 0).astype(np.uint8)
    flips = np.flatnonzero(levels[1:] != levels[:-1])
    return ends[stable[flips]].astype(np.int64), levels[flips + 1]


def analyze(trace: Trace, iterations: int | None = None, min_pulse_s: float = DEFAULT_MIN_PULSE_S) -> EnergyReport:
    """Energy per stage of the capture's infer window, or only its MLPerf window energy when the
    capture has no stage pin (see the module docstring for the rules)."""
    n = _iterations(trace, iterations)
    current = _need(trace.current, "current (A)")
    voltage = _need(trace.voltage, "voltage (V)")
    run = min_samples(min_pulse_s, trace.sample_rate)
    falls = _timestamp_falls(trace, run)
    toggles = pin_edges(trace.gpi1, run)[0] if trace.gpi1 is not None else None
    note = _stage_pin_note(toggles)
    if note:
        marks, warmup = Marks(_window(falls), None, _idle(falls), None), None
    else:
        marks, warmup = _marks(trace, n, min_pulse_s, falls, toggles)
    t_start, t_end = marks.window
    # In time order: [idle start, idle end,] [init start, init end,] t_start, [4·N stage starts,] t_end.
    starts = marks.stage_starts.reshape(-1) if marks.stage_starts is not None else ()
    bounds = np.concatenate([np.asarray(x, dtype=np.int64) for x in
                             (marks.idle or (), marks.init or (), [t_start], starts, [t_end])])
    sums, peak_w = _prefix_power(current, voltage, bounds, marks.window)
    seg_uj = np.diff(sums) / trace.sample_rate * 1e6
    seg_us = np.diff(bounds) / trace.sample_rate * 1e6
    k = 2 if marks.idle else 0
    window_uj = float(sums[-1] - sums[k + (0 if note else 2)]) / trace.sample_rate * 1e6
    window_us = (t_end - t_start) / trace.sample_rate * 1e6
    energy, duration = ({}, {}) if note else (_stage_rows(seg_uj, k, n), _stage_rows(seg_us, k, n))
    return EnergyReport(iterations=n, warmup=warmup, sample_rate=trace.sample_rate, energy_uj=energy,
                        duration_us=duration, window_uj=window_uj / n, window_us=window_us / n,
                        active_mw=window_uj / window_us * 1e3, peak_mw=peak_w * 1e3,
                        idle_mw=float(seg_uj[0] / seg_us[0] * 1e3) if marks.idle else None, marks=marks,
                        note=note)


def stage_pin_note(trace: Trace, min_pulse_s: float = DEFAULT_MIN_PULSE_S) -> str | None:
    """One line saying that per-stage energy needs the stage pin, for a capture that has none (no
    gpi1 signal, or a gpi1 that never toggles); None when the stage pin is there."""
    run = min_samples(min_pulse_s, trace.sample_rate)
    return _stage_pin_note(pin_edges(trace.gpi1, run)[0] if trace.gpi1 is not None else None)


def _stage_pin_note(toggles: np.ndarray | None) -> str | None:
    if toggles is None:
        where = f"the capture has no {STAGE_PIN} signal"
    elif toggles.size == 0:
        where = f"{STAGE_PIN} never toggles in this capture"
    else:
        return None
    return (f"per-stage energy needs the stage pin toggling at each stage (docs/protocol.md, \"Pins\"): "
            f"{where}, so only the MLPerf window energy is given")


def _stage_rows(per_segment: np.ndarray, k: int, n: int) -> dict[str, float]:
    """init (the segment after the idle window's k bounds) and the mean of each timed stage, + total."""
    rows = {"init": float(per_segment[k]), **_stage_means(per_segment[k + 3:], n)}
    rows["total"] = sum(rows.values())
    return rows


def _stage_means(per_stage: np.ndarray, n: int) -> dict[str, float]:
    """Mean over the N timed inferences of each of input, inference, output, post."""
    return dict(zip(PER_INFERENCE, per_stage.reshape(n, 4).mean(axis=0).tolist()))


def _iterations(trace: Trace, iterations: int | None) -> int:
    value = iterations if iterations is not None else trace.meta.get("iterations")
    if value is None:
        raise TraceError("the number of timed inferences is unknown: pass iterations "
                         "(--iterations N); the trace's metadata has none")
    if int(value) != value or int(value) < 1:
        raise TraceError(f"iterations must be a whole number >= 1, got {value!r}")
    return int(value)


def _need(signal: np.ndarray | None, what: str) -> np.ndarray:
    if signal is None:
        raise TraceError(f"the trace has no {what} signal")
    if signal.size == 0:
        raise TraceError(f"the trace's {what} signal is empty")
    return signal


def _timestamp_falls(trace: Trace, run: int) -> np.ndarray:
    ts, level = pin_edges(_need(trace.gpi0, TIMESTAMP_PIN), run)
    falls = ts[level == 0]
    if falls.size < 2:
        raise TraceError(f"need 2 falling edges on {TIMESTAMP_PIN}, found {falls.size}")
    return falls


def _window(falls: np.ndarray) -> tuple[int, int]:
    """t_start, t_end: the last two timestamp falls (MLPerf Tiny's rule too)."""
    return int(falls[-2]), int(falls[-1])


def _idle(falls: np.ndarray) -> tuple[int, int] | None:
    return (int(falls[0]), int(falls[1])) if falls.size >= 4 else None


def _marks(trace: Trace, n: int, min_pulse_s: float, falls: np.ndarray, toggles: np.ndarray) -> tuple[Marks, int]:
    (t_start, t_end), idle = _window(falls), _idle(falls)
    inside = toggles[(toggles >= t_start) & (toggles < t_end)]
    if inside.size != 4 * n:
        raise TraceError(_count_message(inside.size, n, falls.size, min_pulse_s))
    before = toggles[(toggles >= (idle[1] if idle else 0)) & (toggles < t_start)]
    warmup = _check_init(before.size, trace.meta.get("warmup"))
    marks = Marks((t_start, t_end), (int(before[0]), int(before[1])), idle, inside.reshape(n, 4))
    return marks, warmup


def _count_message(found: int, n: int, falls: int, min_pulse_s: float) -> str:
    text = (f"expected 4·N = {4 * n} stage toggles on {STAGE_PIN} between the last two timestamp edges "
            f"(N = {n}), found {found}")
    if falls == 3:
        return text + f"; {TIMESTAMP_PIN} has 3 falling edges where an idle and an infer window make 4: one is missing"
    if found and found % 4 == 0:
        return text + f" = 4·{found // 4}: wrong iterations?"
    return text + (f"; a stage toggle is missing (a stage shorter than {min_pulse_s * 1e6:g} µs "
                   "or than one sample is invisible)")


def _check_init(found: int, warmup_meta) -> int:
    """Toggles between the idle window (or the capture's start) and t_start: 2 for init + 4 per warm-up."""
    where = f"on {STAGE_PIN} before the inference window"
    if found < 2:
        raise TraceError(f"no init toggles: expected 2 (start and end of init) {where}, found {found}")
    if warmup_meta is not None and found != 2 + 4 * int(warmup_meta):
        raise TraceError(f"expected 2 + 4·W = {2 + 4 * int(warmup_meta)} stage toggles {where} "
                         f"(init start and end, W = {int(warmup_meta)} warm-ups), found {found}")
    if found % 4 != 2:
        hint = ": firmware without the end-of-init toggle?" if found % 4 == 1 else ""
        raise TraceError(f"expected 2 + 4·W stage toggles {where} (init start and end, 4 per warm-up), "
                         f"found {found}{hint}")
    return (found - 2) // 4


def _prefix_power(current: np.ndarray, voltage: np.ndarray, bounds: np.ndarray,
                  peak_range: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Σ V·I (W·samples) from bounds[0] to each of the sorted bounds, and the peak V·I inside
    peak_range.

    One pass over cache-sized chunks (float64 products, summed per segment with reduceat), so
    memory stays at one chunk and nothing of the size of the capture is allocated.
    """
    edges = np.unique(bounds)
    segments = np.zeros(max(edges.size - 1, 0))
    buf = np.empty(_CHUNK)
    peak = -np.inf
    for c0 in range(int(edges[0]), int(edges[-1]), _CHUNK):
        c1 = min(c0 + _CHUNK, int(edges[-1]))
        p = buf[:c1 - c0]
        np.multiply(current[c0:c1], voltage[c0:c1], out=p, dtype=np.float64)
        j = int(np.searchsorted(edges, c0, side="right")) - 1        # the segment c0 lies in
        inner = edges[j + 1:int(np.searchsorted(edges, c1, side="left"))] - c0
        pieces = np.add.reduceat(p, np.concatenate(([0], inner)))
        segments[j:j + pieces.size] += pieces
        a, b = max(c0, peak_range[0]), min(c1, peak_range[1])
        if a < b:
            peak = max(peak, float(p[a - c0:b - c0].max()))
    prefix = np.concatenate(([0.0], np.cumsum(segments)))
    if np.isnan(prefix[-1]) or math.isnan(peak):
        raise TraceError("the trace has missing samples (NaN) inside the analysed windows")
    return prefix[np.searchsorted(edges, bounds)], peak


# ---- JLS v2 files -------------------------------------------------------------------------------

def write_jls(trace: Trace, path: str | os.PathLike) -> Path:
    """Write the trace as pyjoulescope_driver's recorder lays a capture out, plus unpu's metadata.

    One source (id 1, named meta["device"] or UNPU-<meta["source"]>); FSR signals 1 current (f32,
    A), 2 voltage (f32, V), 3 gpi[0] and 4 gpi[1] (u1, packed), all at round(sample_rate) Hz from
    sample id 0; sample_id → UTC entries every minute and at the last sample (from start_utc, else
    now); a one-line note (chunk_meta 0, shown by the Joulescope UI) and the JSON user-data chunk
    {"unpu_trace": 1, "sample_rate": <exact rate>, "meta": meta} (chunk_meta JLS_META_CHUNK).
    """
    from pyjls import DataType, SignalType, Writer

    path = Path(path)
    rate = int(round(trace.sample_rate))
    if rate < 1:
        raise TraceError(f"JLS needs a sample rate of at least 1 Hz, got {trace.sample_rate:g}")
    present = [s for s in JLS_SIGNALS if getattr(trace, s[2]) is not None]
    dtypes = {"f32": DataType.F32, "u1": DataType.U1}
    start_utc = trace.start_utc if trace.start_utc is not None else time.time()
    envelope = _json_clean({"unpu_trace": 1, "sample_rate": trace.sample_rate, "meta": trace.meta})
    # The Joulescope UI names a source <model>-<serial_number>: JS220-002557 for a real capture
    # (meta "device"), UNPU-simulated for a synthetic one.
    device = str(trace.meta.get("device") or f"UNPU-{trace.meta.get('source', 'trace')}")
    model, _, serial = device.partition("-")
    with Writer(str(path)) as w:
        w.source_def(source_id=JLS_SOURCE_ID, name=device, vendor="unpu", model=model,
                     version=_unpu_version(), serial_number=serial)
        for sid, name, _, dtype, units in present:
            w.signal_def(signal_id=sid, source_id=JLS_SOURCE_ID, signal_type=SignalType.FSR,
                         data_type=dtypes[dtype], sample_rate=rate, name=name, units=units)
        w.user_data(JLS_NOTES_CHUNK, _notes(trace))
        w.user_data(JLS_META_CHUNK, envelope)
        _write_samples(w, trace, present)
        _write_utc(w, present, len(trace), rate, start_utc)
    return path


def _json_clean(value: dict) -> dict:
    """The metadata as plain JSON types (numpy scalars and arrays become numbers and lists)."""
    def default(obj):
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if isinstance(obj, os.PathLike):
            return os.fspath(obj)
        raise TraceError(f"trace meta holds a {type(obj).__name__}, which JSON cannot store")

    return json.loads(json.dumps(value, default=default))


def _unpu_version() -> str:
    return __version__


def _notes(trace: Trace) -> str:
    keys = ("source", "board", "model", "quant", "iterations", "warmup")
    return "unpu trace: " + ", ".join(f"{k}={trace.meta[k]}" for k in keys if k in trace.meta)


def _write_samples(w, trace: Trace, present) -> None:
    for b0 in range(0, len(trace), JLS_BLOCK):
        for sid, _, attr, dtype, _ in present:
            block = getattr(trace, attr)[b0:b0 + JLS_BLOCK]
            if dtype == "u1":
                w.fsr(sid, b0, np.packbits(block, bitorder="little"))
            else:
                w.fsr_f32(sid, b0, np.ascontiguousarray(block, dtype=np.float32))


def _write_utc(w, present, length: int, rate: int, start_utc: float) -> None:
    from pyjls import time64

    t0 = time64.as_time64(float(start_utc))
    ids = list(range(0, max(length, 1), JLS_UTC_INTERVAL_S * rate))
    if length > 1 and ids[-1] != length - 1:
        ids.append(length - 1)
    for sid, *_ in present:
        for sample_id in ids:
            w.utc(sid, sample_id, t0 + sample_id * time64.SECOND // rate)


def read_jls(path: str | os.PathLike) -> Trace:
    """Read a JLS v2 capture: unpu's own files and pyjoulescope_driver recordings alike.

    Takes current, voltage, gpi[0] and gpi[1] from the source that has the most of them; a signal
    the file lacks is None in the Trace. Signals are aligned on their sample ids and cut to the span
    they all cover.
    """
    path = Path(path)
    _check_magic(path)
    from pyjls import Reader

    c_lines: list[str] = []
    try:
        with _fd2_captured(c_lines), Reader(str(path)) as r:
            return _read(r)
    except RuntimeError as exc:
        raise TraceError(f"{path}: not a readable JLS v2 file ({exc})") from None
    finally:
        for line in c_lines:
            log.info("pyjls: %s", line)


def _check_magic(path: Path) -> None:
    try:
        with path.open("rb") as f:
            magic = f.read(len(_JLS_MAGIC))
    except OSError as exc:
        raise TraceError(f"{path}: {exc.strerror or exc}") from None
    if magic != _JLS_MAGIC:
        raise TraceError(f"{path}: not a JLS v2 file")


@contextmanager
def _fd2_captured(lines: list[str]) -> Iterator[None]:
    """pyjls's C library reports straight to file descriptor 2; keep that out of our one-line errors."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


def _read(r) -> Trace:
    signals = _pick_signals(r)
    begin = max(s.sample_id_offset for s in signals.values())
    end = min(s.sample_id_offset + s.length for s in signals.values())
    if end <= begin:
        raise TraceError("the file's signals hold no samples in common")
    arrays = {attr: _read_signal(r, signals[name], begin, end) if name in signals else None
              for _, name, attr, _, _ in JLS_SIGNALS}
    envelope, notes = _user_data(r)
    first = next(iter(signals.values()))
    rate = float(envelope.get("sample_rate") or first.sample_rate)
    meta = envelope["meta"] if "meta" in envelope else _foreign_meta(r, first.source_id, notes)
    return Trace(**arrays, sample_rate=rate, meta=meta, start_utc=_start_utc(r, first, begin))


def _pick_signals(r) -> dict:
    """Our four signals (by name) from the source that has the most of them, all at one rate."""
    from pyjls import SignalType

    wanted = {x[1] for x in JLS_SIGNALS}
    by_source: dict[int, dict] = {}
    for s in r.signals.values():
        if s.signal_type == SignalType.FSR and s.name in wanted:
            by_source.setdefault(s.source_id, {}).setdefault(s.name, s)
    if not by_source:
        raise TraceError("the file has none of the signals current, voltage, gpi[0], gpi[1]")
    signals = max(by_source.values(), key=len)
    if len({s.sample_rate for s in signals.values()}) > 1:
        rates = ", ".join(f"{name} {s.sample_rate} Hz" for name, s in signals.items())
        raise TraceError(f"the file's signals have different sample rates ({rates}): record them at one rate")
    return signals


def _read_signal(r, signal, begin: int, end: int) -> np.ndarray:
    from pyjls import DataType

    start, length = begin - signal.sample_id_offset, end - begin
    if signal.data_type == DataType.U1:
        packed = r.fsr(signal.signal_id, start, length)
        return np.unpackbits(packed, count=length, bitorder="little")
    if signal.data_type == DataType.U4:
        raise TraceError(f"signal {signal.name} is u4, expected f32 or u1")
    return np.asarray(r.fsr(signal.signal_id, start, length), dtype=np.float32)


def _user_data(r) -> tuple[dict, list[str]]:
    envelope: dict = {}
    notes: list[str] = []

    def on_chunk(chunk_meta: int, data) -> bool:
        if chunk_meta == JLS_META_CHUNK and isinstance(data, dict) and data.get("unpu_trace"):
            envelope.update(data)
        elif chunk_meta == JLS_NOTES_CHUNK and isinstance(data, str):
            notes.append(data)
        return False

    r.user_data(on_chunk)
    return envelope, notes


def _foreign_meta(r, source_id: int, notes: list[str]) -> dict:
    source = r.sources.get(source_id)
    meta: dict = {"source": "jls", "device": getattr(source, "name", "")}
    if notes:
        meta["notes"] = "\n".join(notes)
    return meta


def _start_utc(r, signal, begin: int) -> float | None:
    from pyjls import time64

    entries: list[np.ndarray] = []
    try:
        r.utc(signal.signal_id, 0, lambda e: entries.append(np.asarray(e)) or True)
    except RuntimeError:   # no time map: the samples are still good
        return None
    if not entries or not len(entries[0]):
        return None
    sample_id, utc = (int(x) for x in entries[0][0])   # sample_id counts from the signal's first sample
    offset = begin - signal.sample_id_offset - sample_id
    return float(time64.as_timestamp(utc + offset * time64.SECOND // signal.sample_rate))


# ---- command line -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unpu.meters.trace",
                                     description="Energy per inference stage from a JLS power capture (only "
                                                 "the MLPerf window energy when it has no stage pin).")
    parser.add_argument("file", type=Path, help="JLS v2 file (unpu capture or pyjoulescope_driver recording)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="timed inferences N in the infer window (default: the file's metadata)")
    parser.add_argument("--min-pulse-us", type=float, default=DEFAULT_MIN_PULSE_S * 1e6,
                        help="pin pulses shorter than this are bounce and ignored (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    args = parser.parse_args(argv)
    try:
        trace = read_jls(args.file)   # its errors name the file
    except TraceError as exc:
        print(f"trace: {exc}", file=sys.stderr)
        return 2
    try:
        report = analyze(trace, iterations=args.iterations, min_pulse_s=args.min_pulse_us * 1e-6)
    except TraceError as exc:
        print(f"trace: {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.metrics()))
        if report.note:
            print(f"trace: {args.file}: {report.note}", file=sys.stderr)
    else:
        _print_table(args.file, trace, report)
    return 0


def _print_table(path: Path, trace: Trace, report: EnergyReport) -> None:
    console = Console(highlight=False)
    if report.energy_uj:
        console.print(_stage_table(path, trace, report))
    else:
        console.print(f"{path.name}: N = {report.iterations} timed inferences, {trace.sample_rate:,.0f} S/s")
    idle = f"{report.idle_mw:,.3f} mW" if report.idle_mw is not None else "— (no idle window)"
    console.print(f"window (MLPerf, last two timestamp edges): {report.window_uj:,.3f} µJ and "
                  f"{report.window_us:,.1f} µs per inference; power active {report.active_mw:,.3f} mW, "
                  f"peak {report.peak_mw:,.3f} mW, idle {idle}", soft_wrap=True)
    if report.note:
        console.print(report.note, soft_wrap=True)


def _stage_table(path: Path, trace: Trace, report: EnergyReport) -> Table:
    net = report.net_uj or {}
    table = Table(title=f"{path.name}: N = {report.iterations} timed inferences, W = {report.warmup} warm-ups, "
                        f"{trace.sample_rate:,.0f} S/s", title_justify="left")
    for column in ("stage", "energy µJ", "net µJ", "duration µs", "mean mW"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, energy in report.energy_uj.items():
        duration = report.duration_us[stage]
        mean_mw = energy / duration * 1e3 if duration else float("nan")
        table.add_row(stage + (" (once)" if stage == "init" else ""), f"{energy:,.3f}",
                      f"{net[stage]:,.3f}" if stage in net else "—", f"{duration:,.1f}", f"{mean_mw:,.3f}")
    return table


if __name__ == "__main__":
    sys.exit(main())
