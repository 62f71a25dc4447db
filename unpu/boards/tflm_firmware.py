"""TFLite Micro firmware for the Ethos-U boards (himax, alif, corstone): what their hardware modes
share — tool and SDK checks with one-line errors, the build's defines and the model as C data, the
TFLM arena size, logged builds, the firmware record and the serial link to a board.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from unpu.boards.base import BoardError, Firmware, QuantizedModel
from unpu.boards.ethosu import cpu_tensor_bytes
from unpu.boards.toolchain import c_string, require_dir

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
TOOL_TIMEOUT_S = 30
TFLM_BUILD = ("make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic TARGET_ARCH=cortex-m55 "
              "CO_PROCESSOR=ethos_u OPTIMIZED_KERNEL_DIR=cmsis_nn microlite")
TFLM_GLOB = "gen/cortex_m_generic_cortex-m55*ethos_u*/lib/libtensorflow-microlite.a"
DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")
ARENA_MARGIN = 32 * 1024  # TFLM's own allocations beyond the tensors (interpreter, op data)


def tflm_paths() -> dict[str, Path]:
    """TFLM_DIR, its Ethos-U library and the Ethos-U core driver (env overrides: TFLM_LIB, ETHOSU_DRIVER_DIR)."""
    tflm = require_dir("TFLM_DIR", f"a tflite-micro checkout built once with `{TFLM_BUILD}`",
                       "tensorflow/lite/micro/micro_interpreter.h")
    if os.environ.get("TFLM_LIB"):
        lib = Path(os.environ["TFLM_LIB"]).expanduser()
        if not lib.is_file():
            raise BoardError(f"TFLM_LIB={lib} does not exist")
    else:
        libs = sorted(tflm.glob(TFLM_GLOB))
        if len(libs) != 1:
            found = "none" if not libs else f"{len(libs)} (set TFLM_LIB to one)"
            raise BoardError(f"TFLM library for Cortex-M55 + Ethos-U under {tflm}/gen: {found}; build it in "
                             f"TFLM_DIR with `{TFLM_BUILD}`")
        lib = libs[0]
    driver = Path(os.environ.get("ETHOSU_DRIVER_DIR") or tflm / DOWNLOADS / "ethos_u_core_driver").expanduser()
    if not (driver / "include" / "ethosu_driver.h").exists():
        raise BoardError(f"no Ethos-U core driver at {driver}: set ETHOSU_DRIVER_DIR or build TFLM with `{TFLM_BUILD}`")
    return {"TFLM_DIR": tflm, "TFLM_LIB": lib, "ETHOSU_DRIVER_DIR": driver}


def arena_bytes(compiled: bytes, npu_sram_bytes: int = 0) -> int:
    """TFLM arena for a model compiled for an NPU: the compiler's SRAM area (Vela's scratch tensor;
    0 where the NPU kernel allocates its own) + the CPU operators' tensors + a margin for TFLM's own
    allocations, rounded up to 1 KiB. No bisection is possible here (the host interpreter cannot
    run the NPU's custom operator)."""
    raw = int(npu_sram_bytes) + cpu_tensor_bytes(compiled)
    raw += max(ARENA_MARGIN, raw // 10)
    return (raw + 1023) // 1024 * 1024


def build_defines(cfg, model: QuantizedModel, compiled: Path, npu_sram_bytes: int, build_id: str) -> dict[str, str]:
    """The build's C defines (written to unpu_build.h, force-included by the port's Makefile)."""
    from unpu import stages
    from unpu.graph import inspect_tflite

    info = inspect_tflite(model.path.read_bytes())
    sizes = {"int8": 1, "uint8": 1, "int16": 2, "float32": 4, "int32": 4}
    input_bytes = 1
    for dim in info.inputs[0].shape:
        input_bytes *= max(int(dim), 1)
    input_bytes *= sizes.get(info.inputs[0].dtype, 4)
    defines = {"UNPU_MODEL_ID": c_string(re.sub(r"[^A-Za-z0-9_.-]", "_", stages.model_id(cfg))[:64] or "model"),
               "UNPU_BUILD_ID": c_string(build_id),
               "UNPU_TFLM_ARENA_SIZE": str(arena_bytes(compiled.read_bytes(), npu_sram_bytes)),
               "UNPU_TFLM_INPUT_CAPACITY": str(input_bytes)}
    out = info.outputs[0]
    if str(cfg.model.get("post", "none")) == "softmax" and out.dtype == "int8" and out.scale:
        from unpu.codegen.reader import softmax_gemmlowp_params

        p = softmax_gemmlowp_params(1.0, float(out.scale))
        defines.update({"UNPU_POST_SOFTMAX": "1", "UNPU_SOFTMAX_MULTIPLIER": str(p["input_multiplier"]),
                        "UNPU_SOFTMAX_LEFT_SHIFT": str(p["input_left_shift"]),
                        "UNPU_SOFTMAX_DIFF_MIN": str(p["diff_min"])})
    return defines


def build_id_of(model: QuantizedModel, compiled: Path, port: str, extra: dict) -> str:
    from unpu.boards.cfirmware import sources_digest
    from unpu.cache import file_digest, key_of

    parts = {"model": model.digest, "compiled": file_digest(compiled), "port": port,
             "firmware": sources_digest(FIRMWARE / "harness", FIRMWARE / "kernels", FIRMWARE / "ports"),
             **extra}
    return key_of(parts)[:12]


def firmware_record(image: Path, elf: Path, build_id: str, defines: dict[str, str], port: str,
                    build_log: Path, tags: dict[str, str] | None = None) -> Firmware:
    from unpu.boards.cfirmware import memory_metrics, size_report
    from unpu.cache import file_digest

    size = build_log.parent / "size.txt"
    size.write_text(size_report(elf))
    arena = int(defines["UNPU_TFLM_ARENA_SIZE"])
    return Firmware(
        image=image, digest=file_digest(image), build_id=build_id, arena_bytes=arena,
        metrics={**memory_metrics(elf), "memory/arena": float(arena)},
        tags={"runtime": "tflm", "firmware.port": port, "firmware.build_id": build_id,
              "arena.method": "vela sram + cpu operator tensors + max(32 KiB, 10 %) (TFLM arena, not bisected)",
              **(tags or {})},
        artifacts={"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": build_log})
