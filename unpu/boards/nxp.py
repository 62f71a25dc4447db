"""NXP MCX N947 (Cortex-M33 + eIQ Neutron N1-16 NPU) on the FRDM-MCXN947, hardware adapter.

Compile: the eIQ Neutron converter (`neutron-converter --input M.tflite --output M_npu.tflite
--target mcxn94x`, unpu.compilers.neutron) replaces the NPU-supported subgraphs by `NeutronGraph`
custom operators; the rest stays for TFLite Micro on the M33.

Build: firmware/ports/mcxn947/CMakeLists.txt, configured with the MCUXpresso SDK's own armgcc
toolchain file as the SDK's armgcc build scripts do (`cmake -DCMAKE_TOOLCHAIN_FILE=
$MCUX_SDK/tools/cmake_toolchain_files/armgcc.cmake -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=release`
then make; armgcc.cmake reads ARMGCC_DIR). It compiles the C harness, the port, the Neutron runner
(firmware/harness/runner_tflm.cc built with -DUNPU_NEUTRON) and the SDK's startup, system, clock and Neutron TFLM
kernel sources, and links the SDK's prebuilt TFLM (libtflm.a) and Neutron driver/firmware libraries.

Flash: NXP LinkServer over the board's MCU-Link probe (`LinkServer flash MCXN947:FRDM-MCXN947 load
app.elf`), one retry; then the DUT protocol on the MCU-Link VCOM port (board.port).
"""

from __future__ import annotations

import logging
import os
from dataclasses import field
from pathlib import Path
from typing import Dict, List, Optional


from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.base import Board, FlashStep
from unpu.boards.firmware import plain_paths, write_build_header, write_model_c
from unpu.boards.spec import BoardSpec, MemorySpec, Spec, ToolchainSpec
from unpu.boards.tflm_firmware import (
    build_id_of,
    firmware_record,
    runner_ops,
    tflm_defines,
)
from unpu.compilers.neutron import (
    NeutronError,
    NeutronOptions,
    NeutronResult,
    compile_model,
)
from unpu.errors import BoardError, ToolError
from unpu.graph import GraphInfo, inspect_tflite
from unpu.tools import (
    FLASH_TIMEOUT_S,
    jobs,
    require_tool,
    run_logged,
    tool_version,
)

log = logging.getLogger(__name__)

# Files of an MCUXpresso SDK 2.x package for FRDM-MCXN947 (paths as the SDK's manifests place them)
SDK_FILES = {
    "toolchain file": "tools/cmake_toolchain_files/armgcc.cmake",
    "device header": "devices/MCXN947/MCXN947_cm33_core0.h",
    "startup": "devices/MCXN947/gcc/startup_MCXN947_cm33_core0.S",
    "TFLM library": "middleware/eiq/tensorflow-lite/lib/cm33/armgcc/libtflm.a",
    "Neutron TFLM kernel": "middleware/eiq/tensorflow-lite/tensorflow/lite/micro/kernels/neutron/neutron.cpp",
}
# The Neutron driver/firmware libraries: middleware/eiq/neutron in the newer SDK repos, under
# tensorflow-lite/third_party/neutron in older packages.
NEUTRON_DIRS = ("middleware/eiq/neutron", "middleware/eiq/tensorflow-lite/third_party/neutron")
NEUTRON_LIBS = ("mcxn/libNeutronDriver.a", "mcxn/libNeutronFirmware.a", "driver/include/NeutronDriver.h")
CMAKE_TIMEOUT_S = 300


class NxpToolchain(ToolchainSpec):
    converter: str = "neutron-converter"
    cc: str = "arm-none-eabi-gcc"
    flash_tool: str = "LinkServer"
    board_dir: str                    # relative to the SDK: where the board's clock_config.c/.h come from


class NeutronSpec(Spec):
    target: str                       # neutron-converter --target
    extra_args: List[str] = field(default_factory=list)
    supported_ops: Dict[str, List[str]] = field(default_factory=dict)   # operator -> input types the NPU takes


class LinkServerSpec(Spec):
    device: str                       # LinkServer's device:board name
    probe: Optional[str] = None       # probe serial number or index when several are attached


class NxpMemory(MemorySpec):
    firmware_reserve_bytes: int       # flash kept for code; the model gets the rest
    runtime_ram_bytes: int            # SRAM kept for stack, heap, TFLM and the Neutron driver


class MCXN947Spec(BoardSpec):
    memory: NxpMemory                 # pins: PORT_PIN names, e.g. P0_10
    toolchain: NxpToolchain
    neutron: NeutronSpec
    linkserver: LinkServerSpec


