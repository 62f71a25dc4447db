"""Trust what the device says, and one board for one job (issue 13).

The host refuses a timing line that cannot be right, a device that runs another firmware or model
than the one built, a timeout that never expires, and a second job on a physical board in use.

The faulty devices are honest test doubles of a *faulty* device: this file, run as a program
(`python tests/test_device_integrity.py --rule RULE.json -- DEVICE ARGV...`), starts a real device
(the native C firmware, or the host board's TFLite Micro device process), serves a pty of its own and
passes every byte between the host and the device through unchanged, except one line of the device's
answers that it corrupts as a flaky UART or another firmware would (a dropped digit, a wrong id).
Everything else is real: the C harness, TFLite Micro, ptys, pyserial, QEMU, MLflow (sqlite).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import time
import tty
from pathlib import Path
from types import SimpleNamespace

import pytest
import serial

from helpers import REPO, board_of, compose, native_firmware, pty_device, run_unpu
from unpu.artifacts import BuildContext, Firmware
from unpu.boards.base import board_lock, lock_path
from unpu.boards.process import DeviceProcess
from unpu.cache import Cache
from unpu.errors import BoardError
from unpu.links import serial_port, tcp
from unpu.measure import check_identity, run_windows
from unpu.protocol import (
    DeviceMismatch,
    DutClient,
    ImplausibleTiming,
    InvalidTimeout,
    Transcript,
    check_window,
    lap_us,
    window_bounds,
)

BENCH = SimpleNamespace(iterations=20, warmup=2, windows=3, min_window_s=0.0, timeout_s=30)
WHAT = "faulty device (test double)"

# One corruption per case: the nth device line matching `match` gets `sub` replaced by `repl`.
DROP_LEADING_LAP_DIGIT = {"sub": r"^(m-lap-us-)\d", "repl": r"\1", "match": r"^m-lap-us-"}
DROP_CYCLES_DIGIT = {"match": r"^m-stage-inference-", "sub": r"(-cycles-\d*)\d(-us-)", "repl": r"\1\2"}
US_OFF = {"match": r"^m-stage-inference-", "sub": r"-us-(\d+)\.", "repl": r"-us-1\1."}
CLOCK_DROPPED_DIGIT = {"match": r"^m-clock-hz-", "sub": r"0$", "repl": ""}
OTHER_BUILD = {"match": r"^m-build-", "sub": r"^m-build-.*$", "repl": "m-build-0ther0build0"}
OTHER_MODEL = {"match": r"^m-model-", "sub": r"\[.*\]$", "repl": "[ic01]"}
PASS_THROUGH = {"match": r"^$", "sub": "", "repl": ""}   # the same relay, corrupting nothing


# ---- the faulty device: this file as a program ----------------------------------------------------

def _corrupter(rule: dict):
    seen = {"n": 0}

    def apply(line: str) -> str:
        if not re.search(rule["match"], line):
            return line
        seen["n"] += 1
        if seen["n"] != rule.get("nth", 1):
            return line
        bad = re.sub(rule["sub"], rule["repl"], line, count=1)
        print(f"corrupted {line!r} -> {bad!r}", file=sys.stderr, flush=True)
        return bad

    return apply


def _serve(rule: dict, argv: list[str]) -> int:
    """Start the real device, open its pty, announce a pty of our own and relay both ways."""
    device = subprocess.Popen(argv, stdout=subprocess.PIPE)
    announced = device.stdout.readline().decode().strip()
    if not announced.startswith("pty "):
        device.kill()
        return 3
    inner = os.open(announced[4:], os.O_RDWR | os.O_NOCTTY)
    tty.setraw(inner)
    master, slave = os.openpty()
    tty.setraw(slave)
    print(f"pty {os.ttyname(slave)}", flush=True)
    corrupt, parent, pending = _corrupter(rule), os.getppid(), b""
    try:
        while os.getppid() == parent and device.poll() is None:
            ready, _, _ = select.select([master, inner], [], [], 0.5)
            if master in ready:
                os.write(inner, os.read(master, 65536))
            if inner in ready:
                *lines, pending = (pending + os.read(inner, 65536)).split(b"\n")
                for raw in lines:
                    os.write(master, corrupt(raw.decode(errors="replace").rstrip("\r")).encode() + b"\r\n")
    except OSError:
        pass
    finally:
        device.kill()
    return 0


def _faulty_argv(rule: dict, device_argv: list[str], tmp: Path) -> list[str]:
    path = tmp / f"rule_{len(list(tmp.glob('rule_*.json')))}.json"
    path.write_text(json.dumps(rule))
    return [sys.executable, str(Path(__file__).resolve()), "--rule", str(path), "--", *device_argv]


# ---- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _worktree_on_path(monkeypatch):
    """Device processes (the host device, this file as a program) import this checkout's unpu."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


