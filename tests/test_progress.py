"""Progress display: rich bars on a real terminal (a pty), plain log lines when stdout is a pipe."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import REPO, run_unpu
from unpu.sweep import BASIC_SWEEPER, sweep_size

FAST = ["model=ad_fc", "bench.windows=2", "bench.iterations=3", "bench.validation_inputs=2"]
BAR = re.compile(r"━+ \d+/\d+ \d+:\d\d:\d\d")  # a rich progress bar: bar, M/N, elapsed
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Environment variables with which rich (or a CI) would override what the pty says about the terminal.
TERMINAL_OVERRIDES = ("NO_COLOR", "FORCE_COLOR", "FORCE_TERMINAL", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
                      "COLUMNS", "LINES", "TERM", "UNPU_PROGRESS")


def run_on_pty(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> tuple[int, str]:
    """`python -m unpu ARGS` with stdout and stderr on a pseudo-terminal of 120x40; returns (exit code, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    full_env = {k: v for k, v in os.environ.items() if k not in TERMINAL_OVERRIDES}
    full_env.update({"PYTHONPATH": str(REPO), "TERM": "xterm-256color", **env})
    proc = subprocess.Popen([sys.executable, "-m", "unpu", *args], cwd=cwd, env=full_env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the pty has exited
                break
            if not data:
                break
            chunks.append(data)
        else:
            proc.kill()
            pytest.fail(f"unpu did not finish in {timeout} s on the pty")
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace")


def screen_lines(output: str) -> list[str]:
    """What was drawn, line by line: escape sequences dropped, each carriage-return redraw its own line."""
    return [line.strip() for line in ANSI.sub("", output).replace("\r", "\n").split("\n") if line.strip()]


@pytest.mark.slow
def test_sweep_progress_on_a_terminal(tmp_path, shared_cache):
    """job i of N with board, model and quant; the windows of the long job (1 s windows) under it."""
    code, output = run_on_pty(["-m", *FAST, "bench.min_window_s=0,1"], tmp_path,
                              {"UNPU_CACHE_DIR": str(shared_cache)})
    assert code == 0, output[-3000:]
    lines = screen_lines(output)
    bars = [line for line in lines if "━" in line]
    assert any(re.search(r"job 1/2 · host · ad_fc · int8 .*━.* 0/2", line) for line in bars), bars[:20]
    assert any(re.search(r"job 2/2 · host · ad_fc · int8 .*━.* 1/2", line) for line in bars), bars[:20]
    assert any(re.search(r"job 2/2 · host · ad_fc · int8 .* 2/2", line) for line in bars)
    # the second job's windows last >= 1 s each, so their bar shows, with the sized window
    assert any(re.search(r"windows of \d+ inferences · inference [\d,.]+ µs .* 1/2", line) for line in bars), bars
    assert "\x1b[?25l" in output  # rich hid the cursor: a live display, not plain lines
    # log lines and the results scroll above the bars
    assert any("job 2/2: host · ad_fc · int8" in line and "[unpu][INFO]" in line for line in lines)
    assert any(line.startswith("sweep: 2 jobs, all finished") for line in lines)
    assert output.rstrip().endswith("(then open http://127.0.0.1:5000)")


@pytest.mark.slow
def test_single_run_window_progress_on_a_terminal(tmp_path, shared_cache):
    code, output = run_on_pty([*FAST, "bench.min_window_s=1"], tmp_path, {"UNPU_CACHE_DIR": str(shared_cache)})
    assert code == 0, output[-3000:]
    bars = [line for line in screen_lines(output) if "━" in line]
    assert any("sizing the window" in line for line in bars), bars
    assert any(re.search(r"windows of \d+ inferences · inference [\d,.]+ µs .* 2/2", line) for line in bars), bars
    assert not any("job " in line for line in bars)  # no sweep bar in a single run
    assert "MLflow run" in output and "median µs" in output


@pytest.mark.slow
def test_plain_output_when_not_a_terminal(tmp_path, shared_cache):
    """stdout on a pipe (CI, a log file): no escape codes and no bars, the log lines say job i of N."""
    out = run_unpu(["-m", *FAST, "bench.min_window_s=0,1"], tmp_path, env={"UNPU_CACHE_DIR": str(shared_cache)},
                   timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for stream in (out.stdout, out.stderr):
        assert "\x1b[" not in stream and not BAR.search(stream) and "windows of" not in stream
    assert re.search(r"\[unpu\]\[INFO\] - job 1/2: host · ad_fc · int8", out.stdout)
    assert re.search(r"\[unpu\]\[INFO\] - job 2/2: host · ad_fc · int8", out.stdout)
    assert "window 2/2: inference" in out.stdout  # today's per-window log line
    assert "sweep: 2 jobs, all finished" in out.stdout


def _sweep_config(task: list[str], params: dict | None = None, sweeper: str = BASIC_SWEEPER):
    return OmegaConf.create({"hydra": {"sweeper": {"_target_": sweeper, "max_batch_size": None, "params": params},
                                       "overrides": {"task": task}}})


def test_sweep_size_is_the_basic_sweepers_product():
    assert sweep_size(_sweep_config(["model=ad_fc,dscnn", "quant=int8,int16x8,float32"])) == 6
    assert sweep_size(_sweep_config(["model=ad_fc", "bench.iterations=range(1,5)"])) == 4
    assert sweep_size(_sweep_config(["model=ad_fc,dscnn", "model=resnet8"])) == 1  # the last override of a key wins
    assert sweep_size(_sweep_config(["quant=int8,float32"], params={"model": "ad_fc,dscnn,resnet8"})) == 6
    assert sweep_size(_sweep_config(["model=ad_fc,dscnn"], sweeper="hydra_plugins.other.Sweeper")) is None
