"""The host board's device process: 'firmware' in Python that runs a model in TFLite Micro.

It creates a pty, announces the slave path on stdout (`pty /dev/pts/N`) and then serves the DUT
protocol (docs/protocol.md) on the master side, exactly as a board would on its UART. The stage
clock is `time.perf_counter_ns` (1 GHz ticks), reported through `info%` as timer `os`.

Run: python -m unpu.boards.host_device --model M.tflite --arena BYTES [--post softmax]
     python -m unpu.boards.host_device --probe-arena M.tflite LO HI   (arena bisection worker)
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
import tty
import zlib
from typing import Callable

import numpy as np

CLOCK_HZ = 1_000_000_000
MAX_COMMAND = 256  # bytes in one command line, as in the C harness
OUT_HEX_BYTES_PER_LINE = 64
RESULTS_SHOWN = 128
IDLE_MAX_MS = 60_000  # `idle MS%` bound, as in the C harness
# `help%`: the firmware's name, an empty line, one line per command, as MLPerf Tiny's help frames it
# (the same lines as the C harness's help_lines; its PMU builds add pmu)
HELP_LINES = (
    "unpu",
    "",
    "help         : this list",
    "name         : the device name, m-name-dut-[unpu]",
    "profile      : the firmware and the model id, m-model-[<id>]",
    "timestamp    : a lap point: timestamp-pin pulse and m-lap-us-<t>",
    "db load N    : expect N input bytes as db <hex> lines",
    "db HH[HH]*   : 1 to 31 input bytes in hex",
    "db bin N CRC : N raw input bytes follow, CRC-32 in hex",
    "infer N [W=0]: init, W warm-ups, N timed inferences",
    "results      : the last inference's final output",
    "stages       : the timed stages of the last infer",
    "info         : timer clock, arena, timer name, build id",
    "out          : the last raw output tensor in hex",
    "idle MS      : rest MS ms between two timestamp-pin pulses",
)


class TflmRunner:
    """The model runner API of the harness: init / load input / run / read output / post."""

    def __init__(self, model: bytes, arena: int, post: str, softmax_model: bytes | None) -> None:
        self.model, self.arena, self.post_kind, self.softmax_model = model, arena, post, softmax_model
        self.interp = self.softmax = None
        self.output: np.ndarray | None = None
        self.final: np.ndarray | None = None
        self.input_details: dict = {}

    def init(self) -> None:
        from tflite_micro import runtime

        self.interp = runtime.Interpreter.from_bytes(self.model, arena_size=self.arena)
        self.input_details = self.interp.get_input_details(0)
        if self.post_kind == "softmax" and self.softmax_model is not None:
            self.softmax = runtime.Interpreter.from_bytes(self.softmax_model, arena_size=16384)

    @property
    def input_size(self) -> int:
        shape, dtype = self.input_details["shape"], np.dtype(self.input_details["dtype"])
        return int(np.prod(shape)) * dtype.itemsize

    def load(self, data: bytes) -> None:
        details = self.input_details
        self.interp.set_input(np.frombuffer(data, dtype=details["dtype"]).reshape(details["shape"]), 0)

    def run(self) -> None:
        self.interp.invoke()

    def read(self) -> None:
        self.output = self.interp.get_output(0)

    def post(self) -> None:
        if self.softmax is None:
            self.final = self.output
            return
        self.softmax.set_input(self.output.reshape(1, -1), 0)
        self.softmax.invoke()
        self.final = self.softmax.get_output(0)

    def dequantized_final(self) -> np.ndarray:
        interp = self.softmax if self.softmax is not None else self.interp
        q = interp.get_output_details(0)["quantization_parameters"]
        values = self.final.astype(np.float64).ravel()
        if len(q["scales"]):
            values = (values - q["zero_points"][0]) * q["scales"][0]
        return values


class DutEngine:
    """Byte-level protocol state machine; `feed` takes raw bytes and returns answer lines."""

    def __init__(self, runner: TflmRunner, model_id: str, build_id: str,
                 clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.runner, self.model_id, self.build_id, self.clock = runner, model_id, build_id, clock
        self.line = bytearray()
        self.overflow = False
        self.buffer = bytearray()
        self.expected = 0
        self.binary_left = 0
        self.binary_crc = 0
        self.stage_ticks: dict[str, int] = {}
        self.initialised = False

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(data):
            if self.binary_left:
                take = data[i : i + self.binary_left]
                self.buffer += take
                self.binary_left -= len(take)
                i += len(take)
                if not self.binary_left:
                    out += self._finish_binary()
                continue
            byte = data[i : i + 1]
            i += 1
            if byte == b"%":
                out += self._dispatch()
            elif byte in (b"\r", b"\n"):
                continue
            elif len(self.line) >= MAX_COMMAND:
                self.overflow = True
            else:
                self.line += byte
        return out

    def _dispatch(self) -> list[str]:
        text, overflow = self.line.decode("ascii", errors="replace").strip(), self.overflow
        self.line, self.overflow = bytearray(), False
        if overflow:
            return ["e-[command too long]", "m-ready"]
        try:
            lines = self._execute(text.split())
        except ValueError as exc:
            lines = [f"e-[{exc}]"]
        except Exception as exc:  # a runner failure is reported, the device keeps serving
            lines = [f"e-[{type(exc).__name__}: {str(exc)[:120]}]"]
        if self.binary_left:  # raw bytes follow; answer when they have arrived
            return lines
        return lines + ["m-ready"]

    def _execute(self, words: list[str]) -> list[str]:
        if not words:
            return ["e-[empty command]"]
        handler = {
            "name": self._name, "profile": self._profile, "db": self._db, "infer": self._infer,
            "results": self._results, "stages": self._stages, "info": self._info, "out": self._out,
            "idle": self._idle, "timestamp": self._timestamp, "help": self._help,
        }.get(words[0])
        if handler is None:
            return [f"e-[unknown command {words[0][:32]}]"]
        return handler(words[1:])

    def _name(self, args: list[str]) -> list[str]:
        return ["m-name-dut-[unpu]"]

    def _profile(self, args: list[str]) -> list[str]:
        return ["m-profile-[unpu]", f"m-model-[{self.model_id}]"]

    def _timestamp(self, args: list[str]) -> list[str]:
        """`timestamp%`: a lap point on its own (the C harness also pulses its timestamp pin)."""
        return [f"m-lap-us-{self.clock() // 1000}"]

    def _help(self, args: list[str]) -> list[str]:
        return list(HELP_LINES)

    def _info(self, args: list[str]) -> list[str]:
        return [f"m-clock-hz-{CLOCK_HZ}", f"m-arena-{self.runner.arena}", "m-timer-os",
                f"m-build-{self.build_id}"]

    def _db(self, args: list[str]) -> list[str]:
        if len(args) == 2 and args[0] == "load":
            size = _parse_int(args[1], "db load size")
            if not 0 < size <= self.runner.input_size:
                raise ValueError(f"db load {size}: input buffer holds {self.runner.input_size} bytes")
            self.buffer, self.expected = bytearray(), size
            return [f"m-[Expecting {size} bytes]"]
        if len(args) == 3 and args[0] == "bin":
            size, crc = _parse_int(args[1], "db bin size"), _parse_int(args[2], "crc32", 16)
            if not 0 < size <= self.runner.input_size:
                raise ValueError(f"db bin {size}: input buffer holds {self.runner.input_size} bytes")
            self.buffer, self.expected, self.binary_left, self.binary_crc = bytearray(), size, size, crc
            return []
        if len(args) == 1:
            return self._db_hex(args[0])
        raise ValueError("db: expected 'db load N', 'db bin N CRC32' or 'db <hex>'")

    def _db_hex(self, text: str) -> list[str]:
        if not self.expected:
            raise ValueError("db: no 'db load N' in progress")
        if len(text) % 2 or len(text) > 62:
            raise ValueError("db: hex payload must be 1..31 whole bytes")
        try:
            chunk = bytes.fromhex(text)
        except ValueError as exc:
            raise ValueError("db: bad hex") from exc
        if len(self.buffer) + len(chunk) > self.expected:
            self.expected = 0
            raise ValueError("db: more bytes than announced")
        self.buffer += chunk
        return ["m-load-done"] if len(self.buffer) == self.expected else []

    def _finish_binary(self) -> list[str]:
        if zlib.crc32(bytes(self.buffer)) & 0xFFFFFFFF != self.binary_crc:
            self.buffer, self.expected = bytearray(), 0
            return ["e-[crc]", "m-ready"]
        return ["m-load-done", "m-ready"]

    def _infer(self, args: list[str]) -> list[str]:
        if len(args) not in (1, 2):
            raise ValueError("infer: expected 'infer N [W]'")
        n = _parse_int(args[0], "iterations")
        warmup = _parse_int(args[1], "warmup") if len(args) == 2 else 0
        if n < 1:
            raise ValueError("infer: N must be >= 1")
        if len(self.buffer) != self.runner.input_size:
            raise ValueError(f"infer: input not loaded ({len(self.buffer)}/{self.runner.input_size} bytes)")
        t0 = self.clock()
        self.runner.init()
        ticks = {"init": self.clock() - t0, "input": 0, "inference": 0, "output": 0, "post": 0}
        lines = [f"m-warmup-start-{warmup}"]
        for _ in range(warmup):
            self._one_inference(None)
        lines += ["m-warmup-done", f"m-infer-start-{n}", f"m-lap-us-{self.clock() // 1000}"]
        for _ in range(n):
            self._one_inference(ticks)
        lines.append(f"m-lap-us-{self.clock() // 1000}")
        for stage in ("input", "inference", "output", "post"):
            ticks[stage] = round(ticks[stage] / n)
        self.stage_ticks = ticks
        return lines + ["m-infer-done", self._results_line()]

    def _idle(self, args: list[str]) -> list[str]:
        """`idle MS%`: rest for MS ms (the C harness pulses its timestamp pin around it; no pins here)."""
        if len(args) != 1:
            raise ValueError("idle: expected 'idle MS'")
        ms = _parse_int(args[0], "idle ms")
        if not 1 <= ms <= IDLE_MAX_MS:
            raise ValueError("idle: MS must be 1..60000")
        end = time.monotonic() + ms / 1000
        while (left := end - time.monotonic()) > 0:
            time.sleep(left)
        return ["m-idle-done"]

    def _one_inference(self, ticks: dict[str, int] | None) -> None:
        steps = (("input", lambda: self.runner.load(bytes(self.buffer))), ("inference", self.runner.run),
                 ("output", self.runner.read), ("post", self.runner.post))
        for stage, step in steps:
            t0 = self.clock()
            step()
            if ticks is not None:
                ticks[stage] += self.clock() - t0

    def _results_line(self) -> str:
        values = self.runner.dequantized_final()
        shown = ",".join(f"{v:.4f}" for v in values[:RESULTS_SHOWN])
        return f"m-results-[{shown}{',...' if len(values) > RESULTS_SHOWN else ''}]"

    def _results(self, args: list[str]) -> list[str]:
        if self.runner.final is None:
            raise ValueError("results: no inference yet")
        return [self._results_line()]

    def _stages(self, args: list[str]) -> list[str]:
        if not self.stage_ticks:
            raise ValueError("stages: no inference yet")
        return [f"m-stage-{name}-cycles-{c}-us-{c * 1e6 / CLOCK_HZ:.3f}" for name, c in self.stage_ticks.items()]

    def _out(self, args: list[str]) -> list[str]:
        if self.runner.output is None:
            raise ValueError("out: no inference yet")
        raw = self.runner.output.tobytes()
        chunks = [raw[i : i + OUT_HEX_BYTES_PER_LINE].hex() for i in range(0, len(raw), OUT_HEX_BYTES_PER_LINE)]
        return [f"m-out-bytes-{len(raw)}"] + [f"m-out-{c}" for c in chunks]


def _parse_int(text: str, what: str, base: int = 10) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise ValueError(f"bad {what}: {text[:16]}") from None


def serve_pty(engine: DutEngine, parent_pid: int) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    print(f"pty {os.ttyname(slave)}", flush=True)
    while True:
        if os.getppid() != parent_pid:  # the host went away: do not linger
            return
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:
            return
        answer = engine.feed(data)
        if answer:
            os.write(master, ("\r\n".join(answer) + "\r\n").encode("ascii"))


def _arena_works(model: bytes, size: int) -> str | None:
    """None if TFLM allocates and invokes the model in `size` bytes, else the error."""
    from tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_bytes(model, arena_size=size)
        details = interp.get_input_details(0)
        interp.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
        interp.invoke()
    except RuntimeError as exc:
        return str(exc) or type(exc).__name__
    return None


def probe_arena(model: bytes, lo: int, hi: int, align: int, verify_hi: bool) -> None:
    """Bisect the smallest working arena in (lo, hi]; print each verdict so a crash loses nothing.

    `lo` is known to fail and `hi` to work (checked first with `verify_hi`). A probe that crashes
    the process (TFLM can segfault on a tiny arena) is restarted by the parent with that size
    counted as failing. Ends with TFLM's own allocation report for `hi` on stderr.
    """
    from tflite_micro import runtime

    if verify_hi:
        print(f"try {hi}", flush=True)
        error = _arena_works(model, hi)
        if error:
            print(f"unsupported {error}", flush=True)
            return
        print(f"ok {hi}", flush=True)
    while hi - lo > align:
        mid = (lo + hi) // 2 // align * align
        if mid <= lo:
            break
        print(f"try {mid}", flush=True)
        ok = _arena_works(model, mid) is None
        print(f"{'ok' if ok else 'fail'} {mid}", flush=True)
        lo, hi = (lo, mid) if ok else (mid, hi)
    runtime.Interpreter.from_bytes(model, arena_size=hi).print_allocations()
    print(f"min {hi}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unpu.boards.host_device")
    parser.add_argument("--model")
    parser.add_argument("--arena", type=int)
    parser.add_argument("--post", default="none", choices=("none", "softmax"))
    parser.add_argument("--softmax-model")
    parser.add_argument("--model-id", default="model")
    parser.add_argument("--build-id", default="host")
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    parser.add_argument("--probe-arena", nargs=3, metavar=("MODEL", "LO", "HI"))
    parser.add_argument("--align", type=int, default=16)
    parser.add_argument("--verify-hi", action="store_true")
    args = parser.parse_args(argv)
    if args.probe_arena:
        path, lo, hi = args.probe_arena
        probe_arena(open(path, "rb").read(), int(lo), int(hi), args.align, args.verify_hi)
        return 0
    if not args.model or not args.arena:
        parser.error("--model and --arena are required")
    softmax = open(args.softmax_model, "rb").read() if args.softmax_model else None
    runner = TflmRunner(open(args.model, "rb").read(), args.arena, args.post, softmax)
    runner.init()  # fail fast on a model TFLM cannot load; measured init happens per `infer`
    serve_pty(DutEngine(runner, args.model_id, args.build_id), args.parent_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
