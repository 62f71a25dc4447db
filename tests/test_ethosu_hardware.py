"""Hardware mode of the Ethos-U boards (hxwe2, alif_e7[_he], corstone300), as far as it runs without
the boards and vendor SDKs: every command line they build, the one-line message naming what is
missing, the XMODEM flashing dialogue against the real `xmodem` receiver over a pty, the model as C
data through the real cross compiler, and the `pmu%` protocol extension in the real C harness."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from helpers import board_of, compose, native_firmware, pty_device
from unpu.boards.alif import AlifEnsembleBoard, atoc_config
from unpu.boards.base import FIRMWARE
from unpu.boards.corstone import FVP, LISTENING_RE, Corstone300FvpBoard, fvp_command
from unpu.boards.firmware import write_build_header, write_model_c
from unpu.boards.himax import PROMPT_NEXT, PROMPT_XMODEM, HimaxWE2Board, WE2Flasher, model_preamble
from unpu.boards.process import DeviceProcess
from unpu.errors import BoardError
from unpu.protocol import DeviceError

ENV_VARS = ("WE2_SDK", "ALIF_SDK", "ALIF_SETOOLS", "TFLM_DIR", "TFLM_LIB", "ETHOSU_DRIVER_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def _board(cls, name: str, tmp_path: Path, *overrides: str):
    board = board_of(compose([f"board={name}", "board.attached=true", *overrides], tmp_path))
    assert isinstance(board, cls)
    return board


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


# ---- the one-line message naming what is missing ------------------------------------------------

def test_hxwe2_without_sdk_names_the_env_var(tmp_path):
    with pytest.raises(BoardError) as exc:
        _board(HimaxWE2Board, "hxwe2", tmp_path).check_hardware()
    assert "WE2_SDK is not set" in _one_line(exc) and "Seeed_Grove_Vision_AI_Module_V2" in str(exc.value)


def test_hxwe2_without_port_names_board_port(tmp_path, monkeypatch):
    sdk = tmp_path / "sdk"
    (sdk / "EPII_CM55M_APP_S").mkdir(parents=True)
    (sdk / "EPII_CM55M_APP_S" / "makefile").write_text("")
    (sdk / "we2_image_gen_local").mkdir()
    (sdk / "we2_image_gen_local" / "we2_local_image_gen").write_text("")
    monkeypatch.setenv("WE2_SDK", str(sdk))
    with pytest.raises(BoardError) as exc:
        _board(HimaxWE2Board, "hxwe2", tmp_path).check_hardware()
    assert "board.port is not set" in _one_line(exc)


@pytest.mark.parametrize("name", ["alif_e7", "alif_e7_he"])
def test_alif_without_sdk_names_the_env_var(tmp_path, name):
    with pytest.raises(BoardError) as exc:
        _board(AlifEnsembleBoard, name, tmp_path).check_hardware()
    assert "ALIF_SDK is not set" in _one_line(exc) and "alif_ensemble-cmsis-dfp" in str(exc.value)


def test_corstone_without_fvp_names_the_tool(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(BoardError) as exc:
        _board(Corstone300FvpBoard, "corstone300", tmp_path).check_hardware()
    assert f"{FVP} not found on PATH" in _one_line(exc) and "developer.arm.com" in str(exc.value)


def test_corstone_without_tflm_names_the_env_var(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / FVP).write_text("")
    (bindir / FVP).chmod(0o755)  # present on PATH: the check goes on to TFLM
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    with pytest.raises(BoardError) as exc:
        _board(Corstone300FvpBoard, "corstone300", tmp_path).check_hardware()
    assert "TFLM_DIR is not set" in _one_line(exc) and "CO_PROCESSOR=ethos_u" in str(exc.value)


# ---- command lines -------------------------------------------------------------------------------

def test_fvp_command_sets_num_macs_port_no_gui_and_time_limit(tmp_path):
    board = _board(Corstone300FvpBoard, "corstone300", tmp_path, "board.npu.macs_per_cycle=64")
    cmd = fvp_command(Path("/x/app.axf"), int(board.spec.npu.macs_per_cycle), 5123, 3600)
    assert cmd[:3] == [FVP, "-a", "/x/app.axf"]
    params = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-C"]
    assert "ethosu.num_macs=64" in params
    assert "mps3_board.visualisation.disable-visualisation=1" in params
    assert {"mps3_board.telnetterminal0.start_telnet=0", "mps3_board.telnetterminal0.mode=raw",
            "mps3_board.telnetterminal0.start_port=5123"} <= set(params)
    assert cmd[-2:] == ["--simlimit", "3600"]
    assert board.spec.npu.name == "ethos-u55-64"  # Vela's accelerator follows the same key


def test_fvp_port_is_read_from_its_announcement(tmp_path):
    """The FVP moves to the next free port if the one asked for is taken: the port is the one it prints."""
    line = "Info: FVP_MPS3_Corstone_SSE_300: telnetterminal0: Listening for serial connection on port 5007"
    fvp = DeviceProcess([sys.executable, "-c", f"print('booting'); print({line!r}, flush=True); "
                         "import time; time.sleep(30)"], tmp_path / "fvp.log", FVP, stdout="pipe")
    with fvp:
        assert int(fvp.watch_output(LISTENING_RE, 10).group(1)) == 5007
    assert "booting" in (tmp_path / "fvp.log").read_text()


def test_corstone_make_command(tmp_path):
    board = _board(Corstone300FvpBoard, "corstone300", tmp_path)
    paths = {"TFLM_DIR": Path("/t"), "TFLM_LIB": Path("/t/lib.a"), "ETHOSU_DRIVER_DIR": Path("/d")}
    cmd = board.make_command(Path("/b"), Path("/b/unpu_build.h"), Path("/b/model_data.c"), paths)
    assert cmd[:3] == ["make", "-C", str(FIRMWARE / "ports" / "corstone300")]
    assert {"BUILD_DIR=/b", "BUILD_H=/b/unpu_build.h", "MODEL_C=/b/model_data.c", "TFLM_DIR=/t",
            "TFLM_LIB=/t/lib.a", "ETHOSU_DRIVER_DIR=/d"} <= set(cmd)


def test_hxwe2_build_and_image_commands(tmp_path):
    board = _board(HimaxWE2Board, "hxwe2", tmp_path, "board.flash_model_offset=0x300000")
    cmd = board.make_command(Path("/sdk"), Path("/b"), Path("/b/unpu_build.h"))
    assert cmd == ["make", "-C", str(FIRMWARE / "ports" / "hxwe2"), "WE2_SDK=/sdk", "BUILD_DIR=/b",
                   "BUILD_H=/b/unpu_build.h", "MODEL_ADDR=0x3A300000"]
    assert board.image_command() == ["./we2_local_image_gen", "project_case1_blp_wlcsp.json"]


@pytest.mark.parametrize("name, sub, node, cpu", [("alif_e7", "hp", "HP_APP", "M55_HP"),
                                                  ("alif_e7_he", "he", "HE_APP", "M55_HE")])
def test_alif_build_and_setools_commands(tmp_path, monkeypatch, name, sub, node, cpu):
    monkeypatch.setenv("ALIF_SDK", "/dfp")
    board = _board(AlifEnsembleBoard, name, tmp_path)
    assert board.subsystem == sub
    cmd = board.make_command(Path("/b"), Path("/b/h.h"), Path("/b/m.c"), {"TFLM_DIR": Path("/t")})
    assert cmd[:3] == ["make", "-C", str(FIRMWARE / "ports" / "alif_e7")]
    assert {"ALIF_SDK=/dfp", f"SUBSYSTEM={sub}", "UART=2", "BAUDRATE=115200", "BUILD_DIR=/b", "BUILD_H=/b/h.h",
            "MODEL_C=/b/m.c", "TFLM_DIR=/t"} <= set(cmd)
    setools = Path("/se")
    config = setools / "build" / "config" / f"unpu-{sub}.json"
    assert board.setools_commands(setools, config) == [["/se/app-gen-toc", "-f", f"build/config/unpu-{sub}.json"],
                                                     ["/se/app-write-mram", "-p"]]
    assert atoc_config(sub, f"unpu-{sub}.bin", 0x80200000) == {
        node: {"binary": f"unpu-{sub}.bin", "version": "1.0.0", "cpu_id": cpu, "mramAddress": "0x80200000",
               "flags": ["boot"], "signed": False}}


# ---- the model as C data, through the real cross compiler --------------------------------------

def test_model_c_puts_the_exact_bytes_in_the_named_section(tmp_path):
    from elftools.elf.elffile import ELFFile

    data = bytes(range(256)) * 3 + b"TFL3tail"
    src = write_model_c(tmp_path / "model_data.c", data, ".unpu_model")
    header = write_build_header(tmp_path / "unpu_build.h", {"UNPU_MODEL_ID": '"m"', "UNPU_TFLM_ARENA_SIZE": "4096"})
    obj = tmp_path / "model_data.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mthumb", "-c", "-include", str(header), str(src),
                    "-o", str(obj)], check=True, timeout=60)
    with open(obj, "rb") as f:
        elf = ELFFile(f)
        section = elf.get_section_by_name(".unpu_model")
        assert section.data() == data and section["sh_addralign"] == 16


# ---- XMODEM flashing, against the real xmodem receiver on the other end of a pty ----------------

class Bootloader(threading.Thread):
    """The WE2 bootloader's side of the dialogue (its prompts, xmodem receive) on a pty master."""

    def __init__(self, fd: int, files: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.files = fd, files
        self.received: list[bytes] = []
        self.keys: list[bytes] = []
        self.error: BaseException | None = None

    def _read(self, size: int, timeout: float = 1) -> bytes | None:
        import select

        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < size and time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.05)[0]:
                data += os.read(self.fd, size - len(data))
        return data or None

    def _key(self) -> bytes:
        key = b""
        while not key.endswith(b"\r"):
            key += self._read(1, 10) or b""
        return key

    def _recv(self) -> None:
        import xmodem

        modem = xmodem.XMODEM(lambda n, timeout=1: self._read(n, timeout), lambda d, timeout=1: os.write(self.fd, d))
        stream = io.BytesIO()
        assert modem.recv(stream, crc_mode=1, timeout=10, quiet=True) is not None
        self.received.append(stream.getvalue())

    def run(self) -> None:
        try:
            os.write(self.fd, b"WE2 2nd bootloader\r\n1: burn image\r\n")
            self.keys.append(self._key())           # the menu choice
            while self._read(64, 0.3):              # keys typed at the menu meanwhile are consumed there
                pass
            os.write(self.fd, PROMPT_XMODEM + b"\r\n")
            self.keys.append(self._key())
            for _ in range(self.files):
                self._recv()
                os.write(self.fd, PROMPT_NEXT + b"\r\n")
                self.keys.append(self._key())
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_xmodem_flasher_sends_image_preamble_and_model(tmp_path):
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=1)
    image = os.urandom(3000)
    model = b"\x1c\x00\x00\x00TFL3" + os.urandom(2100)
    boot = Bootloader(master, files=3)
    boot.start()
    try:
        WE2Flasher(port, settle_s=0, reset_timeout_s=10, prompt_timeout_s=10, say=lambda s: None).flash(
            image, [(model, 0x200000)])
        boot.join(timeout=30)
    finally:
        port.close()
        os.close(master)
        os.close(slave)
    assert boot.error is None and not boot.is_alive()
    assert boot.keys[0].endswith(b"1\r") and boot.keys[1:] == [b"1\r", b"n\r", b"n\r", b"y\r"]
    got_image, got_preamble, got_model = boot.received
    # XMODEM-1K pads the last packet with SUB (0x1a) to 1024 bytes
    assert got_image == image + b"\x1a" * (-len(image) % 1024)
    assert got_preamble == model_preamble(0x200000) and len(got_preamble) == 1024
    assert got_preamble[:12] == bytes.fromhex("c05a" "00002000" "00000000" "5ac0")
    assert got_model == model + b"\x1a" * (-len(model) % 1024)


