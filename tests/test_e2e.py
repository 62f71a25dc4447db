"""End to end on the host board: `python -m unpu` as a user runs it, real TF/TFLM/MLflow throughout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpers import MlflowServer, metrics_of, run_unpu, search_runs, tags_of

ZOO = ["simplenet", "resnet", "nas", "autoencoder", "yolov1", "mobilenet", "dscnn", "resnet8", "ad_fc"]
# TFLite Micro and LiteRT's reference kernels agree bit for bit on CONV_2D, DEPTHWISE_CONV_2D, pooling,
# ADD and SOFTMAX. On FULLY_CONNECTED they can differ by 1 LSB: TFLM requantizes with gemmlowp's double
# rounding, LiteRT's reference FC rounds once (seen: exact 16.4997 -> TFLM 17, LiteRT 16).
PURE_CONV_NETS = ["simplenet", "resnet", "yolov1"]
CONV_NETS_WITH_FC_HEAD = ["nas", "mobilenet", "dscnn", "resnet8"]
STAGE_METRICS = [f"latency/{s}_us" for s in ("init", "input", "inference", "output", "post", "total")]
FAST = ["bench.windows=3", "bench.iterations=5", "bench.warmup=1", "bench.validation_inputs=10"]


def _client(cwd: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")


def _runs(cwd: Path):
    client = _client(cwd)
    exp = client.get_experiment_by_name("unpu")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("unpu.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("unpu.kind") == "job"]
    return client, parents, children


@pytest.mark.slow
def test_zoo_sweep_all_models_then_cached(tmp_path):
    cache = tmp_path / "cache"
    env = {"UNPU_CACHE_DIR": str(cache)}
    args = ["-m", "model=" + ",".join(ZOO), *FAST]

    t0 = time.monotonic()
    first = run_unpu(args, tmp_path, env=env, timeout=1800)
    first_s = time.monotonic() - t0
    assert first.returncode == 0, first.stderr[-3000:]
    client, parents, children = _runs(tmp_path)
    assert len(parents) == 1 and len(children) == 9
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    by_model = {}
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED", run.data.tags.get("unpu.error")
        m = run.data.metrics
        for key in STAGE_METRICS + ["memory/arena", "memory/model", "model/params", "model/macs",
                                    "validation/max_abs_diff_lsb", "throughput/ips", "perf/gops", "quant/snr_db"]:
            assert key in m, (run.data.tags["model"], key)
        assert m["latency/inference_us"] > 0 and m["memory/arena"] > 0 and m["model/macs"] > 0
        assert run.data.tags["source.latency"] == "measured" and run.data.tags["cache.quantized"] == "miss"
        by_model[run.data.tags["model"]] = run
    assert set(by_model) == set(ZOO)
    for model in PURE_CONV_NETS:
        assert by_model[model].data.metrics["validation/max_abs_diff_lsb"] == 0, model
    for model in CONV_NETS_WITH_FC_HEAD + ["autoencoder", "ad_fc"]:
        assert by_model[model].data.metrics["validation/max_abs_diff_lsb"] <= 1, model
    for model in ("simplenet", "resnet", "nas", "mobilenet", "dscnn", "resnet8"):
        assert "validation/top1_agree" in by_model[model].data.metrics
    assert by_model["simplenet"].data.metrics["model/params"] == 383012
    for run in children:  # issue 3: the static plan of the generated C never needs more than 1.5x TFLM's arena
        assert run.data.metrics["memory/arena_codegen"] <= 1.5 * run.data.metrics["memory/arena"]
    assert by_model["simplenet"].data.metrics["latency/post_us"] > 0  # int8 softmax on logits
    # per-window values are logged with steps
    history = client.get_metric_history(by_model["dscnn"].info.run_id, "window/latency/inference_us")
    assert sorted(h.step for h in history) == [0, 1, 2]
    values = sorted(h.value for h in history)
    assert by_model["dscnn"].data.metrics["latency/inference_us"] == values[1]  # the median of the windows
    artifacts = {a.path for a in client.list_artifacts(by_model["dscnn"].info.run_id)}
    assert {"config", "model", "serial_transcript.txt", "run.log"} <= artifacts
    assert "converted" in first.stdout + first.stderr

    t0 = time.monotonic()
    second = run_unpu(args, tmp_path, env=env, timeout=1800)
    second_s = time.monotonic() - t0
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert "converted" not in log and "built float model" not in log
    assert log.count("cache hit: quantized") == 9 and log.count("cache hit: host_arena") == 9
    _, parents, children = _runs(tmp_path)
    newest = max(parents, key=lambda r: r.info.start_time)
    again = [r for r in children if r.data.tags["mlflow.parentRunId"] == newest.info.run_id]
    assert len(again) == 9 and all(r.data.tags["cache.quantized"] == "hit" for r in again)
    print(f"first sweep {first_s:.1f} s, cached sweep {second_s:.1f} s (speed is measured by bench/cached_sweep.py)")


@pytest.mark.slow
def test_quant_modes_on_two_models(tmp_path, shared_cache):
    out = run_unpu(["-m", "model=ad_fc,dscnn", "quant=float32,int8_per_tensor,int16x8", *FAST], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 0, out.stderr[-3000:]
    _, _, children = _runs(tmp_path)
    assert len(children) == 6
    for run in children:
        assert run.info.status == "FINISHED", run.data.tags.get("unpu.error")
        assert run.data.metrics["latency/inference_us"] > 0
    dscnn = {r.data.tags["quant"]: r.data.metrics for r in children if r.data.tags["model"] == "dscnn"}
    assert dscnn["int16x8"]["validation/max_abs_diff_lsb"] <= 1  # FC head: see CONV_NETS_WITH_FC_HEAD
    assert "validation/max_abs_diff" in dscnn["float32"]  # float output: a difference in float, not LSB


@pytest.mark.slow
def test_failed_job_is_recorded_and_sweep_goes_on(tmp_path, shared_cache):
    # a 64-byte arena makes TFLM crash the device process: that job fails, the next one runs
    out = run_unpu(["-m", "model=ad_fc", "board.arena_bytes=64,null", *FAST], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 1
    assert "run FAILED" in out.stderr and "host device" in out.stderr and "died (signal SIG" in out.stderr
    client, parents, children = _runs(tmp_path)
    assert len(children) == 2
    failed = [r for r in children if r.info.status == "FAILED"]
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert len(failed) == 1 and len(finished) == 1
    assert "died (signal SIG" in failed[0].data.tags["unpu.error"]
    names = {a.path for a in client.list_artifacts(failed[0].info.run_id)}
    assert {"error.txt", "run.log", "serial_transcript.txt"} <= names
    log = client.download_artifacts(failed[0].info.run_id, "run.log", str(tmp_path))
    assert "FAILED" in Path(log).read_text()
    assert parents[0].info.status == "FAILED" and parents[0].data.tags["sweep.failed_jobs"] == "1"


@pytest.mark.slow
def test_rejected_job_in_a_sweep_is_a_failed_child(tmp_path, shared_cache):
    out = run_unpu(["-m", "board=gap8,host", "model=ad_fc", *FAST], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 1
    _, parents, children = _runs(tmp_path)
    status = {r.data.tags["board"]: r.info.status for r in children}
    assert status == {"gap8": "FAILED", "host": "FINISHED"}


@pytest.mark.slow
def test_joblib_launcher_children_attach_to_parent_across_processes(tmp_path, shared_cache):
    out = run_unpu(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=ad_fc",
                    "quant=int8,int8_per_tensor", *FAST], tmp_path, env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 0, out.stderr[-3000:]
    _, parents, children = _runs(tmp_path)
    assert len(parents) == 1 and len(children) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    pids = {r.data.tags["unpu.pid"] for r in children}
    assert parents[0].data.tags["unpu.pid"] not in pids  # the jobs ran in worker processes


@pytest.mark.slow
def test_tracking_to_a_real_mlflow_server(tmp_path, shared_cache):
    server = MlflowServer(tmp_path / "server.db", tmp_path / "server-artifacts")
    try:
        server.wait()
        out = run_unpu([f"tracking.uri={server.url}", "model=ad_fc", *FAST], tmp_path,
                       env={"UNPU_CACHE_DIR": str(shared_cache)})
        assert out.returncode == 0, out.stderr[-3000:]
        runs = search_runs(server)
        assert len(runs) == 1 and runs[0]["info"]["status"] == "FINISHED"
        assert metrics_of(runs[0])["latency/inference_us"] > 0
        assert tags_of(runs[0])["board"] == "host"
        files = server.api(f"/api/2.0/mlflow/artifacts/list?run_id={runs[0]['info']['run_id']}")["files"]
        assert "serial_transcript.txt" in {f["path"] for f in files}
        assert not (tmp_path / "mlflow.db").exists()
    finally:
        server.stop()


@pytest.mark.slow
def test_demo_run_is_visible_in_mlflow_ui(tmp_path, shared_cache):
    """What `make demo` does (default board/model/quant), then `mlflow ui` on its mlflow.db, queried by REST."""
    out = run_unpu([], tmp_path, env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MLflow run" in out.stdout and "mlflow ui --backend-store-uri sqlite:///" in out.stdout
    ui = MlflowServer(tmp_path / "mlflow.db", tmp_path, command="ui")
    try:
        ui.wait()
        runs = search_runs(ui)
        assert len(runs) == 1
        run = runs[0]
        assert run["info"]["run_id"] in out.stdout
        assert tags_of(run)["model"] == "resnet8" and tags_of(run)["quant"] == "int8"
        assert all(k in metrics_of(run) for k in STAGE_METRICS)
    finally:
        ui.stop()


@pytest.mark.slow
def test_user_model_files(tmp_path, shared_cache):
    """model=file with an already-quantized .tflite (run as it is) and with a Keras file (quantized)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(5)(x))
    keras_path = tmp_path / "tiny.keras"
    model.save(keras_path)
    env = {"UNPU_CACHE_DIR": str(shared_cache)}
    out = run_unpu(["model=file", f"model.path={keras_path}", *FAST], tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    quantized = next(shared_cache.rglob("model.tflite"))
    out = run_unpu(["model=file", f"model.path={quantized}", *FAST], tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    client, _, children = _runs(tmp_path)
    assert {r.data.tags["model"] for r in children} == {"tiny", "model"}
    tflite_run = next(r for r in children if r.data.tags["model"] == "model")
    assert tflite_run.data.tags["model.params_source"] == "tflite graph"
    assert tflite_run.data.metrics["model/macs"] > 0
    assert np.isfinite(tflite_run.data.metrics["latency/inference_us"])
