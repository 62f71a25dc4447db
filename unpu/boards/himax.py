"""Himax WiseEye2 (HX6538) on the Seeed Grove Vision AI Module V2, hardware mode.

Build: firmware/ports/hxwe2/Makefile builds the C harness, the TFLM runner (Ethos-U55) and the port
as a scenario app of the Himax WE2 SDK (WE2_SDK = a Seeed_Grove_Vision_AI_Module_V2 checkout, its
own make and prebuilt TFLM, arm-none-eabi-gcc). The SDK's image tool (`we2_image_gen_local`, run
on a copy so the checkout is only read) turns the ELF into the flashable `output.img`.

Flash: over the module's UART with XMODEM, as the SDK's xmodem/xmodem_send.py does: the second
bootloader's menu is answered with `1` until it asks for an XMODEM transfer (press the module's
reset button when asked), `output.img` is sent, then the Vela-optimised model: a one-packet
preamble (C0 5A, flash position, offset, 5A C0) and the model itself, each after answering `n`
to "end file transmission and reboot?", and finally `y` reboots into the firmware. The firmware
reads the model through the flash's XIP window at 0x3A00_0000 + board.flash_model_offset.

Then the DUT protocol runs on the same port (board.port, board.serial.baudrate).
"""

from __future__ import annotations

import io
import logging
import shutil
import time
from pathlib import Path
from typing import Callable, Union

import serial
import xmodem

from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.ethosu import EthosUBoard, EthosUSpec
from unpu.boards.firmware import plain_paths, write_build_header
from unpu.boards.tflm_firmware import build_id_of, firmware_record, tflm_defines
from unpu.compilers.vela import VelaResult
from unpu.errors import BoardError
from unpu.tools import require_tool, run_logged

log = logging.getLogger(__name__)

XIP_BASE = 0x3A000000
FLASH_BYTES = 16 * 1024 * 1024
IMAGE_GEN = "we2_image_gen_local"
IMAGE_TOOL = "./we2_local_image_gen"
IMAGE_PROJECT = "project_case1_blp_wlcsp.json"
IMAGE_ELF = "input_case1_secboot/EPII_CM55M_gnu_epii_evb_WLCSP65_s.elf"
IMAGE_OUT = "output_case1_sec_wlcsp/output.img"
IMAGE_TIMEOUT_S = 300
# the WE2 second bootloader's prompts (as the SDK's xmodem_send.py waits for them)
PROMPT_XMODEM = b"Send data using the xmodem protocol from your terminal"
PROMPT_NEXT = b"Do you want to end file transmission and reboot system? (y)"
RESET_TIMEOUT_S = 60.0                   # for a person to press the reset button
PROMPT_TIMEOUT_S = 30.0


def model_preamble(position: int, offset: int = 0, packet: int = 1024) -> bytes:
    """The one-packet header that tells the bootloader where in flash the next file goes."""
    head = b"\xc0\x5a" + position.to_bytes(4, "little") + offset.to_bytes(4, "little") + b"\x5a\xc0"
    return head + b"\xff" * (packet - len(head))


