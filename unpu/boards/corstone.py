"""Arm Corstone-300 FVP (`FVP_Corstone_SSE-300_Ethos-U55`) in hardware mode.

Build: the board's port Makefile compiles the C harness, the TFLM runner with the Ethos-U custom
operator and the SSE-300 port (the CMSDK family, shared with QEMU's mps3-an547) with
arm-none-eabi-gcc, and links a TensorFlow Lite Micro library built for Ethos-U: TFLM_DIR is a
tflite-micro checkout where `make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic
TARGET_ARCH=cortex-m55 CO_PROCESSOR=ethos_u OPTIMIZED_KERNEL_DIR=cmsis_nn microlite` ran once
(TFLM_LIB and ETHOSU_DRIVER_DIR override the library and the driver it found). The Vela-optimised
model is linked into DDR.

Run: the FVP from PATH with the firmware (`-a app.axf`), `ethosu.num_macs` = board.npu.macs_per_cycle,
no visualisation, UART0 on a raw TCP terminal (the FVP prints the port it listens on; unpu connects
to 127.0.0.1) and `--simlimit`. The FVP is not cycle-accurate: latency is `simulated`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.ethosu import EthosUBoard, EthosUSpec
from unpu.boards.firmware import plain_paths, write_build_header, write_model_c
from unpu.boards.process import DeviceProcess
from unpu.boards.tflm_firmware import (
    build_id_of,
    firmware_record,
    tflm_defines,
    tflm_paths,
)
from unpu.compilers.vela import VelaResult
from unpu.links import free_port, tcp
from unpu.protocol import SerialLike
from unpu.tools import jobs, require_tool, run_logged

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60
FVP = "FVP_Corstone_SSE-300_Ethos-U55"
LISTENING_RE = re.compile(r"telnetterminal0: Listening for serial connection on port (\d+)")


class CorstoneSpec(EthosUSpec):
    fvp_simlimit_s: float = 3600     # FVP --simlimit (simulated seconds)


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
    Spec = CorstoneSpec
    hardware_source_latency = "simulated"

    def check_hardware(self) -> None:
        env = self.tool("fvp")
        require_tool(FVP, f"install {env.what} ({env.url}) and put its directory on PATH")
        require_tool("arm-none-eabi-gcc", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("arm-none-eabi-g++", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("make", "install the Debian package make")
        tflm_paths(self.tool("tflm"))

    def make_command(self, build_dir: Path, build_h: Path, model_c: Path, paths: dict[str, Path]) -> list[str]:
        return plain_paths(["make", "-C", str(self.port_dir), jobs(), f"BUILD_DIR={build_dir}", f"BUILD_H={build_h}",
                            f"MODEL_C={model_c}", *(f"{k}={v}" for k, v in paths.items())])

    def build_firmware(self, model: QuantizedModel, vela: VelaResult, workdir: Path) -> Firmware:
        paths = tflm_paths(self.tool("tflm"))
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = build_id_of(model, vela.optimised, self.spec.firmware_port, {"tflm": str(paths["TFLM_LIB"])})
        defines = {**tflm_defines(self.context, model, vela.optimised, vela.sram_bytes, build_id),
                   "UNPU_CPU_HZ": f"{int(self.spec.cpu.clock_hz)}u"}
        build_h = write_build_header(out / "unpu_build.h", defines)
        model_c = write_model_c(out / "model_data.c", vela.optimised.read_bytes(), ".unpu_model")
        build_log = out / "build.log"
        run_logged(self.make_command(out / "build", build_h, model_c, paths), build_log, "Corstone-300 firmware build")
        axf = out / "build" / "app.axf"
        return firmware_record(axf, axf, build_id, defines, self.spec.firmware_port, build_log,
                               {"fvp.num_macs": str(self.spec.npu.macs_per_cycle)})

    def device(self, firmware: Firmware, workdir: Path) -> DeviceProcess:
        cmd = fvp_command(firmware.image, self.spec.npu.macs_per_cycle, free_port(), self.spec.fvp_simlimit_s)
        firmware.artifacts["device/fvp.log"] = workdir / "fvp.log"
        return DeviceProcess(cmd, workdir / "fvp.log", FVP, stdout="pipe")

    def link(self, firmware: Firmware, process: DeviceProcess) -> SerialLike:
        port = int(process.watch_output(LISTENING_RE, START_TIMEOUT_S).group(1))
        return tcp(port, START_TIMEOUT_S, process.check_alive, f"{FVP}'s UART0")
