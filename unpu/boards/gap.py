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
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.toolchain import (FLASH_TIMEOUT_S, c_string, require_dir, require_port, require_tool, run_logged,
                                   run_with_retry, serial_link, tool_from_env, tool_version, write_build_header)
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

SDK_URL = "https://github.com/GreenWaves-Technologies/gap_sdk"
TOOLCHAIN_URL = "https://github.com/GreenWaves-Technologies/gap_riscv_toolchain_ubuntu"
SDK_MARKER = "utils/rules/pmsis_rules.mk"
REPO = Path(__file__).resolve().parents[2]
PORT = REPO / "firmware" / "ports" / "gap8"
APP = "unpu_gap8"
EXEC_START_S = 2.0          # OpenOCD's JTAG load before the firmware answers
EXEC_STOP_S = 10.0
# l3_flash_device -> the C type of the generated code's flash handle (gap_cluster.c)
FLASH_ADDR_TYPES = {"AT_MEM_L3_HFLASH": "AT_HYPERFLASH_FS_EXT_ADDR_TYPE",
                    "AT_MEM_L3_DEFAULTFLASH": "AT_DEFAULTFLASH_FS_EXT_ADDR_TYPE",
                    "AT_MEM_L3_QSPIFLASH": "AT_QSPIFLASH_FS_EXT_ADDR_TYPE",
                    "AT_MEM_L3_OSPIFLASH": "AT_OSPIFLASH_FS_EXT_ADDR_TYPE"}
_DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "float16": 2, "int64": 8}


