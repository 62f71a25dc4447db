"""STMicroelectronics boards over ST Edge AI Core: STM32N6 (Neural-ART NPU, `board=stm32n6`) and
STM32H7A3 (Cortex-M7, no NPU, `board=stm32h7a3`). One adapter; the target comes from the YAML
(`board.toolchain.stedgeai_target`). Sequence and sources: docs/vendors/st.md.

- compile: `stedgeai generate --target <t> --c-api st-ai [--st-neural-art <profile>]` (cached); its
  report gives weights, activations, the NPU memory pools and the epochs left to software.
- pre-flight: operators against the YAML's `stedgeai.supported_ops`, then the report's numbers
  against the YAML's memory limits (and, on the N6, where the weights land in external flash).
- build: firmware/ports/<port>/Makefile (STM32Cube package + ST Edge AI runtime, arm-none-eabi-gcc);
  N6 only: the weights image to Intel-hex at its flash address (arm-none-eabi-objcopy) and the
  application signed for the boot ROM's FSBL (STM32_SigningTool_CLI).
- flash: STM32_Programmer_CLI over SWD (N6: with the board's external-flash loader), then the DUT
  protocol on the ST-LINK virtual COM port (board.port).
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.toolchain import (FLASH_TIMEOUT_S, c_string, require_dir, require_port, require_tool,
                                   run_logged, run_with_retry, serial_link, tool_from_env, write_build_header)
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
PROGRAMMER = "STM32_Programmer_CLI"
SIGNING_TOOL = "STM32_SigningTool_CLI"
PROGRAMMER_ENV = "STM32_PRG_PATH"   # STM32CubeProgrammer's bin directory
PROGRAMMER_URL = "https://www.st.com/en/development-tools/stm32cubeprog.html"
GCC_HOW = "install the Arm GNU toolchain (or Debian's gcc-arm-none-eabi) and put it on PATH"


def _int(value) -> int:
    return int(value, 0) if isinstance(value, str) else int(value)


class Stm32Board(Board):
    source_latency = "measured"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._compiled: dict[str, object] = {}
        self._version: str | None = None

    # -- configuration -----------------------------------------------------------------------------
    @property
    def tc(self):
        return self.board.toolchain

    @property
    def npu(self) -> bool:
        return self.board.get("npu") is not None

    def stedgeai_options(self):
        from unpu.compilers.stedgeai import StEdgeAiOptions

        return StEdgeAiOptions(target=str(self.tc.stedgeai_target),
                               neural_art=None if self.tc.get("neural_art") is None else str(self.tc.neural_art),
                               extra=tuple(str(x) for x in (self.tc.get("stedgeai_options") or [])))

    # -- environment -------------------------------------------------------------------------------
    def stedgeai(self) -> str:
        from unpu.compilers.stedgeai import check_version, find_stedgeai

        exe = find_stedgeai(str(self.tc.sdk_env))
        if self._version is None:
            self._version = check_version(exe)
        return exe

    def cube_dir(self) -> Path:
        return require_dir(str(self.tc.cube_env), f"an {self.tc.cube_name} checkout ({self.tc.cube_url})",
                           str(self.tc.cube_marker))

    def programmer(self) -> str:
        return tool_from_env(PROGRAMMER_ENV, PROGRAMMER, f"install STM32CubeProgrammer ({PROGRAMMER_URL}) and set "
                                                         f"{PROGRAMMER_ENV} to its bin directory")

    def signing_tool(self) -> str:
        return tool_from_env(PROGRAMMER_ENV, SIGNING_TOOL, f"it comes with STM32CubeProgrammer ({PROGRAMMER_URL}); "
                                                           f"set {PROGRAMMER_ENV} to its bin directory")

    def external_loader(self) -> Path:
        path = Path(self.programmer()).resolve().parent / "ExternalLoader" / str(self.tc.external_loader)
        if not path.is_file():
            raise BoardError(f"no external loader {path.name} in {path.parent}: install STM32CubeProgrammer >= 2.18 "
                             f"with STM32N6 support ({PROGRAMMER_URL})")
        return path

    def fsbl(self) -> Path:
        var = str(self.tc.fsbl_env)
        value = os.environ.get(var)
        if not value:
            raise BoardError(f"{var} is not set: point it at the first-stage boot loader image (.hex) that loads "
                             f"the application from external flash ({self.tc.fsbl_url})")
        path = Path(value).expanduser()
        if not path.is_file():
            raise BoardError(f"{var}={value} does not exist")
        return path

    def check_environment(self) -> None:
        self.stedgeai()
        require_tool("arm-none-eabi-gcc", GCC_HOW)
        require_tool("arm-none-eabi-objcopy", GCC_HOW)
        require_tool("make", "install the Debian package make")
        self.cube_dir()
        self.programmer()
        if self.npu:
            self.signing_tool()
            self.external_loader()
            self.fsbl()
        require_port(self.board)

    # -- pre-flight --------------------------------------------------------------------------------
    def compile(self, model: QuantizedModel):
        """stedgeai generate for this model (cached on disk, memoised per job)."""
        if model.digest not in self._compiled:
            from unpu.cache import Cache
            from unpu.compilers.stedgeai import generate_cached

            exe = self.stedgeai()
            self._compiled[model.digest] = generate_cached(exe, model.path, model.digest, self.stedgeai_options(),
                                                           str(self._version), Cache(self.cfg.cache.dir))
        return self._compiled[model.digest]

    def preflight(self, model: QuantizedModel) -> None:
        super().preflight(model)
        self.check_operators(model)
        self.check_memory(model.name, self.compile(model).report)

    def check_operators(self, model: QuantizedModel) -> None:
        from unpu.graph import inspect_tflite

        supported = set(self.board.stedgeai.supported_ops)
        for op in inspect_tflite(model.path.read_bytes()).ops:
            if op.op not in supported:
                raise BoardError(f"{model.name}: operator #{op.index} {op.op} is not supported by stedgeai for "
                                 f"{self.board.name} (board.stedgeai.supported_ops, from {self.board.stedgeai.ops_source})")

    def check_memory(self, name: str, report) -> None:
        limits, board = self.board.memory, self.board.name
        act_limit = limits.get("npu_data_bytes") or limits.get("activation_region_bytes")
        if report.activations is not None and act_limit and report.activations > act_limit:
            raise BoardError(f"{name} does not fit {board}: stedgeai needs {report.activations:,} B of activations, "
                             f"the largest region it can use has {int(act_limit):,} B")
        weight_limit = limits.get("weight_region_bytes")
        if report.weights is not None and weight_limit and report.weights > weight_limit:
            raise BoardError(f"{name} does not fit {board}: stedgeai needs {report.weights:,} B of weights, "
                             f"the flash left for them has {int(weight_limit):,} B")
        for pool in report.pools:
            if pool.used and pool.name in set(self.board.stedgeai.get("forbidden_pools") or []):
                raise BoardError(f"{name} does not fit {board}: stedgeai puts {pool.used:,} B in memory pool "
                                 f"{pool.name}, which this board does not have (board.stedgeai.forbidden_pools)")
        if self.npu:
            self._check_weight_ranges(name, report)

    def _check_weight_ranges(self, name: str, report) -> None:
        """N6: the weights' external-flash range must lie in the flash, after the FSBL and application."""
        layout = self.board.flash_layout
        lo, hi = _int(layout.weights_min), _int(layout.base) + int(self.board.memory.flash_bytes)
        for pool, spans in report.used_ranges.items():
            if pool != layout.weights_pool:
                continue
            for start, end in spans:
                if start < lo or end > hi:
                    raise BoardError(f"{name}: stedgeai puts weights at 0x{start:08X}-0x{end:08X} in {pool}; on "
                                     f"{self.board.name} they must lie in 0x{lo:08X}-0x{hi:08X} (the FSBL and the "
                                     f"application use the flash below): give board.toolchain.neural_art a profile "
                                     f"whose mpool starts the {pool} pool at or after 0x{lo:08X}")

    # -- build -------------------------------------------------------------------------------------
    def build_defines(self, model: QuantizedModel, build_id: str) -> dict[str, str]:
        from unpu import stages
        from unpu.graph import inspect_tflite

        info = inspect_tflite(model.path.read_bytes())
        inp, out = info.inputs[0], info.outputs[0]
        elems = 1
        for dim in inp.shape:
            elems *= max(int(dim), 1)
        size = {"int8": 1, "uint8": 1, "int16": 2}.get(inp.dtype, 4)
        defines = {"UNPU_MODEL_ID": c_string(re.sub(r"[^A-Za-z0-9_.-]", "_", stages.model_id(self.cfg))[:64] or "model"),
                   "UNPU_BUILD_ID": c_string(build_id), "UNPU_INPUT_BYTES": str(elems * size),
                   "UNPU_OUTPUT_SCALE": f"{float(out.scale or 1.0)!r}f", "UNPU_OUTPUT_ZERO_POINT": str(int(out.zero_point or 0)),
                   "UNPU_BAUDRATE": str(int(self.board.serial.baudrate))}
        if str(self.cfg.model.get("post", "none")) == "softmax" and out.dtype == "int8" and out.scale:
            from unpu.codegen.reader import softmax_gemmlowp_params

            p = softmax_gemmlowp_params(1.0, float(out.scale))
            defines.update({"UNPU_POST_SOFTMAX": "1", "UNPU_SOFTMAX_MULTIPLIER": str(p["input_multiplier"]),
                            "UNPU_SOFTMAX_LEFT_SHIFT": str(p["input_left_shift"]),
                            "UNPU_SOFTMAX_DIFF_MIN": str(p["diff_min"])})
        return defines

    def make_command(self, gen_dir: Path, build_dir: Path, build_h: Path) -> list[str]:
        return ["make", "-C", str(FIRMWARE / "ports" / str(self.board.firmware_port)),
                f"-j{min(os.cpu_count() or 1, 8)}", f"CUBE_DIR={self.cube_dir()}",
                f"STEDGEAI_DIR={Path(self.stedgeai()).resolve().parents[2]}", f"GEN_DIR={gen_dir}",
                f"BUILD_DIR={build_dir}", f"BUILD_H={build_h}"]

    def hex_command(self, raw: Path, address: int, out: Path) -> list[str]:
        """A raw memory initializer as Intel-hex at its flash address (as ST's N6 model scripts do)."""
        return ["arm-none-eabi-objcopy", "-I", "binary", str(raw), "--change-addresses", f"0x{address:08X}",
                "-O", "ihex", str(out)]

    def sign_command(self, app_bin: Path, out: Path) -> list[str]:
        """The application as the FSBL loads it: ST's signed header, no key (`-nk`), type ssbl."""
        return [self.signing_tool(), "-bin", str(app_bin), "-nk", "-t", "ssbl", "-hv", str(self.tc.header_version),
                "-o", str(out)]

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        from unpu.boards.cfirmware import memory_metrics, size_report, sources_digest
        from unpu.cache import file_digest, key_of

        gen = self.compile(model)
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = key_of({"model": model.digest, "gen": repr(gen.options), "stedgeai": gen.version,
                           "fw": sources_digest(FIRMWARE / "harness", FIRMWARE / "kernels",
                                                FIRMWARE / "ports" / str(self.board.firmware_port))})[:12]
        defines = self.build_defines(model, build_id)
        build_h = write_build_header(out / "unpu_build.h", defines)
        log_path = out / "build.log"
        run_logged(self.make_command(gen.out_dir, out / "build", build_h), log_path, f"{self.board.name} firmware build")
        elf = out / "build" / "app.elf"
        size = out / "size.txt"
        size.write_text(size_report(elf))
        fw = Firmware(image=elf, digest=file_digest(elf), build_id=build_id,
                      metrics={**memory_metrics(elf), **gen.metrics()},
                      tags={**gen.tags(), "runtime": "stedgeai st-ai", "firmware.port": str(self.board.firmware_port),
                            "firmware.build_id": build_id, "cache.stedgeai": "hit" if gen.cache_hit else "miss",
                            "flash.tool": PROGRAMMER},
                      artifacts={"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": log_path,
                                 f"compiler/{gen.report_path.name}": gen.report_path})
        if self.npu:
            self._n6_images(fw, gen, out, log_path)
        return fw

    def _n6_images(self, fw: Firmware, gen, out: Path, log_path: Path) -> None:
        """Signed application + weights as Intel-hex at the address the report gives them."""
        layout = self.board.flash_layout
        signed = out / "app_sign.bin"
        run_logged(self.sign_command(out / "build" / "app.bin", signed), log_path, "STM32_SigningTool_CLI")
        spans = gen.report.used_ranges.get(str(layout.weights_pool)) or []
        raws = [p for p in gen.memory_initializers() if f".{layout.weights_file}." in p.name]
        hexes = []
        if spans and raws:
            hexes.append(out / "network_data.hex")
            run_logged(self.hex_command(raws[0], spans[0][0], hexes[0]), log_path, "arm-none-eabi-objcopy (weights)")
        fw.extra.update({"signed_app": signed, "weights_hex": hexes})
        fw.artifacts["firmware/app_sign.bin"] = signed
        for path in hexes:
            fw.artifacts[f"firmware/{path.name}"] = path

    # -- flash and run -----------------------------------------------------------------------------
    def flash_commands(self, firmware: Firmware) -> list[list[str]]:
        prog = self.programmer()
        if not self.npu:   # internal flash: the ELF carries its addresses
            return [[prog, "-c", "port=SWD", "-w", str(firmware.image), "-v", "-rst"]]
        connect = [prog, "-c", "port=SWD", "mode=HOTPLUG", "-el", str(self.external_loader()), "-hardRst"]
        app = f"0x{_int(self.board.flash_layout.app):08X}"
        return ([connect + ["-w", str(self.fsbl())], connect + ["-w", str(firmware.extra["signed_app"]), app]]
                + [connect + ["-w", str(h)] for h in firmware.extra["weights_hex"]])

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        flash_log = workdir / "flash.log"
        for cmd in self.flash_commands(firmware):
            run_with_retry(cmd, flash_log, f"{PROGRAMMER} {' '.join(cmd[-2:])}", FLASH_TIMEOUT_S)
        firmware.artifacts["device/flash.log"] = flash_log
        if self.npu:
            log.warning("%s: set the boot switches to boot from flash and reset the board (waiting %s s)",
                        self.board.name, self.board.serial.timeout_s)

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        self.check_environment()
        self.flash(firmware, workdir)
        with serial_link(self.board, self.cfg, transcript) as client:
            yield client
