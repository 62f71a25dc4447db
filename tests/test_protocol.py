"""The DUT protocol end to end: host side (unpu.protocol) against the host device process over a
real pty, running a real int8 model in TFLite Micro."""

from __future__ import annotations

import os
import signal
import sys
import time
import zlib

import numpy as np
import pytest
import serial

from helpers import pty_device
from unpu.errors import DeviceCrashed
from unpu.boards.host_device import DutEngine, TflmRunner
from unpu.measure import Reference
from unpu.protocol import STAGES, DeviceError, DutClient, ProtocolError


@pytest.fixture()
def device(softmax_tflite, tmp_path):
    client, proc = pty_device([sys.executable, "-m", "unpu.boards.host_device", "--model", str(softmax_tflite),
                               "--arena", "16384", "--model-id", "softmax10", "--parent-pid", str(os.getpid())],
                              tmp_path / "stderr.log", "host device process")
    yield client, proc
    client.port.close()
    proc.stop()


def test_base_commands(device):
    client, _ = device
    assert client.name() == "dut-[unpu]"
    assert client.profile() == {"profile": "unpu", "model": "softmax10"}
    info = client.info()
    assert info.clock_hz == 1_000_000_000 and info.arena_bytes == 16384 and info.timer == "os"


def test_binary_upload_infer_stages_and_output_match_reference(device, softmax_tflite):
    client, _ = device
    x = np.arange(-50, 50, 10, dtype=np.int8).reshape(1, 10)
    client.load_input(x.tobytes())
    result = client.infer(5, 2)
    assert result.iterations == 5 and result.window_us > 0
    assert result.results.startswith("m-results-[")
    stages = client.stages()
    assert set(stages) == set(STAGES)
    assert all(s.cycles >= 0 for s in stages.values()) and stages["inference"].cycles > 0
    # µs are recomputed from cycles with the device's own clock and agree with what it printed (checked
    # by the client itself, docs/protocol.md "What the host checks"); the lines checked are kept
    assert all(abs(s.us - s.us_reported) < 0.01 for s in stages.values())
    received = [entry.split(" < ", 1)[1] for entry in client.transcript.lines if " < " in entry]
    assert set(result.laps) <= set(received) and {s.line for s in stages.values()} <= set(received)
    expected = Reference(softmax_tflite.read_bytes()).run(x)
    assert client.output() == expected.tobytes()


def test_mlperf_hex_upload(device):
    client, _ = device
    x = np.arange(10, dtype=np.int8)
    client.load_input_hex(x.tobytes())
    client.infer(1, 0)
    assert len(client.output()) == 10


def test_corrupted_crc_is_refused(device):
    client, _ = device
    data = np.arange(10, dtype=np.int8).tobytes()
    bad_crc = (zlib.crc32(data) ^ 0x1) & 0xFFFFFFFF
    with pytest.raises(DeviceError, match=r"e-\[crc\]"):
        client.command(f"db bin {len(data)} {bad_crc:08x}", raw=data)
    assert any("e-[crc]" in line for line in client.transcript.lines)
    with pytest.raises(DeviceError, match="input not loaded"):
        client.infer(1, 0)  # the corrupt upload left nothing behind
    client.load_input(data)  # and the link still works
    client.infer(1, 0)


@pytest.mark.parametrize("command, error", [
    ("x" * 300, "command too long"),
    ("frobnicate", "unknown command"),
    ("db load 11", "input buffer holds 10 bytes"),
    ("db zz", "no 'db load N' in progress"),
    ("infer", "expected 'infer N"),
    ("infer abc 1", "bad iterations"),
    ("stages", "no inference yet"),
])
def test_bad_commands_answer_errors_and_device_survives(device, command, error):
    client, _ = device
    with pytest.raises(DeviceError, match=error):
        client.command(command)
    assert client.name() == "dut-[unpu]"


def test_idle_waits_and_answers_idle_done(device):
    client, _ = device
    t0 = time.monotonic()
    client.idle(50)
    assert time.monotonic() - t0 >= 0.05
    assert client.transcript.lines[-2].endswith("< m-idle-done")


@pytest.mark.parametrize("command, error", [
    ("idle 0", "MS must be 1..60000"), ("idle 70000", "MS must be 1..60000"), ("idle x", "bad idle ms: x"),
    ("idle", "expected 'idle MS'"), ("idle 1 2", "expected 'idle MS'"),
])
def test_idle_bad_arguments_are_refused(device, command, error):
    client, _ = device
    with pytest.raises(DeviceError, match=error):
        client.command(command)
    assert client.name() == "dut-[unpu]"


def test_bad_hex_payload(device):
    client, _ = device
    client.command("db load 4")
    with pytest.raises(DeviceError, match="bad hex"):
        client.command("db zzzz")
    with pytest.raises(DeviceError, match="whole bytes"):
        client.command("db 123")


def test_device_crash_is_reported_not_hung(device):
    client, proc = device
    os.kill(proc.pid, signal.SIGSEGV)
    proc.wait(10)
    t0 = time.monotonic()
    with pytest.raises(DeviceCrashed, match="SIGSEGV"):
        client.name()
    assert time.monotonic() - t0 < 5


def test_silent_device_times_out(softmax_tflite):
    """A link with nobody answering raises LinkTimeout within the deadline (loop:// echoes nothing useful)."""
    port = serial.serial_for_url("loop://", timeout=0.2)
    client = DutClient(port, timeout_s=1.0)
    port.write(b"")
    t0 = time.monotonic()
    with pytest.raises(ProtocolError):
        client.command("name")  # loop:// echoes 'name%' back: garbage, not an answer
    assert time.monotonic() - t0 < 3


def test_engine_binary_payload_split_and_containing_percent(softmax_tflite):
    runner = TflmRunner(softmax_tflite.read_bytes(), 16384, "none", None)
    runner.init()
    engine = DutEngine(runner, "m", "b")
    data = bytes([0x25] * 10)  # '%' bytes inside the raw payload are data, not terminators
    header = f"db bin 10 {zlib.crc32(data):08x}%".encode()
    assert engine.feed(header + data[:3]) == []
    assert engine.feed(data[3:]) == ["m-load-done", "m-ready"]
    out = engine.feed(b"infer 2 1%")
    assert out[0] == "m-warmup-start-1" and out[-1] == "m-ready" and "m-infer-done" in out


def test_windows_grow_to_min_window_s(device):
    from types import SimpleNamespace

    from unpu.measure import latency_metrics, run_windows

    client, _ = device
    bench = SimpleNamespace(iterations=2, warmup=1, windows=3, min_window_s=0.05, timeout_s=30)
    m = run_windows(client, bytes(10), bench)
    assert len(m.windows) == 3 and m.clock_hz == 1_000_000_000
    assert m.windows[0].iterations > 2  # grown until a probe window lasted >= 50 ms
    assert len({w.iterations for w in m.windows}) == 1  # every window runs the same count
    metrics = latency_metrics(m)
    assert metrics["latency/inference_us_min"] <= metrics["latency/inference_us"] <= metrics["latency/inference_us_max"]
    assert metrics["throughput/ips"] > 0
