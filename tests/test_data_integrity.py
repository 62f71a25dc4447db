"""Data integrity: pre-flight data checks without TensorFlow, the dataset's content in the cache key,
firmware builds under any path, and real-world .tflite files LiteRT refuses (unpu issue 13).

The damaged-cache-entry mechanics are tested in test_cache.py; here they are seen end to end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, compose, run_unpu
from unpu.cache import key_of
from unpu.graph import GraphError, dedupe_messages, litert_compatible, reference_interpreter
from unpu.measure import Reference
from unpu.postproc import softmax_model

N = 200  # samples: calibration [0, 100) | heldout [100, 150) | validation [150, 200)
DSCNN = (49, 10, 1)
SMALL = ["bench.windows=2", "bench.iterations=2", "bench.warmup=0"]

# `python -m unpu ARGS` in-process, as test_cli.py checks --help: the exit code, and which heavy
# packages were imported by the time it exited
PROBE = """
import runpy, sys
sys.argv = ["unpu", *{args!r}]
code = 0
try:
    runpy.run_module("unpu", run_name="__main__")
except SystemExit as exc:
    code = exc.code
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "keras"}})
print(f"EXIT={{code}} HEAVY={{','.join(heavy)}}")
"""


def _probe(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """(exit code, heavy modules imported, the stderr line) of `python -m unpu ARGS`."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], cwd=cwd, capture_output=True, text=True,
                         timeout=120, env=env)
    status = out.stdout.strip().splitlines()[-1]
    code, heavy = status.removeprefix("EXIT=").split(" HEAVY=")
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    return int(code), heavy, out.stderr.strip()


def _dscnn_samples() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, *DSCNN)).astype(np.float32)


def _with(index: tuple[int, ...], value: float) -> np.ndarray:
    x = _dscnn_samples()
    x[index] = value
    return x


# -- pre-flight: every npy problem refused in one line, before TensorFlow --------------------------------

@pytest.mark.parametrize("array, extra, message", [
    (_with((57, 3, 2, 0), np.nan), [], "nan.npy: sample 57 (calibration split) is not finite: nan at index [57, 3, 2, 0]"),
    (_with((110, 0, 0, 0), np.inf), [], "nan.npy: sample 110 (heldout split) is not finite: inf at index [110, 0, 0, 0]"),
    (_with((152, 1, 1, 0), -np.inf), [], "nan.npy: sample 152 (validation split) is not finite: -inf"),
    (np.full((N, *DSCNN), 1e39), [], "nan.npy: sample 0 (calibration split) is not finite: 1e+39 overflows float32"),
    (np.array([["a"] * 10] * N), [], "nan.npy: holds strings (dtype <U1), not numbers"),
    (_dscnn_samples()[:, :, :9], [], "nan.npy: samples have shape (49, 9, 1), model input is (49, 10, 1)"),
    (_dscnn_samples()[:40], [], "split 'calibration' has 20 of 40 samples, 100 requested (quant.calibration_samples)"),
    (_dscnn_samples(), ["quant.heldout_samples=60"], "split 'heldout' has 50 of 200 samples, 60 requested"),
    (_dscnn_samples(), ["bench.validation_inputs=50"],
     "split 'validation' has 50 of 200 samples, 51 requested (bench.validation_inputs + 1)"),
], ids=["nan", "inf", "-inf", "float32 overflow", "strings", "shape", "calibration", "heldout", "validation"])
def test_bad_dataset_refused_in_preflight_without_tensorflow(tmp_path, array, extra, message):
    np.save(tmp_path / "nan.npy", array)
    code, heavy, stderr = _probe(["model=dscnn", "dataset=npy", "dataset.path=nan.npy", *extra], tmp_path)
    assert (code, heavy) == (2, "")
    assert len(stderr.splitlines()) == 1 and message in stderr, stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / ".unpu_cache").exists()


@pytest.mark.parametrize("args, message", [
    (["dataset=npy"], "dataset.path is not set: give the samples' file, dataset.path=FILE.npy"),
    (["dataset=npy", "dataset.path=absent.npy"], "dataset file not found: absent.npy"),
    (["dataset=npy", "dataset.path=x.npy", "+dataset.fractions=[1,1,-1]"], "fractions must be three non-negative"),
])
def test_dataset_config_problems_one_line(tmp_path, args, message):
    np.save(tmp_path / "x.npy", _dscnn_samples())
    code, heavy, stderr = _probe(["model=dscnn", *args], tmp_path)
    assert (code, heavy) == (2, "")
    assert len(stderr.splitlines()) == 1 and message in stderr, stderr


