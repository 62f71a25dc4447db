"""Sophgo CV1800B (Milk-V Duo): TPU-MLIR .cvimodel + the C harness as a Linux program over SSH.

Compile: unpu.compilers.tpu_mlir (tflite -> ONNX -> MLIR -> calibration -> symmetric INT8 cvimodel).
Build: the board port's Makefile cross-compiles the portable harness, the Linux port
(stdin/stdout link, clock_gettime timer, sysfs GPIO pins) and the cviruntime runner with the Duo
SDK's riscv64 musl gcc against the cvitek_tpu_sdk for cv180x (TPU_SDK_PATH).
Deploy: `ssh mkdir -p`, then `scp` of the program, the .cvimodel and the SDK's lib/ to
board.ssh.remote_dir; run: `ssh -T` starts the program with LD_LIBRARY_PATH=<dir>/lib, and the DUT
protocol runs over the ssh process's stdin/stdout (unpu.links.PipeLink).
Every ssh/scp runs with BatchMode=yes and a ConnectTimeout: no password prompt can block a run.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import field
from pathlib import Path
from typing import List, Optional

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
from unpu.cache import bytes_digest, file_digest
from unpu.compilers.tpu_mlir import (
    SUPPORTED_OPS,
    TpuMlirError,
    TpuMlirOptions,
    TpuMlirResult,
    check_tf2onnx,
    check_version,
    compile_model,
    find_tools,
)
from unpu.errors import BoardError, ToolError
from unpu.graph import GraphInfo, inspect_tflite
from unpu.links import PipeLink
from unpu.protocol import SerialLike
from unpu.tools import require_tool, run_logged

log = logging.getLogger(__name__)

PROGRAM = "unpu_cvi"
DEPLOY_TIMEOUT_S = 300


class CviToolchain(ToolchainSpec):
    cc: str = "riscv64-unknown-linux-musl-gcc"
    tf2onnx_python: Optional[str] = None    # the Python that runs tf2onnx; null: unpu's own


class TpuMlirSpec(Spec):
    processor: str = "cv180x"               # model_deploy --processor
    opset: int = 13                         # tf2onnx --opset
    supported_ops: Optional[List[str]] = None   # null: unpu.compilers.tpu_mlir.SUPPORTED_OPS


class SshSpec(Spec):
    user: str = "root"
    port: int = 22
    connect_timeout_s: int = 10
    options: List[str] = field(default_factory=list)   # extra -o options
    remote_dir: str = "/root/unpu"
    scp_legacy: bool = True                 # scp -O: the Duo's dropbear has no SFTP server


class CviMemory(MemorySpec):
    ion_bytes: Optional[int] = None         # the ION carve-out the TPU runtime allocates from
    linux_bytes: Optional[int] = None       # DRAM left to Linux


class CV1800BSpec(BoardSpec):
    memory: CviMemory                       # pins: sysfs GPIO numbers
    toolchain: CviToolchain
    tpu_mlir: TpuMlirSpec
    host: Optional[str] = None              # the Duo's address (USB-RNDIS default 192.168.42.1)
    ssh: SshSpec


class CV1800BBoard(Board):
    Spec = CV1800BSpec
    bit_exact = False    # TPU-MLIR re-quantizes (symmetric INT8); validation reports the gap

    def __init__(self, spec: CV1800BSpec, context) -> None:
        super().__init__(spec, context)
        self._tools: dict[str, str] | None = None
        self._version = ""

    # -- configuration -------------------------------------------------------------------------
    @property
    def options(self) -> TpuMlirOptions:
        opts = self.spec.tpu_mlir
        return TpuMlirOptions(processor=opts.processor, opset=opts.opset, python=self.spec.toolchain.tf2onnx_python)

    def target(self) -> str:
        if not self.spec.host:
            raise BoardError("board.host is not set: give the Duo's address (USB-RNDIS default: board.host=192.168.42.1)")
        return f"{self.spec.ssh.user}@{self.spec.host}"

    def device_address(self) -> str | None:
        """The Duo is one physical board reached over ssh: its lock is keyed by user, host and port."""
        return f"{self.spec.ssh.user}@{self.spec.host}:{self.spec.ssh.port}" if self.spec.host else None

    def ssh_options(self) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.spec.ssh.connect_timeout_s}"]
        for opt in self.spec.ssh.options:
            opts += ["-o", opt]
        return opts

    @property
    def remote_dir(self) -> str:
        return self.spec.ssh.remote_dir

    # -- environment ---------------------------------------------------------------------------
    def check_environment(self) -> None:
        try:
            tools = find_tools(self.tool("tpu_mlir").var)
            self._version = check_version(tools, self.options.processor)
            check_tf2onnx(self.options.python)
        except TpuMlirError as exc:
            raise ToolError(str(exc)) from None
        self._tools = tools
        self.sdk_dir()
        self.cross_cc()
        require_tool("make", "install the Debian package make")
        require_tool("ssh", "install the Debian package openssh-client")
        require_tool("scp", "install the Debian package openssh-client")
        self.target()

    def sdk_dir(self) -> Path:
        return self.tool_dir("sdk", "include/cviruntime.h")

    def cross_cc(self) -> str:
        return self.tool_exe("cc", self.spec.toolchain.cc)

    # -- pre-flight ----------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        graph = inspect_tflite(model.path.read_bytes())
        check_io(model.name, graph)
        check_ops(model.name, graph, self.supported_ops())
        need, limit = estimate_ion_bytes(graph), self.spec.memory.ion_bytes
        if limit and need > limit:
            raise BoardError(f"{model.name} does not fit the {self.spec.name} TPU: about {need:,} B of ION memory "
                             f"(int8 weights + the two largest activations), board.memory.ion_bytes is {limit:,} B")
        linux = self.spec.memory.linux_bytes
        if linux and model.path.stat().st_size > linux:
            raise BoardError(f"{model.name} ({model.path.stat().st_size:,} B) exceeds the {linux:,} B of DRAM Linux has")

    def supported_ops(self) -> tuple[str, ...]:
        ops = self.spec.tpu_mlir.supported_ops
        return tuple(ops) if ops else SUPPORTED_OPS

    # -- build ---------------------------------------------------------------------------------
    def compile(self, model: QuantizedModel) -> TpuMlirResult:
        if self._tools is None:
            self.check_environment()
        if self.context.calibration is None:
            raise BoardError("TPU-MLIR needs calibration inputs and the job gave none")
        try:
            return compile_model(model.path, model.digest, self.context.calibration(model.path), self.options,
                                 self._tools, self._version, self.context.cache)
        except TpuMlirError as exc:
            raise BoardError(str(exc)) from None

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        result = self.compile(model)
        limit = self.spec.memory.ion_bytes
        if limit and (result.info.ion_bytes or 0) > limit:
            raise BoardError(f"{model.name} does not fit the {self.spec.name} TPU: the cvimodel needs "
                             f"{result.info.ion_bytes:,} B of ION memory, board.memory.ion_bytes is {limit:,} B")
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = bytes_digest(f"{file_digest(result.cvimodel)}:{firmware_digest()}".encode())[:12]
        defines = self.build_defines(model, build_id, result.info.ion_bytes or 0)
        build_h = write_build_header(out / "unpu_build.h", defines)
        build_log = out / "build.log"
        run_logged(self.make_command(out / "build", build_h), build_log, "CV1800B harness build (riscv64 musl)")
        elf = out / "build" / PROGRAM
        size = write_size_report(elf, out / "size.txt")
        digest = bytes_digest((file_digest(elf) + file_digest(result.cvimodel)).encode())
        return Firmware(
            image=elf, digest=digest, build_id=build_id, arena_bytes=result.info.ion_bytes,
            metrics={**memory_metrics(elf), **result.metrics()},
            tags={**result.tags(self.options.processor), "firmware.port": self.spec.firmware_port,
                  "firmware.build_id": build_id, "memory.method": "model_tool --info (ION = weights + cmdbuf + gmem + io)"},
            artifacts={"firmware/unpu_cvi": elf, "firmware/size.txt": size, "firmware/build.log": build_log,
                       "compiler/model.cvimodel": result.cvimodel, "compiler/tpu_mlir.log": result.log},
            files={"cvimodel": result.cvimodel})

    def build_defines(self, model: QuantizedModel, build_id: str, ion_bytes: int) -> dict[str, str]:
        """unpu_build.h for runner_cvi.c: sizes and the TFLite int8 scales of input and output."""
        info = inspect_tflite(model.path.read_bytes())
        inp, out = info.inputs[0], info.outputs[0]
        return {**build_defines(self.context, build_id, out),
                "UNPU_INPUT_BYTES": str(inp.nbytes), "UNPU_OUTPUT_BYTES": str(out.nbytes),
                "UNPU_IN_SCALE": f"{float(inp.scale):.9g}f", "UNPU_IN_ZP": str(int(inp.zero_point or 0)),
                "UNPU_OUT_SCALE": f"{float(out.scale):.9g}f", "UNPU_OUT_ZP": str(int(out.zero_point or 0)),
                "UNPU_CVI_ION_BYTES": str(int(ion_bytes))}

    def make_command(self, build_dir: Path, build_h: Path) -> list[str]:
        return plain_paths(["make", "-C", str(self.port_dir), f"CC={self.cross_cc()}", f"TPU_SDK_PATH={self.sdk_dir()}",
                            f"BUILD_DIR={build_dir}", f"BUILD_H={build_h}"])

    # -- deploy and run ------------------------------------------------------------------------
    def deploy_commands(self, program: Path, cvimodel: Path) -> list[list[str]]:
        """mkdir on the board, then one scp of the program, the model and the runtime libraries.
        scp -O: the Duo's dropbear has no SFTP server, which OpenSSH >= 9.0 scp uses by default."""
        legacy = ["-O"] if self.spec.ssh.scp_legacy else []
        port = str(self.spec.ssh.port)
        return [["ssh", *self.ssh_options(), "-p", port, self.target(), f"mkdir -p {shlex.quote(self.remote_dir)}"],
                ["scp", *legacy, *self.ssh_options(), "-P", port, "-r", str(program), str(cvimodel),
                 str(self.sdk_dir() / "lib"), f"{self.target()}:{self.remote_dir}/"]]

    def run_command(self, cvimodel_name: str) -> list[str]:
        """`ssh -T` (no pty: a clean byte pipe) running the harness; pins are sysfs GPIO numbers."""
        d = shlex.quote(self.remote_dir)
        pins = self.spec.pins
        args = [f"./{PROGRAM}", shlex.quote(cvimodel_name)]
        args += [str(p) if p is not None else "-1" for p in (pins.timestamp, pins.stage)]
        remote = f"cd {d} && LD_LIBRARY_PATH={d}/lib exec {' '.join(args)}"
        return ["ssh", *self.ssh_options(), "-p", str(self.spec.ssh.port), "-T", self.target(), remote]

    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        """Deploy: the program, the model and the runtime over ssh/scp."""
        return [FlashStep(cmd, f"{cmd[0]} to {self.spec.host}", timeout_s=DEPLOY_TIMEOUT_S)
                for cmd in self.deploy_commands(firmware.image, firmware.files["cvimodel"])]

    def device(self, firmware: Firmware, workdir: Path) -> DeviceProcess:
        firmware.artifacts["device/stderr.log"] = workdir / "device_stderr.log"
        return DeviceProcess(self.run_command(firmware.files["cvimodel"].name), workdir / "device_stderr.log",
                             f"{PROGRAM} on {self.spec.host} (over ssh)", stdout="pipe", stdin="pipe")

    def link(self, firmware: Firmware, process: DeviceProcess) -> SerialLike:
        return PipeLink(process.proc)


# -- pre-flight rules (pure) -----------------------------------------------------------------------
def check_io(name: str, graph) -> None:
    for tensor in (*graph.inputs, *graph.outputs):
        if tensor.dtype != "int8" or not tensor.scale:
            raise BoardError(f"{name}: tensor {tensor.name!r} is {tensor.dtype}; the cv1800b path takes int8 "
                             f"models (quant=int8 or int8_per_tensor)")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BoardError(f"{name} has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; the cv1800b "
                         f"runner handles one of each")


def check_ops(name: str, graph, supported: tuple[str, ...]) -> None:
    for op in graph.ops:
        if op.op not in supported:
            raise BoardError(f"{name}: operator {op.op} (layer {op.index}) is not supported on the cv1800b path "
                             f"(tflite -> tf2onnx -> TPU-MLIR cv180x); supported: {', '.join(supported)}")


def estimate_ion_bytes(graph: GraphInfo) -> int:
    """Before compiling: int8 constant bytes + the two largest activation tensors (a lower bound
    on what the cvimodel's ION area holds: weights, and activations of at least one layer)."""
    activations = sorted(t.elements for t in graph.activations)   # int8 on the TPU: one byte each
    return graph.weight_bytes + sum(activations[-2:])


