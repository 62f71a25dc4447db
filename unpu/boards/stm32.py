"""STMicroelectronics boards over ST Edge AI Core: STM32N6 (Neural-ART NPU, `board=stm32n6`) and
STM32H7A3 (Cortex-M7, no NPU, `board=stm32h7a3`). One adapter; the target comes from the YAML
(`board.toolchain.stedgeai_target`). Sequence and sources: docs/vendors/st.md.

- compile: `stedgeai generate --target <t> --c-api st-ai [--st-neural-art <profile>]` (cached); its
  report gives weights, activations, the NPU memory pools and the epochs left to software.
- pre-flight: operators against the YAML's `stedgeai.supported_ops`, then the report's numbers
  against the YAML's memory limits (and, on the N6, where the weights land in external flash).
- build: the board port's Makefile (STM32Cube package + ST Edge AI runtime, arm-none-eabi-gcc);
  N6 only: the weights image to Intel-hex at its flash address (arm-none-eabi-objcopy) and the
  application signed for the boot ROM's FSBL (STM32_SigningTool_CLI).
- flash: STM32_Programmer_CLI over SWD (N6: with the board's external-flash loader), then the DUT
  protocol on the ST-LINK virtual COM port (board.port).
"""

from __future__ import annotations

import logging
from dataclasses import field
from pathlib import Path
from typing import List, Optional, Union


from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.base import Board, FlashStep
from unpu.boards.firmware import (
    build_defines,
    firmware_digest,
    memory_metrics,
    plain_paths,
    write_build_header,
    write_size_report,
)
from unpu.boards.spec import BoardSpec, MemorySpec, Spec, ToolchainSpec
from unpu.cache import file_digest, key_of
from unpu.compilers.stedgeai import (
    StEdgeAiOptions,
    StEdgeAiResult,
    check_version,
    find_stedgeai,
    generate_cached,
)
from unpu.errors import BoardError, ToolError
from unpu.graph import inspect_tflite
from unpu.tools import (
    FLASH_TIMEOUT_S,
    jobs,
    require_tool,
    run_logged,
)

log = logging.getLogger(__name__)

PROGRAMMER = "STM32_Programmer_CLI"
SIGNING_TOOL = "STM32_SigningTool_CLI"
GCC_HOW = "install the Arm GNU toolchain (or Debian's gcc-arm-none-eabi) and put it on PATH"


def _int(value: int | str) -> int:
    return int(value, 0) if isinstance(value, str) else int(value)


class StmToolchain(ToolchainSpec):
    cc: str = "arm-none-eabi-gcc"
    stedgeai_target: str                      # stedgeai --target
    neural_art: Optional[str] = None          # --st-neural-art argument (Neural-ART targets only)
    stedgeai_options: List[str] = field(default_factory=list)
    cube_name: str                            # the STM32Cube package the port builds on
    cube_marker: str                          # a file that package has
    external_loader: Optional[str] = None     # STM32CubeProgrammer ExternalLoader/ file (external flash)
    header_version: Optional[str] = None      # STM32_SigningTool_CLI -hv


class StEdgeAiSpec(Spec):
    ops_source: str
    supported_ops: List[str] = field(default_factory=list)
    forbidden_pools: List[str] = field(default_factory=list)   # stedgeai memory pools this board lacks


class FlashLayoutSpec(Spec):
    """External flash, memory-mapped at `base`: FSBL, signed application, weights."""

    base: Union[int, str]
    app: Union[int, str]
    weights_min: Union[int, str]
    weights_pool: str                         # the report's pool name for that flash
    weights_file: str                         # its memory initializer: <name>_atonbuf.<this>.raw


class StmMemory(MemorySpec):
    activation_region_bytes: Optional[int] = None   # the largest RAM region the activations may take
    weight_region_bytes: Optional[int] = None       # flash left for the weights


class Stm32Spec(BoardSpec):
    memory: StmMemory
    toolchain: StmToolchain
    stedgeai: StEdgeAiSpec
    flash_layout: Optional[FlashLayoutSpec] = None  # boards that boot from external flash (STM32N6)


