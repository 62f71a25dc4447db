"""The power-meter pin contract (docs/protocol.md, "Pins") on the real qemu_m55 firmware.

The cmsdk port drives the pins through the FPGAIO LED register (bit 0 = timestamp pin, bit 1 =
stage pin); QEMU's `-d trace:mps2_fpgaio_write -D FILE` logs every write to it as
`mps2_fpgaio_write MPS2 FPGAIO write: offset 0x0 data 0x3 size 4` (optionally prefixed by
`PID@SECONDS:`). QEMU flushes each log line, and the firmware writes its pins before it answers,
so the lines in the file when `m-ready` arrives are those of the commands answered so far.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from helpers import board_of, compose, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make debian-packages`)")

TIMESTAMP, STAGE = 1, 2  # FPGAIO LED bits
_WRITE = re.compile(r"mps2_fpgaio_write\b.*\boffset 0x([0-9a-f]+) data 0x([0-9a-f]+)")
CONNECT_TIMEOUT_S = 30


def led_writes(text: str) -> list[int]:
    """Values written to the LED register (offset 0), in order."""
    return [int(m.group(2), 16) for m in map(_WRITE.search, text.splitlines()) if m and int(m.group(1), 16) == 0]


def edges(before: int, writes: list[int]) -> tuple[list[int], list[int]]:
    """Indices (into writes) of timestamp-pin falling edges and of stage-pin toggles."""
    falls, toggles = [], []
    for i, value in enumerate(writes):
        if before & TIMESTAMP and not value & TIMESTAMP:
            falls.append(i)
        if (before ^ value) & STAGE:
            toggles.append(i)
        before = value
    return falls, toggles


@pytest.fixture(scope="module")
def firmware(softmax_tflite, tmp_path_factory):
    """qemu_m55 firmware around the one-SOFTMAX int8 model (input 10 bytes)."""
    from unpu.artifacts import QuantizedModel
    from unpu.cache import file_digest

    tmp = tmp_path_factory.mktemp("pins")
    cfg = compose(["board=qemu_m55", "model=file", f"model.path={softmax_tflite}"], tmp)
    model = QuantizedModel("softmax10", softmax_tflite, file_digest(softmax_tflite), 0, "tflite graph")
    board = board_of(cfg)
    return board, board.build(model, tmp)


@pytest.fixture()
def traced(firmware, tmp_path):
    """A DutClient on QEMU running the firmware with FPGAIO writes traced to a file."""
    from unpu.boards.process import DeviceProcess
    from unpu.links import tcp
    from unpu.protocol import DutClient, Transcript

    board, fw = firmware
    trace, port = tmp_path / "fpgaio.trace", free_port()
    cmd = board.qemu_command(fw.image, port) + ["-d", "trace:mps2_fpgaio_write", "-D", str(trace)]
    with DeviceProcess(cmd, tmp_path / "qemu.log", "QEMU") as qemu:
        link = tcp(port, CONNECT_TIMEOUT_S, qemu.check_alive, "QEMU")
        try:
            client = DutClient(link, 30, Transcript(), check_alive=qemu.check_alive)
            client.connect()
            yield client, trace
        finally:
            link.close()


def test_idle_and_infer_pin_edges(traced):
    client, trace = traced
    client.load_input(bytes(range(10)))
    boot = led_writes(trace.read_text())
    level = boot[-1] if boot else 0
    assert level & TIMESTAMP  # the timestamp pin idles high

    t0 = time.monotonic()
    client.idle(10)
    assert time.monotonic() - t0 >= 0.01
    after_idle = led_writes(trace.read_text())
    idle_falls, idle_toggles = edges(level, after_idle[len(boot):])
    assert len(idle_falls) == 2 and idle_toggles == []

    warmup, n = 1, 3
    client.infer(n, warmup)
    writes = led_writes(trace.read_text())[len(after_idle):]
    falls, toggles = edges(after_idle[-1], writes)
    assert len(falls) == 2  # t_start and t_end
    assert len(toggles) == 2 + 4 * (warmup + n)
    t_start, t_end = falls
    assert len([i for i in toggles if t_start < i < t_end]) == 4 * n
    assert len([i for i in toggles if i < t_start]) == 2 + 4 * warmup  # init start and end, warm-ups
    assert writes[-1] & TIMESTAMP  # and back high


@pytest.mark.parametrize("command", ["idle 0", "idle 70000", "idle x"])
def test_idle_bad_arguments_refused_without_pulses(traced, command):
    from unpu.protocol import DeviceError

    client, trace = traced
    before = led_writes(trace.read_text())
    with pytest.raises(DeviceError, match=r"idle"):
        client.command(command)
    assert led_writes(trace.read_text()) == before
    assert client.name() == "dut-[unpu]"