@pytest.fixture(scope="module")
def native_fw(softmax_tflite, tmp_path_factory) -> Path:
    """The real C harness around a one-SOFTMAX model (build id "test", model id "softmax10")."""
    return native_firmware(softmax_tflite.read_bytes(), tmp_path_factory.mktemp("integrity_fw"))


def _faulty(rule: dict, device_argv: list[str], tmp: Path) -> tuple[DutClient, DeviceProcess]:
    return pty_device(_faulty_argv(rule, device_argv, tmp), tmp / "faulty.log", WHAT)


@pytest.fixture()
def faulty_native(native_fw, tmp_path):
    """Start the native firmware behind a faulty link with a given rule; stopped after the test."""
    started = []

    def start(rule: dict) -> DutClient:
        client, process = _faulty(rule, [str(native_fw)], tmp_path)
        started.append((client, process))
        return client

    yield start
    for client, process in started:
        client.port.close()
        process.stop()


def _transcript_has(client: DutClient, line: str) -> bool:
    return any(entry.endswith(f"< {line}") for entry in client.transcript.lines)


def _quoted_lines(message: str) -> list[str]:
    return re.findall(r"'(m-[^']+)'", message)


def _assert_one_line_naming_a_received_line(exc: pytest.ExceptionInfo, client: DutClient) -> None:
    message = str(exc.value)
    assert "\n" not in message
    quoted = _quoted_lines(message)
    assert quoted and all(_transcript_has(client, q) for q in quoted), (message, client.transcript.lines[-12:])


# ---- timing lines ---------------------------------------------------------------------------------

def test_a_correct_device_passes_every_check(faulty_native):
    """The same relay corrupting nothing: the real firmware's lines all pass."""
    m = run_windows(faulty_native(PASS_THROUGH), bytes(10), BENCH)
    assert len(m.windows) == 3 and all(w.window_us > 0 for w in m.windows)


def test_dropped_digit_in_the_first_lap_fails_the_window(faulty_native):
    """The user's case: a window (throughput) computed from a corrupted first lap."""
    client = faulty_native({**DROP_LEADING_LAP_DIGIT, "nth": 1})
    with pytest.raises(ImplausibleTiming, match=r"span \d+ µs for 20 inferences, but stages% puts them at") as exc:
        run_windows(client, bytes(10), BENCH)
    _assert_one_line_naming_a_received_line(exc, client)


def test_dropped_digit_in_the_second_lap_is_a_clock_running_backwards(faulty_native):
    client = faulty_native({**DROP_LEADING_LAP_DIGIT, "nth": 2})
    with pytest.raises(ImplausibleTiming, match="is not after .* ran backwards within one window") as exc:
        run_windows(client, bytes(10), BENCH)
    _assert_one_line_naming_a_received_line(exc, client)


def test_dropped_digit_in_a_later_window_is_caught_against_the_previous_window(faulty_native):
    client = faulty_native({**DROP_LEADING_LAP_DIGIT, "nth": 3})   # the second window's first lap
    with pytest.raises(ImplausibleTiming, match="the last lap of the previous window") as exc:
        run_windows(client, bytes(10), BENCH)
    _assert_one_line_naming_a_received_line(exc, client)


def test_dropped_digit_in_a_stage_cycle_count(faulty_native):
    """Before: FINISHED with latency 10x too small, the printed µs never compared with the cycles."""
    client = faulty_native(DROP_CYCLES_DIGIT)
    with pytest.raises(ImplausibleTiming, match=r"the device says [\d.]+ µs, but \d+ cycles at the 1000000000 Hz") as exc:
        run_windows(client, bytes(10), BENCH)
    _assert_one_line_naming_a_received_line(exc, client)


@pytest.mark.parametrize("rule", [US_OFF, CLOCK_DROPPED_DIGIT], ids=["stage-us", "info-clock"])
def test_us_disagreeing_with_cycles_at_the_reported_clock(faulty_native, rule):
    client = faulty_native(rule)
    with pytest.raises(ImplausibleTiming, match="at the .* Hz clock it reported") as exc:
        run_windows(client, bytes(10), BENCH)
    _assert_one_line_naming_a_received_line(exc, client)