def test_xmodem_flasher_gives_up_without_the_bootloader(tmp_path):
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=0.2)
    try:
        with pytest.raises(BoardError, match="did not say 'Send data using the xmodem protocol"):
            WE2Flasher(port, settle_s=0, reset_timeout_s=1, say=lambda s: None).flash(b"x", [])
    finally:
        port.close()
        os.close(master)
        os.close(slave)


# ---- pmu%: the protocol extension in the real C harness (native port) ---------------------------

PMU_PROVIDER = r"""
/* Test provider of the harness's NPU-counter interface: counts the runner's inference calls and
 * their host-clock duration, wrapped around runner_run as the Ethos-U driver's begin/end hooks are
 * around every NPU job. */
#include <stdint.h>
#include "unpu_port.h"
int __real_runner_run(void);
static uint64_t sum[2];
int __wrap_runner_run(void) {
    uint64_t t0 = port_timer_ticks();
    int rc = __real_runner_run();
    sum[0] += port_timer_ticks() - t0;
    sum[1] += 1;
    return rc;
}
void unpu_pmu_reset(void) { sum[0] = sum[1] = 0; }
uint32_t unpu_pmu_count(void) { return 2; }
const char *unpu_pmu_name(uint32_t i) { return i ? "npu_jobs" : "npu_cycles"; }
uint64_t unpu_pmu_value(uint32_t i) { return sum[i < 2 ? i : 0]; }
"""


