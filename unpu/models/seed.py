"""The seed project's five MAX78000-style models (docs/models.md).

Conv + ReLU everywhere, 2×2/2 max pool fused before a conv, no BatchNorm, residual adds.
Padding is "same" for k3 and "valid" for k1. Every layer is named explicitly so the converted
.tflite does not depend on Keras' per-process layer-name counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import keras

# Autoencoder input, Keras channels-last: 3 samples (steps) × 256 channels. This is the
# seed's "256 channels × 3 samples" (PyTorch NCL) transposed; with it, Conv1D k1 128 and
# Conv1D k3 64 (valid, 3 → 1) reproduce the 136,800 parameters. The output uses the same layout.
AUTOENCODER_INPUT = (3, 256)


class Conv(NamedTuple):
    filters: int
    kernel: int
    pool: bool = False  # 2×2/2 max pool before the conv
    relu: bool = True
    bias: bool = True


SIMPLENET = (
    Conv(16, 3), Conv(20, 3), Conv(20, 3), Conv(20, 3),
    Conv(20, 3, pool=True), Conv(20, 3), Conv(44, 3),
    Conv(48, 3, pool=True), Conv(48, 3),
    Conv(96, 3, pool=True),
    Conv(512, 1, pool=True), Conv(128, 1),
    Conv(128, 3, pool=True), Conv(100, 1, relu=False),
)  # fmt: skip

# conv index -> index of the earlier conv whose output is added to its output
RESNET_SKIPS = {2: 1, 5: 4, 8: 7}

NAS = (
    Conv(64, 3), Conv(32, 1), Conv(64, 3),
    Conv(32, 3, pool=True), Conv(64, 1),
    Conv(128, 3, pool=True), Conv(128, 1),
    Conv(64, 3, pool=True), Conv(128, 3),
    Conv(512, 1, pool=True),
)  # fmt: skip

YOLOV1 = (
    Conv(16, 3, bias=False), Conv(16, 3, pool=True, bias=False), Conv(16, 1, pool=True, bias=False),
    Conv(32, 3), Conv(16, 1), Conv(32, 3), Conv(16, 1), Conv(32, 3),
    Conv(16, 1, pool=True), Conv(32, 3), Conv(16, 1), Conv(32, 3), Conv(16, 1),
    Conv(32, 3), Conv(16, 1), Conv(32, 3), Conv(32, 1), Conv(16, 1), Conv(16, 1),
    Conv(12, 1, relu=False),
)  # fmt: skip


def _conv(x: "keras.KerasTensor", c: Conv, name: str) -> "keras.KerasTensor":
    from keras import layers

    if c.pool:
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    padding = "same" if c.kernel > 1 else "valid"
    act = "relu" if c.relu else None
    return layers.Conv2D(c.filters, c.kernel, padding=padding, activation=act, use_bias=c.bias, name=name)(x)


def _conv_stack(x, convs: tuple[Conv, ...], skips: dict[int, int] | None = None):
    from keras import layers

    outputs = []
    for i, c in enumerate(convs):
        x = _conv(x, c, f"conv{i + 1}")
        if skips and i in skips:
            x = layers.Add(name=f"add{i + 1}")([x, outputs[skips[i]]])
        outputs.append(x)
    return x


def _classifier(name: str, convs: tuple[Conv, ...], skips: dict[int, int] | None = None) -> "keras.Model":
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = _conv_stack(inputs, convs, skips)
    x = layers.Flatten(name="logits")(x)  # 1×1×100 -> 100
    return keras.Model(inputs, x, name=name)


def simplenet() -> "keras.Model":
    """CIFAR-100 SimpleNet, 32×32×3 → 100 logits; 383,012 parameters."""
    return _classifier("simplenet", SIMPLENET)


def resnet() -> "keras.Model":
    """SimpleNet plus three residual adds (after conv3, conv6, conv9); 383,012 parameters."""
    return _classifier("resnet", SIMPLENET, RESNET_SKIPS)


def nas() -> "keras.Model":
    """CIFAR-10 NAS net, 32×32×3 → 10 logits; 352,138 parameters."""
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = _conv_stack(inputs, NAS)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(10, name="fc")(x)
    return keras.Model(inputs, x, name="nas")


def autoencoder() -> "keras.Model":
    """Vibration autoencoder, input/output (3 samples, 256 channels); 136,800 parameters."""
    import keras
    from keras import layers

    inputs = keras.Input(AUTOENCODER_INPUT, batch_size=1, name="input")
    x = layers.Conv1D(128, 1, activation="relu", name="enc_conv1")(inputs)
    x = layers.Conv1D(64, 3, padding="valid", activation="relu", name="enc_conv2")(x)  # 3 -> 1
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="enc_fc1")(x)
    x = layers.Dense(4, use_bias=False, name="bottleneck")(x)
    x = layers.Dense(32, activation="relu", name="dec_fc1")(x)
    x = layers.Dense(96, activation="relu", name="dec_fc2")(x)
    x = layers.Dense(768, use_bias=False, name="dec_fc3")(x)
    x = layers.Reshape(AUTOENCODER_INPUT, name="reshape")(x)
    return keras.Model(inputs, x, name="autoencoder")


def yolov1() -> "keras.Model":
    """Tiny YOLOv1, 96×96×3 → 12×12×12 (2 classes, 2 boxes per cell); 40,700 parameters.

    The seed quotes ≈40,748: the 48 missing are exactly one bias per channel of the first three
    (16-channel) convs, which docs/models.md lists as bias-free (the seed presumably counted
    BatchNorm folded into a bias there).
    """
    import keras

    inputs = keras.Input((96, 96, 3), batch_size=1, name="input")
    x = _conv_stack(inputs, YOLOV1)
    return keras.Model(inputs, x, name="yolov1")
