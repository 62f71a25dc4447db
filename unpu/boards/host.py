"""The `host` board: TFLite Micro (tflite-micro package) in a device process behind a pty.

`build` finds the exact minimum tensor arena by bisection in worker subprocesses (TFLM can crash
the process on a too-small arena) and caches it per model digest. The device is
`unpu.boards.host_device`, which announces the pty it serves the DUT protocol on; the link is that
pty through pyserial, exactly as a board's UART.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Optional

from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.base import Board
from unpu.boards.firmware import c_model_id
from unpu.boards.process import DeviceProcess
from unpu.boards.spec import BoardSpec
from unpu.cache import bytes_digest, source_digest
from unpu.errors import BoardError
from unpu.graph import inspect_tflite
from unpu.links import serial_port
from unpu.postproc import softmax_model
from unpu.protocol import SerialLike

log = logging.getLogger(__name__)

ARENA_ALIGN = 16
PROBE_TIMEOUT_S = 300
START_TIMEOUT_S = 60
DEVICE = "unpu.boards.host_device"


def tflm_version() -> str:
    return version("tflite-micro")


@dataclass
class ArenaSearch:
    lo: int  # known to fail
    hi: int  # known to work (verified by the first worker)
    allocator_report: int | None = None


def _run_probe(model_path: Path, search: ArenaSearch, verify_hi: bool) -> int | None:
    """One worker run; narrows `search` and returns the size it was trying if the worker crashed."""
    cmd = [sys.executable, "-m", DEVICE, "--probe-arena", str(model_path),
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


def _find_arena(model: QuantizedModel) -> dict:
    upper = 16 * model.path.stat().st_size + (1 << 20)
    t0 = time.monotonic()
    search = min_arena(model.path, upper)
    log.info("minimum TFLM arena for %s: %d B by bisection (allocator reports %s B; %.1f s)",
             model.name, search.hi, search.allocator_report, time.monotonic() - t0)
    return {"arena_bytes": search.hi, "allocator_report": search.allocator_report, "upper_bound": upper}


def tflm_arena(model: QuantizedModel, cache) -> tuple[int, int | None, bool]:
    """(minimum TFLM arena with the reference kernels, TFLM's own allocation report, cache hit), found
    once per model and TFLM version (the ESP32-S3 board sizes its arena from the same entry)."""
    parts = {"model": model.digest, "tflm": tflm_version(), "align": ARENA_ALIGN, "code": source_digest(DEVICE)}
    entry = cache.get_or_make("host_arena", parts, lambda d: _find_arena(model))
    meta = entry.meta()
    return int(meta["arena_bytes"]), meta.get("allocator_report"), entry.hit


class HostSpec(BoardSpec):
    arena_bytes: Optional[int] = None     # force a TFLM arena size; null: the minimum found by bisection


class HostBoard(Board):
    Spec = HostSpec

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        arena, report, _ = tflm_arena(model, self.context.cache)
        runtime = tflm_version()
        digest = bytes_digest(f"{model.digest}:{arena}:{runtime}:{source_digest(DEVICE)}".encode())
        files = {"model": model.path}
        if self.context.post == "softmax":
            files["softmax_model"] = self._softmax_model(model, workdir)
        metrics = {"memory/arena": arena, "memory/model": model.path.stat().st_size}
        if report:
            metrics["memory/arena_tflm_report"] = report
        return Firmware(image=model.path, digest=digest, build_id=digest[:12],
                        arena_bytes=self.spec.arena_bytes or arena, metrics=metrics,
                        tags={"runtime.version": f"tflite-micro {runtime}", "arena.method": "bisection"},
                        files=files)

    def _softmax_model(self, model: QuantizedModel, workdir: Path) -> Path:
        out = inspect_tflite(model.path.read_bytes()).outputs[0]
        path = workdir / "post_softmax.tflite"
        path.write_bytes(softmax_model(out.elements, out.dtype, out.scale, out.zero_point))
        return path

    def device(self, firmware: Firmware, workdir: Path) -> DeviceProcess:
        cmd = [sys.executable, "-m", DEVICE, "--model", str(firmware.image), "--arena", str(firmware.arena_bytes),
               "--post", self.context.post, "--model-id", c_model_id(self.context.model_id),
               "--build-id", firmware.build_id, "--parent-pid", str(os.getpid())]
        if "softmax_model" in firmware.files:
            cmd += ["--softmax-model", str(firmware.files["softmax_model"])]
        firmware.artifacts["device/stderr.log"] = workdir / "device_stderr.log"
        return DeviceProcess(cmd, workdir / "device_stderr.log", "host device process", stdout="pipe")

    def link(self, firmware: Firmware, process: DeviceProcess) -> SerialLike:
        return serial_port(process.read_line("pty ", START_TIMEOUT_S), self.spec.serial.baudrate)
