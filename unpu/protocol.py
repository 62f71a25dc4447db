"""Host side of the device-under-test link (docs/protocol.md).

The same client drives every board: the host device process over a pty, QEMU over TCP and real
boards over a UART. Every read has a deadline; a device that is silent, garbled or gone raises a
`ProtocolError` subclass instead of hanging. Every timing line is checked before anyone uses it
(docs/protocol.md, "What the host checks"): a number that cannot be right raises
`ImplausibleTiming` naming the line, so it is never recorded as a result.
"""

from __future__ import annotations

import math
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Protocol

from unpu.errors import UnpuError

STAGES = ("init", "input", "inference", "output", "post")
MAX_HEX_BYTES_PER_LINE = 31  # MLPerf Tiny `db <hex>%` carries at most 31 bytes
MAX_LINE = 4096  # longest line a device may send before we call it garbage

_STAGE_RE = re.compile(r"^m-stage-([a-z]+)-cycles-(\d+)-us-(\d+(?:\.\d+)?)$")
_LAP_RE = re.compile(r"^m-lap-us-(\d+)$")
_PMU_RE = re.compile(r"^m-pmu-([a-z0-9_]+)-(\d+)$")


class ProtocolError(RuntimeError):
    """The device answered something the protocol does not allow."""


class DeviceError(ProtocolError):
    """The device answered `e-[...]`."""


class LinkTimeout(ProtocolError):
    """No complete answer within the deadline."""


class DeviceGone(ProtocolError):
    """The link closed (device process died, board reset or unplugged)."""


class ImplausibleTiming(ProtocolError):
    """A timing line the device sent cannot be right (a corrupted digit, a clock that ran backwards,
    µs that disagree with the cycles); the message names the line."""


class DeviceMismatch(ProtocolError):
    """The device answers, but runs another firmware or model than the one unpu built."""


class InvalidTimeout(UnpuError, ValueError):
    """A timeout that is not a finite number of seconds > 0: a deadline that never comes."""


def require_timeout(seconds: object, what: str, zero_ok: bool = False) -> float:
    """`seconds` as a float if it is finite and > 0 (>= 0 with `zero_ok`), else InvalidTimeout naming
    `what`: a NaN or infinite deadline never passes, so a hung device would hang the run."""
    try:
        value = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise InvalidTimeout(f"{what} must be a finite number of seconds {bound}, got {seconds!r}")
    return value


