"""Emulated Cortex-M boards: QEMU's Arm MPS2/MPS3 FPGA images (qemu_m55 = mps3-an547, qemu_m4 =
mps2-an386, ...), one adapter; the machine, clock and port come from the board YAML.

`build` generates C for the model (`unpu.codegen`) and builds it with the board's port Makefile
(firmware/ports/<firmware_port>: the portable harness, the codegen runner, the kernels, the CMSDK
family port) with Debian's arm-none-eabi-gcc, cached by the content of everything that went into
it. Memory comes from the ELF (pyelftools).

The device is QEMU with `-icount shift=0` (deterministic: 1 instruction = 1 ns of virtual time),
semihosting (the firmware's exit code is QEMU's) and the UART on a TCP chardev on 127.0.0.1 with
`nodelay=on`. The firmware reports SysTick ticks (QEMU's DWT cycle counter does not count): the
timebase turns them into instruction counts, and latency is those counts at the YAML's `cpu.clock_hz`,
assuming one instruction per cycle (`emulated`, tags `latency.method`, `latency.clock_hz`,
`latency.clock_basis`). That clock is not the QEMU machine's SysTick clock (the firmware's `info%`, which
only turns ticks into instructions): it is the clock of the real part the emulated core stands in for,
named by `cpu.clock_basis` (docs/emulated.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import field
from pathlib import Path
from typing import Iterator, List

from unpu.artifacts import Firmware, InstructionTimebase, QuantizedModel, Timebase
from unpu.boards.base import Board
from unpu.boards.firmware import (
    as_cflags,
    build_defines,
    firmware_digest,
    firmware_tree,
    generate_model,
    memory_metrics,
    kernel_variant,
    port_make_command,
    section_bytes,
    size_report,
    user_cflags,
)
from unpu.boards.process import DeviceProcess
from unpu.boards.spec import BoardSpec, EmulatedCpuSpec, ToolchainSpec
from unpu.cache import file_digest, key_of, source_digest
from unpu.errors import ToolError
from unpu.graph import inspect_tflite
from unpu.links import free_port, tcp
from unpu.protocol import SerialLike
from unpu.tools import run_logged

log = logging.getLogger(__name__)

BUILD_TIMEOUT_S = 600
TOOL_TIMEOUT_S = 30
START_TIMEOUT_S = 30
ARENA_SECTION = ".unpu_arena"
# tool -> Debian package that provides it
TOOLS = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "qemu-system-arm": "qemu-system-arm", "make": "make"}
# exit codes of the fault handlers in firmware/ports/family/arm_mps/startup.c
FAULTS = {70: "NMI", 71: "HardFault", 72: "MemManage fault", 73: "BusFault", 74: "UsageFault",
          75: "SecureFault", 76: "unexpected interrupt"}


class QemuToolchain(ToolchainSpec):
    cc: str = "arm-none-eabi-gcc"
    qemu_machine: str                     # qemu-system-arm -M


class QemuSpec(BoardSpec):
    cpu: EmulatedCpuSpec
    toolchain: QemuToolchain
    firmware_cflags: List[str] = field(default_factory=list)   # extra -DNAME[=VALUE] (tests: -DUNPU_TEST_HANG)


def check_tools() -> None:
    """ToolError naming the Debian package when the toolchain or QEMU is missing."""
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise ToolError(f"{tool} not found: install the Debian package {package} (make debian-packages)")
    nano = _run(["arm-none-eabi-gcc", "-print-file-name=nano.specs"]).strip()
    if not os.path.isabs(nano):
        raise ToolError("newlib-nano not found for arm-none-eabi-gcc: install the Debian package "
                        "libnewlib-arm-none-eabi (make debian-packages)")


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=True).stdout


class QemuBoard(Board):
    Spec = QemuSpec
    bit_exact = True

    @property
    def source_latency(self) -> str:
        return "emulated"

    def check_environment(self) -> None:
        check_tools()

    def timebase(self, firmware: Firmware) -> Timebase:
        return self.instruction_timebase()

    def instruction_timebase(self) -> InstructionTimebase:
        return InstructionTimebase(self.spec.cpu.clock_hz, self.spec.cpu.clock_basis)

    # -- build ---------------------------------------------------------------------------------
    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        gcc = _run(["arm-none-eabi-gcc", "--version"]).splitlines()[0]
        kernels = kernel_variant(self.spec.cpu)
        parts = {"model": model.digest, "post": self.context.post, "model_id": self.context.model_id,
                 "port": self.spec.firmware_port, "kernels": kernels,
                 "cflags": user_cflags(self.spec.firmware_cflags), "gcc": gcc,
                 "firmware": firmware_digest(),
                 "code": source_digest("unpu.codegen", "unpu.boards.qemu", "unpu.boards.firmware")}
        build_id = key_of(parts)[:12]
        entry = self.context.cache.get_or_make("qemu_firmware", parts, lambda d: self._build(model, d, build_id, gcc, kernels))
        elf = entry.file("app.elf")
        return Firmware(
            image=elf, digest=file_digest(elf), build_id=build_id, arena_bytes=int(entry.meta()["memory"]["memory/arena"]),
            metrics=dict(entry.meta()["memory"]),
            tags={"arena.method": "static plan (unpu.codegen)", "firmware.port": self.spec.firmware_port,
                  "kernels": kernels,
                  "firmware.cc": gcc, "firmware.build_id": build_id, "qemu.machine": self.spec.toolchain.qemu_machine,
                  "cache.firmware": "hit" if entry.hit else "miss",
                  **self.instruction_timebase().tags()},
            artifacts={"firmware/app.elf": elf, "firmware/size.txt": entry.file("size.txt"),
                       "firmware/app.map": entry.file("app.map"), "firmware/model.json": entry.file("model.json"),
                       "firmware/build.log": entry.file("build.log")})

    def _build(self, model: QuantizedModel, out: Path, build_id: str, gcc: str, kernels: str) -> dict:
        model_dir = out / "model"
        data = model.path.read_bytes()
        generate_model(data, model_dir)
        defines = build_defines(self.context, build_id, inspect_tflite(data).outputs[0])
        defines.pop("UNPU_BUILD_ID")   # the port's Makefile defines it from BUILD_ID
        build_dir = out / "build"
        cflags = as_cflags(defines, for_make=True) + user_cflags(self.spec.firmware_cflags)
        cmd = port_make_command(self.port_dir, {"BUILD_DIR": build_dir.name, "MODEL_DIR": model_dir.name,
                                                "BUILD_ID": build_id, "KERNELS": kernels,
                                                "EXTRA_CFLAGS": " ".join(cflags)})
        try:
            with firmware_tree(out):  # make sees relative paths only (unpu.boards.firmware)
                run_logged(cmd, out / "build.log", f"{self.spec.name} firmware build (make)", BUILD_TIMEOUT_S, cwd=out)
        except ToolError as exc:
            raise ToolError(str(exc).replace("the firmware does not fit", f"the firmware does not fit {self.spec.name}")) from None
        for name in ("app.elf", "app.map"):
            shutil.copy2(build_dir / name, out / name)
        shutil.copy2(model_dir / "model.json", out / "model.json")
        mem = memory_metrics(out / "app.elf")
        mem["memory/arena"] = section_bytes(out / "app.elf", ARENA_SECTION)
        header = (f"{self.spec.name} ({self.spec.toolchain.qemu_machine}) firmware {build_id}, {gcc}\n"
                  f"flash = text + rodata + data; ram = data + bss (incl. heap, stack and the arena {ARENA_SECTION})\n")
        (out / "size.txt").write_text(size_report(out / "app.elf", header) + f"{'memory/arena':<24}{mem['memory/arena']:>12}\n")
        shutil.rmtree(build_dir / "obj", ignore_errors=True)
        log.info("built %s firmware %s: flash %d B, ram %d B, arena %d B", self.spec.name, build_id,
                 mem["memory/flash"], mem["memory/ram"], mem["memory/arena"])
        return {"memory": mem}

    # -- run -----------------------------------------------------------------------------------
    def qemu_command(self, elf: Path, port: int) -> list[str]:
        return ["qemu-system-arm", "-M", self.spec.toolchain.qemu_machine, "-kernel", str(elf),
                "-nographic", "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
                "-chardev", f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
                "-serial", "chardev:s0", "-monitor", "none"]

    @contextmanager
    def device(self, firmware: Firmware, workdir: Path) -> Iterator[DeviceProcess]:
        log_path = workdir / "qemu.log"
        firmware.artifacts["device/qemu.log"] = log_path
        for attempt in range(3):  # the free port can be taken between probe and QEMU's bind
            port = free_port()
            process = DeviceProcess(self.qemu_command(firmware.image, port), log_path, "QEMU", faults=FAULTS)
            try:
                self._link = tcp(port, START_TIMEOUT_S, process.check_alive, "QEMU")
            except BaseException:
                process.stop()
                if attempt < 2 and process.log_contains("Address already in use"):
                    continue
                raise
            break
        with process:
            yield process

    def link(self, firmware: Firmware, process: DeviceProcess) -> SerialLike:
        return self._link
