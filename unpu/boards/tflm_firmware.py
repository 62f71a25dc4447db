"""TFLite Micro firmware for the Ethos-U boards (himax, alif, corstone): what their hardware modes
share — tool and SDK checks with one-line errors, the build's defines and the model as C data, the
TFLM arena size, logged builds, the firmware record and the serial link to a board.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import BoardError, Firmware, QuantizedModel
from unpu.boards.ethosu import cpu_tensor_bytes
from unpu.protocol import DutClient, Transcript

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
BUILD_TIMEOUT_S = 1800
TOOL_TIMEOUT_S = 30
TFLM_BUILD = ("make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic TARGET_ARCH=cortex-m55 "
              "CO_PROCESSOR=ethos_u OPTIMIZED_KERNEL_DIR=cmsis_nn microlite")
TFLM_GLOB = "gen/cortex_m_generic_cortex-m55*ethos_u*/lib/libtensorflow-microlite.a"
DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")
ARENA_MARGIN = 32 * 1024  # TFLM's own allocations beyond the tensors (interpreter, op data)


def require_tool(tool: str, how: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BoardError(f"{tool} not found on PATH: {how}")
    return path


def require_dir(var: str, what: str, marker: str) -> Path:
    """The directory in environment variable `var`, which must contain `marker`."""
    value = os.environ.get(var)
    if not value:
        raise BoardError(f"{var} is not set: point it at {what}")
    path = Path(value).expanduser()
    if not (path / marker).exists():
        raise BoardError(f"{var}={value} is not {what} (no {marker} there)")
    return path


def require_port(board) -> str:
    if not board.get("port"):
        raise BoardError(f"board.port is not set: give the serial port of the {board.name} "
                         f"(e.g. board.port=/dev/ttyACM0)")
    return str(board.port)


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


def arena_bytes(vela, optimised: bytes) -> int:
    """TFLM arena for a Vela model: Vela's SRAM area (the NPU scratch tensor) + the CPU operators'
    tensors + a margin for TFLM's own allocations, rounded up to 1 KiB. No bisection is possible
    here (the host interpreter cannot run the ethos-u operator)."""
    raw = int(vela.sram_bytes) + cpu_tensor_bytes(optimised)
    raw += max(ARENA_MARGIN, raw // 10)
    return (raw + 1023) // 1024 * 1024


def build_defines(cfg, model: QuantizedModel, vela, build_id: str) -> dict[str, str]:
    """The build's C defines (written to unpu_build.h, force-included by the port's Makefile)."""
    from unpu import stages
    from unpu.graph import inspect_tflite

    optimised = vela.optimised.read_bytes()
    info = inspect_tflite(model.path.read_bytes())
    sizes = {"int8": 1, "uint8": 1, "int16": 2, "float32": 4, "int32": 4}
    input_bytes = 1
    for dim in info.inputs[0].shape:
        input_bytes *= max(int(dim), 1)
    input_bytes *= sizes.get(info.inputs[0].dtype, 4)
    defines = {"UNPU_MODEL_ID": _c_string(re.sub(r"[^A-Za-z0-9_.-]", "_", stages.model_id(cfg))[:64] or "model"),
               "UNPU_BUILD_ID": _c_string(build_id),
               "UNPU_TFLM_ARENA_SIZE": str(arena_bytes(vela, optimised)),
               "UNPU_TFLM_INPUT_CAPACITY": str(input_bytes)}
    out = info.outputs[0]
    if str(cfg.model.get("post", "none")) == "softmax" and out.dtype == "int8" and out.scale:
        from unpu.codegen.reader import softmax_gemmlowp_params

        p = softmax_gemmlowp_params(1.0, float(out.scale))
        defines.update({"UNPU_POST_SOFTMAX": "1", "UNPU_SOFTMAX_MULTIPLIER": str(p["input_multiplier"]),
                        "UNPU_SOFTMAX_LEFT_SHIFT": str(p["input_left_shift"]),
                        "UNPU_SOFTMAX_DIFF_MIN": str(p["diff_min"])})
    return defines


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "_").replace('"', "_") + '"'


def write_build_header(path: Path, defines: dict[str, str]) -> Path:
    lines = ["/* generated by unpu: this build's defines */"] + [f"#define {k} {v}" for k, v in defines.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_model_c(path: Path, tflite: bytes, section: str | None = None) -> Path:
    """The model as `const unsigned char unpu_model_tflite[]` (16-byte aligned, optionally in `section`)."""
    attr = f'__attribute__((aligned(16), section("{section}")))' if section else "__attribute__((aligned(16)))"
    rows = (", ".join(f"0x{b:02x}" for b in tflite[i:i + 16]) for i in range(0, len(tflite), 16))
    path.write_text("/* generated by unpu: the Vela-optimised model */\n"
                    f"const unsigned char unpu_model_tflite[{len(tflite)}] {attr} = {{\n  "
                    + ",\n  ".join(rows) + "\n};\n"
                    f"const unsigned int unpu_model_tflite_len = {len(tflite)}u;\n")
    return path


def build_id_of(model: QuantizedModel, vela, port: str, extra: dict) -> str:
    from unpu.boards.cfirmware import sources_digest
    from unpu.cache import file_digest, key_of

    parts = {"model": model.digest, "vela": file_digest(vela.optimised), "port": port,
             "firmware": sources_digest(FIRMWARE / "harness", FIRMWARE / "kernels", FIRMWARE / "ports"),
             **extra}
    return key_of(parts)[:12]


def run_logged(cmd: list[str], log_path: Path, what: str, timeout: float = BUILD_TIMEOUT_S,
               cwd: Path | None = None, stdin: str | None = None) -> str:
    """Run `cmd` (no shell), append its output to log_path; BoardError with the tail on failure."""
    try:
        io = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, **io)
    except subprocess.TimeoutExpired:
        raise BoardError(f"{what} exceeded {timeout:g} s") from None
    except OSError as exc:
        raise BoardError(f"{what} could not start: {exc}") from None
    with open(log_path, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        overflow = re.search(r"region `(\w+)' overflowed by (\d+) bytes", proc.stderr)
        if overflow:
            raise BoardError(f"the firmware does not fit: region {overflow.group(1)} overflowed by "
                             f"{overflow.group(2)} B")
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise BoardError(f"{what} failed (exit {proc.returncode}): {tail[-400:]}")
    return proc.stdout


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


@contextmanager
def serial_link(board, cfg, transcript: Transcript) -> Iterator[DutClient]:
    """A DutClient on the board's serial port (board.port, board.serial.baudrate)."""
    import serial

    try:
        port = serial.Serial(str(board.port), baudrate=int(board.serial.baudrate), timeout=0.2)
    except serial.SerialException as exc:
        raise BoardError(f"cannot open board.port {board.port}: {exc}") from None
    try:
        client = DutClient(port, float(cfg.bench.timeout_s), transcript)
        client.connect(attempts=int(board.serial.get("timeout_s") or 10) * 4)
        yield client
    finally:
        port.close()
