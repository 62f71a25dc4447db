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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import BoardError, Firmware, QuantizedModel
from unpu.boards.tflm_firmware import FIRMWARE, build_defines, build_id_of, firmware_record, tflm_paths
from unpu.boards.toolchain import (require_dir, require_port, require_tool, run_logged, serial_link,
                                   write_build_header, write_model_c)
from unpu.boards.ethosu import EthosUBoard
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

DFP_URL = "https://github.com/alifsemi/alif_ensemble-cmsis-dfp"
SETOOLS_URL = "https://alifsemi.com/support/kits/ensemble-e7devkit/ (Alif Security Toolkit, SETOOLS)"
DFP_MARKER = "Device/core/rtss_hp/linker/linker_gnu_mram.ld.src"
GEN_TOC = "app-gen-toc"
WRITE_MRAM = "app-write-mram"
FLASH_TIMEOUT_S = 600
SUBSYSTEMS = {"hp": {"node": "HP_APP", "cpu_id": "M55_HP"}, "he": {"node": "HE_APP", "cpu_id": "M55_HE"}}
MRAM_SECTION = ".startup.at_mram"   # the DFP linker script's first MRAM section: the image's start


def setools_dir() -> Path:
    """ALIF_SETOOLS, or the directory of app-gen-toc on PATH; it must hold both tools."""
    if os.environ.get("ALIF_SETOOLS"):
        path = Path(os.environ["ALIF_SETOOLS"]).expanduser()
    else:
        found = shutil.which(GEN_TOC)
        if found is None:
            raise BoardError(f"Alif SETOOLS not found: set ALIF_SETOOLS to the directory with {GEN_TOC} and "
                             f"{WRITE_MRAM}, or put it on PATH ({SETOOLS_URL})")
        path = Path(found).resolve().parent
    for tool in (GEN_TOC, WRITE_MRAM):
        if not os.access(path / tool, os.X_OK):
            raise BoardError(f"no executable {tool} in {path}: ALIF_SETOOLS must be the SETOOLS directory "
                             f"({SETOOLS_URL})")
    for sub in ("build/images", "build/config"):
        if not (path / sub).is_dir():
            raise BoardError(f"{path} has no {sub}: ALIF_SETOOLS must be the unpacked SETOOLS directory ({SETOOLS_URL})")
    return path


def mram_address(elf: Path) -> int:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        sec = ELFFile(f).get_section_by_name(MRAM_SECTION)
        if sec is None:
            raise BoardError(f"{elf.name} has no {MRAM_SECTION} section: not linked with the DFP's MRAM script")
        return int(sec["sh_addr"])


def atoc_config(subsystem: str, binary: str, address: int) -> dict:
    """SETOOLS' application table-of-contents config for one image on one subsystem."""
    node = SUBSYSTEMS[subsystem]
    return {node["node"]: {"binary": binary, "version": "1.0.0", "cpu_id": node["cpu_id"],
                           "mramAddress": f"0x{address:08X}", "flags": ["boot"], "signed": False}}


class AlifEnsembleBoard(EthosUBoard):
    hardware_source_latency = "measured"

    @property
    def subsystem(self) -> str:
        sub = str(self.board.get("subsystem") or "hp")
        if sub not in SUBSYSTEMS:
            raise BoardError(f"board.subsystem must be hp or he, got {sub!r}")
        return sub

    @property
    def uart(self) -> int:
        return int(self.board.serial.get("uart") or 2)

    def check_hardware(self) -> None:
        require_dir("ALIF_SDK", f"a checkout of the Alif Ensemble CMSIS DFP 2.0.x ({DFP_URL})", DFP_MARKER)
        require_tool("arm-none-eabi-gcc", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("arm-none-eabi-g++", "install the Debian package gcc-arm-none-eabi (make debian-packages)")
        require_tool("make", "install the Debian package make")
        tflm_paths()
        setools_dir()
        require_port(self.board)

    def make_command(self, build_dir: Path, build_h: Path, model_c: Path, paths: dict[str, Path]) -> list[str]:
        return ["make", "-C", str(FIRMWARE / "ports" / "alif_e7"), f"-j{min(os.cpu_count() or 1, 8)}",
                f"ALIF_SDK={Path(os.environ['ALIF_SDK']).expanduser()}", f"SUBSYSTEM={self.subsystem}",
                f"UART={self.uart}", f"BAUDRATE={int(self.board.serial.baudrate)}", f"BUILD_DIR={build_dir}",
                f"BUILD_H={build_h}", f"MODEL_C={model_c}", *(f"{k}={v}" for k, v in paths.items())]

    def flash_commands(self, setools: Path, config: Path) -> list[list[str]]:
        """Both run with cwd=SETOOLS: generate the ATOC package, then write it to MRAM."""
        return [[str(setools / GEN_TOC), "-f", str(config.relative_to(setools))],
                [str(setools / WRITE_MRAM), "-p"]]

    def build_firmware(self, model: QuantizedModel, vela, workdir: Path) -> Firmware:
        paths = tflm_paths()
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        build_id = build_id_of(model, vela.optimised, f"alif_e7/{self.subsystem}",
                               {"tflm": str(paths["TFLM_LIB"]), "uart": self.uart})
        defines = build_defines(self.cfg, model, vela.optimised, vela.sram_bytes, build_id)
        build_h = write_build_header(out / "unpu_build.h", defines)
        model_c = write_model_c(out / "model_data.c", vela.optimised.read_bytes())
        build_log = out / "build.log"
        run_logged(self.make_command(out / "build", build_h, model_c, paths), build_log,
                   f"Alif E7 {self.subsystem.upper()} firmware build")
        elf, image = out / "build" / "app.elf", out / "build" / "app.bin"
        fw = firmware_record(image, elf, build_id, defines, "alif_e7", build_log,
                             {"alif.subsystem": self.subsystem, "flash.tool": "alif SETOOLS"})
        fw.artifacts["firmware/app.bin"] = image
        fw.extra["mram_address"] = mram_address(elf)
        return fw

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        setools = setools_dir()
        name = f"unpu-{self.subsystem}"
        shutil.copy2(firmware.image, setools / "build" / "images" / f"{name}.bin")
        config = setools / "build" / "config" / f"{name}.json"
        config.write_text(json.dumps(atoc_config(self.subsystem, f"{name}.bin",
                                                 int(firmware.extra["mram_address"])), indent=2) + "\n")
        flash_log = workdir / "flash.log"
        for cmd in self.flash_commands(setools, config):
            run_logged(cmd, flash_log, f"SETOOLS {Path(cmd[0]).name}", FLASH_TIMEOUT_S, cwd=setools)
        firmware.artifacts["device/flash.log"] = flash_log

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        self.check_hardware()
        self.flash(firmware, workdir)
        with serial_link(self.board, self.cfg, transcript) as client:
            yield client
