"""MLPerf Tiny reference models (docs/models.md), following the architectures of the
mlcommons/tiny reference training scripts (benchmark/training/*): same layers, kernel sizes,
strides, biases and BatchNorm placement; weight regularizers are left out (training only).
Every layer is named explicitly so the converted .tflite is reproducible within a process too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

# VWW MobileNetV1 α=0.25: (stride, pointwise filters) of the 13 depthwise-separable blocks.
MOBILENET_BLOCKS = (
    (1, 16), (2, 32), (1, 32), (2, 64), (1, 64), (2, 128),
    (1, 128), (1, 128), (1, 128), (1, 128), (1, 128), (2, 256), (1, 256),
)  # fmt: skip


def _bn_relu(x: "keras.KerasTensor", name: str) -> "keras.KerasTensor":
    from keras import layers

    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _conv_bn_relu(x, filters: int, kernel, strides, name: str, init: str = "he_normal"):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer=init, name=name)(x)
    return _bn_relu(x, name)


def _ds_block(x, filters: int, strides: int, name: str, init: str = "he_normal"):
    """Depthwise 3×3 + BN + ReLU, then pointwise 1×1 + BN + ReLU (both with bias, as the reference)."""
    from keras import layers

    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", depthwise_initializer=init, name=f"{name}_dw")(x)
    x = _bn_relu(x, f"{name}_dw")
    return _conv_bn_relu(x, filters, 1, 1, f"{name}_pw", init)


def _pool_softmax(x, classes: int):
    from keras import layers

    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    return layers.Dense(classes, activation="softmax", name="fc")(x)


def mobilenet() -> "keras.Model":
    """VWW person detection: MobileNetV1 α=0.25, 96×96×3 → 2 (softmax)."""
    import keras

    inputs = keras.Input((96, 96, 3), batch_size=1, name="input")
    x = _conv_bn_relu(inputs, 8, 3, 2, "conv1")
    for i, (strides, filters) in enumerate(MOBILENET_BLOCKS):
        x = _ds_block(x, filters, strides, f"block{i + 1}")
    return keras.Model(inputs, _pool_softmax(x, 2), name="mobilenet")


def dscnn() -> "keras.Model":
    """KWS DS-CNN: 49×10×1 MFCC → 12 (softmax), 64 filters, 4 depthwise-separable blocks."""
    import keras
    from keras import layers

    inputs = keras.Input((49, 10, 1), batch_size=1, name="input")
    x = _conv_bn_relu(inputs, 64, (10, 4), 2, "conv1", init="glorot_uniform")
    x = layers.Dropout(0.2, name="drop1")(x)
    for i in range(4):
        x = _ds_block(x, 64, 1, f"block{i + 1}", init="glorot_uniform")
    x = layers.Dropout(0.4, name="drop2")(x)
    # The reference pools with (int(49/2), int(10/2)) = (24, 5) over the 25×5 map: one window.
    x = layers.AveragePooling2D(pool_size=(24, 5), name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(12, activation="softmax", name="fc")(x)
    return keras.Model(inputs, x, name="dscnn")


def _residual_stack(x, filters: int, strides: int, name: str):
    from keras import layers

    y = _conv_bn_relu(x, filters, 3, strides, f"{name}_a")
    y = layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal", name=f"{name}_b")(y)
    y = layers.BatchNormalization(name=f"{name}_b_bn")(y)
    if strides != 1:  # 1×1 strided projection of the identity path, no BatchNorm (as the reference)
        x = layers.Conv2D(filters, 1, strides=strides, padding="same", kernel_initializer="he_normal",
                          name=f"{name}_proj")(x)  # fmt: skip
    x = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_relu")(x)


def resnet8() -> "keras.Model":
    """IC ResNet-8 (EEMBC ResNetv1): 32×32×3 → 10 (softmax), stacks of 16/32/64 filters."""
    import keras

    inputs = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = _conv_bn_relu(inputs, 16, 3, 1, "conv1")
    for i, (filters, strides) in enumerate(((16, 1), (32, 2), (64, 2))):
        x = _residual_stack(x, filters, strides, f"stack{i + 1}")
    return keras.Model(inputs, _pool_softmax(x, 10), name="resnet8")


def ad_fc() -> "keras.Model":
    """AD (ToyCar) dense autoencoder: 640 → 128×4 → 8 → 128×4 → 640, Dense + BN + ReLU."""
    import keras
    from keras import layers

    inputs = keras.Input((640,), batch_size=1, name="input")
    x = inputs
    for i, units in enumerate((128, 128, 128, 128, 8, 128, 128, 128, 128)):
        x = layers.Dense(units, name=f"fc{i + 1}")(x)
        x = _bn_relu(x, f"fc{i + 1}")
    x = layers.Dense(640, name="fc10")(x)
    return keras.Model(inputs, x, name="ad_fc")
