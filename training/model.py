"""Model definitions: the seed's CNN as a baseline and the DigitFlow default.

Both take float32 [N, 28, 28, 1] in [0, 1], white ink on black (MNIST form, as the recognition
core normalises every image), and return softmax probabilities over the 10 digits and an 11th
class, "not a digit" (trained on synthetic marks: training/nondigits.py).
Augmentation lives in the training input pipeline (`augmenter`), never in the exported model.
"""

import keras
import tensorflow as tf
from keras import layers

NUM_CLASSES = 11  # digits 0-9, then NOT_A_DIGIT
INPUT_SHAPE = (28, 28, 1)

# Augmentation: handwriting varies in slant, placement, size and pen width. The core's
# normalisation (20x20 fit, centre of mass) removes most placement and size variation before the
# model sees a digit, so shift and zoom stay mild; slant and stroke width it does not remove.
ROTATION_DEGREES = 10
SHIFT_FRACTION = 0.05
ZOOM_FRACTION = 0.08
STROKE_CHANGE_PROBABILITY = 0.15  # share of images thickened or thinned by one pixel

ARCHITECTURES = ("default", "wide", "seed")
# Channels of the three convolutions and units of the dense layer.
WIDTHS = {"default": (32, 48, 64, 128), "wide": (32, 64, 96, 128)}


def build_model(name: str = "default", classes: int = NUM_CLASSES) -> keras.Model:
    if name in WIDTHS:
        return _default_cnn(classes, WIDTHS[name])
    if name == "seed":
        return _seed_cnn(classes)
    raise ValueError(f"unknown architecture {name!r}; choose from {ARCHITECTURES}")


def _seed_cnn(classes: int = NUM_CLASSES) -> keras.Model:
    """The original project's CNN: Conv32-Pool-Conv64-Pool-Dropout-Dense128-Dropout-Dense10."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(classes, activation="softmax"),
        ],
        name="seed_cnn",
    )


def _conv_bn(filters: int) -> list:
    return [
        layers.Conv2D(filters, 3, use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
    ]


def _default_cnn(classes: int = NUM_CLASSES, widths=WIDTHS["default"]) -> keras.Model:
    """Three batch-normalised 3x3 convolutions in two blocks, then a small dense head.

    Sized for the CPU budget: ~4 M multiply-adds per image (default widths), about 30 s per
    epoch on 2 cores.
    """
    first, second, third, dense = widths
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            *_conv_bn(first),  # 26x26
            layers.MaxPooling2D(2),  # 13x13
            *_conv_bn(second),  # 11x11
            *_conv_bn(third),  # 9x9
            layers.MaxPooling2D(2),  # 4x4
            layers.Flatten(),
            layers.Dense(dense, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Dropout(0.4),
            layers.Dense(classes, activation="softmax"),
        ],
        name="digitflow_cnn",
    )


def augmenter(seed: int) -> keras.Sequential:
    """Random geometric distortions for batches of [N, 28, 28, 1] images (training only)."""
    return keras.Sequential(
        [
            layers.RandomRotation(ROTATION_DEGREES / 360, fill_mode="constant", seed=seed),
            layers.RandomTranslation(
                SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="constant", seed=seed + 1
            ),
            layers.RandomZoom(ZOOM_FRACTION, fill_mode="constant", seed=seed + 2),
        ],
        name="augmenter",
    )


def vary_stroke_width(images: tf.Tensor) -> tf.Tensor:
    """Thicken (grey dilation) or thin (grey erosion) a random share of a batch by one pixel."""
    thick = tf.nn.max_pool2d(images, 3, 1, "SAME")
    thin = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
    batch = tf.shape(images)[0]
    roll = tf.random.uniform([batch, 1, 1, 1])  # seeded by keras.utils.set_random_seed
    half = STROKE_CHANGE_PROBABILITY / 2
    images = tf.where(roll < half, thick, images)
    return tf.where((roll >= half) & (roll < 2 * half), thin, images)
