"""unpu firmware as the MLPerf Tiny runner sees it (mlcommons/tiny, benchmark/runner): the model id it
picks its test script by, `help%` and `timestamp%`, and its performance, energy and accuracy command
sequences, byte for byte, with its own parsing rules.

The runner is not a package and cannot be copied here, so `RunnerLink`/`RunnerDut` below replay what
it sends and parse what it reads, citing the runner function each step mirrors. With
UNPU_MLPERF_RUNNER=<a checkout>/benchmark/runner, `test_the_real_runner_drives_native_firmware`
also runs the runner's own Python (its DUT, Script and DataSet classes) against the firmware.
Everything else is real: the resnet8 firmware is built by unpu's native board adapter, runs as a
process, and is driven over its pty with pyserial.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import board_of, compose, native_firmware, pty_device, zoo_build
from unpu.protocol import Transcript

MLPERF_IDS = {"resnet8": "ic01", "dscnn": "kws01", "mobilenet": "vww01", "ad_fc": "ad01"}
RUNNER = os.environ.get("UNPU_MLPERF_RUNNER")

# The runner's test scripts for ic01 (benchmark/runner/tests_*.yaml): the loop count, then each
# iteration's `download` and `infer N W`; accuracy loops over every file of the dataset.
IC01_SCRIPTS = {"performance": (5, 20, 5), "energy": (5, 20, 0), "accuracy": (None, 1, 0)}
# DUT.__init__ (device_under_test.py): 31 bytes per `db` line, 26 when a power manager is attached.
HEX_BYTES = {"performance": 31, "energy": 26, "accuracy": 31}


class RunnerLink:
    """serial_device.py, SerialDevice(port, baud, end_of_response="m-ready", delimiter="%")."""

    def __init__(self, port) -> None:
        self.port = port
        self.pending = b""

    def read_line(self, timeout: float) -> str | None:
        """_read_loop + read_line: bytes up to '\\n', with '\\r' and '\\0' dropped; None on timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            if time.monotonic() > deadline:
                return None
            self.pending += self.port.read(self.port.in_waiting or 1)
        line, _, self.pending = self.pending.partition(b"\n")
        return line.replace(b"\r", b"").replace(b"\0", b"").decode()

    def send_command(self, command: str, timeout: float = 5.0) -> list[str] | str:
        """send_command: write `command%`, keep non-empty lines until one contains "m-ready"; a
        single line comes back as a str, not a list (the runner's own quirk)."""
        self.port.write(f"{command}%".encode())
        lines: list[str] = []
        while True:
            line = self.read_line(timeout)
            if line is None:
                raise RuntimeError(f"No response to command {command}")
            if line:
                lines.append(line)
            if "m-ready" in line:
                return lines if len(lines) != 1 else lines[0]