def test_object_array_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([object()] * 5), allow_pickle=True)
    code, heavy, stderr = _probe(["model=dscnn", "dataset=npy", "dataset.path=objects.npy"], tmp_path)
    assert (code, heavy) == (2, "") and "objects.npy: cannot read the array" in stderr and "objects" in stderr


def test_samples_the_job_does_not_use_are_not_checked(tmp_path):
    x = _dscnn_samples()
    x[190] = np.nan  # validation uses samples 150..160 (bench.validation_inputs=10, + 1)
    np.save(tmp_path / "late_nan.npy", x)
    cfg = compose(["model=dscnn", "dataset=npy", f"dataset.path={tmp_path / 'late_nan.npy'}"], tmp_path)
    from unpu import steps

    steps.check_inputs(cfg)


@pytest.mark.parametrize("dtype, quant, message", [
    ("float32", "int8", "is a float .tflite (float32 input, no weighted operators); quant=int8 expects int8 input: "
                        "unpu cannot re-quantize a .tflite: give the Keras model, or run it as it is with quant=float32"),
    ("int16", "int8", "is a quantized .tflite (int16 input, no weighted operators); quant=int8 expects int8 input: "
                      "run it as it is with quant=int16x8"),
    ("int8", "float32", "is a quantized .tflite (int8 input, no weighted operators); quant=float32 expects float32 "
                        "input: run it as it is with quant=int8 or quant=int8_per_tensor"),
    ("int8", "int16x8", "quant=int16x8 expects int16 input: run it as it is with quant=int8 or quant=int8_per_tensor"),
])
def test_tflite_contradicting_quant_refused_in_preflight(tmp_path, dtype, quant, message):
    model = tmp_path / f"softmax_{dtype}.tflite"
    model.write_bytes(softmax_model(10, dtype, None if dtype == "float32" else 0.1, None if dtype == "float32" else 0))
    code, heavy, stderr = _probe(["model=file", f"model.path={model}", f"quant={quant}"], tmp_path)
    assert (code, heavy) == (2, "")
    assert len(stderr.splitlines()) == 1 and str(model) in stderr and message in stderr, stderr


def test_tflite_dataset_shape_checked_against_the_file(tmp_path, softmax_tflite):
    np.save(tmp_path / "x.npy", np.zeros((40, 12), np.float32))
    code, _, stderr = _probe(["model=file", f"model.path={softmax_tflite}", "dataset=npy", "dataset.path=x.npy"],
                             tmp_path)
    assert code == 2 and "x.npy: samples have shape (12,), model input is (10,)" in stderr


@pytest.mark.slow
def test_keras_file_input_shape_read_without_keras(tmp_path):
    """A Keras file's input shape comes from its config, so its dataset is checked in pre-flight too."""
    import keras

    inputs = keras.Input((6, 4), batch_size=1, name="input")
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs)).save(path)
    keras.Model(inputs, keras.layers.Dense(3, name="fc2")(inputs)).save(tmp_path / "tiny.h5")
    from unpu.models.loader import keras_input_shape

    assert keras_input_shape(str(path)) == keras_input_shape(str(tmp_path / "tiny.h5")) == (6, 4)
    np.save(tmp_path / "x.npy", np.zeros((40, 4, 6), np.float32))
    code, heavy, stderr = _probe(["model=file", f"model.path={path}", "dataset=npy", "dataset.path=x.npy"], tmp_path)
    assert (code, heavy) == (2, "") and "x.npy: samples have shape (4, 6), model input is (6, 4)" in stderr


# -- the dataset's content is in the cache key ------------------------------------------------------------

def test_quantized_key_follows_dataset_content_not_path(tmp_path):
    from unpu import steps

    data = tmp_path / "data.npy"
    np.save(data, _dscnn_samples())

    def key(path: Path) -> str:
        return key_of(steps.quantized_parts(compose(["model=dscnn", "dataset=npy", f"dataset.path={path}"], tmp_path)))

    before = key(data)
    stat = data.stat()
    x = _dscnn_samples()
    x[3, 0, 0, 0] += 1.0  # edited in place: same size, same modification time
    np.save(data, x)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = key(data)
    moved = tmp_path / "elsewhere" / "renamed.npy"
    moved.parent.mkdir()
    shutil.copy2(data, moved)
    assert before != edited == key(moved)
    assert hashlib.sha256(data.read_bytes()).hexdigest() in str(steps.quantized_parts(
        compose(["model=dscnn", "dataset=npy", f"dataset.path={data}"], tmp_path))["dataset"])


