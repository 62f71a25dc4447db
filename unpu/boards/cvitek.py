"""Sophgo CV1800B (Milk-V Duo): TPU-MLIR .cvimodel + the C harness as a Linux program over SSH.

Compile: unpu.compilers.tpu_mlir (tflite -> ONNX -> MLIR -> calibration -> symmetric INT8 cvimodel).
Build: firmware/ports/cv1800b/Makefile cross-compiles the portable harness, the Linux port
(stdin/stdout link, clock_gettime timer, sysfs GPIO pins) and the cviruntime runner with the Duo
SDK's riscv64 musl gcc against the cvitek_tpu_sdk for cv180x (TPU_SDK_PATH).
Deploy: `ssh mkdir -p`, then `scp` of the program, the .cvimodel and the SDK's lib/ to
board.ssh.remote_dir; run: `ssh -T` starts the program with LD_LIBRARY_PATH=<dir>/lib, and the DUT
protocol runs over the ssh process's stdin/stdout (PipeLink: a pyserial-like reader with timeouts).
Every ssh/scp runs with BatchMode=yes and a ConnectTimeout: no password prompt can block a run.
"""

from __future__ import annotations

import logging
import os
import select
import shlex
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.toolchain import (c_string, require_dir, require_tool, run_logged, run_with_retry,
                                   tool_from_env, write_build_header)
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PORT = REPO / "firmware" / "ports" / "cv1800b"
PROGRAM = "unpu_cvi"
SDK_URL = "https://github.com/milkv-duo/duo-buildroot-sdk"
TPU_SDK_URL = "https://github.com/sophgo/tpu-mlir (cvitek_tpu_sdk_cv180x_musl_riscv64_rvv, see its CV18xx guide)"
START_TIMEOUT_S = 30
DEPLOY_TIMEOUT_S = 300
MIB = 1024 * 1024
_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "float32": 4, "int32": 4}