class WE2Flasher:
    """The WE2 bootloader's UART flashing dialogue over a pyserial-like port (read/write/timeout)."""

    def __init__(self, port, mode: str = "xmodem1k", settle_s: float = 1.0,
                 reset_timeout_s: float = RESET_TIMEOUT_S, prompt_timeout_s: float = PROMPT_TIMEOUT_S,
                 say: Callable[[str], None] = log.info) -> None:
        self.port = port
        self.mode = mode
        self.settle_s = settle_s
        self.reset_timeout_s = reset_timeout_s
        self.prompt_timeout_s = prompt_timeout_s
        self.say = say
        self.packet = 1024 if mode == "xmodem1k" else 128

    def flash(self, image: bytes, models: list[tuple[bytes, int]]) -> None:
        """Send `image`, then each (model bytes, flash position), then reboot."""
        self.say("press the reset button of the Grove Vision AI V2 now")
        self._wait_for(PROMPT_XMODEM, self.reset_timeout_s, answer=b"1\r")
        self._key(b"1\r")
        self._send("output.img", image)
        for data, position in models:
            self._wait_for(PROMPT_NEXT, self.prompt_timeout_s)
            self._key(b"n\r")
            self._send(f"preamble for 0x{position:x}", model_preamble(position, 0, self.packet))
            self._wait_for(PROMPT_NEXT, self.prompt_timeout_s)
            self._key(b"n\r")
            self._send(f"model at 0x{position:x}", data)
        self._wait_for(PROMPT_NEXT, self.prompt_timeout_s)
        self._key(b"y\r")

    def _key(self, key: bytes) -> None:
        time.sleep(self.settle_s)
        self.port.reset_input_buffer()
        self.port.write(key)
        self.port.flush()

    def _wait_for(self, prompt: bytes, timeout_s: float, answer: bytes = b"") -> None:
        """Read lines until one contains `prompt`; after each other line send `answer` (menu keys)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.port.readline()
            if prompt in line:
                return
            if answer:
                self.port.write(answer)
        raise BoardError(f"the WE2 bootloader did not say {prompt.decode()!r} within {timeout_s:g} s "
                         f"(check board.port and press the reset button when asked)")

    def _send(self, what: str, data: bytes) -> None:
        def getc(size, timeout=1):
            return self.port.read(size) or None

        def putc(data, timeout=1):
            return self.port.write(data) or None

        modem = xmodem.XMODEM(getc, putc, mode=self.mode)
        self.say(f"xmodem: sending {what} ({len(data)} B)")
        if not modem.send(io.BytesIO(data), retry=16, timeout=10, quiet=True):
            raise BoardError(f"xmodem transfer of {what} to the WE2 bootloader failed")


class HimaxSpec(EthosUSpec):
    flash_model_offset: Union[int, str] = 0x200000   # where XMODEM writes the model in the QSPI flash (4 KiB-aligned)


class HimaxWE2Board(EthosUBoard):
    Spec = HimaxSpec

    @property
    def model_offset(self) -> int:
        value = self.spec.flash_model_offset
        offset = int(value, 0) if isinstance(value, str) else int(value)   # the CLI may give "0x200000"
        if offset % 4096:
            raise BoardError(f"board.flash_model_offset must be a multiple of 4 KiB (a flash sector), got 0x{offset:x}")
        return offset

    def sdk(self) -> Path:
        return self.tool_dir("sdk", "EPII_CM55M_APP_S/makefile")

    def check_hardware(self) -> None:
        sdk = self.sdk()
        if not (sdk / IMAGE_GEN / IMAGE_TOOL).exists():
            raise BoardError(f"{self.tool('sdk').var}={sdk} has no {IMAGE_GEN}/{IMAGE_TOOL[2:]} (the SDK's "
                             f"image tool, {self.tool('sdk').url})")
        require_tool("arm-none-eabi-gcc", "install the Arm GNU toolchain the WE2 SDK asks for (or Debian's "
                                          "gcc-arm-none-eabi) and put it on PATH")
        require_tool("make", "install the Debian package make")
        self.require_port()

    def make_command(self, sdk: Path, build_dir: Path, build_h: Path) -> list[str]:
        return plain_paths(["make", "-C", str(self.port_dir), f"WE2_SDK={sdk}", f"BUILD_DIR={build_dir}",
                            f"BUILD_H={build_h}", f"MODEL_ADDR=0x{XIP_BASE + self.model_offset:08X}"])

    def image_command(self) -> list[str]:
        """Run in a copy of the SDK's we2_image_gen_local with the ELF at IMAGE_ELF; writes IMAGE_OUT."""
        return [IMAGE_TOOL, IMAGE_PROJECT]

    def build_firmware(self, model: QuantizedModel, vela: VelaResult, workdir: Path) -> Firmware:
        sdk = self.sdk()
        out = workdir / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        optimised = vela.optimised.read_bytes()
        if self.model_offset + len(optimised) > FLASH_BYTES:
            raise BoardError(f"{model.name} ({len(optimised):,} B) does not fit the 16 MiB flash at offset "
                             f"0x{self.model_offset:x}")
        build_id = build_id_of(model, vela.optimised, self.spec.firmware_port, {"sdk": str(sdk), "offset": self.model_offset})
        defines = tflm_defines(self.context, model, vela.optimised, vela.sram_bytes, build_id)
        build_h = write_build_header(out / "unpu_build.h", defines)
        build_log = out / "build.log"
        run_logged(self.make_command(sdk, out / "build", build_h), build_log, "WE2 firmware build (SDK make)")
        elf = out / "build" / "app.elf"
        gen = out / IMAGE_GEN
        shutil.rmtree(gen, ignore_errors=True)
        shutil.copytree(sdk / IMAGE_GEN, gen, symlinks=True)
        shutil.copy2(elf, gen / IMAGE_ELF)
        run_logged(self.image_command(), build_log, "WE2 image generation", IMAGE_TIMEOUT_S, cwd=gen)
        image = gen / IMAGE_OUT
        fw = firmware_record(image, elf, build_id, defines, self.spec.firmware_port, build_log,
                             {"flash.model_offset": f"0x{self.model_offset:x}"})
        fw.artifacts["firmware/output.img"] = image
        fw.files["model"] = vela.optimised
        return fw

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        """The bootloader's XMODEM dialogue on the board's own UART (no flashing tool exists)."""
        port = self.require_port()
        try:
            link = serial.Serial(port, baudrate=self.spec.serial.baudrate, timeout=1.0)
        except serial.SerialException as exc:
            raise BoardError(f"cannot open board.port {port}: {exc}") from None
        with link:
            WE2Flasher(link).flash(firmware.image.read_bytes(),
                                   [(firmware.files["model"].read_bytes(), self.model_offset)])
