"""Ethos-U boards in estimate mode: real Vela 5.2 on real quantized models, recorded in real MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import compose, run_unpu
from test_e2e import _runs

SEED_AND_MOBILENET = ["simplenet", "resnet", "nas", "autoencoder", "yolov1", "mobilenet"]
ETHOS_BOARDS = ["hxwe2", "alif_e7", "corstone300"]


def _quantized(model: str, tmp_path: Path, cache: Path):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"model={model}", f"cache.dir={cache}"], tmp_path)
    return steps.quantized_model(cfg, Cache(cache))


def _compile(model, accelerator: str, cache: Path, **kw):
    from unpu.cache import Cache
    from unpu.compilers.vela import VelaOptions, compile_model

    return compile_model(model.path, model.digest, VelaOptions(accelerator, **kw), Cache(cache))


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["simplenet", "resnet8"])
def test_larger_accelerators_give_fewer_cycles(tmp_path, shared_cache, model_name):
    model = _quantized(model_name, tmp_path, shared_cache)
    cycles = {acc: _compile(model, acc, shared_cache).cycles
              for acc in ("ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256")}
    print(model_name, cycles)
    assert cycles["ethos-u55-64"] > cycles["ethos-u55-128"] > cycles["ethos-u55-256"]
    assert cycles["ethos-u65-256"] < cycles["ethos-u55-128"]


@pytest.mark.slow
def test_vela_result_files_and_board_clock(tmp_path, shared_cache):
    from unpu.graph import inspect_tflite

    model = _quantized("resnet8", tmp_path, shared_cache)
    result = _compile(model, "ethos-u55-64", shared_cache, npu_clock_hz=400e6)
    assert result.clock_hz == 400e6
    assert result.latency_us == pytest.approx(result.cycles / 400e6 * 1e6)
    # the same model under Vela's own system config (500 MHz) is recorded beside it
    assert result.default["clock_hz"] == 500e6
    assert result.default["latency_us"] == pytest.approx(result.default["cycles"] / 500e6 * 1e6)
    assert result.sram_bytes > 0 and result.flash_bytes > 0
    assert result.cpu_operators == 0 and result.cpu_ops == [] and result.npu_operators > 0
    assert {row["Target"] for row in result.layers} == {"NPU"}
    assert "CUSTOM:ethos-u" in inspect_tflite(result.optimised.read_bytes()).op_counts
    ini = (result.out_dir.parent / "unpu_vela.ini").read_text()
    assert "[System_Config.Ethos_U55_High_End_Embedded_at_400000000Hz_unpu]" in ini and "core_clock = 4e+08" in ini
    # Vela's cycle model has no clock in it (memory speeds are clock scales): the re-clocked config
    # gives the very cycles of Vela's own, and only the time changes. This also guards the section
    # name: Vela 5.2's C++ core reads the accelerator family from its prefix, and a name without
    # "Ethos_U55" gave other counts.
    assert result.cycles == result.default["cycles"]
    again = _compile(model, "ethos-u55-64", shared_cache, npu_clock_hz=400e6)
    assert again.cache_hit and again.cycles == result.cycles


@pytest.mark.slow
def test_unknown_accelerator_is_one_line(tmp_path):
    out = run_unpu(["board=hxwe2", "board.vela.accelerator_config=ethos-u55-48", "model=ad_fc"], tmp_path,
                   timeout=300)
    assert out.returncode != 0
    assert "unknown Ethos-U accelerator config 'ethos-u55-48'" in out.stderr


@pytest.mark.slow
def test_estimate_sweep_three_boards_six_models(tmp_path, shared_cache):
    out = run_unpu(["-m", "board=" + ",".join(ETHOS_BOARDS), "model=" + ",".join(SEED_AND_MOBILENET)], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)}, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    client, parents, children = _runs(tmp_path)
    assert len(parents) == 1 and len(children) == 18
    cycles: dict[tuple[str, str], float] = {}
    for run in children:
        tags, m = run.data.tags, run.data.metrics
        assert run.info.status == "FINISHED", tags.get("unpu.error")
        assert tags["source.latency"] == "estimated" and tags["unpu.measured"] == "false"
        assert tags["support"] == "estimate" and tags["compiler"] == "vela"
        for key in ("estimate/cycles", "estimate/latency_us", "vela/sram_bytes", "vela/flash_bytes",
                    "perf/gops", "perf/peak_fraction", "memory/arena", "memory/npu_weights", "model/macs"):
            assert key in m, (tags["board"], tags["model"], key)
        assert m["latency/inference_us"] == m["estimate/latency_us"]
        assert "latency/init_us" not in m  # Vela models only the inference: nothing else is claimed
        assert 0 < m["perf/peak_fraction"] <= 1
        assert m["perf/gops"] == pytest.approx(2 * m["model/macs"] / m["estimate/latency_us"] / 1e3)
        cycles[tags["board"], tags["model"]] = m["estimate/cycles"]
        names = {a.path for a in client.list_artifacts(run.info.run_id, "compiler")}
        assert any(n.endswith("_vela.tflite") for n in names) and any("_summary_" in n for n in names)
        assert any(n.endswith("_per-layer.csv") for n in names)
    hx = next(r for r in children if r.data.tags["board"] == "hxwe2")
    assert hx.data.tags["vela.accelerator"] == "ethos-u55-64"
    assert hx.data.metrics["estimate/clock_hz"] == 400e6  # the board's NPU clock, not Vela's 500 MHz
    assert hx.data.metrics["estimate/vela_default_clock_hz"] == 500e6
    for model in ("simplenet", "resnet", "yolov1"):  # a bigger NPU needs fewer cycles on the conv nets
        assert cycles["hxwe2", model] > cycles["corstone300", model] > cycles["alif_e7", model]
    assert "ESTIMATE ONLY — nothing was measured" in out.stdout


@pytest.mark.slow
def test_model_over_board_sram_fails_preflight_with_numbers(tmp_path, shared_cache):
    out = run_unpu(["board=hxwe2", "model=resnet8", "board.memory.sram_bytes=20000"], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 1
    assert "resnet8 does not fit hxwe2: Vela (ethos-u55-64) needs" in out.stderr
    assert "B of SRAM" in out.stderr and "the board has 20,000 B" in out.stderr
    _, _, children = _runs(tmp_path)
    assert [r.info.status for r in children] == ["FAILED"]
    assert "the board has 20,000 B" in children[0].data.tags["unpu.error"]
    out = run_unpu(["board=alif_e7", "model=resnet8", "board.memory.flash_bytes=4096"], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 1 and "B of flash" in out.stderr and "the board has 4,096 B" in out.stderr


def _depth_to_space_tflite(path: Path) -> None:
    """A real int8 TFLite model (TensorFlow's converter) with DEPTH_TO_SPACE between two convolutions."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w1 = tf.constant(rng.normal(0, 0.2, (3, 3, 3, 16)), tf.float32)
    w2 = tf.constant(rng.normal(0, 0.2, (3, 3, 4, 8)), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((1, 16, 16, 3), tf.float32)])
    def net(x):
        x = tf.nn.relu(tf.nn.conv2d(x, w1, 1, "SAME"))
        x = tf.nn.depth_to_space(x, 2)
        return tf.nn.relu(tf.nn.conv2d(x, w2, 1, "SAME"))

    converter = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(0, 1, (1, 16, 16, 3)).astype(np.float32)]
                                                for _ in range(20))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())


