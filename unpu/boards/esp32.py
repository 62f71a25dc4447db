"""Espressif ESP32-S3 (ESP32-S3-DevKitC-1): TFLite Micro with ESP-NN kernels on the Xtensa LX7, no NPU.

Environment (checked before any work, one line naming what is missing): ESP-IDF >= 5.1 exported
in the shell unpu runs from (`. $IDF_PATH/export.sh`: IDF_PATH set, `idf.py` and
`xtensa-esp32s3-elf-gcc` on PATH), esptool (ESPTOOL, else `esptool.py`/`esptool` on PATH) when
board.flash_tool is esptool, and board.port.

Build: the board's port (an ESP-IDF project) is copied into the job's work directory with
the build's defines (main/unpu_build.h), the model as C data (main/model_data.c), the Kconfig
settings derived from the board YAML (sdkconfig.unpu) and a partition table (partitions.csv);
then `idf.py set-target esp32s3` and `idf.py build` (unpu.compilers.esp_tflm has every command).
The IDF Component Manager fetches espressif/esp-tflite-micro and esp-nn at the first build
(online, or from its cache / a pre-populated managed_components); unpu downloads nothing.

Arena: TFLM's exact minimum for the model with reference kernels (the host board's bisection,
same cache) + an upper bound of the ESP-NN kernels' scratch + board.esp.arena_margin_bytes.

Flash: esptool `write_flash @flash_args` from the build directory (or `idf.py -p PORT flash`),
with one retry, then the DUT protocol on board.port after the board has booted.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.base import FIRMWARE, Board, FlashStep
from unpu.boards.firmware import (
    build_defines,
    firmware_digest,
    memory_metrics,
    write_build_header,
    write_model_c,
    write_size_report,
)
from unpu.boards.host import tflm_arena
from unpu.boards.spec import BoardSpec, MemorySpec, SerialSpec, Spec, ToolchainSpec
from unpu.boards.tflm_firmware import runner_ops
from unpu.cache import file_digest, key_of
from unpu.compilers import esp_tflm
from unpu.errors import BoardError, ToolError
from unpu.graph import GraphInfo, inspect_tflite
from unpu.tools import require_tool, run_logged, tool_version

log = logging.getLogger(__name__)

PROJECT_NAME = "unpu_esp32s3"         # project() in the port's CMakeLists.txt
VERSION_TIMEOUT_S = 60
LINKS = {"uart": 0, "usb_serial_jtag": 1}


class EspToolchain(ToolchainSpec):
    cc: str = "xtensa-esp32s3-elf-gcc"
    idf_py: str = "idf.py"


class EspSerial(SerialSpec):
    link: str = "uart"        # uart: UART0 via the USB-UART bridge; usb_serial_jtag: the chip's own USB
    uart: int = 0
    boot_s: float = 2.0       # after flashing, before the port opens


class EspOptions(Spec):
    """ESP32-S3 firmware options (pins: GPIO numbers)."""

    flash_baud: int = 460800
    core: int = 1             # the core the benchmark task is pinned to
    idle: str = "wait"        # wait | light_sleep
    psram: Optional[str] = None       # null | quad | octal
    arena_in_psram: bool = False
    sram_reserved_bytes: int          # internal SRAM IDF, caches and FreeRTOS take (pre-flight budget)
    firmware_base_bytes: int          # the app image without the model (flash pre-flight)
    arena_margin_bytes: int


class EspMemory(MemorySpec):
    psram_bytes: int = 0


class Esp32S3Spec(BoardSpec):
    memory: EspMemory
    toolchain: EspToolchain
    serial: EspSerial
    esp: EspOptions


class Esp32S3Board(Board):
    Spec = Esp32S3Spec

    def __init__(self, spec: Esp32S3Spec, context) -> None:
        super().__init__(spec, context)
        self._arena: dict[str, int] = {}
        if spec.flash_tool not in ("esptool", "idf.py"):
            raise BoardError(f"board.flash_tool must be esptool or idf.py, got {spec.flash_tool!r}")
        if spec.serial.link not in LINKS:
            raise BoardError(f"board.serial.link must be one of {', '.join(LINKS)}, got {spec.serial.link!r}")

    @property
    def esp(self) -> EspOptions:
        return self.spec.esp

    # -- environment -------------------------------------------------------------------------------
    def check_environment(self) -> None:
        env = self.tool("sdk")
        self.tool_dir("sdk", "tools/idf.py")
        idf_py = self.idf_py()
        version = esp_tflm.parse_idf_version(tool_version(esp_tflm.idf_version_command(idf_py), r"(.+)",
                                                          "idf.py", VERSION_TIMEOUT_S))
        if version < esp_tflm.MIN_IDF:
            raise ToolError(f"ESP-IDF v{version[0]}.{version[1]} is too old: esp-tflite-micro needs ESP-IDF >= "
                            f"{'.'.join(map(str, esp_tflm.MIN_IDF))} ({env.url})")
        require_tool(self.spec.toolchain.cc, f"run `. ${env.var}/export.sh` (after `${env.var}/install.sh esp32s3`) "
                                             f"in the shell that runs unpu ({env.url})")
        if self.spec.flash_tool == "esptool":
            tool_version([self.esptool(), "version"], r"(\d+\.\d+(?:\.\d+)?)", "esptool", VERSION_TIMEOUT_S)
        self.require_port()
        self._psram()

    def idf_py(self) -> str:
        env = self.tool("sdk")
        return require_tool(self.spec.toolchain.idf_py, f"run `. ${env.var}/export.sh` in the shell that runs unpu "
                                                        f"({env.url})")

    def esptool(self) -> str:
        """$ESPTOOL, else esptool.py or esptool on PATH."""
        named = self.tool_file("esptool", executable=True)
        found = named or shutil.which("esptool.py") or shutil.which("esptool")
        if found is None:
            tool = self.tool("esptool")
            raise ToolError(f"esptool not found ({tool.var} unset, neither esptool.py nor esptool on PATH): {tool.url}")
        return str(found)

    def _psram(self) -> str | None:
        if self.esp.arena_in_psram and not self.esp.psram:
            raise BoardError("board.esp.arena_in_psram needs board.esp.psram (quad or octal) and memory.psram_bytes")
        return self.esp.psram

    # -- pre-flight --------------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        info = inspect_tflite(model.path.read_bytes())
        missing = esp_tflm.unsupported_layers(info.ops, runner_ops())
        if missing:
            raise BoardError(f"{model.name} has operators the esp-tflite-micro runner does not register: "
                             f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''} "
                             f"(registered: {', '.join(sorted(runner_ops()))})")
        self._check_flash(model, info.size_bytes)
        self._check_ram(model, self.arena_bytes(model), _io_bytes(info))

    def _check_flash(self, model: QuantizedModel, size: int) -> None:
        flash = int(self.spec.memory.flash_bytes)
        partition = esp_tflm.app_partition_bytes(flash)
        base = self.esp.firmware_base_bytes
        if size + base > partition:
            raise BoardError(f"{model.name} does not fit {self.spec.name}'s flash: {size:,} B of model + "
                             f"{base:,} B of firmware (board.esp.firmware_base_bytes) > {partition:,} B app "
                             f"partition ({flash:,} B flash)")

    def _check_ram(self, model: QuantizedModel, arena: int, io: int) -> None:
        mem = self.spec.memory
        if self.esp.arena_in_psram:
            psram = mem.psram_bytes
            if arena > psram:
                raise BoardError(f"{model.name} does not fit {self.spec.name}: arena {arena:,} B > "
                                 f"{psram:,} B PSRAM (memory.psram_bytes)")
            arena = 0
        reserved = self.esp.sram_reserved_bytes
        budget = int(mem.sram_bytes) - reserved
        need = arena + io
        if need > budget:
            raise BoardError(f"{model.name} does not fit {self.spec.name}'s SRAM: arena {arena:,} B + input/output "
                             f"copies {io:,} B = {need:,} B > {budget:,} B ({int(mem.sram_bytes):,} B internal SRAM - "
                             f"{reserved:,} B board.esp.sram_reserved_bytes)")

    def arena_bytes(self, model: QuantizedModel) -> int:
        """TFLM's minimum arena with reference kernels + the ESP-NN scratch bound + the margin (1 KiB steps)."""
        if model.digest not in self._arena:
            base = self._reference_arena(model)
            scratch = esp_tflm.esp_nn_scratch_bound(model.path.read_bytes())
            raw = base + scratch + self.esp.arena_margin_bytes
            self._arena[model.digest] = (raw + 1023) // 1024 * 1024
            log.info("%s: ESP32-S3 arena %d B = %d (TFLM reference kernels, bisection) + %d (ESP-NN scratch bound) "
                     "+ margin, rounded", model.name, self._arena[model.digest], base, scratch)
        return self._arena[model.digest]

    def _reference_arena(self, model: QuantizedModel) -> int:
        """The host board's bisection (same cache entry: a model is bisected once for both boards)."""
        return tflm_arena(model, self.context.cache)[0]

    # -- build -------------------------------------------------------------------------------------
    def _idf_defines(self, project: Path) -> dict[str, str]:
        """-D options of every idf.py call (the same on each, so CMake never reconfigures differently)."""
        return {"UNPU_FW_ROOT": str(FIRMWARE),
                "SDKCONFIG_DEFAULTS": f"{project / 'sdkconfig.defaults'};{project / 'sdkconfig.unpu'}"}

    def build_commands(self, idf_py: str, project: Path, build: Path) -> list[list[str]]:
        defines = self._idf_defines(project)
        return [esp_tflm.idf_command(idf_py, project, build, defines, "set-target", esp_tflm.TARGET),
                esp_tflm.idf_command(idf_py, project, build, defines, "build")]

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        out = workdir / "firmware"
        project, build = out / "project", out / "project" / "build"
        arena = self.arena_bytes(model)
        build_id = key_of({"model": model.digest, "arena": arena, "port": self.spec.firmware_port,
                           "board": self._board_key(), "firmware": firmware_digest()})[:12]
        defines = self.build_defines(model, arena, build_id)
        self.stage(project, model, defines)
        build_log = out / "build.log"
        idf_py = self.idf_py()
        for cmd, what in zip(self.build_commands(idf_py, project, build), ("idf.py set-target", "idf.py build")):
            run_logged(cmd, build_log, what)
        try:
            size = esp_tflm.parse_app_size(build_log.read_text(errors="replace"))
        except esp_tflm.EspError as exc:
            raise BoardError(str(exc)) from None
        return self._firmware(model, build, build_id, defines, build_log, size)

    def _board_key(self) -> dict:
        return {k: asdict(getattr(self.spec, k)) for k in ("cpu", "memory", "serial", "esp")} | {
            "flash_tool": self.spec.flash_tool}

    def build_defines(self, model: QuantizedModel, arena: int, build_id: str) -> dict[str, str]:
        """unpu_build.h: the runner's defines (runner_tflm.cc) and the port's (port.c)."""
        info = inspect_tflite(model.path.read_bytes())
        pins, serial = self.spec.pins, self.spec.serial
        defines = {**build_defines(self.context, build_id, info.outputs[0]),
                   "UNPU_TFLM_ARENA_SIZE": str(arena),
                   "UNPU_TFLM_INPUT_CAPACITY": str(info.inputs[0].nbytes),
                   "UNPU_ESP_LINK": str(LINKS[serial.link]),
                   "UNPU_ESP_UART": str(serial.uart),
                   "UNPU_ESP_BAUDRATE": str(serial.baudrate),
                   "UNPU_ESP_PIN_TIMESTAMP": str(_pin(pins.timestamp)),
                   "UNPU_ESP_PIN_STAGE": str(_pin(pins.stage)),
                   "UNPU_ESP_CORE": str(self.esp.core),
                   "UNPU_ESP_IDLE_LIGHT_SLEEP": "1" if self.esp.idle == "light_sleep" else "0"}
        if self.esp.arena_in_psram:
            defines["UNPU_ARENA_ATTR"] = "EXT_RAM_BSS_ATTR"
        return defines

    def stage(self, project: Path, model: QuantizedModel, defines: dict[str, str]) -> None:
        """A private copy of the ESP-IDF project with this build's generated files (IDF writes its
        sdkconfig and managed_components into the project directory, never into the repository)."""
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(self.port_dir, project, ignore=shutil.ignore_patterns("build", "sdkconfig", "sdkconfig.old",
                                                                         "managed_components", "dependencies.lock"))
        header = write_build_header(project / "main" / "unpu_build.h", defines)
        if "UNPU_ARENA_ATTR" in defines:  # EXT_RAM_BSS_ATTR comes from esp_attr.h
            with open(header, "a") as f:
                f.write('#include "esp_attr.h"\n')
        write_model_c(project / "main" / "model_data.c", model.path.read_bytes())
        mem = self.spec.memory
        try:
            (project / "sdkconfig.unpu").write_text(esp_tflm.sdkconfig_unpu(
                float(self.spec.cpu.clock_hz), int(mem.flash_bytes), self.spec.serial.baudrate, self.spec.serial.link,
                self._psram()))
            (project / "partitions.csv").write_text(esp_tflm.partitions_csv(int(mem.flash_bytes)))
        except esp_tflm.EspError as exc:
            raise BoardError(str(exc)) from None

    def _firmware(self, model: QuantizedModel, build: Path, build_id: str, defines: dict[str, str],
                  build_log: Path, size: esp_tflm.AppSize | None) -> Firmware:
        elf, image = build / f"{PROJECT_NAME}.elf", build / f"{PROJECT_NAME}.bin"
        for path in (elf, image, build / "flash_args"):
            if not path.is_file():
                raise BoardError(f"idf.py build finished without {path.relative_to(build.parent)} (see firmware/build.log)")
        report = write_size_report(elf, build_log.parent / "size.txt")
        nn, ref = esp_tflm.kernel_split(inspect_tflite(model.path.read_bytes()).ops)
        arena = int(defines["UNPU_TFLM_ARENA_SIZE"])
        metrics = {**memory_metrics(elf), "memory/arena": float(arena), **(size.metrics() if size else {})}
        tags = {"firmware.port": self.spec.firmware_port,
                "firmware.build_id": build_id, "esp.link": self.spec.serial.link,
                "esp.esp_nn_ops": ",".join(nn) or "none", "esp.reference_ops": ",".join(ref) or "none",
                "arena.method": "TFLM bisection (reference kernels) + ESP-NN scratch upper bound + margin (not measured)",
                "arena.location": "psram" if self.esp.arena_in_psram else "internal sram"}
        return Firmware(image=image, digest=file_digest(image), build_id=build_id, arena_bytes=arena,
                        metrics=metrics, tags=tags,
                        artifacts={"firmware/app.elf": elf, "firmware/app.bin": image, "firmware/size.txt": report,
                                   "firmware/build.log": build_log, "firmware/flash_args": build / "flash_args",
                                   "firmware/sdkconfig": build.parent / "sdkconfig"},
                        files={"build_dir": build, "project_dir": build.parent})

    # -- flash and run -----------------------------------------------------------------------------
    def flash_command(self, firmware: Firmware) -> tuple[list[str], Path]:
        """The flashing command and the directory it runs in."""
        port, baud = self.require_port(), self.esp.flash_baud
        build = firmware.files["build_dir"]
        if self.spec.flash_tool == "esptool":
            return esp_tflm.esptool_flash_command(self.esptool(), port, baud), build
        project = firmware.files["project_dir"]
        return esp_tflm.idf_flash_command(self.idf_py(), project, build, self._idf_defines(project), port, baud), project

    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        cmd, cwd = self.flash_command(firmware)
        return [FlashStep(cmd, f"{self.spec.flash_tool} flash", cwd=cwd)]

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        super().flash(firmware, workdir)
        time.sleep(self.spec.serial.boot_s)   # the board resets after flashing: let its ROM/bootloader lines pass


def _pin(value: int | None) -> int:
    return -1 if value is None else int(value)


def _io_bytes(info: GraphInfo) -> int:
    """The runner's copies outside the arena: the input buffer and the int8 output (twice with softmax)."""
    return info.inputs[0].nbytes + 2 * info.outputs[0].nbytes
