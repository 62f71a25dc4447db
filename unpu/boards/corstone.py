"""Arm Corstone-300 FVP (`FVP_Corstone_SSE-300_Ethos-U55`) in hardware mode.

Build: firmware/ports/corstone300/Makefile compiles the C harness, the TFLM runner with the Ethos-U
custom operator and the SSE-300 port (shared with QEMU's mps3-an547) with arm-none-eabi-gcc, and
links a TensorFlow Lite Micro library built for Ethos-U: TFLM_DIR is a tflite-micro checkout where
`make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic TARGET_ARCH=cortex-m55
CO_PROCESSOR=ethos_u OPTIMIZED_KERNEL_DIR=cmsis_nn microlite` ran once (TFLM_LIB and ETHOSU_DRIVER_DIR
override the library and the driver it found). The Vela-optimised model is linked into DDR.

Run: the FVP from PATH with the firmware (`-a app.axf`), `ethosu.num_macs` = board.npu.macs_per_cycle,
no visualisation, UART0 on a raw TCP terminal (the FVP prints the port it listens on; we connect to
127.0.0.1 with pyserial) and `--simlimit`. It runs in its own process group, dies with this process
and is killed on every exit path. The FVP is not cycle-accurate: latency is `simulated`.
"""

from __future__ import annotations

import logging
import os
import re
import select
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from unpu.boards.base import BoardError, DeviceCrashed, Firmware, QuantizedModel
from unpu.boards.ethosu import EthosUBoard
from unpu.boards.tflm_firmware import FIRMWARE, build_defines, build_id_of, firmware_record, tflm_paths
from unpu.boards.toolchain import require_tool, run_logged, write_build_header, write_model_c
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60
FVP = "FVP_Corstone_SSE-300_Ethos-U55"
FVP_URL = "https://developer.arm.com/Tools%20and%20Software/Fixed%20Virtual%20Platforms/IoT%20FVPs"
LISTENING_RE = re.compile(r"telnetterminal0: Listening for serial connection on port (\d+)")


# -- the FVP board ----------------------------------------------------------------------------------
def fvp_command(axf: Path, num_macs: int, port: int, simlimit_s: float) -> list[str]:
    """The FVP command line: firmware, NPU size, no GUI, UART0 on a raw TCP terminal, a time limit."""
    return [FVP, "-a", str(axf),
            "-C", f"ethosu.num_macs={int(num_macs)}",
            "-C", "mps3_board.visualisation.disable-visualisation=1",
            "-C", "mps3_board.telnetterminal0.start_telnet=0",
            "-C", "mps3_board.telnetterminal0.mode=raw",
            "-C", f"mps3_board.telnetterminal0.start_port={int(port)}",
            "-C", "mps3_board.telnetterminal1.start_telnet=0",
            "-C", "mps3_board.telnetterminal2.start_telnet=0",
            "-C", "cpu0.semihosting-enable=1",
            "--simlimit", f"{simlimit_s:g}"]


class Corstone300FvpBoard(EthosUBoard):
    hardware_source_latency = "simulated"

    def check_hardware(self) -> None:
        require_tool(FVP, f"install Arm's Corstone-300 Ecosystem FVP ({FVP_URL}) and put its directory on PATH")
        require_tool("arm-none-eabi-gcc", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("arm-none-eabi-g++", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("make", "install the Debian package make")
        tflm_paths()

    def make_command(self, build_dir: Path, build_h: Path, model_c: Path, paths: dict[str, Path]) -> list[str]:
        return ["make", "-C", str(FIRMWARE / "ports" / "corstone300"), f"-j{min(os.cpu_count() or 1, 8)}",
                f"BUILD_DIR={build_dir}", f"BUILD_H={build_h}", f"MODEL_C={model_c}",
                *(f"{k}={v}" for k, v in paths.items())]

    def build_firmware(self, model: QuantizedModel, vela, workdir: Path) -> Firmware:
        paths = tflm_paths()
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = build_id_of(model, vela.optimised, "corstone300", {"tflm": str(paths["TFLM_LIB"])})
        defines = {**build_defines(self.cfg, model, vela.optimised, vela.sram_bytes, build_id), "UNPU_CPU_HZ": f"{int(self.board.cpu.clock_hz)}u"}
        build_h = write_build_header(out / "unpu_build.h", defines)
        model_c = write_model_c(out / "model_data.c", vela.optimised.read_bytes(), ".unpu_model")
        build_log = out / "build.log"
        run_logged(self.make_command(out / "build", build_h, model_c, paths), build_log, "Corstone-300 firmware build")
        axf = out / "build" / "app.axf"
        return firmware_record(axf, axf, build_id, defines, "corstone300", build_log,
                               {"fvp.num_macs": str(int(self.board.npu.macs_per_cycle))})

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        from unpu.boards.qemu import _die_with_parent, _free_port, _stop

        self.check_hardware()
        log_path = workdir / "fvp.log"
        simlimit = float(self.board.get("fvp_simlimit_s") or 3600)
        cmd = fvp_command(firmware.image, int(self.board.npu.macs_per_cycle), _free_port(), simlimit)
        with open(log_path, "w") as flog:
            flog.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
        firmware.artifacts["device/fvp.log"] = log_path
        link = None
        try:
            port = _wait_listening(proc, log_path, START_TIMEOUT_S)
            threading.Thread(target=_drain, args=(proc.stdout, log_path), daemon=True).start()
            link = _connect(proc, port, log_path)
            client = DutClient(link, float(self.cfg.bench.timeout_s), transcript,
                               check_alive=lambda: _fvp_alive(proc, log_path))
            client.connect()
            yield client
        finally:
            if link is not None:
                link.close()
            _stop(proc)


def _wait_listening(proc: subprocess.Popen, log_path: Path, timeout_s: float) -> int:
    """The TCP port the FVP's UART0 terminal listens on, from the FVP's own announcement. Reads the
    pipe's file descriptor directly (a buffered readline would hide lines from select)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    pending = b""
    with open(log_path, "ab") as flog:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                chunk = os.read(fd, 4096)
                flog.write(chunk)
                flog.flush()
                pending += chunk
                match = LISTENING_RE.search(pending.decode(errors="replace"))
                if match:
                    return int(match.group(1))
                pending = pending[pending.rfind(b"\n") + 1:]
                if not chunk:
                    proc.wait(timeout=10)
            _fvp_alive(proc, log_path)
    raise BoardError(f"{FVP} did not announce its UART0 port within {timeout_s:g} s (see device/fvp.log)")


def _drain(stream: IO[bytes] | None, log_path: Path) -> None:
    """Keep reading the FVP's output into its log so a full pipe never stalls the model."""
    if stream is None:
        return
    fd = stream.fileno()
    with open(log_path, "ab") as f:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            f.write(chunk)
            f.flush()


def _connect(proc: subprocess.Popen, port: int, log_path: Path):
    import serial

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        _fvp_alive(proc, log_path)
        try:
            return serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=0.2)
        except serial.SerialException as exc:
            if time.monotonic() > deadline:
                raise BoardError(f"cannot connect to the FVP's UART0 at 127.0.0.1:{port}: {exc}") from None
            time.sleep(0.05)


def _fvp_alive(proc: subprocess.Popen, log_path: Path) -> None:
    code = proc.poll()
    if code is None:
        return
    tail = log_path.read_text(errors="replace").strip().splitlines()[1:][-3:] if log_path.exists() else []
    raise DeviceCrashed(f"{FVP} exited (code {code})" + (f": {' | '.join(tail)}" if tail else ""))
