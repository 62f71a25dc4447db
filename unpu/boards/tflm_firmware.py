"""TFLite Micro firmware for the boards whose runtime is TFLM around an NPU's compiled model
(Ethos-U: hxwe2, alif_e7, corstone300; Neutron: mcxn947): where TFLM comes from, the arena the
firmware reserves, the build's defines, its id, and the firmware record.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from unpu.artifacts import BuildContext, Firmware, QuantizedModel
from unpu.boards.ethosu import cpu_tensor_bytes
from unpu.boards.firmware import (
    HARNESS,
    build_defines,
    firmware_digest,
    memory_metrics,
    write_size_report,
)
from unpu.boards.spec import ToolSpec
from unpu.cache import file_digest, key_of
from unpu.errors import ToolError
from unpu.graph import inspect_tflite
from unpu.tools import require_dir

TFLM_BUILD = ("make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic TARGET_ARCH=cortex-m55 "
              "CO_PROCESSOR=ethos_u OPTIMIZED_KERNEL_DIR=cmsis_nn microlite")
TFLM_GLOB = "gen/cortex_m_generic_cortex-m55*ethos_u*/lib/libtensorflow-microlite.a"
DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")
ARENA_MARGIN = 32 * 1024  # TFLM's own allocations beyond the tensors (interpreter, op data)
RUNNER = HARNESS / "runner_tflm.cc"
# TFLM MicroMutableOpResolver::Add*() -> the TFLite builtin it registers
RESOLVER_METHODS = {
    "Conv2D": "CONV_2D", "DepthwiseConv2D": "DEPTHWISE_CONV_2D", "FullyConnected": "FULLY_CONNECTED",
    "Add": "ADD", "Mul": "MUL", "AveragePool2D": "AVERAGE_POOL_2D", "MaxPool2D": "MAX_POOL_2D",
    "Mean": "MEAN", "Reshape": "RESHAPE", "Softmax": "SOFTMAX", "Logistic": "LOGISTIC",
    "Quantize": "QUANTIZE", "Dequantize": "DEQUANTIZE", "Pad": "PAD", "PadV2": "PADV2",
    "Concatenation": "CONCATENATION", "Slice": "SLICE", "StridedSlice": "STRIDED_SLICE",
    "Transpose": "TRANSPOSE", "Relu": "RELU", "Relu6": "RELU6", "HardSwish": "HARD_SWISH",
    "LeakyRelu": "LEAKY_RELU", "Sub": "SUB", "EthosU": "CUSTOM:ethos-u",
}


def runner_ops(source: str | None = None, ethosu: bool = False) -> frozenset[str]:
    """The builtins the TFLM runner (firmware/harness/runner_tflm.cc) registers, read from its
    source (without the Ethos-U operator unless `ethosu`): a model with any other CPU operator cannot run."""
    text = RUNNER.read_text() if source is None else source
    methods = re.findall(r"resolver\.Add(\w+)\(\)", text)
    unknown = [m for m in methods if m not in RESOLVER_METHODS]
    if unknown:
        raise ToolError(f"runner_tflm.cc registers operators unpu cannot name: {', '.join(unknown)}")
    ops = {RESOLVER_METHODS[m] for m in methods}
    return frozenset(ops if ethosu else ops - {"CUSTOM:ethos-u"})


def tflm_paths(tool: ToolSpec) -> dict[str, Path]:
    """TFLM_DIR (the board's `tflm` tool), its Ethos-U library and the Ethos-U core driver (env
    overrides: TFLM_LIB, ETHOSU_DRIVER_DIR)."""
    tflm = require_dir(str(tool.var), f"{tool.what}, built once with `{TFLM_BUILD}` ({tool.url})",
                       "tensorflow/lite/micro/micro_interpreter.h")
    if os.environ.get("TFLM_LIB"):
        lib = Path(os.environ["TFLM_LIB"]).expanduser()
        if not lib.is_file():
            raise ToolError(f"TFLM_LIB={lib} does not exist")
    else:
        libs = sorted(tflm.glob(TFLM_GLOB))
        if len(libs) != 1:
            found = "none" if not libs else f"{len(libs)} (set TFLM_LIB to one)"
            raise ToolError(f"TFLM library for Cortex-M55 + Ethos-U under {tflm}/gen: {found}; build it in "
                            f"TFLM_DIR with `{TFLM_BUILD}`")
        lib = libs[0]
    driver = Path(os.environ.get("ETHOSU_DRIVER_DIR") or tflm / DOWNLOADS / "ethos_u_core_driver").expanduser()
    if not (driver / "include" / "ethosu_driver.h").exists():
        raise ToolError(f"no Ethos-U core driver at {driver}: set ETHOSU_DRIVER_DIR or build TFLM with `{TFLM_BUILD}`")
    return {"TFLM_DIR": tflm, "TFLM_LIB": lib, "ETHOSU_DRIVER_DIR": driver}


def arena_bytes(compiled: bytes, npu_sram_bytes: int = 0) -> int:
    """TFLM arena for a model compiled for an NPU: the compiler's SRAM area (Vela's scratch tensor;
    0 where the NPU kernel allocates its own) + the CPU operators' tensors + a margin for TFLM's own
    allocations, rounded up to 1 KiB. No bisection is possible here (the host interpreter cannot
    run the NPU's custom operator)."""
    raw = int(npu_sram_bytes) + cpu_tensor_bytes(compiled)
    raw += max(ARENA_MARGIN, raw // 10)
    return (raw + 1023) // 1024 * 1024


def tflm_defines(context: BuildContext, model: QuantizedModel, compiled: Path, npu_sram_bytes: int,
                 build_id: str) -> dict[str, str]:
    """The build's C defines (written to unpu_build.h, force-included by the port's build)."""
    info = inspect_tflite(model.path.read_bytes())
    return {**build_defines(context, build_id, info.outputs[0]),
            "UNPU_TFLM_ARENA_SIZE": str(arena_bytes(compiled.read_bytes(), npu_sram_bytes)),
            "UNPU_TFLM_INPUT_CAPACITY": str(info.inputs[0].nbytes)}


def build_id_of(model: QuantizedModel, compiled: Path, port: str, extra: dict) -> str:
    parts = {"model": model.digest, "compiled": file_digest(compiled), "port": port, "firmware": firmware_digest(),
             **extra}
    return key_of(parts)[:12]


def firmware_record(image: Path, elf: Path, build_id: str, defines: dict[str, str], port: str,
                    build_log: Path, tags: dict[str, str] | None = None) -> Firmware:
    size = write_size_report(elf, build_log.parent / "size.txt")
    arena = int(defines["UNPU_TFLM_ARENA_SIZE"])
    return Firmware(
        image=image, digest=file_digest(image), build_id=build_id, arena_bytes=arena,
        metrics={**memory_metrics(elf), "memory/arena": float(arena)},
        tags={"firmware.port": port, "firmware.build_id": build_id,
              "arena.method": "vela sram + cpu operator tensors + max(32 KiB, 10 %) (TFLM arena, not bisected)",
              **(tags or {})},
        artifacts={"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": build_log})