def test_mlperf_id_is_not_in_the_model_keys(tmp_path):
    """model.mlperf_id names the model for the MLPerf runner; adding one must not invalidate the caches."""
    from unpu import steps

    configs = [compose(["model=dscnn", *extra], tmp_path)
               for extra in ([], ["++model.mlperf_id=null"], ["++model.mlperf_id=kws01"], ["++model.mlperf_id=x"])]
    assert [c.model.mlperf_id for c in configs[1:]] == [None, "kws01", "x"]
    assert len({key_of(steps.quantized_parts(c)) for c in configs}) == 1


def test_counts_that_are_not_integers_are_left_to_their_own_check(tmp_path):
    from unpu import steps

    steps.check_inputs(compose(["model=dscnn", "bench.validation_inputs=abc"], tmp_path))


# -- real-world .tflite files: quantized_dimension on per-tensor tensors ----------------------------------

def set_quantized_dimension(data: bytes, axis: int, per_channel_scales: int = 0, max_rank: int = 3) -> bytes:
    """`data` with quantized_dimension = axis on every quantized tensor of rank <= max_rank, as older
    converters wrote it (and, with per_channel_scales, that many scales: a broken per-axis tensor)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    for tensor in model.subgraphs[0].tensors:
        q = tensor.quantization
        if q is None or q.scale is None or len(q.scale) != 1 or len(tensor.shape) > max_rank:
            continue
        q.quantizedDimension = axis
        if per_channel_scales:
            q.scale = np.repeat(q.scale, per_channel_scales)
            q.zeroPoint = np.repeat(q.zeroPoint, per_channel_scales)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _litert_refusal(data: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with pytest.raises(ValueError) as refused:
        Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF).allocate_tensors()
    return str(refused.value)


def test_per_tensor_quantized_dimension_sanitised_for_litert_only(softmax_tflite):
    original = softmax_tflite.read_bytes()
    edited = set_quantized_dimension(original, 3)
    raw = _litert_refusal(edited)
    assert raw.count("quantized_dimension must be in range [0, 2). Was 3.") == 2   # once per tensor, one "line"
    assert dedupe_messages(raw) == ("quantized_dimension must be in range [0, 2). Was 3. (x2); "
                                    "Tensor 0 has invalid quantization parameters. (x2)")
    copy, changes = litert_compatible(edited)
    assert changes == ["LiteRT's copy: quantized_dimension set to 0 on 2 per-tensor-quantized tensors"]
    assert len(copy) == len(edited) and sum(a != b for a, b in zip(copy, edited)) == 2   # two bytes patched
    assert litert_compatible(original) == (original, [])
    reference, plain = Reference(edited), Reference(original)
    assert reference.sanitised == changes and plain.sanitised == []
    x = np.arange(-5, 5, dtype=np.int8).reshape(1, 10)
    assert np.array_equal(reference.run(x), plain.run(x))
    assert softmax_tflite.read_bytes() == original


def test_litert_refusal_said_once_per_kind(softmax_tflite):
    broken = set_quantized_dimension(softmax_tflite.read_bytes(), 5, per_channel_scales=2)   # per-axis: not ours to fix
    with pytest.raises(GraphError) as refused:
        reference_interpreter(broken)
    message = str(refused.value)
    assert message.startswith("LiteRT refuses the model: quantized_dimension must be in range [0, 2). Was 5. (x2)")
    assert "\n" not in message and len(message) < 200


@pytest.mark.slow
def test_converter_model_with_old_quantized_dimension_runs_and_validates(tmp_path):
    """A model made by TensorFlow's converter, edited as older converters wrote it: LiteRT refuses the
    file itself, and a full native run of it finishes bit-exact against LiteRT's sanitised copy."""
    import keras

    from unpu.quantize import quantize

    inputs = keras.Input((8, 8, 1), batch_size=1, name="input")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="fc")(x))
    samples = np.random.default_rng(0).standard_normal((24, 8, 8, 1)).astype(np.float32)
    edited = set_quantized_dimension(quantize(model, "int8", samples[:16], samples[16:]).tflite, 3)
    path = tmp_path / "old_converter.tflite"
    path.write_bytes(edited)
    assert "quantized_dimension must be in range [0, 2). Was 3." in _litert_refusal(edited)

    out = run_unpu(["board=native", "model=file", f"model.path={path}", *SMALL], tmp_path,
                   env={"UNPU_CACHE_DIR": str(tmp_path / "cache")}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = _job_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["validation/max_abs_diff_lsb"] == 0 and run.data.metrics["validation/inputs"] == 10
    assert path.read_bytes() == edited   # the board ran the file as given
    assert run.data.tags["digest.model"] == hashlib.sha256(edited).hexdigest()
    assert "quantized_dimension set to 0 on" in run.data.tags["reference.sanitised"]   # and the run says so


# -- firmware builds under any path ------------------------------------------------------------------------

def _job_runs(cwd: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")
    experiment = client.get_experiment_by_name("unpu")
    return [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("unpu.kind") == "job"]


def _pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("pwned*")]


def _qemu_run(cwd: Path) -> tuple[subprocess.CompletedProcess, object]:
    """board=qemu_m55 model=dscnn from `cwd`: the cache (cwd/.unpu_cache) and the run directory
    (cwd/outputs/...) are under it."""
    out = run_unpu(["board=qemu_m55", "model=dscnn", *SMALL], cwd, timeout=900)
    return out, sorted(_job_runs(cwd), key=lambda r: r.info.start_time)[-1] if out.returncode == 0 else None


needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm / arm-none-eabi-gcc not installed")


@pytest.mark.slow
@needs_qemu
def test_qemu_firmware_under_a_backtick_path_runs_and_executes_nothing(tmp_path, monkeypatch):
    """A path make would once have handed to the shell: `id>pwned` ran in the port folder."""
    monkeypatch.delenv("UNPU_CACHE_DIR", raising=False)
    cwd = tmp_path / "`id>pwned`$(id>pwned2)"
    cwd.mkdir()
    out, run = _qemu_run(cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert run.info.status == "FINISHED" and run.data.metrics["validation/max_abs_diff_lsb"] == 0
    assert _pwned(tmp_path, REPO / "firmware") == []


@pytest.mark.slow
@needs_qemu
def test_qemu_firmware_under_a_space_path_and_its_damaged_cache_rebuilt(tmp_path, monkeypatch):
    monkeypatch.delenv("UNPU_CACHE_DIR", raising=False)
    cwd = tmp_path / "a dir with spaces" / "`touch pwned`" / "work dir"
    cwd.mkdir(parents=True)
    out, first = _qemu_run(cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert first.info.status == "FINISHED" and first.data.metrics["validation/max_abs_diff_lsb"] == 0
    assert _pwned(tmp_path, REPO / "firmware") == []
    assert Path(first.data.params["cache.dir"]).is_relative_to(cwd)

    cache = cwd / ".unpu_cache"
    (model,) = cache.glob("quantized/*/*/model.tflite")
    (elf,) = cache.glob("qemu_firmware/*/*/app.elf")
    flipped = bytearray(model.read_bytes())
    flipped[200:216] = bytes(b ^ 0xFF for b in flipped[200:216])
    model.write_bytes(bytes(flipped))
    elf.write_bytes(elf.read_bytes()[:4096])
    out, second = _qemu_run(cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "is damaged (model.tflite: content differs from its recorded SHA-256): rebuilding it" in log
    assert "is damaged (app.elf: 4096 bytes," in log and "(truncated)): rebuilding it" in log
    assert second.info.status == "FINISHED" and second.data.tags["cache.quantized"] == "miss"
    assert second.data.tags["digest.model"] == first.data.tags["digest.model"]
    assert second.data.metrics["validation/max_abs_diff_lsb"] == 0
    assert second.data.metrics["instructions/inference"] == first.data.metrics["instructions/inference"]


@pytest.mark.parametrize("arg", ["BUILD_DIR=/runs/a dir/firmware", "-DUNPU_BUILD_H=/c/`touch pwned`/unpu_build.h",
                                 "/x/$(id)/out", "MODEL_C=outputs/it's/model.c"])
def test_vendor_sdk_builds_refuse_paths_they_would_split_or_run(arg):
    """The vendor SDKs' makefiles get absolute paths: a path make or its shell would interpret is refused."""
    from unpu.boards.firmware import plain_paths
    from unpu.errors import BoardError

    plain = ["make", "-C", "/repo/firmware/ports/x", "-j2", "BUILD_DIR=/runs/r1/firmware", "MODEL_ADDR=0x3A300000"]
    assert plain_paths(plain) == plain
    with pytest.raises(BoardError, match="holds a character that make or its shell would interpret"):
        plain_paths([*plain, arg])