def test_host_device_dropped_digit_in_first_lap(softmax_tflite, tmp_path):
    """The host board's device process (a 1 GHz OS clock, the widest slack) behind the same faulty link."""
    device = [sys.executable, "-m", "unpu.boards.host_device", "--model", str(softmax_tflite), "--arena", "16384",
              "--model-id", "softmax10"]
    client, process = _faulty({**DROP_LEADING_LAP_DIGIT, "nth": 1}, device, tmp_path)
    try:
        with pytest.raises(ImplausibleTiming, match="span") as exc:
            run_windows(client, bytes(10), BENCH)
        _assert_one_line_naming_a_received_line(exc, client)
    finally:
        client.port.close()
        process.stop()


# ---- identity -------------------------------------------------------------------------------------

def _native_firmware_record(exe: Path) -> Firmware:
    """What NativeBoard.build returns for this firmware, as far as identity goes (helpers build it
    with build id "test")."""
    return Firmware(image=exe, digest="sha-of-" + exe.name, build_id="test")


def test_the_right_device_is_recorded_from_its_own_answers(faulty_native, native_fw):
    client = faulty_native(PASS_THROUGH)
    tags = check_identity(client, _native_firmware_record(native_fw), "softmax10")
    assert tags["device.build_id"] == "test" and tags["device.model"] == "softmax10"
    assert tags["digest.firmware"] == "sha-of-firmware.elf" and tags["device.identity"].startswith("checked")


def test_another_firmware_is_refused_with_both_build_ids(faulty_native, native_fw):
    client = faulty_native(OTHER_BUILD)
    with pytest.raises(DeviceMismatch, match=r"'0ther0build0' in info%, but unpu built and flashed 'test'"):
        check_identity(client, _native_firmware_record(native_fw), "softmax10")
    assert _transcript_has(client, "m-build-0ther0build0")


def test_another_model_is_refused_with_both_model_ids(faulty_native, native_fw):
    client = faulty_native(OTHER_MODEL)
    with pytest.raises(DeviceMismatch, match=r"model 'ic01' in profile%, but the firmware was built for 'softmax10'"):
        check_identity(client, _native_firmware_record(native_fw), "softmax10")
    assert _transcript_has(client, "m-model-[ic01]")


def test_the_model_id_compared_is_the_one_the_context_carries(faulty_native, native_fw):
    """Never a hard-coded name: a context whose model id differs from what the firmware says fails."""
    client = faulty_native(PASS_THROUGH)
    with pytest.raises(DeviceMismatch, match="built for 'ic01'"):
        check_identity(client, _native_firmware_record(native_fw), "ic01")


# ---- end to end: python -m unpu, MLflow (sqlite) ---------------------------------------------------

FAKE_CC = """#!PYTHON
# A compiler wrapper for the integrity tests: the real gcc builds the real native firmware beside the
# output; the output is a launcher that runs it behind the faulty link (RELAY, then the firmware).
import json, os, subprocess, sys
RELAY = RELAY_ARGV
args = sys.argv[1:]
if args == ["--version"]:
    os.execvp("gcc", ["gcc", "--version"])
out = args[args.index("-o") + 1]
args[args.index("-o") + 1] = out + ".real"
subprocess.run(["gcc", *args], check=True)
# the build is renamed into the cache after it is made: the launcher finds the firmware beside itself
items = ", ".join(json.dumps(a) for a in RELAY)
with open(out + ".launcher.c", "w") as f:
    f.write("#include <string.h>\\n#include <unistd.h>\\nint main(void) { char real[4096];"
            " ssize_t n = readlink(\\"/proc/self/exe\\", real, sizeof real - 6); if (n < 0) return 127;"
            " memcpy(real + n, \\".real\\", 6); char *argv[] = {" + items + ", real, 0};"
            " execv(argv[0], argv); return 127; }\\n")
subprocess.run(["gcc", "-O1", out + ".launcher.c", "-o", out], check=True)
"""


def _faulty_cc(tmp: Path, rule: dict) -> Path:
    """A board.toolchain.cc that makes the native board run its firmware behind the faulty link."""
    cc = tmp / "faulty-cc"
    cc.write_text(FAKE_CC.replace("PYTHON", sys.executable, 1).replace("RELAY_ARGV", json.dumps(_faulty_argv(rule, [], tmp))))
    cc.chmod(0o755)
    return cc