class RunnerDut:
    """device_under_test.py, class DUT: the commands and the regexes it reads answers with."""

    def __init__(self, link: RunnerLink, max_bytes: int) -> None:
        self.link, self.max_bytes = link, max_bytes

    def get_name(self) -> str | None:
        for line in self.link.send_command("name"):
            match = re.match(r"^m-(name)-dut-\[([^]]+)]$", line)
            if match:
                return match.group(2)
        return None

    def get_profile(self) -> dict[str, str]:
        """_get_profile: `profile%` answers m-model-[id] and m-profile-[...]."""
        found = {}
        for line in self.link.send_command("profile"):
            match = re.match(r"^m-(model|profile)-\[([^]]+)]$", line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    def load(self, data: bytes) -> list[str] | str:
        """load: `db load N%`, then `db <hex>%` of max_bytes bytes each."""
        self.link.send_command(f"db load {len(data)}")
        i = 0
        while i < len(data):
            result = self.link.send_command(f"db {''.join(f'{d:02x}' for d in data[i:i + self.max_bytes])}")
            i += self.max_bytes
        return result

    def infer(self, number: int, warmups: int) -> list[str]:
        return self.link.send_command(f"infer {number} {warmups}", timeout=30.0)


def gather_infer_results(lines: list[str], mode: str) -> dict:
    """script.py, _ScriptInferStep._gather_infer_results (and the throughput of _print_AP_results)."""
    result: dict = {}
    for res in lines:
        match = re.match(r"^m-results-\[([^]]+)\]$", res)
        if match:
            result["results"] = [float(x) for x in match.group(1).split(",") if x.strip()]
            continue
        match = re.match(r"^m-lap-us-([0-9]+)$", res)
        if match:
            result["end_time" if "start_time" in result else "start_time"] = int(match.group(1))
    if mode != "energy" and "start_time" in result and "end_time" in result:
        result["elapsed_time"] = result["end_time"] - result["start_time"]
    return result


def run_ic01_script(dut: RunnerDut, mode: str, files: list[bytes]) -> list[dict]:
    """script.py, _ScriptLoopStep.run over _ScriptDownloadStep and _ScriptInferStep; a `download`
    without an index sends the dataset's next file, so each loop iteration loads a new one."""
    loops, n, w = IC01_SCRIPTS[mode]
    out = []
    for i in range(loops or len(files)):
        dut.load(files[i])
        result = gather_infer_results(dut.infer(n, w), mode)
        if result.get("elapsed_time"):
            result["throughput"] = n / (result["elapsed_time"] / 1e6)
        out.append(result)
    return out


# ---- the model id -----------------------------------------------------------------------------------

def test_build_context_carries_the_mlperf_id(tmp_path):
    """The id the firmware reports: MLPerf's for its four models, else the zoo name or the file stem."""
    from unpu.pipeline import build_context

    for model, expected in {**MLPERF_IDS, "nas": "nas", "yolov1": "yolov1"}.items():
        assert build_context(compose([f"model={model}"], tmp_path)).model_id == expected
    own = ["model=file", f"model.path={tmp_path}/my_kws.tflite"]
    assert build_context(compose(own, tmp_path)).model_id == "my_kws"
    assert build_context(compose([*own, "model.mlperf_id=kws01"], tmp_path)).model_id == "kws01"


# ---- help% and timestamp% ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def softmax_fw(softmax_tflite, tmp_path_factory) -> Path:
    return native_firmware(softmax_tflite.read_bytes(), tmp_path_factory.mktemp("mlperf_softmax_fw"))


def test_help_and_timestamp_in_c_and_python_alike(softmax_fw, softmax_tflite, tmp_path):
    """`help%`: the firmware name, an empty line, a line per command, then m-ready (the MLPerf
    reference's framing); `timestamp%`: one m-lap-us-<t> on the device clock. The C harness and the
    host board's Python device answer the same lines."""
    from unpu.boards.host_device import HELP_LINES, DutEngine, TflmRunner

    runner = TflmRunner(softmax_tflite.read_bytes(), 16384, "none", None)
    runner.init()
    engine = DutEngine(runner, "softmax10", "test")
    client, process = pty_device([str(softmax_fw)], tmp_path / "stderr.log", "native firmware")
    try:
        link = RunnerLink(client.port)
        for command in ("help", "help extra", "timestamp", "timestamp", "name"):
            python = engine.feed(f"{command}%".encode())
            client.port.write(f"{command}%".encode())
            c = [link.read_line(5) for _ in python]
            assert _timeless(c) == _timeless(python), command
        assert python == ["m-name-dut-[unpu]", "m-ready"]
        assert engine.feed(b"help%") == [*HELP_LINES, "m-ready"] and HELP_LINES[:2] == ("unpu", "")
        assert all(ln[13:15] == ": " for ln in HELP_LINES[2:]), HELP_LINES   # "command      : what it does"
        assert not any("m-ready" in ln for ln in HELP_LINES)   # the runner stops reading at that text
        first, second = (int(link.send_command("timestamp")[0].rsplit("-", 1)[1]) for _ in range(2))
        assert 0 <= second - first < 5_000_000                  # µs of the device clock, not ticks
    finally:
        client.port.close()
        process.stop()


def _timeless(lines: list[str]) -> list[str]:
    return [re.sub(r"^m-lap-us-\d+$", "m-lap-us-T", ln) for ln in lines]


# ---- resnet8 built by unpu, driven as the runner drives it ---------------------------------------------

@pytest.fixture(scope="module")
def resnet8_native(shared_cache, tmp_path_factory):
    """resnet8 through unpu: the quantized model and the native board's firmware for it."""
    from unpu.measure import Reference

    tmp = tmp_path_factory.mktemp("resnet8_native")
    cfg, model, firmware = zoo_build("native", "resnet8", shared_cache, tmp)
    return cfg, firmware, Reference(model.path.read_bytes()), tmp


def _files(reference, count: int, seed: int = 0) -> list[bytes]:
    spec = reference.input_spec
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=spec.shape, dtype=np.int8).tobytes() for _ in range(count)]


def _dequantized(reference, data: bytes) -> np.ndarray:
    spec = reference.input_spec
    out, q = reference.run(np.frombuffer(data, spec.dtype).reshape(spec.shape)), reference.output_spec
    return (out.astype(np.float64).ravel() - q.zero_point) * q.scale


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["performance", "energy", "accuracy"])
def test_runner_script_on_native_resnet8(resnet8_native, mode):
    """main.py's init_dut (name, model, profile), then the ic01 script of tests_<mode>.yaml."""
    cfg, firmware, reference, tmp = resnet8_native
    files = _files(reference, 5)
    with board_of(cfg).open(firmware, Transcript(), tmp) as client:
        dut = RunnerDut(RunnerLink(client.port), HEX_BYTES[mode])
        assert dut.get_name() == "unpu"
        assert dut.get_profile() == {"profile": "unpu", "model": "ic01"}   # the runner's script key
        results = run_ic01_script(dut, mode, files)
    loops, n, _ = IC01_SCRIPTS[mode]
    assert len(results) == (loops or len(files))
    for data, result in zip(files, results):
        assert len(result["results"]) == 10
        np.testing.assert_allclose(result["results"], _dequantized(reference, data), atol=0.5e-4 + 1e-9)
        if mode == "energy":   # energy mode reads time from the power monitor, not from the laps
            assert "elapsed_time" not in result and result["end_time"] >= result["start_time"]
        else:
            assert result["elapsed_time"] > 0 and result["throughput"] > 0
    if mode == "performance":
        throughput = float(np.median([r["throughput"] for r in results]))
        assert 1 < throughput < 1e6, throughput   # summarize_result: "Median throughput is ... inf./sec."