@pytest.mark.slow
def test_operator_vela_cannot_place_is_cpu_fallback(tmp_path, shared_cache):
    """Vela 5.2 has no DEPTH_TO_SPACE for the U55: it stays a TFLite operator for the CPU."""
    path = tmp_path / "d2s.tflite"
    _depth_to_space_tflite(path)
    out = run_unpu(["board=hxwe2", "model=file", f"model.path={path}"], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "CPU-fallback operators not included: DepthToSpace" in out.stdout
    _, _, children = _runs(tmp_path)
    run = children[0]
    assert run.data.tags["vela.cpu_fallback"] == "DepthToSpace"
    assert run.data.metrics["vela/cpu_operators"] == 1 and run.data.metrics["vela/npu_operators"] >= 2
    assert run.data.tags["estimate.scope"] == "NPU command stream only"
    # the CPU operator's own tensors are counted on top of Vela's SRAM
    assert run.data.metrics["memory/arena"] > run.data.metrics["vela/sram_bytes"]


def test_corstone_macs_override_moves_npu_vela_and_peak(tmp_path):
    from unpu.boards.base import board_spec

    cfg = compose(["board=corstone300", "board.npu.macs_per_cycle=256"], tmp_path)
    assert cfg.board.npu.name == "ethos-u55-256" and cfg.board.vela.accelerator_config == "ethos-u55-256"
    peak, basis = board_spec(cfg.board).peak_ops()
    assert peak == 2 * 256 * 500e6 and "macs_per_cycle" in basis
    cfg = compose(["board=alif_e7_he"], tmp_path)
    assert cfg.board.vela.accelerator_config == "ethos-u55-128" and cfg.board.npu.clock_hz == 160e6
    assert board_spec(cfg.board).peak_ops()[0] == 40.96e9
