"""Host side of the device-under-test link (docs/protocol.md).

The same client drives every board: the host device process over a pty, QEMU over TCP and real
boards over a UART. Every read has a deadline; a device that is silent, garbled or gone raises a
`ProtocolError` subclass instead of hanging.
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Protocol

STAGES = ("init", "input", "inference", "output", "post")
MAX_HEX_BYTES_PER_LINE = 31  # MLPerf Tiny `db <hex>%` carries at most 31 bytes
MAX_LINE = 4096  # longest line a device may send before we call it garbage

_STAGE_RE = re.compile(r"^m-stage-([a-z]+)-cycles-(\d+)-us-([0-9.]+)$")
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


@dataclass(frozen=True)
class InferResult:
    iterations: int
    warmup: int
    window_us: float  # between the two m-lap-us marks
    results: str


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
        self.timeout_s = timeout_s
        self.transcript = transcript if transcript is not None else Transcript()
        self.check_alive = check_alive
        self._clock_hz: int | None = None
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
        self._send(cmd + "%", raw)
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
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
        lines = self.command(f"infer {iterations} {warmup}", timeout_s)
        laps = [int(m.group(1)) for m in map(_LAP_RE.match, lines) if m]
        if len(laps) != 2 or "m-infer-done" not in lines:
            raise ProtocolError(f"infer answer lacks two m-lap-us marks and m-infer-done: {lines[:6]}")
        results = next((ln for ln in lines if ln.startswith("m-results-")), "")
        return InferResult(iterations, warmup, float(laps[1] - laps[0]), results)

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
            raise ProtocolError(f"device reported a clock of {clock} Hz")
        self._clock_hz = clock
        return DeviceInfo(clock, arena, timer, fields.pop("build", "unknown"), fields)

    def stages(self) -> dict[str, StageTime]:
        if self._clock_hz is None:
            self.info()
        assert self._clock_hz is not None
        out: dict[str, StageTime] = {}
        for line in self.command("stages"):
            match = _STAGE_RE.match(line)
            if not match:
                raise ProtocolError(f"bad stage line: {line!r}")
            name, cycles, us = match.group(1), int(match.group(2)), float(match.group(3))
            out[name] = StageTime(cycles, us, cycles * 1e6 / self._clock_hz)
        missing = [s for s in STAGES if s not in out]
        if missing:
            raise ProtocolError(f"stages% did not report {missing}")
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