@pytest.mark.slow
def test_host_board_answers_the_mlperf_id(resnet8_native):
    """The host board's Python device reports the same id, help and timestamp as the C firmware."""
    from unpu import steps
    from unpu.boards.host_device import HELP_LINES
    from unpu.cache import Cache

    cfg, _, _, tmp = resnet8_native
    host_cfg = compose(["board=host", "model=resnet8", f"cache.dir={cfg.cache.dir}"], tmp)
    board = board_of(host_cfg)
    firmware = board.build(steps.quantized_model(host_cfg, Cache(cfg.cache.dir)), tmp)
    with board.open(firmware, Transcript(), tmp) as client:
        assert client.profile() == {"profile": "unpu", "model": "ic01"}
        link = RunnerLink(client.port)
        assert link.send_command("help") == [ln for ln in HELP_LINES if ln] + ["m-ready"]
        lap, ready = link.send_command("timestamp")
        assert re.fullmatch(r"m-lap-us-\d+", lap) and ready == "m-ready"


# ---- the runner's own code, when a checkout is at hand ----------------------------------------------

RUNNER_DRIVER = r"""
import json, sys, yaml
runner, port, datasets, mode, out = sys.argv[1:]
sys.path.insert(0, runner)
from datasets import DataSet
from device_under_test import DUT
from script import Script

dut = DUT(port, 115200)
with dut:                                   # main.py: init_dut
    identity = [dut.get_name(), dut.get_model(), dut.get_profile()]
scripts = {"p": "tests_performance.yaml", "a": "tests_accuracy.yaml"}
with open(f"{runner}/{scripts[mode]}") as f:
    script = Script(yaml.safe_load(f)[dut.get_model()])   # main.py: run_test picks by model id
result = script.run(None, dut, DataSet(f"{datasets}/{script.model}", script.truth), mode)
with open(out, "w") as f:
    json.dump({"identity": identity, "result": result}, f)
"""


@pytest.mark.slow
@pytest.mark.skipif(not RUNNER, reason="UNPU_MLPERF_RUNNER=<mlcommons/tiny checkout>/benchmark/runner not set")
@pytest.mark.parametrize("mode", ["p", "a"])
def test_the_real_runner_drives_native_firmware(resnet8_native, tmp_path, mode):
    """The runner's DUT, Script and DataSet classes (its own Python, from the checkout) against the
    firmware ELF unpu built, over its pty; its session log stays in tmp_path/sessions."""
    from unpu.boards.process import DeviceProcess

    _, firmware, reference, _ = resnet8_native
    files = _files(reference, 5, seed=1)   # a performance loop downloads a new file each time: 5
    data = tmp_path / "datasets" / "ic01"
    data.mkdir(parents=True)
    with open(data / "y_labels.csv", "w", newline="") as f:
        for i, payload in enumerate(files):
            (data / f"img{i}.bin").write_bytes(payload)
            csv.writer(f).writerow([f"img{i}.bin", 10, i])
    with DeviceProcess([str(firmware.image)], tmp_path / "stderr.log", "native firmware", stdout="pipe") as process:
        port = process.read_line("pty ", 60)
        done = subprocess.run([sys.executable, "-c", RUNNER_DRIVER, RUNNER, port, str(tmp_path / "datasets"), mode,
                               str(tmp_path / "out.json")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["identity"] == ["unpu", "ic01", "unpu"]
    loops = [r for r in out["result"] if "infer" in r]
    assert len(loops) == len(files)
    for i, loop in enumerate(loops):
        infer = loop["infer"]
        np.testing.assert_allclose(infer["results"], _dequantized(reference, files[i]), atol=0.5e-4 + 1e-9)
        assert infer["elapsed_time"] > 0 and loop["file"] == f"img{i}.bin"
        if mode == "p":
            assert infer["iterations"] == 20 and infer["warmups"] == 5 and infer["throughput"] > 0
    if mode == "p":   # a loop under 10 s is the runner's "error 2" (not valid for submission), no more
        assert [r for r in out["result"] if "infer" not in r] == [{"error": "error 2"}]
