"""The emulated Cortex-M boards end to end: real arm-none-eabi-gcc firmware, real QEMU, real MLflow.

Every board of conf/board/ whose adapter is QemuBoard (qemu_m55 = QEMU mps3-an547, Cortex-M55;
qemu_m4 = mps2-an386, Cortex-M4F; ...): a board added to conf/ is tested here with no change. Skipped
only when qemu-system-arm or arm-none-eabi-gcc is not installed (`make test` installs them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import board_of, compose, own_processes, run_unpu
from unpu.boards.catalog import specs

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="qemu-system-arm / arm-none-eabi-gcc not installed (Debian: qemu-system-arm gcc-arm-none-eabi "
           "libnewlib-arm-none-eabi; `make debian-packages`)")

BOARDS = [name for name, spec in specs().items() if spec.adapter and spec.adapter._target_.endswith(".QemuBoard")]
MODELS = ["resnet8", "dscnn", "autoencoder"]
STAGES = ["init", "input", "inference", "output", "post"]
SMALL = ["bench.windows=2", "bench.iterations=2"]


def _children(cwd: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")
    exp = client.get_experiment_by_name("unpu")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return client, [r for r in runs if r.data.tags.get("unpu.kind") == "job"]


def _qemu_pids() -> set[int]:
    return own_processes("qemu-system-arm")


def _sweep(cwd: Path, cache: Path) -> dict[tuple[str, str], dict]:
    cwd.mkdir()
    proc = run_unpu(["-m", "board=" + ",".join(BOARDS), "model=" + ",".join(MODELS), *SMALL], cwd,
                    env={"UNPU_CACHE_DIR": str(cache)}, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _qemu_pids(), "QEMU left running after the sweep"
    client, children = _children(cwd)
    assert len(children) == len(BOARDS) * len(MODELS)
    out = {}
    for run in children:
        tags, m = run.data.tags, run.data.metrics
        key = (tags["board"], tags["model"])
        assert run.info.status == "FINISHED", (key, tags.get("unpu.error"))
        assert tags["source.latency"] == "emulated" and tags["device.timer"] == "systick"
        assert "1 instruction per cycle" in tags["latency.method"]
        assert m["validation/max_abs_diff_lsb"] == 0, key
        assert m["validation/inputs"] >= 10
        for stage in STAGES + ["total"]:
            assert f"instructions/{stage}" in m and f"latency/{stage}_us" in m, (key, stage)
        assert m["instructions/inference"] > 10_000
        # latency = instructions at the clock of the board the emulated core stands in for (1 instruction
        # per cycle), not at the machine's SysTick clock the firmware reports
        cpu = specs()[key[0]].cpu
        assert m["latency/inference_us"] == pytest.approx(m["instructions/inference"] / cpu.clock_hz * 1e6, rel=1e-6)
        assert (tags["latency.clock_hz"], tags["latency.clock_basis"]) == (str(int(cpu.clock_hz)), cpu.clock_basis)
        assert int(tags["device.clock_hz"]) < cpu.clock_hz
        assert 0 < m["memory/flash"] and m["memory/arena"] > 0 and m["memory/ram"] > m["memory/arena"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "firmware")}
        assert {"firmware/app.elf", "firmware/size.txt"} <= artifacts, artifacts
        out[key] = {f"instructions/{s}": m[f"instructions/{s}"] for s in STAGES}
    return out


@pytest.mark.slow
def test_qemu_boards_end_to_end_and_deterministic(tmp_path, shared_cache):
    first = _sweep(tmp_path / "first", shared_cache)
    second = _sweep(tmp_path / "second", shared_cache)   # same cached images, fresh QEMU processes
    assert first == second
    for (board, model), counts in sorted(first.items()):
        print(f"{board:9s} {model:12s} {counts['instructions/inference']:>14,.0f} instructions/inference")


@pytest.mark.slow
def test_hanging_firmware_is_killed_and_recorded_failed(tmp_path, shared_cache):
    proc = run_unpu(["board=qemu_m4", "model=autoencoder", "bench.timeout_s=3", "bench.windows=1",
                     "board.firmware_cflags=[-DUNPU_TEST_HANG]"], tmp_path,
                    env={"UNPU_CACHE_DIR": str(shared_cache)}, timeout=600)
    assert proc.returncode != 0
    assert not _qemu_pids(), "QEMU left running after a timeout"
    _, children = _children(tmp_path)
    assert len(children) == 1 and children[0].info.status == "FAILED"
    assert "infer" in children[0].data.tags["unpu.error"]


@pytest.mark.slow
def test_malformed_commands_answered_and_board_keeps_working(tmp_path, shared_cache):
    from unpu.cache import Cache
    from unpu.protocol import DeviceError, Transcript
    from unpu import steps

    cfg = compose(["board=qemu_m55", "model=autoencoder", f"cache.dir={shared_cache}"], tmp_path)
    board = board_of(cfg)
    model = steps.quantized_model(cfg, Cache(cfg.cache.dir))
    firmware = board.build(model, tmp_path)
    with board.open(firmware, Transcript(), tmp_path) as client:
        for bad in ("bogus", "db load 999999999", "infer x y", "db zz", "x" * 300):
            with pytest.raises(DeviceError):
                client.command(bad)
        with pytest.raises(DeviceError):   # wrong CRC
            client.command("db bin 4 00000000", raw=b"\x01\x02\x03\x04")
        assert client.name() == "dut-[unpu]"
        assert client.info().timer == "systick"


def test_missing_toolchain_names_the_debian_package(tmp_path, monkeypatch):
    from unpu.errors import BoardError
    from unpu.boards.qemu import check_tools

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BoardError, match="gcc-arm-none-eabi"):
        check_tools()