class MCXN947Board(Board):
    """FRDM-MCXN947: neutron-converter + MCUXpresso SDK (armgcc/cmake) + LinkServer."""

    Spec = MCXN947Spec

    # -- environment ------------------------------------------------------------------------------
    def converter(self) -> str:
        return self.tool_exe("converter", self.spec.toolchain.converter)

    def sdk_dir(self) -> Path:
        env = self.tool("sdk")
        sdk = self.tool_dir("sdk", "")
        for what, rel in SDK_FILES.items():
            if not (sdk / rel).is_file():
                raise ToolError(f"{env.var}={sdk} has no {rel} ({what}): not {env.what} ({env.url})")
        board_dir = self.spec.toolchain.board_dir
        if not (sdk / board_dir / "clock_config.c").is_file():
            raise ToolError(f"{env.var}={sdk} has no {board_dir}/clock_config.c (the FRDM-MCXN947 clock "
                            f"setup; set board.toolchain.board_dir to an SDK example directory that has one)")
        return sdk

    def neutron_dir(self, sdk: Path) -> Path:
        for rel in NEUTRON_DIRS:
            if all((sdk / rel / lib).is_file() for lib in NEUTRON_LIBS):
                return sdk / rel
        raise ToolError(f"no Neutron driver libraries ({', '.join(NEUTRON_LIBS)}) under {sdk}/"
                        f"{' or '.join(NEUTRON_DIRS)}: download the SDK with the eIQ component ({self.tool('sdk').url})")

    def armgcc_dir(self) -> Path:
        env = self.tool("cc")
        value = os.environ.get(env.var)
        if not value:
            raise ToolError(f"{env.var} is not set: the SDK's armgcc.cmake needs it to point at {env.what} "
                            f"(the directory with bin/arm-none-eabi-gcc; {env.url})")
        path = Path(value).expanduser()
        if not (path / "bin" / self.spec.toolchain.cc).is_file():
            raise ToolError(f"{env.var}={value} has no bin/{self.spec.toolchain.cc} ({env.url})")
        return path

    def linkserver(self) -> str:
        return self.tool_exe("flash", self.spec.toolchain.flash_tool)

    def check_environment(self) -> None:
        self.converter()
        sdk = self.sdk_dir()
        self.neutron_dir(sdk)
        self.armgcc_dir()
        require_tool("cmake", "install the Debian package cmake (the SDK's armgcc build uses it)")
        require_tool("make", "install the Debian package make")
        tool_version([self.linkserver(), "-v"], r"v?(\d+\.\d+\.\d+)", "LinkServer")
        self.require_port()

    # -- pre-flight ---------------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        info = inspect_tflite(model.path.read_bytes())
        fallback = neutron_fallback(op_dtypes(info), self.spec.neutron.supported_ops)
        if fallback:
            log.warning("%s: the Neutron NPU does not take %s; they run on the Cortex-M33 (CPU fallback)",
                        model.name, ", ".join(f"{op} ({dtype})" for op, dtype in fallback))
        missing = sorted({op for op, dtype in fallback if op not in runner_ops()})
        if missing:
            raise BoardError(f"{model.name}: operator(s) {', '.join(missing)} are neither supported by the Neutron NPU "
                             f"nor registered in the {self.spec.name} firmware's TFLM resolver")
        self._check_memory(model.name, info.size_bytes, working_sets(info))

    def _check_memory(self, name: str, model_bytes: int, sets: list[tuple[int, str, int]]) -> None:
        mem, board = self.spec.memory, self.spec.name
        flash = int(mem.flash_bytes) - mem.firmware_reserve_bytes
        if model_bytes > flash:
            raise BoardError(f"{name} does not fit {board}: the model takes {model_bytes:,} B of flash, "
                             f"{flash:,} B are left after {mem.firmware_reserve_bytes:,} B for the firmware")
        ram = int(mem.sram_bytes) - mem.runtime_ram_bytes
        index, op, need = max(sets, key=lambda s: s[2], default=(0, "none", 0))
        if need > ram:
            raise BoardError(f"{name} does not fit {board}: layer {index} ({op}) needs {need:,} B of activations at "
                             f"once, {ram:,} B of SRAM are left after {mem.runtime_ram_bytes:,} B for the runtime")

    # -- compile and build ----------------------------------------------------------------------------
    def neutron_options(self) -> NeutronOptions:
        opts = self.spec.neutron
        return NeutronOptions(target=opts.target, extra_args=tuple(opts.extra_args))

    def compile(self, model: QuantizedModel) -> NeutronResult:
        """The converted model (cached on disk, memoised per job)."""
        return self.memo("neutron", model.digest, lambda: self._convert(model))

    def _convert(self, model: QuantizedModel) -> NeutronResult:
        try:
            return compile_model(self.converter(), model.path, model.digest, self.neutron_options(), self.context.cache)
        except NeutronError as exc:
            raise BoardError(str(exc)) from None

    def cmake_commands(self, sdk: Path, neutron: Path, build_dir: Path, build_h: Path, model_c: Path) -> list[list[str]]:
        """Configure with the SDK's armgcc toolchain file, then build (the SDK's build_release.sh pattern)."""
        configure = ["cmake", "-S", str(self.port_dir), "-B", str(build_dir), "-G", "Unix Makefiles",
                     f"-DCMAKE_TOOLCHAIN_FILE={sdk / SDK_FILES['toolchain file']}", "-DCMAKE_BUILD_TYPE=release",
                     f"-DMCUX_SDK={sdk}", f"-DNEUTRON_DIR={neutron}", f"-DBOARD_DIR={sdk / self.spec.toolchain.board_dir}",
                     f"-DUNPU_BUILD_H={build_h}", f"-DUNPU_MODEL_C={model_c}",
                     f"-DUNPU_BAUDRATE={self.spec.serial.baudrate}",
                     f"-DUNPU_PIN_TIMESTAMP={self.spec.pins.timestamp}", f"-DUNPU_PIN_STAGE={self.spec.pins.stage}"]
        build = ["cmake", "--build", str(build_dir), "--", jobs()]
        return [plain_paths(configure), plain_paths(build)]

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        neutron = self.compile(model)
        self._check_converted(model.name, neutron)
        sdk = self.sdk_dir()
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = build_id_of(model, neutron.converted, self.spec.firmware_port,
                               {"sdk": str(sdk), "converter": neutron.version})
        defines = tflm_defines(self.context, model, neutron.converted, 0, build_id)
        self._check_arena(model.name, int(defines["UNPU_TFLM_ARENA_SIZE"]))
        build_h = write_build_header(out / "unpu_build.h", defines)
        model_c = write_model_c(out / "model_data.c", neutron.converted.read_bytes())
        build_log = out / "build.log"
        for cmd in self.cmake_commands(sdk, self.neutron_dir(sdk), out / "build", build_h, model_c):
            run_logged(cmd, build_log, "MCX N947 firmware build (SDK armgcc/cmake)", timeout=CMAKE_TIMEOUT_S * 4)
        elf = out / "build" / "app.elf"
        fw = firmware_record(elf, elf, build_id, defines, self.spec.firmware_port, build_log,
                             {"neutron.version": neutron.version, "cache.neutron": "hit" if neutron.cache_hit else "miss",
                              **neutron.report.tags()})
        fw.metrics.update(neutron.report.metrics())
        fw.tags["arena.method"] = "converted model's CPU/Neutron tensors + max(32 KiB, 10 %) (TFLM arena, not bisected)"
        fw.artifacts.update({f"compiler/{neutron.converted.name}": neutron.converted,
                             "compiler/neutron.log": neutron.log})
        return fw

    def _check_converted(self, name: str, neutron: NeutronResult) -> None:
        missing = sorted({op for op in neutron.report.cpu_ops if op not in runner_ops()})
        if missing:
            raise BoardError(f"{name}: the Neutron converter left {', '.join(missing)} to the CPU, which the "
                             f"{self.spec.name} firmware's TFLM resolver does not register")
        flash = int(self.spec.memory.flash_bytes) - self.spec.memory.firmware_reserve_bytes
        if neutron.report.model_bytes > flash:
            raise BoardError(f"{name} does not fit {self.spec.name}: the converted model takes "
                             f"{neutron.report.model_bytes:,} B of flash, {flash:,} B are left for it")

    def _check_arena(self, name: str, arena: int) -> None:
        ram = int(self.spec.memory.sram_bytes) - self.spec.memory.runtime_ram_bytes
        if arena > ram:
            raise BoardError(f"{name} does not fit {self.spec.name}: its TFLM arena needs {arena:,} B, "
                             f"{ram:,} B of SRAM are left after the runtime")

    # -- flash and run ---------------------------------------------------------------------------------
    def flash_command(self, exe: str, elf: Path) -> list[str]:
        """`LinkServer flash [--probe P] DEVICE load app.elf` (an ELF carries its own load addresses)."""
        probe = self.spec.linkserver.probe
        return [exe, "flash", *(["--probe", str(probe)] if probe else []), self.spec.linkserver.device,
                "load", str(elf)]

    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        return [FlashStep(self.flash_command(self.linkserver(), firmware.image), "LinkServer flash",
                          timeout_s=FLASH_TIMEOUT_S)]


# -- graph facts (no TensorFlow) ------------------------------------------------------------------

def op_dtypes(info: GraphInfo) -> list[tuple[int, str, str]]:
    """(index, operator, dtype of its first input) for every operator of subgraph 0."""
    out = []
    for op in info.ops:
        first = next((i for i in op.inputs if i >= 0), None)
        out.append((op.index, op.op, info.tensors[first].dtype if first is not None else "none"))
    return out


def neutron_fallback(ops: list[tuple[int, str, str]], supported: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(operator, dtype) pairs the Neutron NPU does not take, per NXP's supported-operator table."""
    table = {op: set(dtypes) for op, dtypes in supported.items()}
    seen: list[tuple[str, str]] = []
    for _, op, dtype in ops:
        if dtype not in table.get(op, set()) and (op, dtype) not in seen:
            seen.append((op, dtype))
    return seen


def working_sets(info: GraphInfo) -> list[tuple[int, str, int]]:
    """(index, operator, bytes of its non-constant inputs + outputs): live at once while it runs."""
    return [(op.index, op.op, sum(t.nbytes for t in info.touched(op) if not t.constant)) for op in info.ops]
