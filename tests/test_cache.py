"""The content-addressed stage cache and the params flattening used by tracking."""

from __future__ import annotations

import threading

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
