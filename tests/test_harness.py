"""The C firmware harness (issue 4): built for the `native` port with the host gcc and driven over a
real pty by unpu.protocol.DutClient, exactly like test_protocol.py drives the Python host device.
Everything is real: models from the TF converter / the TFLite schema, C from unpu.codegen, outputs
compared with LiteRT BUILTIN_REF, runs recorded in MLflow (sqlite)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, board_of, native_firmware, pty_device, run_unpu, zoo_build
from unpu.protocol import STAGES, DeviceError, Transcript


def _spawn(exe: Path, tmp: Path):
    client, process = pty_device([str(exe)], tmp / "stderr.log", "native firmware")
    return client, process, client.port


@pytest.fixture(scope="module")
def softmax_fw(softmax_tflite, tmp_path_factory) -> Path:
    """The native firmware around a one-SOFTMAX int8 model (input 10 bytes), as test_protocol uses."""
    out = tmp_path_factory.mktemp("softmax_fw")
    return native_firmware(softmax_tflite.read_bytes(), out)


@pytest.fixture()
def device(softmax_fw, tmp_path):
    client, proc, port = _spawn(softmax_fw, tmp_path)
    yield client, proc
    port.close()
    proc.stop()


# ---- the protocol, as test_protocol.py checks it on the host device ---------------------------

def test_base_commands(device):
    client, _ = device
    assert client.name() == "dut-[unpu]"
    assert client.profile() == {"profile": "unpu", "model": "softmax10"}
    info = client.info()
    assert info.clock_hz == 1_000_000_000 and info.arena_bytes > 0 and info.timer == "os" and info.build == "test"


def test_binary_upload_infer_stages_and_output_match_reference(device, softmax_tflite):
    from unpu.measure import Reference

    client, _ = device
    x = np.arange(-50, 50, 10, dtype=np.int8).reshape(1, 10)
    client.load_input(x.tobytes())
    result = client.infer(5, 2)
    assert result.iterations == 5 and result.window_us >= 0 and result.results.startswith("m-results-[")
    stages = client.stages()
    assert set(stages) == set(STAGES) and stages["inference"].cycles > 0
    assert all(abs(s.us - s.us_reported) < 0.01 for s in stages.values())
    assert client.output() == Reference(softmax_tflite.read_bytes()).run(x).tobytes()


def test_mlperf_hex_upload(device):
    client, _ = device
    client.load_input_hex(np.arange(10, dtype=np.int8).tobytes())
    client.infer(1, 0)
    assert len(client.output()) == 10


def test_corrupted_crc_is_refused(device):
    client, _ = device
    data = np.arange(10, dtype=np.int8).tobytes()
    bad_crc = (zlib.crc32(data) ^ 0x1) & 0xFFFFFFFF
    with pytest.raises(DeviceError, match=r"e-\[crc\]"):
        client.command(f"db bin {len(data)} {bad_crc:08x}", raw=data)
    with pytest.raises(DeviceError, match="input not loaded"):
        client.infer(1, 0)  # the corrupt upload left nothing behind
    client.load_input(data)
    client.infer(1, 0)


@pytest.mark.parametrize("command, error", [
    ("x" * 300, "command too long"),
    ("frobnicate", "unknown command"),
    ("db load 11", "input buffer holds 10 bytes"),
    ("db load 0", "input buffer holds 10 bytes"),
    ("db bin 5", "expected 'db load N'"),
    ("db bin 4 xyz", "bad crc32"),
    ("db zz", "no 'db load N' in progress"),
    ("infer", "expected 'infer N"),
    ("infer abc 1", "bad iterations"),
    ("infer 0", "N must be >= 1"),
    ("infer 1", "input not loaded"),
    ("stages", "no inference yet"),
    ("out", "no inference yet"),
    ("results", "no inference yet"),
    ("", "empty command"),
    ("\x01\x7f~", "unknown command"),
    ("idle 0", "MS must be 1..60000"),
    ("idle 70000", "MS must be 1..60000"),
    ("idle x", "bad idle ms: x"),
    ("idle", "expected 'idle MS'"),
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
    assert client.name() == "dut-[unpu]"


def test_bad_hex_payload(device):
    client, _ = device
    client.command("db load 4")
    with pytest.raises(DeviceError, match="bad hex"):
        client.command("db zzzz")
    with pytest.raises(DeviceError, match="whole bytes"):
        client.command("db 123")
    with pytest.raises(DeviceError, match="more bytes than announced"):
        client.command("db 0102030405")


def test_binary_payload_with_percent_split_across_writes(device):
    client, _ = device
    data = bytes([0x25] * 10)  # '%' inside the raw payload is data, not a terminator
    client._send(f"db bin 10 {zlib.crc32(data):08x}%", data[:3])
    time.sleep(0.05)
    client.port.write(data[3:])
    deadline = time.monotonic() + 5
    assert [client._read_line(deadline, "db bin") for _ in range(2)] == ["m-load-done", "m-ready"]
    client.infer(2, 1)


PARITY_STREAM = [
    b"name%", b"profile%", b"frobnicate%", b"x" * 300 + b"%", b"db load 11%", b"db zz%", b"db load 4%",
    b"db 0102%", b"db zzzz%", b"db 123%", b"db 010203040506%", b"infer%", b"infer abc 1%", b"infer 0%",
    b"infer 1 0%", b"db bin 10 0000000%" + bytes(10), b"db load 10%", b"db 00010203040506070809%",
    b"infer 3 1%", b"results%", b"stages%", b"out%", b"\r\n%", b"db bin 12 0%", b"db bin -1 0%",
    b"db load +10%", b"db 0x%", b"db load 1 2%", b"infer 1 -2%", b"stages extra%",
    b"idle 1%", b"idle 0%", b"idle 60001%", b"idle -5%", b"idle x%", b"idle%", b"idle 1 2%",
]
_VOLATILE = [(re.compile(r"^(m-lap-us-|m-stage-\w+-cycles-)\d+(-us-)[0-9.]+$"), r"\1N\2N"),
             (re.compile(r"^m-lap-us-\d+$"), "m-lap-us-N"), (re.compile(r"^m-(arena|build|model)-.*$"), r"m-\1-X")]


def _normalise(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pattern, repl in _VOLATILE:
            line = pattern.sub(repl, line)
        out.append(line)
    return out


def test_answers_mirror_the_python_device_line_for_line(device, softmax_tflite):
    """The same byte stream through unpu.boards.host_device.DutEngine and through the C harness."""
    from unpu.boards.host_device import DutEngine, TflmRunner

    runner = TflmRunner(softmax_tflite.read_bytes(), 16384, "none", None)
    runner.init()
    engine = DutEngine(runner, "softmax10", "test")
    client, _ = device
    for chunk in PARITY_STREAM:
        expected = _normalise(engine.feed(chunk))
        client.port.write(chunk)
        got: list[str] = []
        while len(got) < len(expected):
            got.append(client._read_line(time.monotonic() + 5, repr(chunk[:40])))
        assert _normalise(got) == expected, chunk[:60]


def test_firmware_exits_when_its_parent_dies(softmax_fw):
    code = ("import subprocess, sys; p = subprocess.Popen([sys.argv[1]], stdout=subprocess.PIPE); "
            "print(p.pid, p.stdout.readline().decode().strip(), flush=True)")
    out = subprocess.run([sys.executable, "-c", code, str(softmax_fw)], capture_output=True, text=True, timeout=30)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# ---- a real zoo model through NativeBoard ---------------------------------------------------

@pytest.fixture(scope="module")
def dscnn_native(shared_cache, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dscnn_native")
    return (*zoo_build("native", "dscnn", shared_cache, tmp), tmp)


def test_native_build_metrics_and_cache(dscnn_native):

    cfg, model, firmware, tmp = dscnn_native
    m = firmware.metrics
    assert m["memory/arena"] == 16000  # docs/codegen.md's static plan for dscnn
    assert m["memory/flash"] > m["memory/weights"] > 0 and m["memory/ram"] > m["memory/arena"]
    assert firmware.image.exists() and "firmware/size_report.txt" in firmware.artifacts
    again = board_of(cfg).build(model, tmp)
    assert again.digest == firmware.digest and again.tags["cache.firmware"] == "hit"


def test_native_dscnn_output_matches_litert_reference(dscnn_native):
    from unpu.measure import Reference

    cfg, model, firmware, tmp = dscnn_native
    reference = Reference(model.path.read_bytes())
    spec = reference.input_spec
    rng = np.random.default_rng(0)
    with board_of(cfg).open(firmware, Transcript(), tmp) as client:
        assert client.profile()["model"] == "kws01"  # its MLPerf Tiny id (conf/model/dscnn.yaml)
        for _ in range(10):
            x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
            client.load_input(x.tobytes())
            client.infer(1, 0)
            assert client.output() == reference.run(x).tobytes()
        stages = client.stages()
        assert stages["inference"].cycles > stages["input"].cycles


# ---- end to end with python -m unpu --------------------------------------------------------------

def _mlflow_runs(cwd: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")
    exp = client.get_experiment_by_name("unpu")
    return client, client.search_runs([exp.experiment_id])


@pytest.mark.slow
def test_e2e_native_three_zoo_models(shared_cache, tmp_path):
    out = run_unpu(["-m", "board=native", "model=dscnn,resnet8,autoencoder", "bench.windows=2",
                    "bench.iterations=3"], tmp_path, env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 0, out.stderr[-3000:]
    client, runs = _mlflow_runs(tmp_path)
    children = [r for r in runs if r.data.tags.get("unpu.kind") == "job"]
    assert sorted(r.data.tags["model"] for r in children) == ["autoencoder", "dscnn", "resnet8"]
    for run in children:
        assert run.info.status == "FINISHED", run.data.tags.get("unpu.error")
        m, t = run.data.metrics, run.data.tags
        assert m["validation/max_abs_diff_lsb"] == 0  # the C kernels match LiteRT's FC rounding too
        assert m["latency/inference_us"] > 0 and m["memory/flash"] > 0 and m["memory/ram"] > 0
        assert t["source.latency"] == "measured" and t["device.timer"] == "os" and t["runtime"] == "codegen"
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "firmware")}
        assert {"firmware/firmware.elf", "firmware/size_report.txt"} <= artifacts


def _native_processes(root: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            exe = os.readlink(proc / "exe")
        except OSError:
            continue
        if exe.startswith(str(root)) and exe.endswith("firmware.elf"):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_hanging_firmware_is_killed_and_run_failed(shared_cache, tmp_path):
    t0 = time.monotonic()
    out = run_unpu(["board=native", "model=dscnn", "board.firmware_cflags=[-DUNPU_TEST_HANG]", "bench.timeout_s=3",
                    "bench.windows=1", "bench.iterations=1"], tmp_path, env={"UNPU_CACHE_DIR": str(shared_cache)},
                   timeout=600)
    assert out.returncode != 0
    _, runs = _mlflow_runs(tmp_path)
    (run,) = runs
    assert run.info.status == "FAILED"
    assert "within the timeout" in run.data.tags["unpu.error"], run.data.tags["unpu.error"]
    assert time.monotonic() - t0 < 300
    assert _native_processes(shared_cache / "native_fw") == []


@pytest.mark.slow
def test_wrong_output_fails_a_bit_exact_board(shared_cache, tmp_path):
    out = run_unpu(["board=native", "model=dscnn", "board.firmware_cflags=[-DUNPU_TEST_CORRUPT_OUTPUT]",
                    "bench.windows=1", "bench.iterations=1"], tmp_path, env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 1
    client, runs = _mlflow_runs(tmp_path)
    (run,) = runs
    assert run.info.status == "FAILED"
    assert "differs from LiteRT's reference kernels by up to 1" in run.data.tags["unpu.error"]
    assert run.data.metrics["validation/max_abs_diff_lsb"] == 1  # the evidence is still recorded


# ---- fuzzing -----------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed (Debian package clang)")
def test_fuzz_parser_bounded_pass(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "fuzz_harness"), "--runs", "20000",
                          "--workdir", str(tmp_path), "--timeout-s", "300"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "Done 20000 runs" in out.stderr


def test_post_softmax_results_match_tflite_micro(softmax_tflite, tmp_path):
    """post=softmax: the C runner's int8 softmax gives the host device's (TFLite Micro's) results."""
    from unpu.boards.host_device import DutEngine, TflmRunner
    from unpu.postproc import softmax_model

    native_firmware(softmax_tflite.read_bytes(), tmp_path, post="softmax")
    runner = TflmRunner(softmax_tflite.read_bytes(), 16384, "softmax", softmax_model(10, "int8", 1 / 256, -128))
    runner.init()
    engine = DutEngine(runner, "softmax10", "test")
    x = np.arange(-50, 50, 10, dtype=np.int8).tobytes()
    engine.feed(f"db bin 10 {zlib.crc32(x):08x}%".encode() + x)
    expected = [ln for ln in engine.feed(b"infer 2 1%") if ln.startswith("m-results-")]
    client, proc, port = _spawn(tmp_path / "firmware.elf", tmp_path)
    try:
        client.load_input(x)
        assert [client.infer(2, 1).results] == expected
        assert client.stages()["post"].cycles > 0
    finally:
        port.close()
        proc.stop()