def _only_run(cwd: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("unpu").experiment_id])
    return client, run


def _transcript_artifact(client, run) -> str:
    return Path(client.download_artifacts(run.info.run_id, "serial_transcript.txt")).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("rule, error, line, identified", [
    ({**DROP_LEADING_LAP_DIGIT, "nth": 1}, r"span \d+ µs for 20 inferences", r"< m-lap-us-\d+$", True),
    (OTHER_BUILD, "'0ther0build0' in info%, but unpu built and flashed", r"< m-build-0ther0build0$", False),
], ids=["lap-digit", "other-firmware"])
def test_run_with_a_faulty_device_is_failed_with_its_transcript(softmax_tflite, tmp_path, rule, error, line,
                                                                identified):
    """Before: both runs FINISHED (throughput from the corrupted lap; digest.firmware of what was built)."""
    cc = _faulty_cc(tmp_path, rule)
    out = run_unpu(["board=native", "model=file", f"model.path={softmax_tflite}", f"board.toolchain.cc={cc}",
                    f"cache.dir={tmp_path / 'cache'}"], tmp_path, timeout=600)
    assert out.returncode == 1, out.stderr[-3000:]
    assert re.search(error, out.stderr.splitlines()[-1])
    client, run = _only_run(tmp_path)
    assert run.info.status == "FAILED"
    message = run.data.tags["unpu.error"]
    assert re.search(error, message) and "\n" not in message
    transcript = _transcript_artifact(client, run)
    offending = [ln for ln in transcript.splitlines() if re.search(line, ln)]
    assert offending, transcript[-2000:]
    assert all(q in transcript for q in _quoted_lines(message))
    assert ("digest.firmware" in run.data.tags) is identified and ("device.build_id" in run.data.tags) is identified


@pytest.mark.slow
def test_a_finished_run_records_identity_from_the_device(softmax_tflite, tmp_path):
    out = run_unpu(["board=native", "model=file", f"model.path={softmax_tflite}", f"cache.dir={tmp_path / 'cache'}",
                    "bench.windows=2"], tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    client, run = _only_run(tmp_path)
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    build_log = Path(client.download_artifacts(run.info.run_id, "firmware/build.log")).read_text()
    assert f'-DUNPU_BUILD_ID="{tags["device.build_id"]}"' in build_log    # what the device said = what was built
    assert tags["device.model"] == "softmax10" and tags["device.identity"].startswith("checked")
    elf = Path(client.download_artifacts(run.info.run_id, "firmware/firmware.elf"))
    assert tags["digest.firmware"] == hashlib.sha256(elf.read_bytes()).hexdigest()


# ---- QEMU: the slack holds for the smallest zoo model on the coarsest timer -------------------------

@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="qemu-system-arm / arm-none-eabi-gcc not installed")
def test_qemu_m4_autoencoder_windows_pass_and_a_corrupted_first_lap_does_not(tmp_path, shared_cache):
    """autoencoder on qemu_m4 (SysTick, 40 instructions a tick; input/output 12 ticks, post 1 tick):
    windows of 1, 2 and 20 inferences pass; the first lap of the session with its leading digit
    dropped (the lap closest to the device's boot, so the smallest change a dropped digit makes) fails."""
    from unpu import steps
    from unpu.measure import Reference

    cfg = compose(["board=qemu_m4", "model=autoencoder", f"cache.dir={shared_cache}"], tmp_path)
    board = board_of(cfg)
    model = steps.quantized_model(cfg, Cache(cfg.cache.dir))
    firmware = board.build(model, tmp_path)
    spec = Reference(model.path.read_bytes()).input_spec
    with board.open(firmware, Transcript(), tmp_path) as client:
        assert check_identity(client, firmware, "autoencoder")["device.build_id"] == firmware.build_id
        info = client.info()
        client.load_input(bytes(math.prod(spec.shape) * spec.dtype.itemsize))
        windows = []
        for n in (1, 2, 20, 20):
            result = client.infer(n, 2)
            windows.append((result, client.stages()))   # every check runs in infer and stages and must pass
    first, stages = windows[0]
    corrupted = re.sub(r"^(m-lap-us-)\d", r"\1", first.laps[0])
    bad = dataclasses.replace(first, laps=(corrupted, first.laps[1]),
                              window_us=float(lap_us(first.laps[1]) - lap_us(corrupted)))
    with pytest.raises(ImplausibleTiming, match="span"):
        check_window(bad, stages, info.clock_hz, info.timer)
    for result, stages in windows:
        per_inference = sum(stages[s].cycles for s in ("input", "inference", "output", "post")) * 1e6 / info.clock_hz
        low, high = window_bounds(result.iterations, result.iterations * per_inference, info.clock_hz, info.timer)
        print(f"qemu_m4 autoencoder N={result.iterations}: window {result.window_us:.0f} µs, stages "
              f"{result.iterations * per_inference:.1f} µs, plausible {low:.1f} .. {high:.1f}")


