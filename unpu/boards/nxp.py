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
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.toolchain import (require_port, require_tool, run_logged, run_with_retry, serial_link,
                                   tool_from_env, tool_version, write_build_header, write_model_c)
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PORT_DIR = REPO / "firmware" / "ports" / "mcxn947"
SDK_URL = "https://mcuxpresso.nxp.com/ (SDK builder: FRDM-MCXN947 with eIQ)"
ARMGCC_URL = "https://developer.arm.com/downloads/-/arm-gnu-toolchain-downloads"
LINKSERVER_URL = "https://www.nxp.com/design/design-center/software/development-software/mcuxpresso-software-and-tools-/linkserver-for-microcontrollers:LINKERSERVER"
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
FLASH_TIMEOUT_S = 300
# The CPU operators runner_tflm.cc registers (TFLite builtin names), besides NeutronGraph.
RUNNER_OPS = ("ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
              "FULLY_CONNECTED", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "QUANTIZE",
              "RESHAPE", "SOFTMAX", "SLICE", "STRIDED_SLICE", "TRANSPOSE", "RELU", "RELU6", "HARD_SWISH",
              "LEAKY_RELU", "SUB")
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}
_DTYPE_BYTES = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "int16": 2, "int8": 1}


class MCXN947Board(Board):
    """FRDM-MCXN947: neutron-converter + MCUXpresso SDK (armgcc/cmake) + LinkServer."""

    source_latency = "measured"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._compiled: dict[str, object] = {}

    # -- environment ------------------------------------------------------------------------------
    @property
    def toolchain(self):
        return self.board.toolchain

    def converter(self) -> str:
        tc = self.toolchain
        return tool_from_env(str(tc.converter_env), str(tc.converter),
                             f"install NXP's eIQ Toolkit / eIQ Neutron SDK ({tc.converter_url})")

    def sdk_dir(self) -> Path:
        var = str(self.toolchain.sdk_env)
        value = os.environ.get(var)
        if not value:
            raise BoardError(f"{var} is not set: point it at an MCUXpresso SDK 2.x package for FRDM-MCXN947 "
                             f"with eIQ ({SDK_URL})")
        sdk = Path(value).expanduser()
        for what, rel in SDK_FILES.items():
            if not (sdk / rel).is_file():
                raise BoardError(f"{var}={value} has no {rel} ({what}): not an MCUXpresso SDK for FRDM-MCXN947 "
                                 f"with eIQ ({SDK_URL})")
        board_dir = sdk / str(self.toolchain.board_dir)
        if not (board_dir / "clock_config.c").is_file():
            raise BoardError(f"{var}={value} has no {self.toolchain.board_dir}/clock_config.c (the FRDM-MCXN947 clock "
                             f"setup; set board.toolchain.board_dir to an SDK example directory that has one)")
        return sdk

    def neutron_dir(self, sdk: Path) -> Path:
        for rel in NEUTRON_DIRS:
            if all((sdk / rel / lib).is_file() for lib in NEUTRON_LIBS):
                return sdk / rel
        raise BoardError(f"no Neutron driver libraries ({', '.join(NEUTRON_LIBS)}) under {sdk}/"
                         f"{' or '.join(NEUTRON_DIRS)}: download the SDK with the eIQ component ({SDK_URL})")

    def armgcc_dir(self) -> Path:
        var = str(self.toolchain.cc_env)
        value = os.environ.get(var)
        if not value:
            raise BoardError(f"{var} is not set: the SDK's armgcc.cmake needs it to point at the Arm GNU toolchain "
                             f"(the directory with bin/arm-none-eabi-gcc; {ARMGCC_URL})")
        path = Path(value).expanduser()
        if not (path / "bin" / "arm-none-eabi-gcc").is_file():
            raise BoardError(f"{var}={value} has no bin/arm-none-eabi-gcc ({ARMGCC_URL})")
        return path

    def linkserver(self) -> str:
        tc = self.toolchain
        return tool_from_env(str(tc.flash_env), str(tc.flash_tool), f"install NXP LinkServer ({tc.flash_url})")

    def check_environment(self) -> None:
        self.converter()
        sdk = self.sdk_dir()
        self.neutron_dir(sdk)
        self.armgcc_dir()
        require_tool("cmake", "install the Debian package cmake (the SDK's armgcc build uses it)")
        require_tool("make", "install the Debian package make")
        exe = self.linkserver()
        tool_version([exe, "-v"], r"v?(\d+\.\d+\.\d+)", "LinkServer")
        require_port(self.board)

    # -- pre-flight ---------------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        data = model.path.read_bytes()
        ops = op_dtypes(data)
        fallback = neutron_fallback(ops, self.board.neutron.supported_ops)
        if fallback:
            log.warning("%s: the Neutron NPU does not take %s; they run on the Cortex-M33 (CPU fallback)",
                        model.name, ", ".join(f"{op} ({dtype})" for op, dtype in fallback))
        missing = sorted({op for op, dtype in fallback if op not in RUNNER_OPS})
        if missing:
            raise BoardError(f"{model.name}: operator(s) {', '.join(missing)} are neither supported by the Neutron NPU "
                             f"nor registered in the mcxn947 firmware's TFLM resolver")
        self._check_memory(model.name, len(data), working_sets(data))

    def _check_memory(self, name: str, model_bytes: int, sets: list[tuple[int, str, int]]) -> None:
        mem, board = self.board.memory, self.board.name
        flash = int(mem.flash_bytes) - int(mem.firmware_reserve_bytes)
        if model_bytes > flash:
            raise BoardError(f"{name} does not fit {board}: the model takes {model_bytes:,} B of flash, "
                             f"{flash:,} B are left after {int(mem.firmware_reserve_bytes):,} B for the firmware")
        ram = int(mem.sram_bytes) - int(mem.runtime_ram_bytes)
        index, op, need = max(sets, key=lambda s: s[2], default=(0, "none", 0))
        if need > ram:
            raise BoardError(f"{name} does not fit {board}: layer {index} ({op}) needs {need:,} B of activations at "
                             f"once, {ram:,} B of SRAM are left after {int(mem.runtime_ram_bytes):,} B for the runtime")

    # -- compile and build ----------------------------------------------------------------------------
    def neutron_options(self):
        from unpu.compilers.neutron import NeutronOptions

        opts = self.board.neutron
        return NeutronOptions(target=str(opts.target), extra_args=tuple(str(a) for a in (opts.extra_args or [])))

    def compile(self, model: QuantizedModel):
        """The converted model (cached on disk, memoised per job)."""
        if model.digest not in self._compiled:
            from unpu.cache import Cache
            from unpu.compilers.neutron import NeutronError, compile_model

            try:
                self._compiled[model.digest] = compile_model(self.converter(), model.path, model.digest,
                                                             self.neutron_options(), Cache(self.cfg.cache.dir))
            except NeutronError as exc:
                raise BoardError(str(exc)) from None
        return self._compiled[model.digest]

    def cmake_commands(self, sdk: Path, neutron: Path, build_dir: Path, build_h: Path, model_c: Path) -> list[list[str]]:
        """Configure with the SDK's armgcc toolchain file, then build (the SDK's build_release.sh pattern)."""
        configure = ["cmake", "-S", str(PORT_DIR), "-B", str(build_dir), "-G", "Unix Makefiles",
                     f"-DCMAKE_TOOLCHAIN_FILE={sdk / SDK_FILES['toolchain file']}", "-DCMAKE_BUILD_TYPE=release",
                     f"-DMCUX_SDK={sdk}", f"-DNEUTRON_DIR={neutron}", f"-DBOARD_DIR={sdk / str(self.toolchain.board_dir)}",
                     f"-DUNPU_BUILD_H={build_h}", f"-DUNPU_MODEL_C={model_c}",
                     f"-DUNPU_BAUDRATE={int(self.board.serial.baudrate)}",
                     f"-DUNPU_PIN_TIMESTAMP={self.board.pins.timestamp}", f"-DUNPU_PIN_STAGE={self.board.pins.stage}"]
        build = ["cmake", "--build", str(build_dir), "--", f"-j{min(os.cpu_count() or 1, 8)}"]
        return [configure, build]

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        from unpu.boards.tflm_firmware import build_defines, build_id_of, firmware_record

        neutron = self.compile(model)
        self._check_converted(model.name, neutron)
        sdk = self.sdk_dir()
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = build_id_of(model, neutron.converted, "mcxn947", {"sdk": str(sdk), "converter": neutron.version})
        defines = build_defines(self.cfg, model, neutron.converted, 0, build_id)
        self._check_arena(model.name, int(defines["UNPU_TFLM_ARENA_SIZE"]))
        build_h = write_build_header(out / "unpu_build.h", defines)
        model_c = write_model_c(out / "model_data.c", neutron.converted.read_bytes())
        build_log = out / "build.log"
        for cmd in self.cmake_commands(sdk, self.neutron_dir(sdk), out / "build", build_h, model_c):
            run_logged(cmd, build_log, "MCX N947 firmware build (SDK armgcc/cmake)", timeout=CMAKE_TIMEOUT_S * 4)
        elf = out / "build" / "app.elf"
        fw = firmware_record(elf, elf, build_id, defines, "mcxn947", build_log,
                             {"flash.tool": "linkserver", "neutron.version": neutron.version,
                              "cache.neutron": "hit" if neutron.cache_hit else "miss", **neutron.report.tags()})
        fw.metrics.update(neutron.report.metrics())
        fw.tags["arena.method"] = "converted model's CPU/Neutron tensors + max(32 KiB, 10 %) (TFLM arena, not bisected)"
        fw.artifacts.update({f"compiler/{neutron.converted.name}": neutron.converted,
                             "compiler/neutron.log": neutron.log})
        return fw

    def _check_converted(self, name: str, neutron) -> None:
        missing = sorted({op for op in neutron.report.cpu_ops if op not in RUNNER_OPS})
        if missing:
            raise BoardError(f"{name}: the Neutron converter left {', '.join(missing)} to the CPU, which the mcxn947 "
                             f"firmware's TFLM resolver does not register")
        flash = int(self.board.memory.flash_bytes) - int(self.board.memory.firmware_reserve_bytes)
        if neutron.report.model_bytes > flash:
            raise BoardError(f"{name} does not fit {self.board.name}: the converted model takes "
                             f"{neutron.report.model_bytes:,} B of flash, {flash:,} B are left for it")

    def _check_arena(self, name: str, arena: int) -> None:
        ram = int(self.board.memory.sram_bytes) - int(self.board.memory.runtime_ram_bytes)
        if arena > ram:
            raise BoardError(f"{name} does not fit {self.board.name}: its TFLM arena needs {arena:,} B, "
                             f"{ram:,} B of SRAM are left after the runtime")

    # -- flash and run ---------------------------------------------------------------------------------
    def flash_command(self, exe: str, elf: Path) -> list[str]:
        """`LinkServer flash [--probe P] DEVICE load app.elf` (an ELF carries its own load addresses)."""
        probe = self.board.linkserver.get("probe")
        return [exe, "flash", *(["--probe", str(probe)] if probe else []), str(self.board.linkserver.device),
                "load", str(elf)]

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        flash_log = workdir / "flash.log"
        run_with_retry(self.flash_command(self.linkserver(), firmware.image), flash_log, "LinkServer flash",
                       timeout=FLASH_TIMEOUT_S)
        firmware.artifacts["device/flash.log"] = flash_log

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        self.flash(firmware, workdir)
        with serial_link(self.board, self.cfg, transcript) as client:
            yield client