class Gap8Board(Board):
    source_latency = "measured"

    # -- environment -----------------------------------------------------------------------------
    def check_environment(self) -> None:
        tc = self.board.toolchain
        config = f"$GAP_SDK_HOME/{tc.get('sdk_config') or 'configs/gapuino_v3.sh'}"
        sdk = require_dir("GAP_SDK_HOME", f"a gap_sdk checkout built with `make sdk` ({SDK_URL})", SDK_MARKER)
        for var in tc.get("sdk_vars") or []:
            if not os.environ.get(var):
                raise BoardError(f"{var} is not set: source {config} (GAP_SDK_HOME={sdk}) before running unpu "
                                 f"({SDK_URL})")
        family = os.environ.get("TARGET_CHIP_FAMILY", "GAP8")
        if family != "GAP8":
            raise BoardError(f"TARGET_CHIP_FAMILY={family}: the sourced GAP SDK config is not a GAP8 board; "
                             f"source {config}")
        tiler_lib = Path(os.environ.get("TILER_LIB") or sdk / "tools/autotiler_v3/Autotiler/LibTile.a")
        if not tiler_lib.is_file():
            raise BoardError(f"the AutoTiler library {tiler_lib} is missing: run `make autotiler` in {sdk} "
                             f"(it is downloaded after accepting GreenWaves' licence, {SDK_URL})")
        self.nntool()
        self.gapy()
        require_tool("riscv32-unknown-elf-gcc", f"install the GAP RISC-V toolchain ({TOOLCHAIN_URL}) and "
                                                f"source {config}")
        require_tool("make", "install the Debian package make")
        require_tool("gcc", "install the Debian package gcc (the AutoTiler generator is a host program)")
        require_port(self.board)

    def nntool(self) -> str:
        """nntool (NNTOOL, else PATH), its version checked once per adapter."""
        from unpu.compilers.nntool import check_version, version_command

        if getattr(self, "_nntool", None):
            return self._nntool
        tc = self.board.toolchain
        exe = tool_from_env(str(tc.get("nntool_env") or "NNTOOL"), "nntool",
                            f"build it with `make nntool` in GAP_SDK_HOME and source the SDK config ({SDK_URL})")
        printed = tool_version(version_command(exe), r"(NNTOOL Version \S+)", "nntool")
        check_version(printed)
        self._nntool = exe
        return exe

    def gapy(self) -> str:
        return tool_from_env(str(self.board.toolchain.get("gapy_env") or "GAPY"), "gapy",
                             f"gapy ships in $GAP_SDK_HOME/utils/gapy: source the SDK config ({SDK_URL})")

    # -- pre-flight ------------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        from unpu.graph import inspect_tflite

        data = model.path.read_bytes()
        info = inspect_tflite(data)
        name = model.name
        if len(info.inputs) != 1 or len(info.outputs) != 1:
            raise BoardError(f"{name}: {len(info.inputs)} inputs / {len(info.outputs)} outputs; the GAP8 runner "
                             f"drives one of each")
        supported = set(self.board.nntool.supported_ops)
        for op in info.ops:
            if op.op not in supported:
                raise BoardError(f"{name}: operator {op.op} (operator #{op.index}) is not imported by NNTool "
                                 f"(board.nntool.supported_ops)")
        for kind, tensor in (("input", info.inputs[0]), ("output", info.outputs[0])):
            if tensor.dtype != "int8":
                raise BoardError(f"{name}: the {kind} {tensor.name} is {tensor.dtype}; unpu runs GAP8 models as "
                                 f"NNTool SQ8 from the model's own int8 quantization "
                                 f"(use quant=int8 or int8_per_tensor)")
        self._check_memory(name, data)

    def _check_memory(self, name: str, data: bytes) -> None:
        weights, largest, largest_name = constant_and_activation_bytes(data)
        at, mem = self.board.autotiler, self.board.memory
        flash = int(mem.flash_bytes)
        if weights > flash:
            raise BoardError(f"{name}: {weights:,} B of weights do not fit the {flash:,} B HyperFlash")
        l2, l3 = int(at.l2_bytes), int(min(at.l3_bytes, mem.l3_ram_bytes))
        if weights > l2 + l3:
            raise BoardError(f"{name}: {weights:,} B of weights exceed the AutoTiler's L2 + L3 budgets "
                             f"({l2:,} + {l3:,} B, board.autotiler.l2_bytes / l3_bytes)")
        if largest > l2 + l3:
            raise BoardError(f"{name}: activation {largest_name} ({largest:,} B) exceeds the AutoTiler's L2 + L3 "
                             f"budgets ({l2:,} + {l3:,} B)")

    # -- build -----------------------------------------------------------------------------------
    def nntool_options(self):
        from unpu.compilers.nntool import NNToolOptions

        opts = self.board.nntool
        return NNToolOptions(fusions=str(opts.fusions), l3_flash_device=str(opts.l3_flash_device),
                             l3_ram_device=str(opts.l3_ram_device))

    def make_args(self, out: Path, model_dir: Path) -> list[str]:
        at = self.board.autotiler
        return ["make", "-C", str(out), "-f", str(PORT / "Makefile"), f"MODEL_BUILD={model_dir}",
                f"MODEL_L1={int(at.l1_bytes)}", f"MODEL_L2={int(at.l2_bytes)}", f"MODEL_L3={int(at.l3_bytes)}",
                f"CLUSTER_STACK_SIZE={int(at.cluster_stack_bytes)}",
                f"CLUSTER_SLAVE_STACK_SIZE={int(at.cluster_slave_stack_bytes)}",
                f"FREQ_FC={int(at.freq_fc_mhz)}", f"FREQ_CL={int(at.freq_cl_mhz)}"]

    def model_command(self, out: Path, model_dir: Path) -> list[str]:
        return self.make_args(out, model_dir) + ["model"]

    def firmware_command(self, out: Path, model_dir: Path, build_h: Path) -> list[str]:
        return self.make_args(out, model_dir) + ["build", f"BUILD_H={build_h}", "platform=board",
                                                 f"PMSIS_OS={self.board.get('pmsis_os') or 'freertos'}", "io=disable"]

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        from unpu.compilers.nntool import (NNTOOL_TIMEOUT_S, ModelFiles, generate_command, nntool_script,
                                           state_command)

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

    def _check_generated(self, files) -> bool:
        """The generated network's buffers are int8 in, int8 or int16 Q15 (SQ8 softmax) out; True for Q15."""
        from unpu.compilers.nntool import network_arg_types

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
        os_name = str(self.board.get("pmsis_os") or "freertos").upper()
        return out / "BUILD" / chip / f"GCC_RISCV_{os_name}" / APP

    def _record(self, out: Path, files, build_id: str, build_log: Path) -> Firmware:
        from unpu.boards.cfirmware import memory_metrics, size_report
        from unpu.cache import file_digest
        from unpu.compilers.nntool import memory_metrics as at_memory

        elf = self.elf_path(out)
        if not elf.is_file():
            raise BoardError(f"the GAP SDK build wrote no {elf} (see build.log)")
        size = out / "size.txt"
        size.write_text(size_report(elf))
        at = at_memory(files)
        artifacts = {"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": build_log,
                     "compiler/nntool_script": files.script, "compiler/unpuKernels.h": files.kernels_h}
        if files.state.exists():
            artifacts["compiler/unpu.json"] = files.state
        return Firmware(image=elf, digest=file_digest(elf), build_id=build_id,
                        arena_bytes=int(at.get("memory/arena", 0)) or None,
                        metrics={**memory_metrics(elf), **at},
                        tags={"runtime": "autotiler", "firmware.port": "gap8", "firmware.build_id": build_id,
                              "flash.tool": "gapy", "memory.method": "AutoTiler allocations (generated constructor)",
                              "arena.method": "L2 static + dynamic the generated constructor allocates"},
                        artifacts=artifacts, extra={"weights": files.weights, "builddir": elf.parent})

    def build_id(self, model: QuantizedModel) -> str:
        from omegaconf import OmegaConf

        from unpu.boards.cfirmware import sources_digest
        from unpu.cache import key_of

        parts = {"model": model.digest, "port": "gap8", "autotiler": OmegaConf.to_container(self.board.autotiler),
                 "nntool": OmegaConf.to_container(self.board.nntool),
                 "firmware": sources_digest(REPO / "firmware" / "harness", REPO / "firmware" / "kernels", PORT)}
        return key_of(parts)[:12]

    def build_defines(self, model: QuantizedModel, files, build_id: str, q15: bool = False) -> dict[str, str]:
        from unpu.compilers.nntool import parse_kernels_c
        from unpu.graph import inspect_tflite

        info = inspect_tflite(model.path.read_bytes())
        inp, outp = info.inputs[0], info.outputs[0]
        alloc = parse_kernels_c(files.kernels_c.read_text(errors="replace"))
        pins = self.board.get("pins") or {}
        defines = {"UNPU_MODEL_ID": model_id_string(self.cfg), "UNPU_BUILD_ID": c_string(build_id),
                   "UNPU_GAP_INPUT_BYTES": str(tensor_bytes(inp.shape, inp.dtype)),
                   "UNPU_GAP_OUTPUT_BYTES": str(tensor_bytes(outp.shape, outp.dtype)),
                   "UNPU_OUTPUT_SCALE": f"{float(outp.scale or 1.0)!r}f",
                   "UNPU_OUTPUT_ZERO_POINT": str(int(outp.zero_point or 0)),
                   "UNPU_GAP_ARENA_BYTES": str(alloc.get("l2", 0) + alloc.get("l2_dyn", 0)),
                   "UNPU_GAP_UART_BAUD": str(int(self.board.serial.baudrate)),
                   "UNPU_AT_FLASH_ADDR_TYPE": FLASH_ADDR_TYPES.get(str(self.board.nntool.l3_flash_device),
                                                                    "AT_HYPERFLASH_FS_EXT_ADDR_TYPE")}
        if self.board.nntool.get("transpose_io", True):
            defines.update(chw_defines("IN", inp.shape))
            if not q15:
                defines.update(chw_defines("OUT", outp.shape))
        if q15:
            defines["UNPU_GAP_OUTPUT_Q15"] = "1"
        for role in ("timestamp", "stage"):
            if role in pins:
                defines[f"UNPU_GAP_PIN_{role.upper()}"] = str(pins[role].gpio)
                defines[f"UNPU_GAP_PAD_{role.upper()}"] = str(pins[role].pad)
        defines.update(softmax_defines(self.cfg, outp))
        return defines

    # -- flash and run ---------------------------------------------------------------------------
    def gapy_args(self, firmware: Firmware) -> list[str]:
        target = os.environ.get("GAPY_TARGET", "gapuino_v3")
        return [self.gapy(), f"--target={target}", "--platform=board", f"--work-dir={firmware.extra['builddir']}",
                f"--config-opt=**/flash/content/partitions/readfs/files={firmware.extra['weights']}"]

    def flash_command(self, firmware: Firmware) -> list[str]:
        return self.gapy_args(firmware) + ["run", "--image", "--flash", f"--binary={firmware.image}"]

    def exec_command(self, firmware: Firmware) -> list[str]:
        return self.gapy_args(firmware) + ["run", "--exec-prepare", "--exec", f"--binary={firmware.image}"]

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        flash_log = workdir / "flash.log"
        run_with_retry(self.flash_command(firmware), flash_log, "gapy (image + HyperFlash)", FLASH_TIMEOUT_S,
                       cwd=Path(firmware.extra["builddir"]))
        firmware.artifacts["device/flash.log"] = flash_log

    def start(self, firmware: Firmware, workdir: Path) -> subprocess.Popen:
        """gapy's JTAG load and start; it stays attached while the firmware runs (stop() ends it)."""
        log_file = open(workdir / "gapy_exec.log", "ab")
        try:
            proc = subprocess.Popen(self.exec_command(firmware), stdout=log_file, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=firmware.extra["builddir"], start_new_session=True)
        except OSError as exc:
            raise BoardError(f"gapy (JTAG load and start) could not start: {exc}") from None
        finally:
            log_file.close()
        firmware.artifacts["device/gapy_exec.log"] = workdir / "gapy_exec.log"
        try:
            code = proc.wait(timeout=EXEC_START_S)
        except subprocess.TimeoutExpired:
            return proc   # still attached: the firmware runs
        if code != 0:
            raise BoardError(f"gapy (JTAG load and start) exited {code}: see {workdir / 'gapy_exec.log'}")
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=EXEC_STOP_S)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        self.flash(firmware, workdir)
        proc = self.start(firmware, workdir)
        try:
            with serial_link(self.board, self.cfg, transcript) as client:
                yield client
        finally:
            self.stop(proc)


