"""A text classifier written for TensorFlow 2.15 / Keras 2, the way teams wrote it before Keras 3."""

import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers as L
from tensorflow.keras.optimizers.legacy import Adam  # expect: missing


class Classifier(keras.Model):  # expect: moved
    """Embedding, pooling and a softmax head."""

    def __init__(self, vocab: int, classes: int) -> None:
        super().__init__()
        self.embed = L.Embedding(vocab, 16, input_length=32, mask_zero=True)  # expect: keyword-deprecated
        self.pool = L.GlobalAveragePooling1D()  # expect: default-changed
        self.head = L.Dense(classes, activation="softmax", kernel_initializer="glorot_uniform")

    def call(self, inputs):
        return self.head(self.pool(self.embed(inputs)))


def make_optimizer(kind: str):
    """The optimizer the config names."""
    if kind == "sgd":
        return tf.keras.optimizers.experimental.SGD(learning_rate=0.1, momentum=0.9)  # expect: missing
    if kind == "legacy":
        return Adam(learning_rate=1e-3)  # expect: missing
    if kind == "legacy-rmsprop":
        return tf.keras.optimizers.legacy.RMSprop(learning_rate=1e-3)  # expect: missing
    return keras.optimizers.get("adam")


def build(vocab: int, classes: int, kind: str = "adam") -> keras.Model:  # expect: moved
    model = Classifier(vocab, classes)
    model.compile(
        optimizer=make_optimizer(kind),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],  # expect: moved
    )
    return model
