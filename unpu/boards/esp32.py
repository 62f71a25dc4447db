"""Espressif ESP32-S3 (ESP32-S3-DevKitC-1): TFLite Micro with ESP-NN kernels on the Xtensa LX7, no NPU.

Environment (checked before any work, one line naming what is missing): ESP-IDF >= 5.1 exported
in the shell unpu runs from (`. $IDF_PATH/export.sh`: IDF_PATH set, `idf.py` and
`xtensa-esp32s3-elf-gcc` on PATH), esptool (ESPTOOL, else `esptool.py`/`esptool` on PATH) when
board.flash_tool is esptool, and board.port.

Build: firmware/ports/esp32s3 (an ESP-IDF project) is copied into the job's work directory with
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
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.toolchain import (c_string, require_dir, require_port, require_tool, run_logged,
                                   run_with_retry, serial_link, tool_version, write_build_header, write_model_c)
from unpu.compilers import esp_tflm
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
PORT_DIR = FIRMWARE / "ports" / "esp32s3"
PROJECT_NAME = "unpu_esp32s3"         # project() in firmware/ports/esp32s3/CMakeLists.txt
IDF_URL = "https://docs.espressif.com/projects/esp-idf/en/stable/esp32s3/get-started/"
ESPTOOL_URL = "https://github.com/espressif/esptool (pip install esptool, or ESP-IDF's export.sh)"
VERSION_TIMEOUT_S = 60
LINKS = {"uart": 0, "usb_serial_jtag": 1}


class Esp32S3Board(Board):
    source_latency = "measured"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._arena: dict[str, int] = {}

    # -- settings from the YAML --------------------------------------------------------------------
    @property
    def esp(self):
        return self.board.get("esp") or {}

    @property
    def toolchain(self):
        return self.board.toolchain

    @property
    def flash_tool(self) -> str:
        tool = str(self.board.get("flash_tool") or "esptool")
        if tool not in ("esptool", "idf.py"):
            raise BoardError(f"board.flash_tool must be esptool or idf.py, got {tool!r}")
        return tool

    @property
    def link(self) -> str:
        return str(self.board.serial.get("link") or "uart")

    # -- environment -------------------------------------------------------------------------------
    def check_environment(self) -> None:
        env = str(self.toolchain.get("sdk_env") or "IDF_PATH")
        require_dir(env, f"an ESP-IDF >= {'.'.join(map(str, esp_tflm.MIN_IDF))} checkout, exported with "
                         f"`. ${env}/export.sh` ({IDF_URL})", "tools/idf.py")
        idf_py = self.idf_py()
        version = esp_tflm.parse_idf_version(tool_version(esp_tflm.idf_version_command(idf_py), r"(.+)",
                                                          "idf.py", VERSION_TIMEOUT_S))
        if version < esp_tflm.MIN_IDF:
            raise BoardError(f"ESP-IDF v{version[0]}.{version[1]} is too old: esp-tflite-micro needs ESP-IDF >= "
                             f"{'.'.join(map(str, esp_tflm.MIN_IDF))} ({IDF_URL})")
        require_tool(str(self.toolchain.cc), f"run `. ${env}/export.sh` (after `$IDF_PATH/install.sh esp32s3`) "
                                             f"in the shell that runs unpu ({IDF_URL})")
        if self.flash_tool == "esptool":
            esptool = self.esptool()
            tool_version([esptool, "version"], r"(\d+\.\d+(?:\.\d+)?)", "esptool", VERSION_TIMEOUT_S)
        require_port(self.board)
        self._psram()

    def idf_py(self) -> str:
        exe = str(self.toolchain.get("idf_py") or "idf.py")
        return require_tool(exe, f"run `. $IDF_PATH/export.sh` in the shell that runs unpu ({IDF_URL})")

    def esptool(self) -> str:
        var = str(self.toolchain.get("esptool_env") or "ESPTOOL")
        if os.environ.get(var):
            path = Path(os.environ[var]).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise BoardError(f"{var}={path} is not an executable esptool ({ESPTOOL_URL})")
            return str(path)
        for exe in ("esptool.py", "esptool"):
            if shutil.which(exe):
                return str(shutil.which(exe))
        raise BoardError(f"esptool not found ({var} unset, neither esptool.py nor esptool on PATH): {ESPTOOL_URL}")

    def _psram(self) -> str | None:
        mode = self.esp.get("psram")
        if self.esp.get("arena_in_psram") and not mode:
            raise BoardError("board.esp.arena_in_psram needs board.esp.psram (quad or octal) and memory.psram_bytes")
        return str(mode) if mode else None

    # -- pre-flight --------------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        from unpu.graph import inspect_tflite

        data = model.path.read_bytes()
        info = inspect_tflite(data)
        missing = esp_tflm.unsupported_layers(info.ops, esp_tflm.runner_ops())
        if missing:
            raise BoardError(f"{model.name} has operators the esp-tflite-micro runner does not register: "
                             f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''} "
                             f"(registered: {', '.join(sorted(esp_tflm.runner_ops()))})")
        self._check_flash(model, len(data))
        self._check_ram(model, self.arena_bytes(model), _io_bytes(info))

    def _check_flash(self, model: QuantizedModel, size: int) -> None:
        flash = int(self.board.memory.flash_bytes)
        partition = esp_tflm.app_partition_bytes(flash)
        base = int(self.esp.get("firmware_base_bytes") or 0)
        if size + base > partition:
            raise BoardError(f"{model.name} does not fit {self.board.name}'s flash: {size:,} B of model + "
                             f"{base:,} B of firmware (board.esp.firmware_base_bytes) > {partition:,} B app "
                             f"partition ({flash:,} B flash)")

    def _check_ram(self, model: QuantizedModel, arena: int, io: int) -> None:
        mem = self.board.memory
        if self.esp.get("arena_in_psram"):
            psram = int(mem.get("psram_bytes") or 0)
            if arena > psram:
                raise BoardError(f"{model.name} does not fit {self.board.name}: arena {arena:,} B > "
                                 f"{psram:,} B PSRAM (memory.psram_bytes)")
            arena = 0
        reserved = int(self.esp.get("sram_reserved_bytes") or 0)
        budget = int(mem.sram_bytes) - reserved
        need = arena + io
        if need > budget:
            raise BoardError(f"{model.name} does not fit {self.board.name}'s SRAM: arena {arena:,} B + input/output "
                             f"copies {io:,} B = {need:,} B > {budget:,} B ({int(mem.sram_bytes):,} B internal SRAM - "
                             f"{reserved:,} B board.esp.sram_reserved_bytes)")

    def arena_bytes(self, model: QuantizedModel) -> int:
        """TFLM's minimum arena with reference kernels + the ESP-NN scratch bound + the margin (1 KiB steps)."""
        if model.digest not in self._arena:
            base = self._reference_arena(model)
            scratch = esp_tflm.esp_nn_scratch_bound(model.path.read_bytes())
            raw = base + scratch + int(self.esp.get("arena_margin_bytes") or 0)
            self._arena[model.digest] = (raw + 1023) // 1024 * 1024
            log.info("%s: ESP32-S3 arena %d B = %d (TFLM reference kernels, bisection) + %d (ESP-NN scratch bound) "
                     "+ margin, rounded", model.name, self._arena[model.digest], base, scratch)
        return self._arena[model.digest]

    def _reference_arena(self, model: QuantizedModel) -> int:
        """The host board's bisection (same cache entry: a model is bisected once for both boards)."""
        from unpu.boards.host import ARENA_ALIGN, HostBoard, _tflm_version
        from unpu.cache import Cache, source_digest

        parts = {"model": model.digest, "tflm": _tflm_version(), "align": ARENA_ALIGN,
                 "code": source_digest("unpu.boards.host_device")}
        host = HostBoard(self.cfg)
        entry = Cache(self.cfg.cache.dir).get_or_make("host_arena", parts, lambda d: host._find_arena(model))
        return int(entry.meta()["arena_bytes"])

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
        from unpu.boards.cfirmware import sources_digest
        from unpu.cache import key_of

        out = workdir / "firmware"
        project, build = out / "project", out / "project" / "build"
        arena = self.arena_bytes(model)
        build_id = key_of({"model": model.digest, "arena": arena, "port": "esp32s3", "board": self._board_key(),
                           "firmware": sources_digest(FIRMWARE / "harness", FIRMWARE / "kernels", PORT_DIR)})[:12]
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
        from omegaconf import OmegaConf

        keep = ("cpu", "memory", "serial", "esp", "flash_tool")
        return {k: OmegaConf.to_container(self.board[k], resolve=True) if OmegaConf.is_config(self.board.get(k))
                else self.board.get(k) for k in keep}

    def build_defines(self, model: QuantizedModel, arena: int, build_id: str) -> dict[str, str]:
        """unpu_build.h: the runner's defines (runner_tflm.cc) and the port's (port.c)."""
        from unpu import stages
        from unpu.graph import inspect_tflite

        info = inspect_tflite(model.path.read_bytes())
        pins = self.esp.get("pins") or {}
        defines = {"UNPU_MODEL_ID": c_string(re.sub(r"[^A-Za-z0-9_.-]", "_", stages.model_id(self.cfg))[:64] or "model"),
                   "UNPU_BUILD_ID": c_string(build_id),
                   "UNPU_TFLM_ARENA_SIZE": str(arena),
                   "UNPU_TFLM_INPUT_CAPACITY": str(_tensor_bytes(info.inputs[0])),
                   "UNPU_ESP_LINK": str(LINKS.get(self.link, 0)),
                   "UNPU_ESP_UART": str(int(self.board.serial.get("uart") or 0)),
                   "UNPU_ESP_BAUDRATE": str(int(self.board.serial.baudrate)),
                   "UNPU_ESP_PIN_TIMESTAMP": str(_pin(pins.get("timestamp"))),
                   "UNPU_ESP_PIN_STAGE": str(_pin(pins.get("stage"))),
                   "UNPU_ESP_CORE": str(int(self.esp.get("core", 1))),
                   "UNPU_ESP_IDLE_LIGHT_SLEEP": "1" if self.esp.get("idle") == "light_sleep" else "0"}
        if self.esp.get("arena_in_psram"):
            defines["UNPU_ARENA_ATTR"] = "EXT_RAM_BSS_ATTR"
        defines.update(_softmax_defines(self.cfg, info.outputs[0]))
        return defines

    def stage(self, project: Path, model: QuantizedModel, defines: dict[str, str]) -> None:
        """A private copy of the ESP-IDF project with this build's generated files (IDF writes its
        sdkconfig and managed_components into the project directory, never into the repository)."""
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(PORT_DIR, project, ignore=shutil.ignore_patterns("build", "sdkconfig", "sdkconfig.old",
                                                                         "managed_components", "dependencies.lock"))
        header = write_build_header(project / "main" / "unpu_build.h", defines)
        if "UNPU_ARENA_ATTR" in defines:  # EXT_RAM_BSS_ATTR comes from esp_attr.h
            with open(header, "a") as f:
                f.write('#include "esp_attr.h"\n')
        write_model_c(project / "main" / "model_data.c", model.path.read_bytes())
        mem = self.board.memory
        try:
            (project / "sdkconfig.unpu").write_text(esp_tflm.sdkconfig_unpu(
                float(self.board.cpu.clock_hz), int(mem.flash_bytes), int(self.board.serial.baudrate), self.link,
                self._psram()))
            (project / "partitions.csv").write_text(esp_tflm.partitions_csv(int(mem.flash_bytes)))
        except esp_tflm.EspError as exc:
            raise BoardError(str(exc)) from None

    def _firmware(self, model: QuantizedModel, build: Path, build_id: str, defines: dict[str, str],
                  build_log: Path, size: esp_tflm.AppSize | None) -> Firmware:
        from unpu.boards.cfirmware import memory_metrics, size_report
        from unpu.cache import file_digest
        from unpu.graph import inspect_tflite

        elf, image = build / f"{PROJECT_NAME}.elf", build / f"{PROJECT_NAME}.bin"
        for path in (elf, image, build / "flash_args"):
            if not path.is_file():
                raise BoardError(f"idf.py build finished without {path.relative_to(build.parent)} (see firmware/build.log)")
        report = build_log.parent / "size.txt"
        report.write_text(size_report(elf))
        nn, ref = esp_tflm.kernel_split(inspect_tflite(model.path.read_bytes()).ops)
        arena = int(defines["UNPU_TFLM_ARENA_SIZE"])
        metrics = {**memory_metrics(elf), "memory/arena": float(arena), **(size.metrics() if size else {})}
        tags = {"runtime": "esp-tflite-micro (TFLM + ESP-NN)", "firmware.port": "esp32s3",
                "firmware.build_id": build_id, "flash.tool": self.flash_tool, "esp.link": self.link,
                "esp.esp_nn_ops": ",".join(nn) or "none", "esp.reference_ops": ",".join(ref) or "none",
                "arena.method": "TFLM bisection (reference kernels) + ESP-NN scratch upper bound + margin (not measured)",
                "arena.location": "psram" if self.esp.get("arena_in_psram") else "internal sram"}
        return Firmware(image=image, digest=file_digest(image), build_id=build_id, arena_bytes=arena,
                        metrics=metrics, tags=tags,
                        artifacts={"firmware/app.elf": elf, "firmware/app.bin": image, "firmware/size.txt": report,
                                   "firmware/build.log": build_log, "firmware/flash_args": build / "flash_args",
                                   "firmware/sdkconfig": build.parent / "sdkconfig"},
                        extra={"build_dir": build, "project_dir": build.parent})

    # -- flash and run -----------------------------------------------------------------------------
    def flash_command(self, firmware: Firmware) -> tuple[list[str], Path]:
        """The flashing command and the directory it runs in."""
        port, baud = require_port(self.board), int(self.esp.get("flash_baud") or 460800)
        build = Path(firmware.extra["build_dir"])
        if self.flash_tool == "esptool":
            return esp_tflm.esptool_flash_command(self.esptool(), port, baud), build
        project = Path(firmware.extra["project_dir"])
        return esp_tflm.idf_flash_command(self.idf_py(), project, build, self._idf_defines(project), port, baud), project

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        cmd, cwd = self.flash_command(firmware)
        flash_log = workdir / "flash.log"
        run_with_retry(cmd, flash_log, f"{self.flash_tool} flash", cwd=cwd)
        firmware.artifacts["device/flash.log"] = flash_log

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        self.flash(firmware, workdir)
        # the board resets after flashing: let its ROM/bootloader lines pass before the link opens
        time.sleep(float(self.board.serial.get("boot_s") or 2.0))
        with serial_link(self.board, self.cfg, transcript) as client:
            yield client


def _pin(value) -> int:
    return -1 if value is None else int(value)


_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "float32": 4, "int32": 4}


def _tensor_bytes(tensor) -> int:
    count = 1
    for dim in tensor.shape:
        count *= max(int(dim), 1)
    return count * _SIZES.get(tensor.dtype, 4)


def _io_bytes(info) -> int:
    """The runner's copies outside the arena: the input buffer and the int8 output (twice with softmax)."""
    return _tensor_bytes(info.inputs[0]) + 2 * _tensor_bytes(info.outputs[0])


def _softmax_defines(cfg, out) -> dict[str, str]:
    if str(cfg.model.get("post", "none")) != "softmax" or out.dtype != "int8" or not out.scale:
        return {}
    from unpu.codegen.reader import softmax_gemmlowp_params

    p = softmax_gemmlowp_params(1.0, float(out.scale))
    return {"UNPU_POST_SOFTMAX": "1", "UNPU_SOFTMAX_MULTIPLIER": str(p["input_multiplier"]),
            "UNPU_SOFTMAX_LEFT_SHIFT": str(p["input_left_shift"]), "UNPU_SOFTMAX_DIFF_MIN": str(p["diff_min"])}
