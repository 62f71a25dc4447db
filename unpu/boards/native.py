"""The `native` board: the C firmware (harness + codegen runner + kernels) as a Linux process.

`build` generates the model's C with unpu.codegen and compiles it with the portable harness, the
int8 kernel library and the board's port (firmware/ports/<firmware_port>) using the host C compiler,
cached by the content of every source, the compiler and the model digest. The process creates a pty
and announces it (`pty /dev/pts/N`), exactly like the host board's device process; from then on it
is the same DutClient over pyserial. Latency is the host CPU running the generated C.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import field
from pathlib import Path
from typing import List

from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.base import PORTS, Board
from unpu.boards.firmware import (
    HARNESS,
    KERNELS,
    as_cflags,
    build_defines,
    firmware_digest,
    generate_model,
    kernel_sources,
    memory_metrics,
    user_cflags,
    write_size_report,
)
from unpu.boards.process import DeviceProcess
from unpu.boards.spec import BoardSpec, ToolchainSpec
from unpu.cache import file_digest, key_of, source_digest
from unpu.errors import ToolError
from unpu.graph import inspect_tflite
from unpu.links import serial_port
from unpu.protocol import SerialLike

log = logging.getLogger(__name__)

POSIX = PORTS / "family" / "posix"       # the Linux user-space family (link, timer, idle, exit)
COMMON = PORTS / "common"
COMPILE_TIMEOUT_S = 600
START_TIMEOUT_S = 30
CFLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra"]
WHAT = "native firmware process"


class NativeToolchain(ToolchainSpec):
    cc: str = "gcc"


class NativeSpec(BoardSpec):
    toolchain: NativeToolchain
    firmware_cflags: List[str] = field(default_factory=list)   # extra -DNAME[=VALUE] (tests: -DUNPU_TEST_HANG)


def cc_version(cc: str) -> str:
    if shutil.which(cc) is None:
        raise ToolError(f"the native board needs a C compiler: '{cc}' is not on PATH (Debian package gcc)")
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.splitlines()[0] if out.stdout else cc


def compile_native(model: bytes, out: Path, defines: dict[str, str], cflags: list[str], cc: str, port_dir: Path) -> dict:
    """The model's C (unpu.codegen) in out/gen, built with the harness, the kernels and the port into
    out/firmware.elf; returns the codegen report's arena and weight bytes."""
    report = generate_model(model, out / "gen")
    exe = out / "firmware.elf"
    cmd = [cc, *CFLAGS, *cflags, *as_cflags(defines), f"-I{HARNESS}", f"-I{KERNELS}", f"-I{POSIX}", f"-I{out / 'gen'}",
           str(port_dir / "port.c"), str(POSIX / "posix_port.c"), str(COMMON / "port_defaults.c"),
           str(HARNESS / "unpu_harness.c"), str(HARNESS / "runner_codegen.c"), *map(str, kernel_sources()),
           str(out / "gen" / "model.c"), "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    (out / "build.log").write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise ToolError(f"native firmware build failed: {proc.stderr.strip()[-600:]}")
    write_size_report(exe, out / "size_report.txt")
    return {"arena_bytes": report["arena_bytes"], "weights_bytes": report["weights_bytes"]}


class NativeBoard(Board):
    Spec = NativeSpec
    bit_exact = True

    def check_environment(self) -> None:
        cc_version(self.spec.toolchain.cc)

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        cc = self.spec.toolchain.cc
        parts = {"model": model.digest, "sources": firmware_digest(),
                 "codegen": source_digest("unpu.codegen", "unpu.boards.firmware", "unpu.boards.native"),
                 "cc": cc, "cc_version": cc_version(cc), "post": self.context.post, "model_id": self.context.model_id,
                 "cflags": user_cflags(self.spec.firmware_cflags)}
        build_id = key_of(parts)[:12]
        entry = self.context.cache.get_or_make("native_fw", parts, lambda d: self._compile(model, d, build_id))
        elf = entry.file("firmware.elf")
        return Firmware(
            image=elf, digest=file_digest(elf), build_id=build_id, arena_bytes=int(entry.meta()["arena_bytes"]),
            metrics={**memory_metrics(elf), "memory/arena": entry.meta()["arena_bytes"],
                     "memory/weights": entry.meta()["weights_bytes"]},
            tags={"arena.method": "static plan (unpu.codegen)", "cache.firmware": "hit" if entry.hit else "miss",
                  "firmware.cc": parts["cc_version"]},
            artifacts={"firmware/firmware.elf": elf, "firmware/size_report.txt": entry.file("size_report.txt"),
                       "firmware/build.log": entry.file("build.log")})

    def _compile(self, model: QuantizedModel, out: Path, build_id: str) -> dict:
        data = model.path.read_bytes()
        defines = build_defines(self.context, build_id, inspect_tflite(data).outputs[0])
        return compile_native(data, out, defines, user_cflags(self.spec.firmware_cflags), self.spec.toolchain.cc,
                              self.port_dir)

    def device(self, firmware: Firmware, workdir: Path) -> DeviceProcess:
        firmware.artifacts["device/stderr.log"] = workdir / "device_stderr.log"
        return DeviceProcess([str(firmware.image)], workdir / "device_stderr.log", WHAT, stdout="pipe", cwd=workdir)

    def link(self, firmware: Firmware, process: DeviceProcess) -> SerialLike:
        return serial_port(process.read_line("pty ", START_TIMEOUT_S), self.spec.serial.baudrate)
