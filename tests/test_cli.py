"""The command line: fast paths import nothing heavy; bad input gets one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO, extra_board, run_unpu

HEAVY = ("tensorflow", "keras", "mlflow", "tflite_micro", "ai_edge_litert")

PROBE = """
import runpy, sys
sys.argv = ["unpu", *{args!r}]
try:
    runpy.run_module("unpu", run_name="__main__")
except SystemExit:
    pass
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"], ["model=dscnn", "quant=int16x8", "--cfg", "job"]])
def test_help_and_cfg_import_no_tensorflow_mlflow_or_tflm(args):
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY=\n" in out.stdout, out.stdout[-500:]
    assert "board" in out.stdout


def test_help_lists_every_group_choice():
    out = run_unpu(["--help"], REPO)
    # the board list is conf/board's: test_boards.py::test_help_lists_every_board
    for line in ("quant: float32, int16x8, int8, int8_per_tensor",
                 "model: ad_fc, autoencoder, dscnn, file, mobilenet, nas, resnet, resnet8, simplenet, yolov1"):
        assert line in out.stdout


PLANNED = """
defaults:
  - family/base@_here_
  - _self_
name: soon
title: "A board whose adapter is not written yet"
support: planned
missing: "an adapter and a firmware port"
cpu: {core: cortex-m33, clock_hz: 150e6, fpu: true}
toolchain: {compiler: none}
runtime: none
"""


def test_board_without_adapter_exits_2_with_one_line(tmp_path):
    # every board in conf/ has an adapter now; a YAML without one (a board being added) says so
    out = run_unpu(extra_board(tmp_path, "soon", PLANNED), tmp_path, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "board 'soon' (support: planned) cannot run yet: missing an adapter and a firmware port" in lines[0]
    assert not (tmp_path / "mlflow.db").exists()  # stopped before any work


@pytest.mark.parametrize("args, message", [
    (["model=file", "model.path=/nonexistent.tflite"], "model file not found: /nonexistent.tflite"),
    (["model=file"], "model=file needs model.path=PATH"),
    (["model=file", f"model.path={REPO / 'README.md'}"], "expected .tflite, .keras, .h5, .hdf5"),
    (["bench.iterations=0"], "bench.iterations must be >= 1"),
    (["meter=joulescope"], "meter=joulescope: no Joulescope found"),
    (["meter=trace"], "meter=trace needs meter.path=FILE.jls"),
    (["meter=trace", "meter.path=/nonexistent.jls"], "meter=trace: no such file /nonexistent.jls"),
    (["board=hxwe2", "board.attached=true"], "board=hxwe2: WE2_SDK is not set"),
    (["board=corstone300", "board.attached=true"], "board=corstone300: FVP_Corstone_SSE-300_Ethos-U55 not found on PATH"),
])
def test_bad_input_one_line_nonzero(tmp_path, args, message):
    out = run_unpu(args, tmp_path, timeout=120)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout


@pytest.mark.parametrize("name, content, message", [
    ("broken.tflite", b"TFL3 this is not a flatbuffer" * 10, "is not a valid .tflite"),
    ("broken.keras", b"PK not really a zip", "is not a Keras v3 file"),
    ("broken.h5", b"garbage" * 10, "is not an HDF5 file"),
])
def test_corrupt_model_file_one_line(tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    out = run_unpu(["model=file", f"model.path={bad}"], tmp_path, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_unknown_group_choice_lists_choices(tmp_path):
    out = run_unpu(["board=nosuchboard"], tmp_path, timeout=120)
    assert out.returncode != 0
    assert "Could not find 'board/nosuchboard'" in out.stderr
    assert "Available options in 'board'" in out.stderr and "gap8" in out.stderr
