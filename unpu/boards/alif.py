"""Alif Ensemble E7, RTSS-HP (`board=alif_e7`, Ethos-U55-256) or RTSS-HE (`board=alif_e7_he`,
Ethos-U55-128), hardware mode. The subsystem is `board.subsystem` (hp | he).

Build: firmware/ports/alif_e7/Makefile compiles the C harness, the TFLM runner (Ethos-U55) and the
port with arm-none-eabi-gcc on the Alif Ensemble CMSIS DFP (ALIF_SDK: startup, clocks, USART driver,
MRAM linker script) and links the TFLM library for Ethos-U (TFLM_DIR, as for corstone300). The
model is linked into MRAM; the image is the MRAM part of the ELF as raw bytes.

Flash: Alif's Secure Enclave tools (SETOOLS: ALIF_SETOOLS = the directory holding app-gen-toc and
app-write-mram, or both on PATH). The image goes to SETOOLS' build/images, a one-application ATOC
config (`<HP|HE>_APP`: binary, its MRAM address from the ELF, cpu_id, flag boot) to
build/config/unpu-<subsystem>.json; then `app-gen-toc -f <config>` and `app-write-mram -p` (which
reaches the Secure Enclave over the SE-UART named in SETOOLS' own isp_config_data.cfg).
Then the DUT protocol runs on the application UART (board.port, board.serial.baudrate).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.base import FlashStep
from unpu.boards.ethosu import EthosUBoard, EthosUSpec
from unpu.boards.firmware import plain_paths, section_address, write_build_header, write_model_c
from unpu.boards.spec import SerialSpec
from unpu.boards.tflm_firmware import (
    build_id_of,
    firmware_record,
    tflm_defines,
    tflm_paths,
)
from unpu.compilers.vela import VelaResult
from unpu.errors import BoardError, ToolError
from unpu.tools import jobs, require_tool, run_logged

log = logging.getLogger(__name__)

DFP_MARKER = "Device/core/rtss_hp/linker/linker_gnu_mram.ld.src"
GEN_TOC = "app-gen-toc"
WRITE_MRAM = "app-write-mram"
FLASH_TIMEOUT_S = 600
SUBSYSTEMS = {"hp": {"node": "HP_APP", "cpu_id": "M55_HP"}, "he": {"node": "HE_APP", "cpu_id": "M55_HE"}}
MRAM_SECTION = ".startup.at_mram"   # the DFP linker script's first MRAM section: the image's start


def setools_dir(var: str, url: str) -> Path:
    """$var (ALIF_SETOOLS), or the directory of app-gen-toc on PATH; it must hold both tools."""
    if os.environ.get(var):
        path = Path(os.environ[var]).expanduser()
    else:
        found = shutil.which(GEN_TOC)
        if found is None:
            raise ToolError(f"Alif SETOOLS not found: set {var} to the directory with {GEN_TOC} and "
                            f"{WRITE_MRAM}, or put it on PATH ({url})")
        path = Path(found).resolve().parent
    for tool in (GEN_TOC, WRITE_MRAM):
        if not os.access(path / tool, os.X_OK):
            raise ToolError(f"no executable {tool} in {path}: {var} must be the SETOOLS directory ({url})")
    for sub in ("build/images", "build/config"):
        if not (path / sub).is_dir():
            raise ToolError(f"{path} has no {sub}: {var} must be the unpacked SETOOLS directory ({url})")
    return path


def mram_address(elf: Path) -> int:
    address = section_address(elf, MRAM_SECTION)
    if address is None:
        raise BoardError(f"{elf.name} has no {MRAM_SECTION} section: not linked with the DFP's MRAM script")
    return address


def atoc_config(subsystem: str, binary: str, address: int) -> dict:
    """SETOOLS' application table-of-contents config for one image on one subsystem."""
    node = SUBSYSTEMS[subsystem]
    return {node["node"]: {"binary": binary, "version": "1.0.0", "cpu_id": node["cpu_id"],
                           "mramAddress": f"0x{address:08X}", "flags": ["boot"], "signed": False}}