def _native(softmax_tflite: Path, out: Path, cflags: list[str]):
    client, proc = pty_device([str(native_firmware(softmax_tflite.read_bytes(), out, cflags=cflags))],
                              out / "stderr.log", "native firmware")
    return client, proc, client.port


def test_pmu_lines_are_per_timed_inference(softmax_tflite, tmp_path):
    import numpy as np

    provider = tmp_path / "pmu_provider.c"
    provider.write_text(PMU_PROVIDER)
    client, proc, port = _native(softmax_tflite, tmp_path / "fw", ["-DUNPU_PMU", "-Wl,--wrap=runner_run",
                                                                   str(provider)])
    try:
        with pytest.raises(DeviceError, match="pmu: no inference yet"):
            client.pmu()
        client.load_input(np.arange(10, dtype=np.int8).tobytes())
        client.infer(5, 3)   # 3 warm-ups: not counted
        pmu = client.pmu()
        stages = client.stages()
        assert set(pmu) == {"npu_cycles", "npu_jobs"} and pmu["npu_jobs"] == 1
        assert 0 < pmu["npu_cycles"] <= stages["inference"].cycles   # inside the timed inference stage
        assert "m-pmu-npu_jobs-1" in client.command("pmu")
    finally:
        port.close()
        proc.stop()


def test_pmu_is_an_unknown_command_without_an_npu(softmax_tflite, tmp_path):
    client, proc, port = _native(softmax_tflite, tmp_path / "fw", [])
    try:
        with pytest.raises(DeviceError, match="unknown command pmu"):
            client.pmu()
    finally:
        port.close()
        proc.stop()
