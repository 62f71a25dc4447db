"""The content-addressed stage cache and the params flattening used by tracking."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import REPO
from unpu.cache import Cache, key_of
from unpu.tracking import PARAM_MAX, flatten, params_from_config


def test_miss_then_hit_and_key_changes_with_inputs(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def make(out):
        calls.append(out)
        (out / "a.txt").write_text("x")
        return {"size": 1}

    first = cache.get_or_make("stage", {"model": "m", "quant": "int8"}, make)
    second = cache.get_or_make("stage", {"quant": "int8", "model": "m"}, make)  # key order does not matter
    third = cache.get_or_make("stage", {"model": "m", "quant": "int16x8"}, make)
    assert (first.hit, second.hit, third.hit) == (False, True, False)
    assert first.path == second.path != third.path
    assert len(calls) == 2
    assert second.meta()["size"] == 1 and second.file("a.txt").read_text() == "x"


def test_failed_make_leaves_no_entry(tmp_path):
    cache = Cache(tmp_path)

    def boom(out):
        (out / "partial").write_text("half")
        raise RuntimeError("converter died")

    try:
        cache.get_or_make("stage", {"k": 1}, boom)
    except RuntimeError:
        pass
    entry = cache.get_or_make("stage", {"k": 1}, lambda out: {})
    assert not entry.hit and not (entry.path / "partial").exists()


def test_concurrent_makers_build_once(tmp_path):
    cache = Cache(tmp_path)
    built = []

    def make(out):
        built.append(1)
        return {}

    threads = [threading.Thread(target=cache.get_or_make, args=("stage", {"k": 2}, make)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1


def test_key_is_stable():
    assert key_of({"a": 1, "b": [1, 2]}) == key_of({"b": [1, 2], "a": 1})


def test_params_flatten_and_truncate():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"board": {"name": "host", "cpu": {"clock_hz": None}}, "x": "y" * 1000, "l": [1, 2]})
    params = params_from_config(cfg)
    assert params["board.name"] == "host" and params["board.cpu.clock_hz"] == "null"
    assert len(params["x"]) == PARAM_MAX and params["x"].endswith("...")
    assert params["l"] == "1,2"
    assert flatten({"a": {"b": {"c": 1}}}) == {"a.b.c": 1}


# -- content digests: a damaged entry is rebuilt, never used -------------------------------------------

def _model_maker(calls: list, payload: bytes = bytes(range(256)) * 64):
    def make(out):
        calls.append(out)
        (out / "model.tflite").write_bytes(payload)
        (out / "sub").mkdir()
        (out / "sub" / "app.elf").write_bytes(payload[::-1])
        return {"size": len(payload)}
    return make


def _flip_16_bytes(path):
    data = bytearray(path.read_bytes())
    for i in range(100, 116):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def _delete(path):
    path.unlink()


@pytest.mark.parametrize("damage, name, problem", [
    (_flip_16_bytes, "model.tflite", "model.tflite: content differs from its recorded SHA-256"),
    (_truncate, "sub/app.elf", "sub/app.elf: 1000 bytes, 16384 when made (truncated)"),
    (_delete, "model.tflite", "model.tflite: missing"),
    (lambda p: p.write_text('{"size": 1}'), "meta.json", "meta.json: "),
    (lambda p: p.write_text(""), ".complete", "no readable manifest of its files"),
])
def test_damaged_entry_is_rebuilt_with_one_warning(tmp_path, caplog, damage, name, problem):
    cache, calls = Cache(tmp_path), []
    first = cache.get_or_make("quantized", {"k": 1}, _model_maker(calls))
    intact = {p.relative_to(first.path): p.read_bytes() for p in first.path.rglob("*") if p.is_file()}
    damage(first.path / name)
    with caplog.at_level(logging.INFO, logger="unpu.cache"):
        again = cache.get_or_make("quantized", {"k": 1}, _model_maker(calls))
    assert not again.hit and len(calls) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"cache entry quantized/{first.key[:12]} is damaged ({problem}" in warnings[0]
    restored = {p.relative_to(again.path): p.read_bytes() for p in again.path.rglob("*") if p.is_file()}
    assert restored == intact
    assert cache.get_or_make("quantized", {"k": 1}, _model_maker(calls)).hit and len(calls) == 2


def test_intact_entry_is_a_hit_without_a_warning(tmp_path, caplog):
    cache, calls = Cache(tmp_path), []
    cache.get_or_make("stage", {"k": 1}, _model_maker(calls))
    with caplog.at_level(logging.INFO, logger="unpu.cache"):
        assert cache.get_or_make("stage", {"k": 1}, _model_maker(calls)).hit
    assert len(calls) == 1 and not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- temporary directories of builds that died ----------------------------------------------------------

_DYING_BUILD = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from unpu.cache import Cache
def make(out):
    (out / "half.tflite").write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)   # what a converter segfault or a kill -9 does to the process
Cache(sys.argv[2]).get_or_make("quantized", {"k": int(sys.argv[3])}, make)
"""

_SLOW_BUILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from unpu.cache import Cache
def make(out):
    (out / "partial").write_bytes(b"x")
    Path(sys.argv[3]).write_text(str(out))          # tell the test where it builds
    while not Path(sys.argv[4]).exists():           # and build until the test says go
        time.sleep(0.05)
    return {}
Cache(sys.argv[2]).get_or_make("quantized", {"k": 99}, make)
"""


def _temporaries(root):
    return sorted(root.glob("*/*/.*.tmp-*"))


def _die_while_building(cache_dir, k: int) -> None:
    proc = subprocess.run([sys.executable, "-c", _DYING_BUILD, str(REPO), str(cache_dir), str(k)],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert len(_temporaries(cache_dir)) == 1   # what a dead process leaves behind


@pytest.mark.parametrize("next_key", [1, 2], ids=["same key", "another key"])
def test_build_killed_leaves_a_temporary_that_the_next_use_removes(tmp_path, next_key):
    _die_while_building(tmp_path, 1)
    entry = Cache(tmp_path).get_or_make("quantized", {"k": next_key}, lambda out: {})
    assert not entry.hit and _temporaries(tmp_path) == []   # its lock was free: nobody was building it


def test_temporary_of_a_live_build_is_left_alone(tmp_path):
    where, go = tmp_path / "where", tmp_path / "go"
    cache_dir = tmp_path / "cache"
    builder = subprocess.Popen([sys.executable, "-c", _SLOW_BUILD, str(REPO), str(cache_dir), str(where), str(go)])
    try:
        deadline = time.monotonic() + 60
        while not where.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        building = Path(where.read_text())
        Cache(cache_dir).get_or_make("quantized", {"k": 1}, lambda out: {})
        assert (building / "partial").exists()
    finally:
        go.write_text("")
        assert builder.wait(timeout=60) == 0
    assert _temporaries(cache_dir) == [] and Cache(cache_dir).get_or_make("quantized", {"k": 99}, lambda out: {}).hit


def test_failed_make_leaves_no_temporary(tmp_path):
    def boom(out):
        (out / "partial").write_text("half")
        raise RuntimeError("converter died")

    with pytest.raises(RuntimeError):
        Cache(tmp_path).get_or_make("stage", {"k": 1}, boom)
    assert _temporaries(tmp_path) == []
