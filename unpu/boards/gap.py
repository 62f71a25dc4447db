"""GreenWaves GAP8 (GAPuino / AI-deck): NNTool + AutoTiler + the GAP SDK, flashed and run with gapy.

Environment: the GAP SDK's board config must be sourced before unpu runs
(`source $GAP_SDK_HOME/configs/gapuino_v3.sh`): it exports the variables the SDK's make rules and
gapy read (board.toolchain.sdk_vars) and puts nntool, gapy and riscv32-unknown-elf-gcc on PATH.
unpu cannot source it for you; check_environment names the first missing piece.

Build (unpu.compilers.nntool): the int8 .tflite goes through `nntool -s script model.tflite -q`
and `nntool -g ...` (the AutoTiler model), then firmware/ports/gap8/Makefile runs the AutoTiler
(`model`) and builds the firmware with the SDK's pmsis rules (`build`, FreeRTOS, io=disable).

Flash and run (the SDK's own `make flash_fs` / `make run platform=board` lines, gap_sdk
rtos/freeRTOS/vendors/gwt/rules/freeRTOS_rules.mk):
  gapy --target=$GAPY_TARGET --platform=board --work-dir=BUILDDIR
       --config-opt=**/flash/content/partitions/readfs/files=WEIGHTS
       run --image --flash --binary=ELF                 (the flash image with the weights' ReadFS, to the HyperFlash)
  gapy ... run --exec-prepare --exec --binary=ELF       (OpenOCD loads the ELF over JTAG and starts it)
The second keeps OpenOCD attached while the firmware runs, so it is started in its own process
group and stopped when the run ends; the DUT protocol runs on the UART (board.port).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import field
from pathlib import Path
from typing import List


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
from unpu.boards.process import DeviceProcess
from unpu.boards.spec import BoardSpec, MemorySpec, Spec, ToolchainSpec
from unpu.cache import file_digest, key_of
from unpu.compilers.nntool import (
    NNTOOL_TIMEOUT_S,
    ModelFiles,
    NNToolOptions,
    check_version,
    generate_command,
    network_arg_types,
    nntool_script,
    parse_kernels_c,
    state_command,
    version_command,
)
from unpu.compilers.nntool import memory_metrics as autotiler_memory
from unpu.errors import BoardError, ToolError
from unpu.graph import GraphInfo, inspect_tflite
from unpu.tools import (
    FLASH_TIMEOUT_S,
    require_tool,
    run_logged,
    tool_version,
)

log = logging.getLogger(__name__)

SDK_MARKER = "utils/rules/pmsis_rules.mk"
APP = "unpu_gap8"
EXEC_START_S = 2.0          # OpenOCD's JTAG load before the firmware answers
# l3_flash_device -> the C type of the generated code's flash handle (gap_cluster.c)
FLASH_ADDR_TYPES = {"AT_MEM_L3_HFLASH": "AT_HYPERFLASH_FS_EXT_ADDR_TYPE",
                    "AT_MEM_L3_DEFAULTFLASH": "AT_DEFAULTFLASH_FS_EXT_ADDR_TYPE",
                    "AT_MEM_L3_QSPIFLASH": "AT_QSPIFLASH_FS_EXT_ADDR_TYPE",
                    "AT_MEM_L3_OSPIFLASH": "AT_OSPIFLASH_FS_EXT_ADDR_TYPE"}


class GapToolchain(ToolchainSpec):
    cc: str = "riscv32-unknown-elf-gcc"
    sdk_vars: List[str] = field(default_factory=list)   # what sourcing the SDK config exports (checked, not set)
    sdk_config: str                                    # the config the user sources, relative to GAP_SDK_HOME


class NNToolSpec(Spec):
    supported_ops: List[str] = field(default_factory=list)
    fusions: str = "--scale8"
    l3_flash_device: str = "AT_MEM_L3_HFLASH"
    l3_ram_device: str = "AT_MEM_L3_HRAM"
    transpose_io: bool = True       # NNTool's `adjust` makes I/O CHW; the runner converts to/from TFLite's HWC


class AutoTilerSpec(Spec):
    """Memory budgets (bytes) and clocks (MHz) the AutoTiler generator plans for."""

    l1_bytes: int
    cluster_stack_bytes: int
    cluster_slave_stack_bytes: int
    l2_bytes: int
    l3_bytes: int
    freq_fc_mhz: int
    freq_cl_mhz: int


class GapMemory(MemorySpec):
    l3_ram_bytes: int


class Gap8Spec(BoardSpec):
    memory: GapMemory               # pins: {gpio: PI_GPIO_..., pad: PI_PAD_...} each
    toolchain: GapToolchain
    nntool: NNToolSpec
    autotiler: AutoTilerSpec
    pmsis_os: str = "freertos"


class Gap8Board(Board):
    Spec = Gap8Spec

    # -- environment -----------------------------------------------------------------------------
    def check_environment(self) -> None:
        sdk_env = self.tool("sdk")
        config = f"${sdk_env.var}/{self.spec.toolchain.sdk_config}"
        sdk = self.tool_dir("sdk", SDK_MARKER)
        for var in self.spec.toolchain.sdk_vars:
            if not os.environ.get(var):
                raise ToolError(f"{var} is not set: source {config} ({sdk_env.var}={sdk}) before running unpu "
                                f"({sdk_env.url})")
        family = os.environ.get("TARGET_CHIP_FAMILY", "GAP8")
        if family != "GAP8":
            raise ToolError(f"TARGET_CHIP_FAMILY={family}: the sourced GAP SDK config is not a GAP8 board; "
                            f"source {config}")
        tiler_lib = Path(os.environ.get("TILER_LIB") or sdk / "tools/autotiler_v3/Autotiler/LibTile.a")
        if not tiler_lib.is_file():
            raise ToolError(f"the AutoTiler library {tiler_lib} is missing: run `make autotiler` in {sdk} "
                            f"(it is downloaded after accepting GreenWaves' licence, {sdk_env.url})")
        self.nntool()
        self.tool_exe("gapy", "gapy")
        self.tool_exe("cc", self.spec.toolchain.cc)
        require_tool("make", "install the Debian package make")
        require_tool("gcc", "install the Debian package gcc (the AutoTiler generator is a host program)")
        self.require_port()

    def nntool(self) -> str:
        """nntool ($NNTOOL, else PATH), its version checked once per adapter."""
        return self.memo("tool", "nntool", self._nntool)

    def _nntool(self) -> str:
        exe = self.tool_exe("nntool", "nntool")
        check_version(tool_version(version_command(exe), r"(NNTOOL Version \S+)", "nntool"))
        return exe

    # -- pre-flight ------------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        info = inspect_tflite(model.path.read_bytes())
        name = model.name
        if len(info.inputs) != 1 or len(info.outputs) != 1:
            raise BoardError(f"{name}: {len(info.inputs)} inputs / {len(info.outputs)} outputs; the GAP8 runner "
                             f"drives one of each")
        supported = set(self.spec.nntool.supported_ops)
        for op in info.ops:
            if op.op not in supported:
                raise BoardError(f"{name}: operator {op.op} (operator #{op.index}) is not imported by NNTool "
                                 f"(board.nntool.supported_ops)")
        for kind, tensor in (("input", info.inputs[0]), ("output", info.outputs[0])):
            if tensor.dtype != "int8":
                raise BoardError(f"{name}: the {kind} {tensor.name} is {tensor.dtype}; unpu runs GAP8 models as "
                                 f"NNTool SQ8 from the model's own int8 quantization "
                                 f"(use quant=int8 or int8_per_tensor)")
        self._check_memory(name, info)

    def _check_memory(self, name: str, info: GraphInfo) -> None:
        weights = info.weight_bytes
        largest = max(info.activations, key=lambda t: t.nbytes, default=None)
        at, mem = self.spec.autotiler, self.spec.memory
        flash = int(mem.flash_bytes)
        if weights > flash:
            raise BoardError(f"{name}: {weights:,} B of weights do not fit the {flash:,} B HyperFlash")
        l2, l3 = at.l2_bytes, min(at.l3_bytes, mem.l3_ram_bytes)
        if weights > l2 + l3:
            raise BoardError(f"{name}: {weights:,} B of weights exceed the AutoTiler's L2 + L3 budgets "
                             f"({l2:,} + {l3:,} B, board.autotiler.l2_bytes / l3_bytes)")
        if largest is not None and largest.nbytes > l2 + l3:
            raise BoardError(f"{name}: activation {largest.name} ({largest.nbytes:,} B) exceeds the AutoTiler's L2 + L3 "
                             f"budgets ({l2:,} + {l3:,} B)")

    # -- build -----------------------------------------------------------------------------------
    def nntool_options(self) -> NNToolOptions:
        opts = self.spec.nntool
        return NNToolOptions(fusions=opts.fusions, l3_flash_device=opts.l3_flash_device,
                             l3_ram_device=opts.l3_ram_device)

    def make_args(self, out: Path, model_dir: Path) -> list[str]:
        at = self.spec.autotiler
        return plain_paths(["make", "-C", str(out), "-f", str(self.port_dir / "Makefile"), f"MODEL_BUILD={model_dir}",
                            f"MODEL_L1={at.l1_bytes}", f"MODEL_L2={at.l2_bytes}", f"MODEL_L3={at.l3_bytes}",
                            f"CLUSTER_STACK_SIZE={at.cluster_stack_bytes}",
                            f"CLUSTER_SLAVE_STACK_SIZE={at.cluster_slave_stack_bytes}",
                            f"FREQ_FC={at.freq_fc_mhz}", f"FREQ_CL={at.freq_cl_mhz}"])

    def model_command(self, out: Path, model_dir: Path) -> list[str]:
        return self.make_args(out, model_dir) + ["model"]

    def firmware_command(self, out: Path, model_dir: Path, build_h: Path) -> list[str]:
        return self.make_args(out, model_dir) + ["build", f"BUILD_H={build_h}", "platform=board",
                                                 f"PMSIS_OS={self.spec.pmsis_os}", "io=disable"]

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        out = (workdir / "gap8").resolve()
        files = ModelFiles(out / "model")
        shutil.rmtree(out, ignore_errors=True)
        files.directory.mkdir(parents=True)
        shutil.copy2(model.path, files.tflite)
        files.script.write_text(nntool_script(self.nntool_options()))
        build_log = out / "build.log"
        nntool = self.nntool()
        run_logged(state_command(nntool, files), build_log, "NNTool (script, state)", NNTOOL_TIMEOUT_S,
                   cwd=files.directory)
        run_logged(generate_command(nntool, files), build_log, "NNTool (AutoTiler model)", NNTOOL_TIMEOUT_S,
                   cwd=files.directory)
        run_logged(self.model_command(out, files.directory), build_log, "AutoTiler (GenTile)")
        q15 = self._check_generated(files)
        build_id = self.build_id(model)
        build_h = write_build_header(out / "unpu_build.h", self.build_defines(model, files, build_id, q15))
        run_logged(self.firmware_command(out, files.directory, build_h), build_log, "GAP8 firmware build (SDK make)")
        return self._record(out, files, build_id, build_log)

    def _check_generated(self, files: ModelFiles) -> bool:
        """The generated network's buffers are int8 in, int8 or int16 Q15 (SQ8 softmax) out; True for Q15."""
        for path in (files.kernels_c, files.kernels_h):
            if not path.exists():
                raise BoardError(f"the AutoTiler wrote no {path.name} (see build.log)")
        types = network_arg_types(files.kernels_h.read_text(errors="replace"))
        int8 = ("signed char", "int8_t")
        if len(types) != 2 or types[0] not in int8 or types[1] not in int8 + ("signed short", "short int", "int16_t"):
            raise BoardError(f"the generated {files.prefix}CNN takes ({', '.join(types)}); the GAP8 runner passes "
                             f"an int8 input and an int8 (or Q15 softmax) output buffer")
        return types[1] not in int8

    def elf_path(self, out: Path) -> Path:
        chip = os.environ.get("TARGET_CHIP", "GAP8_V3")
        return out / "BUILD" / chip / f"GCC_RISCV_{self.spec.pmsis_os.upper()}" / APP

    def _record(self, out: Path, files: ModelFiles, build_id: str, build_log: Path) -> Firmware:
        elf = self.elf_path(out)
        if not elf.is_file():
            raise BoardError(f"the GAP SDK build wrote no {elf} (see build.log)")
        size = write_size_report(elf, out / "size.txt")
        at = autotiler_memory(files)
        artifacts = {"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": build_log,
                     "compiler/nntool_script": files.script, "compiler/unpuKernels.h": files.kernels_h}
        if files.state.exists():
            artifacts["compiler/unpu.json"] = files.state
        return Firmware(image=elf, digest=file_digest(elf), build_id=build_id,
                        arena_bytes=int(at.get("memory/arena", 0)) or None,
                        metrics={**memory_metrics(elf), **at},
                        tags={"firmware.port": self.spec.firmware_port, "firmware.build_id": build_id,
                              "memory.method": "AutoTiler allocations (generated constructor)",
                              "arena.method": "L2 static + dynamic the generated constructor allocates"},
                        artifacts=artifacts, files={"weights": files.weights, "builddir": elf.parent})

    def build_id(self, model: QuantizedModel) -> str:
        parts = {"model": model.digest, "port": self.spec.firmware_port, "autotiler": vars(self.spec.autotiler),
                 "nntool": vars(self.spec.nntool), "firmware": firmware_digest()}
        return key_of(parts)[:12]

    def build_defines(self, model: QuantizedModel, files: ModelFiles, build_id: str, q15: bool = False) -> dict[str, str]:
        info = inspect_tflite(model.path.read_bytes())
        inp, outp = info.inputs[0], info.outputs[0]
        alloc = parse_kernels_c(files.kernels_c.read_text(errors="replace"))
        defines = {**build_defines(self.context, build_id, outp),
                   "UNPU_GAP_INPUT_BYTES": str(inp.nbytes), "UNPU_GAP_OUTPUT_BYTES": str(outp.nbytes),
                   "UNPU_OUTPUT_SCALE": f"{float(outp.scale or 1.0)!r}f",
                   "UNPU_OUTPUT_ZERO_POINT": str(int(outp.zero_point or 0)),
                   "UNPU_GAP_ARENA_BYTES": str(alloc.get("l2", 0) + alloc.get("l2_dyn", 0)),
                   "UNPU_GAP_UART_BAUD": str(self.spec.serial.baudrate),
                   "UNPU_AT_FLASH_ADDR_TYPE": FLASH_ADDR_TYPES.get(self.spec.nntool.l3_flash_device,
                                                                    "AT_HYPERFLASH_FS_EXT_ADDR_TYPE")}
        if self.spec.nntool.transpose_io:
            defines.update(chw_defines("IN", inp.shape))
            if not q15:
                defines.update(chw_defines("OUT", outp.shape))
        if q15:
            defines["UNPU_GAP_OUTPUT_Q15"] = "1"
        for role in ("timestamp", "stage"):
            pin = getattr(self.spec.pins, role)
            if pin is not None:
                defines[f"UNPU_GAP_PIN_{role.upper()}"] = str(pin["gpio"])
                defines[f"UNPU_GAP_PAD_{role.upper()}"] = str(pin["pad"])
        return defines

    # -- flash and run ---------------------------------------------------------------------------
    def gapy_args(self, firmware: Firmware) -> list[str]:
        target = os.environ.get("GAPY_TARGET", "gapuino_v3")
        return [self.tool_exe("gapy", "gapy"), f"--target={target}", "--platform=board", f"--work-dir={firmware.files['builddir']}",
                f"--config-opt=**/flash/content/partitions/readfs/files={firmware.files['weights']}"]

    def flash_command(self, firmware: Firmware) -> list[str]:
        return self.gapy_args(firmware) + ["run", "--image", "--flash", f"--binary={firmware.image}"]

    def exec_command(self, firmware: Firmware) -> list[str]:
        return self.gapy_args(firmware) + ["run", "--exec-prepare", "--exec", f"--binary={firmware.image}"]

    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        return [FlashStep(self.flash_command(firmware), "gapy (image + HyperFlash)", cwd=firmware.files["builddir"],
                          timeout_s=FLASH_TIMEOUT_S)]

    def device(self, firmware: Firmware, workdir: Path) -> DeviceProcess:
        """gapy's JTAG load and start; it stays attached while the firmware runs (the run's end stops it)."""
        log = workdir / "gapy_exec.log"
        firmware.artifacts["device/gapy_exec.log"] = log
        process = DeviceProcess(self.exec_command(firmware), log, "gapy (JTAG load and start)",
                                cwd=firmware.files["builddir"])
        code = process.wait(EXEC_START_S)
        if code is not None and code != 0:
            process.stop()
            raise BoardError(f"gapy (JTAG load and start) exited {code}: see {log}")
        return process

    def liveness(self, process: DeviceProcess | None) -> None:
        """None: gapy may end once the image runs, and the board lives on; its UART is the link."""
        return None

# -- helpers (pure) -----------------------------------------------------------------------------------

def chw_defines(which: str, shape: tuple[int, ...]) -> dict[str, str]:
    """UNPU_GAP_<which>_H/W/C for an NHWC tensor NNTool's `adjust` turns to CHW (H·W > 1 and C > 1)."""
    dims = [int(d) for d in shape]
    if len(dims) != 4 or dims[1] * dims[2] <= 1 or dims[3] <= 1:
        return {}
    return {f"UNPU_GAP_{which}_H": str(dims[1]), f"UNPU_GAP_{which}_W": str(dims[2]),
            f"UNPU_GAP_{which}_C": str(dims[3])}
