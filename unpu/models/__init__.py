"""Model zoo: the seed's five models and four MLPerf Tiny reference models.

Importing this package does not import TensorFlow/Keras; builders import Keras when called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from unpu.models import mlperf
from unpu.models import seed as seed_models

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of unpu needs to know about a zoo model."""

    name: str
    input_shape: tuple[int, ...]  # without batch
    task: str  # "classification" | "detection" | "anomaly"
    ends_in: str  # "logits" | "softmax" | "linear": what the graph's last op produces
    data_kind: str  # "image" | "spectrogram" | "vibration" | "features"
    builder: Callable[[], "keras.Model"]  # builds the float model; the caller seeds first


ZOO: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("simplenet", (32, 32, 3), "classification", "logits", "image", seed_models.simplenet),
        ModelSpec("resnet", (32, 32, 3), "classification", "logits", "image", seed_models.resnet),
        ModelSpec("nas", (32, 32, 3), "classification", "logits", "image", seed_models.nas),
        ModelSpec(
            "autoencoder", seed_models.AUTOENCODER_INPUT, "anomaly", "linear", "vibration", seed_models.autoencoder
        ),
        ModelSpec("yolov1", (96, 96, 3), "detection", "linear", "image", seed_models.yolov1),
        ModelSpec("mobilenet", (96, 96, 3), "classification", "softmax", "image", mlperf.mobilenet),
        ModelSpec("dscnn", (49, 10, 1), "classification", "softmax", "spectrogram", mlperf.dscnn),
        ModelSpec("resnet8", (32, 32, 3), "classification", "softmax", "image", mlperf.resnet8),
        ModelSpec("ad_fc", (640,), "anomaly", "linear", "features", mlperf.ad_fc),
    )
}


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ INFO/WARNING chatter (errors still print). Effective only
    before TensorFlow is first imported; explicit settings in the environment win. oneDNN is
    switched off because its banner ignores TF_CPP_MIN_LOG_LEVEL (results are unaffected
    beyond float round-off)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


quiet_tensorflow()  # only sets two environment defaults; TensorFlow itself is not imported


def get_spec(name: str) -> ModelSpec:
    """The zoo entry called `name`; ValueError listing the known names otherwise."""
    try:
        return ZOO[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(ZOO)}") from None


def build_model(name: str, seed: int = 0) -> "keras.Model":
    """Build zoo model `name` with freshly seeded (untrained) weights."""
    spec = get_spec(name)
    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    return spec.builder()