# ---- timeouts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 0.0, "soon"])
def test_non_finite_or_non_positive_timeouts_are_refused_where_they_enter(bad, tmp_path):
    port = serial.serial_for_url("loop://", timeout=0.2)
    with pytest.raises(InvalidTimeout, match="must be a finite number of seconds > 0"):
        DutClient(port, timeout_s=bad)
    client = DutClient(port, timeout_s=1.0)
    with pytest.raises(InvalidTimeout, match="the timeout of 'infer 1 0%'"):
        client.infer(1, 0, timeout_s=bad)
    with pytest.raises(InvalidTimeout, match=r"bench.timeout_s"):
        BuildContext("m", "none", Cache(tmp_path / "cache"), bad)
    with pytest.raises(InvalidTimeout, match="QEMU's serial port"):
        tcp(1, bad, lambda: None, "QEMU")
    with DeviceProcess([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "p.log", "sleeper",
                       stdout="pipe") as process:
        for call in (lambda: process.read_line("pty ", bad), lambda: process.wait(bad),
                     lambda: process.watch_output(re.compile("x"), bad)):
            with pytest.raises(InvalidTimeout):
                call()


def test_bench_timeout_nan_is_one_line_and_exit_2(softmax_tflite, tmp_path):
    """Before: a hung device hung the run forever (a NaN deadline never passes)."""
    out = run_unpu(["board=native", "model=file", f"model.path={softmax_tflite}", "bench.timeout_s=nan"], tmp_path,
                   timeout=300)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "bench.timeout_s" in lines[0] and "nan" in lines[0], out.stderr


# ---- one board for one job ----------------------------------------------------------------------------

def test_serial_ports_are_opened_exclusively():
    """Before: a second job (or a terminal) could open the board's UART and read its answers too."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        first = serial_port(path, 115200)
        with pytest.raises(BoardError, match=f"cannot open serial port {path}: .*exclusively lock"):
            serial_port(path, 115200)
        first.close()
        serial_port(path, 115200).close()   # free again once the first is closed
    finally:
        os.close(master)
        os.close(slave)


LOCKER = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(message)s")
from unpu.boards.base import board_lock
from unpu.errors import BoardError
address, hold_s, wait_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
try:
    with board_lock(address, "max78000", wait_s, run="outputs/job-" + str(hold_s)):
        print("acquired", time.time(), flush=True)
        time.sleep(hold_s)
        print("releasing", time.time(), flush=True)
except BoardError as exc:
    print("unpu:", exc, file=sys.stderr)
    sys.exit(1)
"""


def _locker(address: str, hold_s: float, wait_s: float, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LOCKER, address, str(hold_s), str(wait_s)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _times(out: str, word: str) -> float:
    return float(next(ln.split()[1] for ln in out.splitlines() if ln.startswith(word)))


@pytest.fixture()
def lock_env(tmp_path, monkeypatch) -> dict:
    """Board locks under tmp_path, for this test and the processes it starts."""
    monkeypatch.setenv("UNPU_LOCK_DIR", str(tmp_path / "locks"))
    return dict(os.environ)


def _wait_for_holder(address: str, holder: subprocess.Popen, within_s: float = 30) -> None:
    sidecar = lock_path(address).with_suffix(".holder")
    deadline = time.monotonic() + within_s
    while not sidecar.exists():
        assert holder.poll() is None, f"the first process ended without taking the lock: {holder.communicate()}"
        assert time.monotonic() < deadline, "the first process never took the lock"
        time.sleep(0.05)


def test_two_processes_on_one_board_serialise_and_another_port_does_not_wait(lock_env):
    holder = _locker("/dev/ttyUNPU0", 2.0, 0, lock_env)
    _wait_for_holder("/dev/ttyUNPU0", holder)
    waiter = _locker("/dev/ttyUNPU0", 0.1, 60, lock_env)
    other = _locker("/dev/ttyUNPU1", 0.1, 0, lock_env)      # another board: no wait (wait 0 would fail)
    outs = [p.communicate(timeout=60) for p in (holder, waiter, other)]
    assert [p.returncode for p in (holder, waiter, other)] == [0, 0, 0], outs
    (h_out, _), (w_out, w_err), (o_out, o_err) = outs
    assert _times(w_out, "acquired") >= _times(h_out, "releasing")
    assert _times(o_out, "acquired") < _times(h_out, "releasing")
    waiting = [ln for ln in w_err.splitlines() if ln.startswith("waiting")]
    assert len(waiting) == 1, w_err
    assert f"pid {holder.pid} board max78000 run outputs/job-2.0" in waiting[0]
    assert str(lock_path("/dev/ttyUNPU0")) in waiting[0]
    assert "waiting" not in o_err


def test_lock_wait_timeout_fails_with_one_line(lock_env):
    holder = _locker("/dev/ttyUNPU0", 3.0, 0, lock_env)
    _wait_for_holder("/dev/ttyUNPU0", holder)
    waiter = _locker("/dev/ttyUNPU0", 0.1, 0.5, lock_env)
    _, err = waiter.communicate(timeout=30)
    holder.communicate(timeout=30)
    assert waiter.returncode == 1
    line = err.strip().splitlines()[-1]
    assert re.match(rf"unpu: board max78000 on /dev/ttyUNPU0 is still in use after 0.5 s \(bench.lock_wait_s\): "
                    rf"lock .* held by pid {holder.pid} ", line), err


def _unpu(args: list[str], cwd: Path) -> subprocess.Popen:
    cwd.mkdir()
    return subprocess.Popen([sys.executable, "-m", "unpu", *args], cwd=cwd, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _window_times(log: str) -> list[str]:
    return re.findall(r"^\[([\d-]+ [\d:,]+)\]\[unpu.measure\]\[INFO\] - window \d+/\d+", log, re.MULTILINE)


@pytest.mark.slow
def test_two_jobs_naming_one_board_port_serialise_end_to_end(softmax_tflite, tmp_path, lock_env):
    """Two `python -m unpu` jobs at once on one board.port: the second waits (one line naming the lock
    and the first job's pid), then runs; their timed windows never interleave. No adapter runs in
    hardware mode here (each needs its vendor SDK and a board attached), so the jobs use the native
    board with a board.port added: Board.open locks every board that names a port, whatever its adapter."""
    port = "/dev/ttyUNPU9"
    args = ["board=native", "model=file", f"model.path={softmax_tflite}", f"+board.port={port}",
            f"cache.dir={tmp_path / 'cache'}", "bench.windows=3", "bench.validation_inputs=2"]
    first = _unpu([*args, "bench.min_window_s=5"], tmp_path / "first")   # holds the board > 15 s
    _wait_for_holder(port, first, within_s=300)
    second = _unpu([*args, "bench.min_window_s=0.5"], tmp_path / "second")
    logs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [log[-2000:] for log in logs]
    waiting = [ln for ln in logs[1].splitlines() if "waiting up to 900 s for board native on /dev/ttyUNPU9" in ln]
    assert len(waiting) == 1 and f"held by pid {first.pid} board native" in waiting[0], logs[1][-3000:]
    assert not any("waiting up to" in ln for ln in logs[0].splitlines())
    assert re.search(r"board native on /dev/ttyUNPU9 is free after [\d.]+ s", logs[1])
    first_windows, second_windows = _window_times(logs[0]), _window_times(logs[1])
    assert len(first_windows) == len(second_windows) == 3
    assert max(first_windows) < min(second_windows)


def test_a_port_through_a_symlink_shares_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("UNPU_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "ttyACM0").touch()
    (tmp_path / "by-id").symlink_to(tmp_path / "ttyACM0")
    assert lock_path(str(tmp_path / "by-id")) == lock_path(str(tmp_path / "ttyACM0"))
    with (board_lock(str(tmp_path / "ttyACM0"), "b", 0), pytest.raises(BoardError, match="still in use after 0 s"),
          board_lock(str(tmp_path / "by-id"), "b", 0)):
        pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", required=True)
    parser.add_argument("device", nargs="+")
    args = parser.parse_args(argv)
    return _serve(json.loads(Path(args.rule).read_text()), args.device)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
