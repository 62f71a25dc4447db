"""The `host` board: TFLite Micro (tflite-micro package) in a device process behind a pty.

`build` finds the exact minimum tensor arena by bisection in worker subprocesses (TFLM can crash
the process on a too-small arena) and caches it per model digest. `open` starts
`unpu.boards.host_device`, reads the pty it announces and drives it with pyserial, exactly as a
board on a UART; a device process that dies is reported as `DeviceCrashed` with its signal.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.process import check_alive, stop, wait_for_line
from unpu.cache import Cache, bytes_digest, source_digest
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

ARENA_ALIGN = 16
PROBE_TIMEOUT_S = 300
START_TIMEOUT_S = 60


def _tflm_version() -> str:
    from importlib.metadata import version

    return version("tflite-micro")


@dataclass
class ArenaSearch:
    lo: int  # known to fail
    hi: int  # known to work (verified by the first worker)
    allocator_report: int | None = None


def _run_probe(model_path: Path, search: ArenaSearch, verify_hi: bool) -> int | None:
    """One worker run; narrows `search` and returns the size it was trying if the worker crashed."""
    cmd = [sys.executable, "-m", "unpu.boards.host_device", "--probe-arena", str(model_path),
           str(search.lo), str(search.hi), "--align", str(ARENA_ALIGN)] + (["--verify-hi"] if verify_hi else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    trying = None
    for line in proc.stdout.splitlines():
        word, _, value = line.partition(" ")
        if word == "try":
            trying = int(value)
        elif word == "ok":
            search.hi, trying = int(value), None
        elif word == "fail":
            search.lo, trying = int(value), None
        elif word == "unsupported":
            raise BoardError(f"TFLite Micro cannot run this model: {value}")
    report = re.search(r"Arena allocation total (\d+) bytes", proc.stderr)
    if report:
        search.allocator_report = int(report.group(1))
    if trying is None and proc.returncode != 0:
        raise BoardError(f"arena probe failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return trying


def min_arena(model_path: Path, upper: int) -> ArenaSearch:
    """Smallest arena (multiple of 16 B) with which TFLM allocates and invokes the model."""
    search = ArenaSearch(0, upper)
    verify = True
    for _ in range(64):
        crashed_at = _run_probe(model_path, search, verify)
        if crashed_at is None:
            return search
        if verify and crashed_at == upper:
            raise BoardError(f"TFLite Micro crashed loading the model with a {upper} B arena")
        verify = False
        search.lo = max(search.lo, crashed_at)  # a size that crashes the process does not work either
    raise BoardError("arena bisection did not converge")


class HostBoard(Board):
    source_latency = "measured"

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        cache = Cache(self.cfg.cache.dir)
        parts = {"model": model.digest, "tflm": _tflm_version(), "align": ARENA_ALIGN,
                 "code": source_digest("unpu.boards.host_device")}
        entry = cache.get_or_make("host_arena", parts, lambda d: self._find_arena(model))
        arena = int(entry.meta()["arena_bytes"])
        forced = self.board.get("arena_bytes")
        fw_digest = bytes_digest(f"{model.digest}:{arena}:{parts['tflm']}:{parts['code']}".encode())
        extra = {"arena_reported_by_allocator": entry.meta().get("allocator_report")}
        if self.cfg.model.post == "softmax":
            extra["softmax_model"] = self._softmax_model(model, workdir)
        return Firmware(
            image=model.path, digest=fw_digest, build_id=fw_digest[:12],
            arena_bytes=int(forced) if forced else arena,
            metrics={"memory/arena": arena, "memory/model": model.path.stat().st_size,
                     **({"memory/arena_tflm_report": report} if (report := entry.meta().get("allocator_report")) else {})},
            tags={"runtime": f"tflite-micro {parts['tflm']}", "arena.method": "bisection"},
            extra=extra,
        )

    def _softmax_model(self, model: QuantizedModel, workdir: Path) -> Path:
        from unpu.graph import inspect_tflite
        from unpu.postproc import softmax_model

        out = inspect_tflite(model.path.read_bytes()).outputs[0]
        length = 1
        for dim in out.shape:
            length *= int(dim)
        path = workdir / "post_softmax.tflite"
        path.write_bytes(softmax_model(length, out.dtype, out.scale, out.zero_point))
        return path

    def _find_arena(self, model: QuantizedModel) -> dict:
        upper = 16 * len(model.path.read_bytes()) + (1 << 20)
        t0 = time.monotonic()
        search = min_arena(model.path, upper)
        log.info("minimum TFLM arena for %s: %d B by bisection (allocator reports %s B; %.1f s)",
                 model.name, search.hi, search.allocator_report, time.monotonic() - t0)
        return {"arena_bytes": search.hi, "allocator_report": search.allocator_report, "upper_bound": upper}

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        import serial

        stderr_path = workdir / "device_stderr.log"
        cmd = [sys.executable, "-m", "unpu.boards.host_device", "--model", str(firmware.image),
               "--arena", str(firmware.arena_bytes), "--post", str(self.cfg.model.post),
               "--model-id", str(self.cfg.model.name), "--build-id", firmware.build_id,
               "--parent-pid", str(os.getpid())]
        softmax = firmware.extra.get("softmax_model")
        if softmax:
            cmd += ["--softmax-model", str(softmax)]
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        try:
            pty_path = _wait_for_pty(proc, stderr_path)
            port = serial.Serial(pty_path, baudrate=int(self.board.serial.baudrate), timeout=0.2)
            try:
                client = DutClient(port, float(self.cfg.bench.timeout_s), transcript,
                                   check_alive=lambda: _check_alive(proc, stderr_path))
                client.connect()
                yield client
            finally:
                port.close()
        finally:
            _stop(proc)
            firmware.artifacts["device/stderr.log"] = stderr_path


def _wait_for_pty(proc: subprocess.Popen, stderr_path: Path) -> str:
    return wait_for_line(proc, stderr_path, "pty ", START_TIMEOUT_S)


_check_alive = check_alive  # kept under their old names for callers and tests
_stop = stop