# -- helpers (pure) -----------------------------------------------------------------------------------

def tensor_bytes(shape, dtype: str) -> int:
    count = 1
    for dim in shape:
        count *= max(int(dim), 1)
    return count * _DTYPE_BYTES.get(dtype, 4)


def chw_defines(which: str, shape) -> dict[str, str]:
    """UNPU_GAP_<which>_H/W/C for an NHWC tensor NNTool's `adjust` turns to CHW (H·W > 1 and C > 1)."""
    dims = [int(d) for d in shape]
    if len(dims) != 4 or dims[1] * dims[2] <= 1 or dims[3] <= 1:
        return {}
    return {f"UNPU_GAP_{which}_H": str(dims[1]), f"UNPU_GAP_{which}_W": str(dims[2]),
            f"UNPU_GAP_{which}_C": str(dims[3])}


def model_id_string(cfg) -> str:
    import re

    from unpu import stages

    return c_string(re.sub(r"[^A-Za-z0-9_.-]", "_", stages.model_id(cfg))[:64] or "model")


def softmax_defines(cfg, out) -> dict[str, str]:
    if str(cfg.model.get("post", "none")) != "softmax" or out.dtype != "int8" or not out.scale:
        return {}
    from unpu.codegen.reader import softmax_gemmlowp_params

    p = softmax_gemmlowp_params(1.0, float(out.scale))
    return {"UNPU_POST_SOFTMAX": "1", "UNPU_SOFTMAX_MULTIPLIER": str(p["input_multiplier"]),
            "UNPU_SOFTMAX_LEFT_SHIFT": str(p["input_left_shift"]), "UNPU_SOFTMAX_DIFF_MIN": str(p["diff_min"])}


def constant_and_activation_bytes(tflite: bytes) -> tuple[int, int, str]:
    """Bytes of the constant tensors (weights, biases), and the largest non-constant tensor and its name."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    graph = model.subgraphs[0]
    weights, largest, largest_name = 0, 0, ""
    for tensor in graph.tensors:
        buf = model.buffers[tensor.buffer] if 0 <= tensor.buffer < len(model.buffers) else None
        data = getattr(buf, "data", None) if buf is not None else None
        size = 1
        for dim in (tensor.shape if tensor.shape is not None else []):
            size *= max(int(dim), 1)
        size *= {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8}.get(int(tensor.type), 4)
        if data is not None and len(data):
            weights += len(data)
        elif size > largest:
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            largest, largest_name = size, name
    return weights, largest, largest_name