class SerialLike(Protocol):
    timeout: float | None

    def write(self, data: bytes) -> int | None: ...
    def read_until(self, expected: bytes = ..., size: int | None = ...) -> bytes: ...
    def flush(self) -> None: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class Transcript:
    """Everything that crossed the link, with host-side timestamps, kept as a run artifact."""

    lines: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def add(self, direction: str, text: str) -> None:
        self.lines.append(f"{time.monotonic() - self.t0:10.4f} {direction} {text}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass(frozen=True)
class DeviceInfo:
    clock_hz: int
    arena_bytes: int
    timer: str
    build: str
    extra: dict[str, str]


@dataclass(frozen=True)
class StageTime:
    cycles: int
    us_reported: float
    us: float  # cycles converted with the clock the device reported
    line: str = ""  # the stages% line it came from


@dataclass(frozen=True)
class InferResult:
    iterations: int
    warmup: int
    window_us: float  # between the two m-lap-us marks
    results: str
    laps: tuple[str, str] = ("", "")  # the two m-lap-us lines


# -- what the host checks (docs/protocol.md, "What the host checks") ---------------------------------
# Every tolerance of the checks is here, with why.

# stages% prints µs with 3 decimals (the C harness rounds to the nearest 0.001 µs, the host device
# formats with '.3f'): the printed value is within 0.0005 µs of cycles / clock. Twice that, plus a
# relative 1e-9 for float noise on long stages, is the most a correct device can be off.
STAGE_US_ABS = 0.001
STAGE_US_REL = 1e-9
# The four stages of every timed inference; init lies before the first lap.
WINDOW_STAGES = ("input", "inference", "output", "post")
# Timer resolution: each lap is the device's tick count floored to whole µs (together < 1 µs + 1 tick
# off); each stage's time is two tick readings (< 1 tick off) and stages% reports the per-inference
# mean rounded to a tick (N/2 ticks over N inferences), so N x the stages is < 6 N ticks off. On
# QEMU a SysTick tick is 31-50 instructions; tiny stages (autoencoder's post: 1 tick) stay within it.
LAP_ROUNDING_US = 1.0
TICKS_PER_INFERENCE_ROUNDING = 6


@dataclass(frozen=True)
class WindowSlack:
    """How much longer than N x its stages a window may be: what runs between the laps besides them."""

    relative: float          # a share of the stages' time
    per_inference_us: float  # per inference, whatever the model
    fixed_us: float          # once per window


# Firmware: between the laps the harness runs, besides the stages, the first lap's >= 1 µs timestamp
# pulse (fixed) and per inference its loop, 4 stage-pin writes and 8 timer reads (measured on
# qemu_m4: 200 instructions, 5 SysTick ticks; 10 µs is 500 cycles at 50 MHz, cache misses included);
# interrupts that land between two stages (a HAL or RTOS tick) take well under the relative 5%.
FIRMWARE_SLACK = WindowSlack(relative=0.05, per_inference_us=10.0, fixed_us=10.0)
# A device whose timer is an operating system's clock (`os`: the host board, native, a Linux board)
# is a process: the host board runs Python between stages (3-5 µs per inference measured, 1.4 x the
# stages of a one-operator model), and the OS may deschedule it between two stages, which the window
# counts and no stage does (100 ms: a few scheduler periods of a loaded machine).
OS_SLACK = WindowSlack(relative=0.5, per_inference_us=50.0, fixed_us=100_000.0)


def lap_us(line: str) -> int:
    match = _LAP_RE.match(line)
    if not match:
        raise ProtocolError(f"bad lap line: {line!r}")
    return int(match.group(1))


def check_laps(first: str, second: str, previous: str | None) -> None:
    """The device clock runs forward: within a window (second lap after the first) and from the
    previous window's last lap of this session to this window's first (every port's timer is a
    monotone 64-bit count; a lap that goes back is a corrupted digit or a device that reset)."""
    if lap_us(second) <= lap_us(first):
        raise ImplausibleTiming(f"{second!r} is not after {first!r}: the device clock ran backwards within one window")
    if previous is not None and lap_us(first) < lap_us(previous):
        raise ImplausibleTiming(f"{first!r} is before {previous!r}, the last lap of the previous window: "
                                f"the device clock ran backwards (a corrupted line or a device reset)")


def check_stage(stage: StageTime, clock_hz: int) -> None:
    """The device's µs for a stage equal its cycles at the clock it reported in info% (both in the
    device's own timer: on QEMU that is SysTick, before any instruction-count conversion)."""
    if not math.isfinite(stage.us_reported):
        raise ImplausibleTiming(f"{stage.line!r}: the µs value is not a finite number")
    tolerance = STAGE_US_ABS + STAGE_US_REL * stage.us
    if abs(stage.us_reported - stage.us) > tolerance:
        raise ImplausibleTiming(f"{stage.line!r}: the device says {stage.us_reported:.3f} µs, but {stage.cycles} cycles "
                                f"at the {clock_hz} Hz clock it reported (info%) are {stage.us:.3f} µs")


def window_bounds(iterations: int, stages_us: float, clock_hz: int, timer: str) -> tuple[float, float]:
    """The shortest and longest a window of `iterations` inferences whose stages take `stages_us` in
    all can plausibly be, in the device's µs."""
    rounding = LAP_ROUNDING_US + (TICKS_PER_INFERENCE_ROUNDING * iterations + 1) * 1e6 / clock_hz
    slack = OS_SLACK if timer == "os" else FIRMWARE_SLACK
    longest = stages_us * (1 + slack.relative) + iterations * slack.per_inference_us + slack.fixed_us
    return stages_us - rounding, longest + rounding


def check_window(result: InferResult, stages: dict[str, StageTime], clock_hz: int, timer: str) -> None:
    """The time between a window's laps against N x the stages% of that window: a window can be
    neither shorter than its stages nor much longer than them plus what runs between them."""
    per_inference = sum(stages[s].cycles for s in WINDOW_STAGES) * 1e6 / clock_hz
    stages_us = result.iterations * per_inference
    low, high = window_bounds(result.iterations, stages_us, clock_hz, timer)
    if not low <= result.window_us <= high:
        raise ImplausibleTiming(
            f"{result.laps[0]!r} .. {result.laps[1]!r} span {result.window_us:.0f} µs for {result.iterations} "
            f"inferences, but stages% puts them at {result.iterations} x {per_inference:.3f} µs = {stages_us:.1f} µs "
            f"(plausible: {max(low, 0):.1f} to {high:.1f} µs)")


class DutClient:
    """Drives one device through the MLPerf Tiny DUT protocol plus unpu's extensions."""

    def __init__(
        self,
        port: SerialLike,
        timeout_s: float = 10.0,
        transcript: Transcript | None = None,
        check_alive: Callable[[], None] | None = None,
    ) -> None:
        self.port = port
        self.timeout_s = require_timeout(timeout_s, "the device command timeout")
        self.transcript = transcript if transcript is not None else Transcript()
        self.check_alive = check_alive
        self._info: DeviceInfo | None = None
        self._last_lap: str | None = None        # the last m-lap-us of this session
        self._last_infer: InferResult | None = None
        self.port.timeout = 0.2  # short reads so deadlines and liveness are checked often

    # -- line level -----------------------------------------------------------------------
    def _send(self, text: str, raw: bytes = b"") -> None:
        self.transcript.add(">", text if not raw else f"{text} <{len(raw)} raw bytes>")
        try:
            self.port.write(text.encode("ascii") + raw)
            self.port.flush()
        except OSError as exc:
            self._raise_if_dead()
            raise DeviceGone(f"link closed while sending {text!r}: {exc}") from exc

    def _read_line(self, deadline: float, waiting_for: str) -> str:
        buf = b""
        while True:
            try:
                chunk = self.port.read_until(b"\n", MAX_LINE - len(buf))
            except OSError as exc:  # pyserial's SerialException is an OSError
                self._raise_if_dead()
                raise DeviceGone(f"link closed while waiting for {waiting_for}: {exc}") from exc
            buf += chunk
            if buf.endswith(b"\n"):
                line = buf.decode("ascii", errors="replace").strip()
                self.transcript.add("<", line)
                return line
            if len(buf) >= MAX_LINE:
                self.transcript.add("<", repr(buf[:200]) + "...")
                raise ProtocolError(f"garbled answer to {waiting_for}: line over {MAX_LINE} bytes")
            if not chunk:
                self._raise_if_dead()
                if time.monotonic() > deadline:
                    raise LinkTimeout(f"no answer to {waiting_for} within the timeout")

    def _raise_if_dead(self) -> None:
        if self.check_alive is not None:
            self.check_alive()

    def command(self, cmd: str, timeout_s: float | None = None, raw: bytes = b"") -> list[str]:
        """Send `cmd%` (plus raw bytes) and return the `m-` lines before `m-ready`."""
        wait_s = self.timeout_s if timeout_s is None else require_timeout(timeout_s, f"the timeout of '{cmd}%'")
        self._send(cmd + "%", raw)
        deadline = time.monotonic() + wait_s
        lines: list[str] = []
        errors: list[str] = []
        while True:
            line = self._read_line(deadline, f"'{cmd}%'")
            if line == "m-ready":
                break
            if line.startswith("e-"):
                errors.append(line)
            elif line.startswith("m-"):
                lines.append(line)
            elif line:
                raise ProtocolError(f"garbled answer to '{cmd}%': {line[:80]!r}")
        if errors:
            raise DeviceError(f"device refused '{cmd}%': {'; '.join(errors)}")
        return lines

    def connect(self, attempts: int = 25, interval_s: float = 0.2) -> str:
        """Host-initiated handshake: ping `name%` until answered (opening a tty flushes input)."""
        last: Exception | None = None
        for _ in range(attempts):
            try:
                self.port.reset_input_buffer()
                return self.name(timeout_s=interval_s + 0.3)
            except LinkTimeout as exc:
                last = exc
        raise LinkTimeout(f"device did not answer 'name%' after {attempts} tries: {last}")

    # -- base protocol ------------------------------------------------------------------------
    def name(self, timeout_s: float | None = None) -> str:
        lines = self.command("name", timeout_s)
        return _single(lines, "m-name-", "name")

    def profile(self) -> dict[str, str]:
        out = {}
        for line in self.command("profile"):
            key, _, value = line[2:].partition("-")
            out[key] = value.strip("[]")
        return out

    def load_input(self, data: bytes) -> None:
        """Binary upload with CRC32 (unpu extension)."""
        crc = zlib.crc32(data) & 0xFFFFFFFF
        lines = self.command(f"db bin {len(data)} {crc:08x}", raw=data)
        if "m-load-done" not in lines:
            raise ProtocolError(f"binary upload not acknowledged: {lines}")

    def load_input_hex(self, data: bytes) -> None:
        """MLPerf Tiny upload: `db load N%` then `db <hex>%` lines of up to 31 bytes."""
        lines = self.command(f"db load {len(data)}")
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            raise ProtocolError(f"unexpected answer to db load: {lines}")
        for offset in range(0, len(data), MAX_HEX_BYTES_PER_LINE):
            lines = self.command("db " + data[offset : offset + MAX_HEX_BYTES_PER_LINE].hex())
        if "m-load-done" not in lines:
            raise ProtocolError("hex upload finished without m-load-done")

    def infer(self, iterations: int, warmup: int, timeout_s: float | None = None) -> InferResult:
        """`infer N W%`; its laps checked against each other and against the session's previous lap."""
        self._last_infer = None
        lines = self.command(f"infer {iterations} {warmup}", timeout_s)
        laps = [ln for ln in lines if _LAP_RE.match(ln)]
        if len(laps) != 2 or "m-infer-done" not in lines:
            raise ProtocolError(f"infer answer lacks two m-lap-us marks and m-infer-done: {lines[:6]}")
        check_laps(laps[0], laps[1], self._last_lap)
        self._last_lap = laps[1]
        results = next((ln for ln in lines if ln.startswith("m-results-")), "")
        self._last_infer = InferResult(iterations, warmup, float(lap_us(laps[1]) - lap_us(laps[0])), results,
                                       (laps[0], laps[1]))
        return self._last_infer

    # -- unpu extensions ----------------------------------------------------------------------
    def idle(self, ms: int) -> None:
        """`idle MS%`: the device rests MS ms between two timestamp-pin pulses (docs/protocol.md)."""
        lines = self.command(f"idle {ms}", ms / 1000 + self.timeout_s)
        if "m-idle-done" not in lines:
            raise ProtocolError(f"idle answer lacks m-idle-done: {lines[:4]}")

    def info(self) -> DeviceInfo:
        fields: dict[str, str] = {}
        for line in self.command("info"):
            key, _, value = line[2:].partition("-")
            if key == "clock" and value.startswith("hz-"):
                key, value = "clock_hz", value[3:]
            fields[key] = value
        try:
            clock = int(fields.pop("clock_hz"))
            arena = int(fields.pop("arena"))
            timer = fields.pop("timer")
        except (KeyError, ValueError) as exc:
            raise ProtocolError(f"info% answer incomplete: {fields}") from exc
        if clock <= 0:
            raise ImplausibleTiming(f"'m-clock-hz-{clock}': the device reported a clock of {clock} Hz")
        self._info = DeviceInfo(clock, arena, timer, fields.pop("build", ""), fields)
        return self._info

    def stages(self) -> dict[str, StageTime]:
        """`stages%` of the last `infer`: each stage's µs checked against its cycles, and the window
        of that `infer` (when this client ran it) against N x its stages."""
        info = self._info or self.info()
        out: dict[str, StageTime] = {}
        for line in self.command("stages"):
            match = _STAGE_RE.match(line)
            if not match:
                raise ProtocolError(f"bad stage line: {line!r}")
            name, cycles, us = match.group(1), int(match.group(2)), float(match.group(3))
            out[name] = StageTime(cycles, us, cycles * 1e6 / info.clock_hz, line)
            check_stage(out[name], info.clock_hz)
        missing = [s for s in STAGES if s not in out]
        if missing:
            raise ProtocolError(f"stages% did not report {missing}")
        if self._last_infer is not None:
            check_window(self._last_infer, out, info.clock_hz, info.timer)
        return out

    def pmu(self) -> dict[str, int]:
        """NPU counters of the last `infer` (per timed inference), from firmware built with an NPU
        PMU (`pmu%`, docs/protocol.md); other lines are ignored. Firmware without one answers
        `e-[unknown command pmu]`, raised as DeviceError."""
        out: dict[str, int] = {}
        for line in self.command("pmu"):
            match = _PMU_RE.match(line)
            if match:
                out[match.group(1)] = int(match.group(2))
        return out

    def output(self) -> bytes:
        lines = self.command("out")
        size = int(_single([ln for ln in lines if ln.startswith("m-out-bytes-")], "m-out-bytes-", "out"))
        data = bytes.fromhex("".join(ln[len("m-out-"):] for ln in lines if _is_out_hex(ln)))
        if len(data) != size:
            raise ProtocolError(f"out% announced {size} bytes, sent {len(data)}")
        return data


def _is_out_hex(line: str) -> bool:
    return line.startswith("m-out-") and not line.startswith("m-out-bytes-")


def _single(lines: list[str], prefix: str, what: str) -> str:
    hits = [ln for ln in lines if ln.startswith(prefix)]
    if len(hits) != 1:
        raise ProtocolError(f"expected one {prefix}... line in answer to {what}%, got {lines}")
    return hits[0][len(prefix):]