class AlifSerial(SerialSpec):
    uart: int = 2             # the DevKit UART the firmware prints on (2 or 4)


class AlifSpec(EthosUSpec):
    subsystem: str = "hp"     # hp (RTSS-HP) | he (RTSS-HE)
    serial: AlifSerial


class AlifEnsembleBoard(EthosUBoard):
    Spec = AlifSpec

    def __init__(self, spec: AlifSpec, context) -> None:
        super().__init__(spec, context)
        if spec.subsystem not in SUBSYSTEMS:
            raise BoardError(f"board.subsystem must be hp or he, got {spec.subsystem!r}")

    @property
    def subsystem(self) -> str:
        return self.spec.subsystem

    def sdk(self) -> Path:
        return self.tool_dir("sdk", DFP_MARKER)

    def setools(self) -> Path:
        env = self.tool("setools")
        return setools_dir(env.var, env.url)

    def check_hardware(self) -> None:
        self.sdk()
        require_tool("arm-none-eabi-gcc", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("arm-none-eabi-g++", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("make", "install the Debian package make")
        tflm_paths(self.tool("tflm"))
        self.setools()
        self.require_port()

    def make_command(self, build_dir: Path, build_h: Path, model_c: Path, paths: dict[str, Path]) -> list[str]:
        return plain_paths(["make", "-C", str(self.port_dir), jobs(), f"ALIF_SDK={Path(os.environ[self.tool('sdk').var]).expanduser()}", f"SUBSYSTEM={self.subsystem}",
                            f"UART={self.spec.serial.uart}", f"BAUDRATE={self.spec.serial.baudrate}", f"BUILD_DIR={build_dir}",
                            f"BUILD_H={build_h}", f"MODEL_C={model_c}", *(f"{k}={v}" for k, v in paths.items())])

    def setools_commands(self, setools: Path, config: Path) -> list[list[str]]:
        """Both run with cwd=SETOOLS: generate the ATOC package, then write it to MRAM."""
        return [[str(setools / GEN_TOC), "-f", str(config.relative_to(setools))],
                [str(setools / WRITE_MRAM), "-p"]]

    def build_firmware(self, model: QuantizedModel, vela: VelaResult, workdir: Path) -> Firmware:
        paths = tflm_paths(self.tool("tflm"))
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = build_id_of(model, vela.optimised, f"{self.spec.firmware_port}/{self.subsystem}",
                               {"tflm": str(paths["TFLM_LIB"]), "uart": self.spec.serial.uart})
        defines = tflm_defines(self.context, model, vela.optimised, vela.sram_bytes, build_id)
        build_h = write_build_header(out / "unpu_build.h", defines)
        model_c = write_model_c(out / "model_data.c", vela.optimised.read_bytes())
        build_log = out / "build.log"
        run_logged(self.make_command(out / "build", build_h, model_c, paths), build_log,
                   f"Alif E7 {self.subsystem.upper()} firmware build")
        elf, image = out / "build" / "app.elf", out / "build" / "app.bin"
        fw = firmware_record(image, elf, build_id, defines, self.spec.firmware_port, build_log,
                             {"alif.subsystem": self.subsystem})
        fw.artifacts["firmware/app.bin"] = image
        fw.files["elf"] = elf
        return fw

    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        """The image and a one-application ATOC config into SETOOLS, then its two tools."""
        setools = self.setools()
        name = f"unpu-{self.subsystem}"
        shutil.copy2(firmware.image, setools / "build" / "images" / f"{name}.bin")
        config = setools / "build" / "config" / f"{name}.json"
        config.write_text(json.dumps(atoc_config(self.subsystem, f"{name}.bin", mram_address(firmware.files["elf"])),
                                     indent=2) + "\n")
        return [FlashStep(cmd, f"SETOOLS {Path(cmd[0]).name}", cwd=setools, timeout_s=FLASH_TIMEOUT_S, attempts=1)
                for cmd in self.setools_commands(setools, config)]