class Stm32Board(Board):
    Spec = Stm32Spec

    # -- configuration -----------------------------------------------------------------------------
    @property
    def tc(self) -> StmToolchain:
        return self.spec.toolchain

    def stedgeai_options(self) -> StEdgeAiOptions:
        return StEdgeAiOptions(target=self.tc.stedgeai_target, neural_art=self.tc.neural_art,
                               extra=tuple(self.tc.stedgeai_options))

    # -- environment -------------------------------------------------------------------------------
    def stedgeai(self) -> str:
        return self.stedgeai_version()[0]

    def stedgeai_version(self) -> tuple[str, str]:
        """stedgeai and its version (checked once per adapter)."""
        def find() -> tuple[str, str]:
            exe = find_stedgeai(self.tool("stedgeai").var)
            return exe, check_version(exe)

        return self.memo("tool", "stedgeai", find)

    def cube_dir(self) -> Path:
        return self.tool_dir("cube", self.tc.cube_marker)

    def programmer(self) -> str:
        return self.tool_exe("programmer", PROGRAMMER)

    def signing_tool(self) -> str:
        return self.tool_exe("programmer", SIGNING_TOOL)

    def external_loader(self) -> Path:
        path = Path(self.programmer()).resolve().parent / "ExternalLoader" / str(self.tc.external_loader)
        if not path.is_file():
            raise ToolError(f"no external loader {path.name} in {path.parent}: install STM32CubeProgrammer >= 2.18 "
                            f"with STM32N6 support ({self.tool('programmer').url})")
        return path

    def fsbl(self) -> Path:
        path = self.tool_file("fsbl")
        if path is None:
            tool = self.tool("fsbl")
            raise ToolError(f"{tool.var} is not set: point it at {tool.what} ({tool.url})")
        return path

    def check_environment(self) -> None:
        self.stedgeai()
        require_tool(self.tc.cc, GCC_HOW)
        require_tool("arm-none-eabi-objcopy", GCC_HOW)
        require_tool("make", "install the Debian package make")
        self.cube_dir()
        self.programmer()
        if self.spec.flash_layout is not None:
            self.signing_tool()
            self.external_loader()
            self.fsbl()
        self.require_port()

    # -- pre-flight --------------------------------------------------------------------------------
    def compile(self, model: QuantizedModel) -> StEdgeAiResult:
        """stedgeai generate for this model (cached on disk, memoised per job)."""
        exe, version = self.stedgeai_version()
        return self.memo("stedgeai", model.digest, lambda: generate_cached(
            exe, model.path, model.digest, self.stedgeai_options(), version, self.context.cache))

    def preflight(self, model: QuantizedModel) -> None:
        super().preflight(model)
        self.check_operators(model)
        self.check_memory(model.name, self.compile(model).report)

    def check_operators(self, model: QuantizedModel) -> None:
        supported = set(self.spec.stedgeai.supported_ops)
        for op in inspect_tflite(model.path.read_bytes()).ops:
            if op.op not in supported:
                raise BoardError(f"{model.name}: operator #{op.index} {op.op} is not supported by stedgeai for "
                                 f"{self.spec.name} (board.stedgeai.supported_ops, from {self.spec.stedgeai.ops_source})")

    def check_memory(self, name: str, report) -> None:
        limits, board = self.spec.memory, self.spec.name
        act_limit = limits.npu_data_bytes or limits.activation_region_bytes
        if report.activations is not None and act_limit and report.activations > act_limit:
            raise BoardError(f"{name} does not fit {board}: stedgeai needs {report.activations:,} B of activations, "
                             f"the largest region it can use has {act_limit:,} B")
        weight_limit = limits.weight_region_bytes
        if report.weights is not None and weight_limit and report.weights > weight_limit:
            raise BoardError(f"{name} does not fit {board}: stedgeai needs {report.weights:,} B of weights, "
                             f"the flash left for them has {weight_limit:,} B")
        for pool in report.pools:
            if pool.used and pool.name in set(self.spec.stedgeai.forbidden_pools):
                raise BoardError(f"{name} does not fit {board}: stedgeai puts {pool.used:,} B in memory pool "
                                 f"{pool.name}, which this board does not have (board.stedgeai.forbidden_pools)")
        if self.spec.flash_layout is not None:
            self._check_weight_ranges(name, report)

    def _check_weight_ranges(self, name: str, report) -> None:
        """N6: the weights' external-flash range must lie in the flash, after the FSBL and application."""
        layout = self.spec.flash_layout
        lo, hi = _int(layout.weights_min), _int(layout.base) + int(self.spec.memory.flash_bytes)
        for pool, spans in report.used_ranges.items():
            if pool != layout.weights_pool:
                continue
            for start, end in spans:
                if start < lo or end > hi:
                    raise BoardError(f"{name}: stedgeai puts weights at 0x{start:08X}-0x{end:08X} in {pool}; on "
                                     f"{self.spec.name} they must lie in 0x{lo:08X}-0x{hi:08X} (the FSBL and the "
                                     f"application use the flash below): give board.toolchain.neural_art a profile "
                                     f"whose mpool starts the {pool} pool at or after 0x{lo:08X}")

    # -- build -------------------------------------------------------------------------------------
    def build_defines(self, model: QuantizedModel, build_id: str) -> dict[str, str]:
        info = inspect_tflite(model.path.read_bytes())
        inp, out = info.inputs[0], info.outputs[0]
        return {**build_defines(self.context, build_id, out), "UNPU_INPUT_BYTES": str(inp.nbytes),
                "UNPU_OUTPUT_SCALE": f"{float(out.scale or 1.0)!r}f", "UNPU_OUTPUT_ZERO_POINT": str(int(out.zero_point or 0)),
                "UNPU_BAUDRATE": str(self.spec.serial.baudrate)}

    def make_command(self, gen_dir: Path, build_dir: Path, build_h: Path) -> list[str]:
        return plain_paths(["make", "-C", str(self.port_dir), jobs(), f"CUBE_DIR={self.cube_dir()}",
                            f"STEDGEAI_DIR={Path(self.stedgeai()).resolve().parents[2]}", f"GEN_DIR={gen_dir}",
                            f"BUILD_DIR={build_dir}", f"BUILD_H={build_h}"])

    def hex_command(self, raw: Path, address: int, out: Path) -> list[str]:
        """A raw memory initializer as Intel-hex at its flash address (as ST's N6 model scripts do)."""
        return ["arm-none-eabi-objcopy", "-I", "binary", str(raw), "--change-addresses", f"0x{address:08X}",
                "-O", "ihex", str(out)]

    def sign_command(self, app_bin: Path, out: Path) -> list[str]:
        """The application as the FSBL loads it: ST's signed header, no key (`-nk`), type ssbl."""
        return [self.signing_tool(), "-bin", str(app_bin), "-nk", "-t", "ssbl", "-hv", str(self.tc.header_version),
                "-o", str(out)]

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        gen = self.compile(model)
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = key_of({"model": model.digest, "gen": repr(gen.options), "stedgeai": gen.version,
                           "fw": firmware_digest()})[:12]
        defines = self.build_defines(model, build_id)
        build_h = write_build_header(out / "unpu_build.h", defines)
        log_path = out / "build.log"
        run_logged(self.make_command(gen.out_dir, out / "build", build_h), log_path, f"{self.spec.name} firmware build")
        elf = out / "build" / "app.elf"
        size = write_size_report(elf, out / "size.txt")
        fw = Firmware(image=elf, digest=file_digest(elf), build_id=build_id,
                      metrics={**memory_metrics(elf), **gen.metrics()},
                      tags={**gen.tags(), "firmware.port": self.spec.firmware_port, "firmware.build_id": build_id,
                            "cache.stedgeai": "hit" if gen.cache_hit else "miss"},
                      artifacts={"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": log_path,
                                 f"compiler/{gen.report_path.name}": gen.report_path})
        if self.spec.flash_layout is not None:
            self._external_flash_images(fw, gen, out, log_path)
        return fw

    def _external_flash_images(self, fw: Firmware, gen: StEdgeAiResult, out: Path, log_path: Path) -> None:
        """Signed application + weights as Intel-hex at the address the report gives them."""
        layout = self.spec.flash_layout
        signed = out / "app_sign.bin"
        run_logged(self.sign_command(out / "build" / "app.bin", signed), log_path, SIGNING_TOOL)
        fw.files["signed_app"] = signed
        fw.artifacts["firmware/app_sign.bin"] = signed
        spans = gen.report.used_ranges.get(layout.weights_pool) or []
        raws = [p for p in gen.memory_initializers() if f".{layout.weights_file}." in p.name]
        if spans and raws:
            weights = out / "network_data.hex"
            run_logged(self.hex_command(raws[0], spans[0][0], weights), log_path, "arm-none-eabi-objcopy (weights)")
            fw.files["weights_hex"] = weights
            fw.artifacts[f"firmware/{weights.name}"] = weights

    # -- flash and run -----------------------------------------------------------------------------
    def flash_commands(self, firmware: Firmware) -> list[list[str]]:
        prog = self.programmer()
        if self.spec.flash_layout is None:   # internal flash: the ELF carries its addresses
            return [[prog, "-c", "port=SWD", "-w", str(firmware.image), "-v", "-rst"]]
        connect = [prog, "-c", "port=SWD", "mode=HOTPLUG", "-el", str(self.external_loader()), "-hardRst"]
        app = f"0x{_int(self.spec.flash_layout.app):08X}"
        commands = [connect + ["-w", str(self.fsbl())], connect + ["-w", str(firmware.files["signed_app"]), app]]
        if "weights_hex" in firmware.files:
            commands.append(connect + ["-w", str(firmware.files["weights_hex"])])
        return commands

    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        return [FlashStep(cmd, f"{PROGRAMMER} {' '.join(cmd[-2:])}", timeout_s=FLASH_TIMEOUT_S)
                for cmd in self.flash_commands(firmware)]

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        super().flash(firmware, workdir)
        if self.spec.flash_layout is not None:
            log.warning("%s: set the boot switches to boot from flash and reset the board (waiting %s s)",
                        self.spec.name, self.spec.serial.timeout_s)