# -- graph helpers (no TensorFlow) ------------------------------------------------------------------

def _graph(data: bytes):
    from ai_edge_litert import schema_py_generated as schema

    from unpu.graph import inspect_tflite

    info = inspect_tflite(data)
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    return info, model, model.subgraphs[0].tensors


def op_dtypes(data: bytes) -> list[tuple[int, str, str]]:
    """(index, operator, dtype of its first input) for every operator of subgraph 0."""
    info, _, tensors = _graph(data)
    out = []
    for op in info.ops:
        first = next((i for i in op.inputs if i >= 0), None)
        dtype = _DTYPES.get(int(tensors[first].type), "other") if first is not None else "none"
        out.append((op.index, op.op, dtype))
    return out


def neutron_fallback(ops: list[tuple[int, str, str]], supported) -> list[tuple[str, str]]:
    """(operator, dtype) pairs the Neutron NPU does not take, per NXP's supported-operator table."""
    table = {str(k): {str(d) for d in v} for k, v in dict(supported).items()}
    seen: list[tuple[str, str]] = []
    for _, op, dtype in ops:
        if dtype not in table.get(op, set()) and (op, dtype) not in seen:
            seen.append((op, dtype))
    return seen


def working_sets(data: bytes) -> list[tuple[int, str, int]]:
    """(index, operator, bytes of its non-constant inputs + outputs): live at once while it runs."""
    info, model, tensors = _graph(data)
    buffers = model.buffers or []
    sets = []
    for op in info.ops:
        total = sum(_bytes(tensors[i]) for i in set(op.inputs + op.outputs)
                    if i >= 0 and not _constant(tensors[i], buffers))
        sets.append((op.index, op.op, total))
    return sets


def _constant(tensor, buffers) -> bool:
    if tensor.buffer <= 0 or tensor.buffer >= len(buffers):
        return False
    buf = buffers[tensor.buffer]
    return bool((buf.data is not None and len(buf.data)) or buf.size)


def _bytes(tensor) -> int:
    count = 1
    for dim in (tensor.shape if tensor.shape is not None else []):
        count *= max(int(dim), 1)
    return count * _DTYPE_BYTES.get(_DTYPES.get(int(tensor.type), ""), 4)


def runner_ops_in_source(source: str) -> set[str]:
    """The builtin operators a runner source registers (`resolver.AddXxx();` -> XXX)."""
    names = [n for n in re.findall(r"resolver\.Add(\w+)\(\)", source) if n != "EthosU"]
    return {re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", n).upper().replace("2_D", "_2D").replace("PAD_V2", "PADV2")
            for n in names}