class CV1800BBoard(Board):
    source_latency = "measured"
    bit_exact = False    # TPU-MLIR re-quantizes (symmetric INT8); validation reports the gap

    # -- configuration -------------------------------------------------------------------------
    @property
    def toolchain(self):
        return self.board.toolchain

    @property
    def options(self):
        from unpu.compilers.tpu_mlir import TpuMlirOptions

        opts = self.board.get("tpu_mlir") or {}
        return TpuMlirOptions(processor=str(opts.get("processor") or "cv180x"), opset=int(opts.get("opset") or 13),
                              python=self.toolchain.get("tf2onnx_python") or None)

    def target(self) -> str:
        if not self.board.get("host"):
            raise BoardError("board.host is not set: give the Duo's address (USB-RNDIS default: board.host=192.168.42.1)")
        return f"{self.board.ssh.get('user') or 'root'}@{self.board.host}"

    def ssh_options(self) -> list[str]:
        ssh = self.board.ssh
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(ssh.get('connect_timeout_s') or 10)}"]
        for opt in ssh.get("options") or []:
            opts += ["-o", str(opt)]
        return opts

    @property
    def remote_dir(self) -> str:
        return str(self.board.ssh.get("remote_dir") or "/root/unpu")

    # -- environment ---------------------------------------------------------------------------
    def check_environment(self) -> None:
        from unpu.compilers.tpu_mlir import TpuMlirError, check_tf2onnx, check_version, find_tools

        try:
            tools = find_tools(str(self.toolchain.get("tpu_mlir_env") or "TPU_MLIR_PATH"))
            self._version = check_version(tools, self.options.processor)
            check_tf2onnx(self.options.python)
        except TpuMlirError as exc:
            raise BoardError(str(exc)) from None
        self._tools = tools
        self.sdk_dir()
        self.cross_cc()
        require_tool("make", "install the Debian package make")
        require_tool("ssh", "install the Debian package openssh-client")
        require_tool("scp", "install the Debian package openssh-client")
        self.target()

    def sdk_dir(self) -> Path:
        return require_dir(str(self.toolchain.sdk_env), f"the cvitek_tpu_sdk for cv180x ({TPU_SDK_URL})",
                           "include/cviruntime.h")

    def cross_cc(self) -> str:
        return tool_from_env(str(self.toolchain.get("cc_env") or "DUO_TOOLCHAIN"), str(self.toolchain.cc),
                             f"the Milk-V Duo SDK's host-tools/gcc/riscv64-linux-musl-x86_64 ({SDK_URL})")

    # -- pre-flight ----------------------------------------------------------------------------
    def preflight(self, model: QuantizedModel) -> None:
        from unpu.graph import inspect_tflite

        graph = inspect_tflite(model.path.read_bytes())
        check_io(model.name, graph)
        check_ops(model.name, graph, self.supported_ops())
        need, limit = estimate_ion_bytes(model.path.read_bytes()), self.ion_limit()
        if limit and need > limit:
            raise BoardError(f"{model.name} does not fit the {self.board.name} TPU: about {need:,} B of ION memory "
                             f"(int8 weights + the two largest activations), board.memory.ion_bytes is {limit:,} B")
        linux = self.board.memory.get("linux_bytes")
        if linux and model.path.stat().st_size > linux:
            raise BoardError(f"{model.name} ({model.path.stat().st_size:,} B) exceeds the {linux:,} B of DRAM Linux has")

    def supported_ops(self) -> tuple[str, ...]:
        from unpu.compilers.tpu_mlir import SUPPORTED_OPS

        ops = (self.board.get("tpu_mlir") or {}).get("supported_ops")
        return tuple(str(o) for o in ops) if ops else SUPPORTED_OPS

    def ion_limit(self) -> int | None:
        value = self.board.memory.get("ion_bytes")
        return int(value) if value else None

    # -- build ---------------------------------------------------------------------------------
    def compile(self, model: QuantizedModel):
        from unpu.cache import Cache
        from unpu.compilers.tpu_mlir import TpuMlirError, compile_model

        if not hasattr(self, "_tools"):
            self.check_environment()
        try:
            return compile_model(model.path, model.digest, self.calibration_samples(model), self.options,
                                 self._tools, self._version, Cache(self.cfg.cache.dir))
        except TpuMlirError as exc:
            raise BoardError(str(exc)) from None

    def calibration_samples(self, model: QuantizedModel):
        from hydra.utils import instantiate

        from unpu.graph import inspect_tflite

        if self.cfg.model.source == "zoo":
            from unpu.models import ZOO

            spec = ZOO[str(self.cfg.model.name)]
        else:
            spec = tuple(inspect_tflite(model.path.read_bytes()).inputs[0].shape[1:])
        return instantiate(self.cfg.dataset).samples(spec, int(self.cfg.quant.calibration_samples), "calibration")

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        from unpu.boards.cfirmware import memory_metrics, size_report
        from unpu.cache import bytes_digest, file_digest

        result = self.compile(model)
        limit = self.ion_limit()
        if limit and (result.info.ion_bytes or 0) > limit:
            raise BoardError(f"{model.name} does not fit the {self.board.name} TPU: the cvimodel needs "
                             f"{result.info.ion_bytes:,} B of ION memory, board.memory.ion_bytes is {limit:,} B")
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = bytes_digest(f"{file_digest(result.cvimodel)}:{self.port_digest()}".encode())[:12]
        defines = build_defines(self.cfg, model, build_id, result.info.ion_bytes or 0)
        build_h = write_build_header(out / "unpu_build.h", defines)
        build_log = out / "build.log"
        run_logged(self.make_command(out / "build", build_h), build_log, "CV1800B harness build (riscv64 musl)")
        elf = out / "build" / PROGRAM
        size = out / "size.txt"
        size.write_text(size_report(elf))
        digest = bytes_digest((file_digest(elf) + file_digest(result.cvimodel)).encode())
        return Firmware(
            image=elf, digest=digest, build_id=build_id, arena_bytes=result.info.ion_bytes,
            metrics={**memory_metrics(elf), **result.metrics()},
            tags={**result.tags(self.options.processor), "runtime": "cviruntime", "firmware.port": "cv1800b",
                  "firmware.build_id": build_id, "flash.tool": "ssh+scp",
                  "memory.method": "model_tool --info (ION = weights + cmdbuf + gmem + io)"},
            artifacts={"firmware/unpu_cvi": elf, "firmware/size.txt": size, "firmware/build.log": build_log,
                       "compiler/model.cvimodel": result.cvimodel, "compiler/tpu_mlir.log": result.log},
            extra={"cvimodel": result.cvimodel})

    def port_digest(self) -> str:
        from unpu.boards.cfirmware import sources_digest

        return sources_digest(REPO / "firmware" / "harness", REPO / "firmware" / "kernels", PORT)

    def make_command(self, build_dir: Path, build_h: Path) -> list[str]:
        return ["make", "-C", str(PORT), f"CC={self.cross_cc()}", f"TPU_SDK_PATH={self.sdk_dir()}",
                f"BUILD_DIR={build_dir}", f"BUILD_H={build_h}"]

    # -- deploy and run ------------------------------------------------------------------------
    def deploy_commands(self, program: Path, cvimodel: Path) -> list[list[str]]:
        """mkdir on the board, then one scp of the program, the model and the runtime libraries.
        scp -O: the Duo's dropbear has no SFTP server, which OpenSSH >= 9.0 scp uses by default."""
        legacy = ["-O"] if self.board.ssh.get("scp_legacy", True) else []
        port = str(self.board.ssh.get("port") or 22)
        return [["ssh", *self.ssh_options(), "-p", port, self.target(), f"mkdir -p {shlex.quote(self.remote_dir)}"],
                ["scp", *legacy, *self.ssh_options(), "-P", port, "-r", str(program), str(cvimodel),
                 str(self.sdk_dir() / "lib"), f"{self.target()}:{self.remote_dir}/"]]

    def run_command(self, cvimodel_name: str) -> list[str]:
        """`ssh -T` (no pty: a clean byte pipe) running the harness; pins are sysfs GPIO numbers."""
        d = shlex.quote(self.remote_dir)
        pins = self.board.get("pins") or {}
        args = [f"./{PROGRAM}", shlex.quote(cvimodel_name)]
        args += [str(int(pins.get(k))) if pins.get(k) is not None else "-1" for k in ("timestamp_gpio", "stage_gpio")]
        remote = f"cd {d} && LD_LIBRARY_PATH={d}/lib exec {' '.join(args)}"
        return ["ssh", *self.ssh_options(), "-p", str(self.board.ssh.get("port") or 22), "-T", self.target(), remote]

    def deploy(self, firmware: Firmware, workdir: Path) -> Path:
        deploy_log = workdir / "deploy.log"
        for cmd in self.deploy_commands(firmware.image, Path(firmware.extra["cvimodel"])):
            run_with_retry(cmd, deploy_log, f"{cmd[0]} to {self.board.host}", DEPLOY_TIMEOUT_S)
        firmware.artifacts["device/deploy.log"] = deploy_log
        return deploy_log

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        from unpu.boards.process import check_alive, stop

        self.check_environment()
        self.deploy(firmware, workdir)
        stderr_path = workdir / "device_stderr.log"
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(self.run_command(Path(firmware.extra["cvimodel"]).name), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        try:
            what = f"{PROGRAM} on {self.board.host} (over ssh)"
            client = DutClient(PipeLink(proc), float(self.cfg.bench.timeout_s), transcript,
                               check_alive=lambda: check_alive(proc, stderr_path, what))
            client.connect(attempts=int(START_TIMEOUT_S / 0.5))
            yield client
        finally:
            if proc.stdin:
                proc.stdin.close()
            stop(proc)
            firmware.artifacts["device/stderr.log"] = stderr_path


class PipeLink:
    """The SerialLike face of a subprocess's stdin/stdout (protocol.SerialLike): reads wait at most
    `timeout` seconds and return what arrived, like pyserial; a closed pipe raises OSError."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.timeout: float | None = 0.2
        self._fd = proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._buf = bytearray()
        self._eof = False

    def write(self, data: bytes) -> int:
        self.proc.stdin.write(data)
        return len(data)

    def flush(self) -> None:
        self.proc.stdin.flush()

    def reset_input_buffer(self) -> None:
        self._fill(0)
        self._buf.clear()

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        deadline = time.monotonic() + (self.timeout or 0)
        while True:
            at = self._buf.find(expected)
            if at >= 0:
                return self._take(at + len(expected) if size is None else min(at + len(expected), size))
            if size is not None and len(self._buf) >= size:
                return self._take(size)
            remaining = deadline - time.monotonic()
            if self._eof and not self._buf:
                raise OSError("the link closed (the ssh process ended)")
            if remaining <= 0 or self._eof:
                return self._take(len(self._buf))
            self._fill(remaining)

    def _fill(self, wait_s: float) -> None:
        if self._eof or not select.select([self._fd], [], [], max(wait_s, 0))[0]:
            return
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            self._buf += chunk
        else:
            self._eof = True

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


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


def estimate_ion_bytes(tflite: bytes) -> int:
    """Before compiling: int8 constant bytes + the two largest activation tensors (a lower bound
    on what the cvimodel's ION area holds: weights, and activations of at least one layer)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    graph = model.subgraphs[0]
    consts, acts = 0, []
    for tensor in graph.tensors:
        buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
        count = 1
        for dim in (tensor.shape if tensor.shape is not None else []):
            count *= max(int(dim), 1)
        if buffer is not None and buffer.data is not None and len(buffer.data):
            consts += len(buffer.data)
        else:
            acts.append(count)  # activations: int8 on the TPU
    return consts + sum(sorted(acts)[-2:])


def build_defines(cfg, model: QuantizedModel, build_id: str, ion_bytes: int) -> dict[str, str]:
    """unpu_build.h for runner_cvi.c: sizes and the TFLite int8 scales of input and output."""
    import re

    from unpu import stages
    from unpu.graph import inspect_tflite

    info = inspect_tflite(model.path.read_bytes())
    inp, out = info.inputs[0], info.outputs[0]

    def count(t) -> int:
        n = 1
        for dim in t.shape:
            n *= max(int(dim), 1)
        return n

    defines = {"UNPU_MODEL_ID": c_string(re.sub(r"[^A-Za-z0-9_.-]", "_", stages.model_id(cfg))[:64] or "model"),
               "UNPU_BUILD_ID": c_string(build_id), "UNPU_INPUT_BYTES": str(count(inp) * _BYTES[inp.dtype]),
               "UNPU_OUTPUT_BYTES": str(count(out) * _BYTES[out.dtype]),
               "UNPU_IN_SCALE": f"{float(inp.scale):.9g}f", "UNPU_IN_ZP": str(int(inp.zero_point or 0)),
               "UNPU_OUT_SCALE": f"{float(out.scale):.9g}f", "UNPU_OUT_ZP": str(int(out.zero_point or 0)),
               "UNPU_CVI_ION_BYTES": str(int(ion_bytes))}
    if str(cfg.model.get("post", "none")) == "softmax":
        from unpu.codegen.reader import softmax_gemmlowp_params

        p = softmax_gemmlowp_params(1.0, float(out.scale))
        defines.update({"UNPU_POST_SOFTMAX": "1", "UNPU_SOFTMAX_MULTIPLIER": str(p["input_multiplier"]),
                        "UNPU_SOFTMAX_LEFT_SHIFT": str(p["input_left_shift"]),
                        "UNPU_SOFTMAX_DIFF_MIN": str(p["diff_min"])})
    return defines
