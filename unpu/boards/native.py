"""The `native` board: the C firmware (harness + codegen runner + kernels) as a Linux process.

`build` generates the model's C with unpu.codegen and compiles it with the portable harness, the
int8 kernel library and firmware/ports/native/port.c using the host gcc, cached by the content hash
of every source, the compiler and the model digest. `open` starts the executable, which creates a
pty and announces it (`pty /dev/pts/N`), exactly like the host board's device process; from then
on it is the same DutClient over pyserial. Latency is the host CPU running the generated C.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.cfirmware import (FIRMWARE, HARNESS, KERNELS, generate_model, kernel_sources, memory_metrics,
                                   size_report, sources_digest)
from unpu.boards.process import check_alive, stop, wait_for_line
from unpu.cache import Cache, bytes_digest, source_digest

log = logging.getLogger(__name__)

PORT = FIRMWARE / "ports" / "native"
COMPILE_TIMEOUT_S = 600
START_TIMEOUT_S = 30
CFLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra"]
WHAT = "native firmware process"


def _cc_version(cc: str) -> str:
    if shutil.which(cc) is None:
        raise BoardError(f"the native board needs a C compiler: '{cc}' is not on PATH (Debian package gcc)")
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.splitlines()[0] if out.stdout else cc


def compile_native(model: bytes, out: Path, post: str, model_id: str, build_id: str,
                   cflags: list[str], cc: str = "gcc") -> dict:
    """Generate the model's C into out/gen and build out/firmware.elf; returns the build facts."""
    report, defines = generate_model(model, out / "gen", post)
    exe = out / "firmware.elf"
    cmd = [cc, *CFLAGS, *cflags, *defines, f'-DUNPU_MODEL_ID="{model_id}"', f'-DUNPU_BUILD_ID="{build_id}"',
           f"-I{HARNESS}", f"-I{KERNELS}", f"-I{out / 'gen'}", str(PORT / "port.c"), str(HARNESS / "unpu_harness.c"),
           str(HARNESS / "runner_codegen.c"), *map(str, kernel_sources()), str(out / "gen" / "model.c"),
           "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    (out / "build.log").write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BoardError(f"native firmware build failed: {proc.stderr.strip()[-600:]}")
    (out / "size_report.txt").write_text(size_report(exe))
    return {"arena_bytes": report["arena_bytes"], "weights_bytes": report["weights_bytes"], "post_defines": defines}


class NativeBoard(Board):
    bit_exact = True
    source_latency = "measured"

    def _parts(self, model: QuantizedModel) -> dict:
        cc = str(self.board.toolchain.get("cc") or "gcc")
        return {"model": model.digest, "sources": sources_digest(HARNESS, KERNELS, PORT),
                "codegen": source_digest("unpu.codegen", "unpu.boards.cfirmware", "unpu.boards.native"),
                "cc": cc, "cc_version": _cc_version(cc), "post": str(self.cfg.model.post),
                "model_id": str(self.cfg.model.name), "cflags": [str(f) for f in self.board.get("firmware_cflags") or []]}

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        parts = self._parts(model)
        digest = bytes_digest(repr(sorted(parts.items())).encode())
        build_id = digest[:12]
        entry = Cache(self.cfg.cache.dir).get_or_make("native_fw", parts, lambda d: compile_native(
            model.path.read_bytes(), d, parts["post"], parts["model_id"], build_id, parts["cflags"], parts["cc"]))
        meta = entry.meta()
        elf = entry.file("firmware.elf")
        return Firmware(
            image=elf, digest=digest, build_id=build_id, arena_bytes=int(meta["arena_bytes"]),
            metrics={**memory_metrics(elf), "memory/arena": meta["arena_bytes"],
                     "memory/weights": meta["weights_bytes"]},
            tags={"runtime": "unpu-codegen", "arena.method": "static plan (unpu.codegen)",
                  "cache.firmware": "hit" if entry.hit else "miss", "firmware.cc": parts["cc_version"]},
            artifacts={"firmware/firmware.elf": elf, "firmware/size_report.txt": entry.file("size_report.txt"),
                       "firmware/build.log": entry.file("build.log")},
        )

    @contextmanager
    def open(self, firmware: Firmware, transcript, workdir: Path) -> Iterator:
        import serial

        from unpu.protocol import DutClient

        stderr_path = workdir / "device_stderr.log"
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen([str(firmware.image)], stdout=subprocess.PIPE, stderr=stderr,
                                    start_new_session=True, cwd=workdir)
        try:
            pty_path = wait_for_line(proc, stderr_path, "pty ", START_TIMEOUT_S, WHAT)
            port = serial.Serial(pty_path, baudrate=int(self.board.serial.baudrate), timeout=0.2)
            try:
                client = DutClient(port, float(self.cfg.bench.timeout_s), transcript,
                                   check_alive=lambda: check_alive(proc, stderr_path, WHAT))
                client.connect()
                yield client
            finally:
                port.close()
        finally:
            stop(proc)
            firmware.artifacts["device/stderr.log"] = stderr_path

