"""Model zoo, untrained-model preparation, datasets and user model files (real Keras/TF)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unpu.datasets import SPLITS, NpyDataset, SyntheticDataset
from unpu.models import ZOO, build_model, get_spec
from unpu.models.loader import ModelFileError, load_model_file

REPO = Path(__file__).resolve().parent.parent

# Keras count_params(): all weights, BatchNorm moving statistics included.
PARAMS = {
    # docs/models.md; the seed's numbers are matched exactly.
    "simplenet": 383_012,
    "resnet": 383_012,  # the residual adds have no weights
    "nas": 352_138,
    "autoencoder": 136_800,  # 32,896 + 24,640 (conv1d) + 2,080 + 128 + 160 + 3,168 + 73,728 (dense)
    # The seed quotes ≈40,748 = 40,700 + 48: the int8 converter adds a (zero) bias to each of the
    # three bias-free 16-channel convs, so the seed's number is the .tflite count (0.12 % off).
    "yolov1": 40_700,
    # MLPerf Tiny reference architectures (mlcommons/tiny, benchmark/training/*); converted, they
    # have exactly the MACs of the trained reference .tflite files there (VWW 7,489,664; KWS
    # 2,656,768; IC 12,501,632; AD 264,192) and the same graph parameters once BatchNorm is
    # folded (the converter drops our untrained all-zero dense biases). BatchNorm holds
    # 4 values per channel (gamma, beta, moving mean, moving variance), 2 of them trainable.
    # VWW: conv1 224 + BN 32; 13 blocks each 14·c_in (dw 3×3 + bias + BN) + c_in·c_out + 5·c_out
    # (pw + bias + BN) for (8→16, 16→32, 32→32, 32→64, 64→64, 64→128, 5×128→128, 128→256,
    # 256→256); dense 256·2+2 = 221,794; BN moving stats over 2,736 channels = 5,472.
    "mobilenet": 221_794,
    # KWS: conv 10×4×1×64+64 = 2,624; 4 × (dw 9·64+64 + pw 64·64+64) = 19,200; dense 64·12+12
    # = 780; BN 9 layers × 64 × 4 = 2,304.
    "dscnn": 24_908,
    # IC: convs 448 + 2×2,320 + 4,640 + 9,248 + 544 (proj) + 18,496 + 36,928 + 2,112 (proj);
    # dense 650; BN (16·3 + 32·2 + 64·2)·4 = 960.
    "resnet8": 78_666,
    # AD: dense 82,048 + 3·16,512 + 1,032 + 1,152 + 3·16,512 + 82,560; BN (8·128 + 8)·4 = 4,128.
    "ad_fc": 269_992,
}
TRAINABLE = {"mobilenet": 216_322, "dscnn": 23_756, "resnet8": 78_186, "ad_fc": 267_928}


def test_zoo_names_and_specs():
    assert list(ZOO) == list(PARAMS)  # simplenet resnet nas autoencoder yolov1 mobilenet dscnn resnet8 ad_fc
    for spec in ZOO.values():
        assert spec.task in ("classification", "detection", "anomaly")
        assert spec.ends_in in ("logits", "softmax", "linear")
        assert spec.data_kind in ("image", "spectrogram", "vibration", "features")
    with pytest.raises(ValueError, match="simplenet.*ad_fc"):
        get_spec("lenet")


def test_light_imports_do_not_load_tensorflow():
    code = (
        "import sys, unpu.models, unpu.datasets, unpu.quantize, unpu.graph, unpu.models.prepare, unpu.models.loader\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_counts_and_shapes(name):
    model = build_model(name)
    spec = ZOO[name]
    assert model.count_params() == PARAMS[name]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == TRAINABLE.get(name, PARAMS[name])
    assert model.input_shape == (1, *spec.input_shape)
    last = model.layers[-1]
    assert (getattr(last, "activation", None) is not None and last.activation.__name__ == "softmax") == (
        spec.ends_in == "softmax"
    )


def test_output_shapes():
    outputs = {name: build_model(name).output_shape for name in ("simplenet", "nas", "autoencoder", "yolov1")}
    assert outputs == {
        "simplenet": (1, 100),
        "nas": (1, 10),
        "autoencoder": (1, 3, 256),  # same (samples, channels) layout as the input
        "yolov1": (1, 12, 12, 12),
    }


def test_build_is_seeded():
    a, b, c = build_model("dscnn", seed=1), build_model("dscnn", seed=1), build_model("dscnn", seed=2)
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


_DIGEST = """
import hashlib, sys
from unpu.datasets import SyntheticDataset
from unpu.models import ZOO, build_model
from unpu.models.prepare import prepare_untrained
from unpu.quantize import quantize
x = SyntheticDataset(0).samples(ZOO["ad_fc"], 32, "calibration")
model = prepare_untrained(build_model("ad_fc", seed=0), x)
print(hashlib.sha256(quantize(model, "int8", x, x[:0]).tflite).hexdigest())
"""


@pytest.mark.slow
def test_tflite_bytes_identical_in_fresh_processes():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _DIGEST], stdout=subprocess.PIPE, env=env) for _ in range(2)]
    digests = [p.communicate(timeout=300)[0].decode().strip().splitlines()[-1] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert digests[0] == digests[1] and len(digests[0]) == 64


def _activation_stds(model, x) -> dict[str, float]:
    import keras

    softmax = keras.activations.softmax  # probabilities of 10 classes have std < 0.1 by nature
    layers = [layer for layer in model.layers[1:] if getattr(layer, "activation", None) is not softmax]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    return {layer.name: float(np.std(out)) for layer, out in zip(layers, probe(x))}


@pytest.mark.parametrize("name", ["simplenet", "resnet8", "ad_fc", "autoencoder"])
def test_prepare_untrained_makes_activations_sane(name):
    from unpu.models.prepare import prepare_untrained

    spec, data = ZOO[name], SyntheticDataset(0)
    calibration, heldout = data.samples(spec, 64, "calibration"), data.samples(spec, 32, "heldout")
    model = build_model(name)
    before = _activation_stds(model, heldout)
    assert prepare_untrained(model, calibration) is model
    after = _activation_stds(model, heldout)
    assert all(0.1 <= s <= 10 for s in after.values()), {k: round(v, 3) for k, v in after.items()}
    if name == "simplenet":  # untrained, activations collapse with depth
        assert min(before.values()) < 0.01
    assert not any("call" in layer.__dict__ for layer in model.layers)  # hooks removed


def test_prepare_untrained_sets_batchnorm_statistics():
    from unpu.models.prepare import prepare_untrained

    model = build_model("resnet8")
    prepare_untrained(model, SyntheticDataset(0).samples(ZOO["resnet8"], 64, "calibration"))
    bn = model.get_layer("stack2_b_bn")
    assert not np.allclose(np.asarray(bn.moving_mean), 0.0)
    variance = np.asarray(bn.moving_variance)
    assert np.all(variance == variance[0]) and variance[0] != 1.0  # one data-derived variance per layer


def test_prepare_untrained_is_deterministic():
    from unpu.models.prepare import prepare_untrained

    x = SyntheticDataset(0).samples(ZOO["dscnn"], 32, "calibration")
    a = prepare_untrained(build_model("dscnn"), x)
    b = prepare_untrained(build_model("dscnn"), x)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


# ---- datasets ----


@pytest.mark.parametrize("name", list(ZOO))
def test_synthetic_samples_shape_and_range(name):
    spec = ZOO[name]
    x = SyntheticDataset(3).samples(spec, 5, "calibration")
    assert x.shape == (5, *spec.input_shape) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.std() > 0
    if spec.data_kind in ("image", "vibration"):
        assert x.min() >= 0.0 and x.max() <= 1.0


def test_synthetic_images_have_spatial_structure():
    x = SyntheticDataset(0).samples(ZOO["resnet8"], 8, "calibration")
    neighbours = np.corrcoef(x[:, :, :-1].ravel(), x[:, :, 1:].ravel())[0, 1]
    assert neighbours > 0.8  # white noise would give ~0


def test_synthetic_splits_reproducible_disjoint_prefix_stable():
    data = SyntheticDataset(7)
    spec = ZOO["dscnn"]
    a = {s: data.samples(spec, 10, s) for s in SPLITS}
    np.testing.assert_array_equal(a["heldout"], SyntheticDataset(7).samples(spec, 10, "heldout"))
    np.testing.assert_array_equal(a["validation"][:4], data.samples(spec, 4, "validation"))
    rows = {row.tobytes() for split in a.values() for row in split}
    assert len(rows) == 30
    assert not np.array_equal(a["calibration"], SyntheticDataset(8).samples(spec, 10, "calibration"))
    with pytest.raises(ValueError, match="calibration, heldout, validation"):
        data.samples(spec, 1, "train")


def test_synthetic_plain_shape_is_standard_normal():
    x = SyntheticDataset(0).samples((16, 8), 200, "heldout")
    assert x.shape == (200, 16, 8)
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05


def test_npy_dataset_slices(tmp_path):
    data = np.arange(40 * 6, dtype=np.float64).reshape(40, 6, 1)
    np.save(tmp_path / "x.npy", data)
    np.savez(tmp_path / "x.npz", x=data, y=np.zeros(40))
    for path in (tmp_path / "x.npy", tmp_path / "x.npz"):
        ds = NpyDataset(str(path))
        assert [ds.bounds(s) for s in SPLITS] == [(0, 20), (20, 30), (30, 40)]
        cal = ds.samples((6, 1), 20, "calibration")
        assert cal.dtype == np.float32 and np.array_equal(cal, data[:20])
        np.testing.assert_array_equal(ds.samples((6, 1), 10, "validation"), data[30:40])
        with pytest.raises(ValueError, match="'heldout' has 10 of 40 samples, 11 requested"):
            ds.samples((6, 1), 11, "heldout")
        with pytest.raises(ValueError, match=r"shape \(6, 1\), model input is \(6,\)"):
            ds.samples((6,), 1, "calibration")


def test_npy_dataset_errors_and_hydra(tmp_path):
    from hydra.utils import instantiate

    np.savez(tmp_path / "d.npz", features=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="no array 'x' .*features"):
        NpyDataset(str(tmp_path / "d.npz")).samples((2,), 1, "calibration")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        NpyDataset(str(tmp_path / "missing.npy")).samples((2,), 1, "calibration")
    ds = instantiate({"_target_": "unpu.datasets.NpyDataset", "path": str(tmp_path / "d.npz"), "key": "features",
                      "fractions": [1, 1, 2]})  # fmt: skip
    assert ds.bounds("validation") == (2, 4)
    assert isinstance(instantiate({"_target_": "unpu.datasets.SyntheticDataset", "seed": 0}), SyntheticDataset)


# ---- user model files ----


def _tiny_keras():
    import keras

    inputs = keras.Input((4,), batch_size=1, name="input")
    return keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs))


def test_load_tflite_file(tmp_path):
    from unpu.quantize import quantize

    x = np.ones((2, 4), np.float32)
    path = tmp_path / "tiny.tflite"
    path.write_bytes(quantize(_tiny_keras(), "float32", x, x).tflite)
    kind, data = load_model_file(str(path))
    assert kind == "tflite" and data == path.read_bytes()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_load_keras_file(tmp_path, suffix):
    model = _tiny_keras()
    path = tmp_path / f"tiny{suffix}"
    model.save(path)
    kind, loaded = load_model_file(str(path))
    assert kind == "keras"
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_file_errors(tmp_path):
    missing = tmp_path / "nope.tflite"
    with pytest.raises(ModelFileError, match=f"^model file not found: {missing}$"):
        load_model_file(str(missing))
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unsupported model file .*m.onnx"):
        load_model_file(str(onnx))
    for name, content in (("junk.tflite", b"\x00" * 64), ("cut.tflite", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8)):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ModelFileError, match=name) as err:
            load_model_file(str(bad))
        assert "\n" not in str(err.value)
    bad_keras = tmp_path / "bad.keras"
    bad_keras.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="bad.keras: cannot load Keras model") as err:
        load_model_file(str(bad_keras))
    assert "\n" not in str(err.value)

