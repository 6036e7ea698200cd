"""randomness: the random ops a training loop draws from (beyond initializers and dropout), under fixed seeds.

Augmentation layers, ``keras.random``, TensorFlow's stateful, stateless and Generator ops, torch's sampling ops,
``torch.nn.init`` and the DataLoader's shuffling and worker seeds. Each scenario records the drawn values as arrays
(a changed RNG stream shows as value drift with its size), appends every explicit seeding call it makes to the
cell's ``seeding`` (after the harness's own reset), and checks what must hold whatever the stream: values in their
documented range, a flip being a flip, a crop a window of the input, worker seeds ``base_seed + worker_id``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.worker.checks import normal_moments, orthogonal, permutation, uniform_bound
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import keras, keras_identity, to_numpy

#: Four 8x8 RGB images whose pixels are all distinct, in [20, 220): flips and crops are recognisable, and contrast
#: changes of ±30 % stay inside [0, 255], so no layer clips them.
IMAGE_SHAPE = (4, 8, 8, 3)


def image_batch() -> np.ndarray:
    size = int(np.prod(IMAGE_SHAPE))
    return (20.0 + 200.0 * np.arange(size, dtype=np.float32) / size).reshape(IMAGE_SHAPE)


def seeded(ctx: Context, call: str) -> None:
    """Note an explicit seeding call the scenario makes, after the harness's reset, in the cell's ``seeding``."""
    ctx.seeding.append(call)


# ---------------------------------------------------------------------------------------- pure image checks


def flip_kind(image: np.ndarray, output: np.ndarray) -> str:
    """Which flip of ``image`` (height, width, channels) ``output`` is: none, horizontal, vertical, both, other."""
    candidates = {
        "none": image,
        "horizontal": image[:, ::-1],
        "vertical": image[::-1, :],
        "both": image[::-1, ::-1],
    }
    for name, flipped in candidates.items():
        if np.array_equal(flipped, output):
            return name
    return "other"


def crop_offset(image: np.ndarray, window: np.ndarray) -> tuple[int, int] | None:
    """The (row, column) where ``window`` sits in ``image`` unchanged, or None when it is no window of it."""
    rows, cols = window.shape[0], window.shape[1]
    for top in range(image.shape[0] - rows + 1):
        for left in range(image.shape[1] - cols + 1):
            if np.array_equal(image[top : top + rows, left : left + cols], window):
                return top, left
    return None


def contrast_factor(image: np.ndarray, output: np.ndarray) -> float | None:
    """The factor f with ``output = (image - mean) * f + mean`` per channel (the documented contrast rule), or None.

    None when no single factor explains the output within float32 rounding.
    """
    mean = image.mean(axis=(0, 1), keepdims=True)
    centred, moved = (image - mean).astype(np.float64), (output - mean).astype(np.float64)
    factor = float((centred * moved).sum() / (centred * centred).sum())
    residual = float(np.abs(moved - factor * centred).max())
    return factor if residual <= 1e-3 * float(np.abs(image).max()) else None


# --------------------------------------------------------------------------------------- Keras augmentation


def _augment(ctx: Context, name: str, layer: Any, images: np.ndarray) -> np.ndarray:
    output = np.asarray(to_numpy(layer(images, training=True)), dtype=np.float32)
    ctx.record(name, output)
    return output


@scenario(area="randomness", requires=["keras"])
def keras_augmentation(ctx: Context) -> None:
    """Catches a release that changes the RNG stream of RandomFlip, RandomRotation, RandomCrop or RandomContrast
    (with ``seed=`` and ``training=True``): augmented batches come out flipped, rotated, cropped or contrasted
    differently from the same seed, so a model trains on other images than before.

    Checks what any stream must give: each flip is one of the four flips, each crop a window of its image, each
    contrast change the documented per-channel affine map with a factor within ±factor, rotations in range.
    """
    k = keras()
    images = image_batch()
    layers = k.layers
    ctx.record("keras", keras_identity(), kind="info")
    seeds = {"RandomFlip": 11, "RandomRotation": 12, "RandomCrop": 13, "RandomContrast": 14}
    ctx.record("seeds", seeds, kind="config")
    for name, seed in seeds.items():
        seeded(ctx, f"{k.__name__}.layers.{name}(..., seed={seed})")
    flipped = _augment(ctx, "random_flip", layers.RandomFlip("horizontal_and_vertical", seed=11), images)
    kinds = [flip_kind(image, out) for image, out in zip(images, flipped, strict=True)]
    ctx.record("flip_kinds", {str(i): kind for i, kind in enumerate(kinds)}, kind="config")
    ctx.check("flips_are_flips", "other" not in kinds, kinds=kinds)
    rotated = _augment(ctx, "random_rotation", layers.RandomRotation(0.2, seed=12), images)
    ctx.check(
        "rotation_within_input_range",
        rotated.shape == images.shape and bool((rotated >= images.min() - 1e-3).all()),
        shape=list(rotated.shape),
        min=float(rotated.min()),
    )
    cropped = _augment(ctx, "random_crop", layers.RandomCrop(5, 5, seed=13), images)
    offsets = [crop_offset(image, window) for image, window in zip(images, cropped, strict=True)]
    ctx.record("crop_offsets", {str(i): list(o) if o else None for i, o in enumerate(offsets)}, kind="config")
    ctx.check("crops_are_windows", cropped.shape == (4, 5, 5, 3) and None not in offsets, offsets=offsets)
    contrasted = _augment(ctx, "random_contrast", layers.RandomContrast(0.3, seed=14), images)
    factors = [contrast_factor(image, out) for image, out in zip(images, contrasted, strict=True)]
    ctx.check(
        "contrast_is_affine_within_factor",
        all(f is not None and 0.7 - 1e-4 <= f <= 1.3 + 1e-4 for f in factors),
        factors=factors,
    )


# ------------------------------------------------------------------------------------------- keras.random


@scenario(area="randomness", requires=["keras>=3"])
def keras_random_ops(ctx: Context) -> None:
    """Catches a release that changes what ``keras.random`` (normal, uniform, randint, shuffle, dropout) draws from
    a ``SeedGenerator`` or an integer seed: custom layers and augmentations built on it draw other numbers.

    Also checks the documented contract: an integer seed gives the same draw every call, a SeedGenerator advances.
    """
    k = keras()
    rnd = k.random
    ctx.record("keras", keras_identity(), kind="info")
    seeded(ctx, "keras.random.SeedGenerator(5) for normal/uniform/randint/shuffle/dropout, in that order")
    generator = rnd.SeedGenerator(5)
    draws = {
        "normal": rnd.normal((64,), seed=generator),
        "normal_again": rnd.normal((64,), seed=generator),
        "uniform": rnd.uniform((64,), seed=generator),
        "randint": rnd.randint((64,), 0, 10, seed=generator),
        "shuffle": rnd.shuffle(k.ops.arange(32), seed=generator),
        "dropout": rnd.dropout(k.ops.ones((64,)), 0.5, seed=generator),
    }
    values = {name: to_numpy(value) for name, value in draws.items()}
    for name, value in values.items():
        ctx.record(name, value)
    seeded(ctx, "keras.random.normal((8,), seed=3) twice")
    int_seed = [to_numpy(rnd.normal((8,), seed=3)) for _ in range(2)]
    ctx.record("normal_int_seed3", int_seed[0])
    ctx.check("int_seed_repeats", bool(np.array_equal(*int_seed)))
    ctx.check("seed_generator_advances", not np.array_equal(values["normal"], values["normal_again"]))
    ctx.check("uniform_in_unit_interval", bool(((values["uniform"] >= 0) & (values["uniform"] < 1)).all()))
    ctx.check("randint_in_range", bool(((values["randint"] >= 0) & (values["randint"] < 10)).all()))
    permutation(ctx, "shuffle_is_permutation", values["shuffle"], range(32))
    kept = values["dropout"][values["dropout"] != 0]
    ctx.check("dropout_scales_kept_by_2", bool(np.allclose(kept, 2.0)), kept=int(kept.size))


# -------------------------------------------------------------------------------------------- tf.random


@scenario(area="randomness", requires=["tensorflow"])
def tf_random_stateful(ctx: Context) -> None:
    """Catches a release that changes TensorFlow's stateful ops (normal, truncated_normal, categorical, shuffle)
    under the global seed and an op seed: the draws a ``tf.function`` training step makes change.

    The same op called twice with one op seed must give two different draws (its counter advances).
    """
    import tensorflow as tf

    seeded(ctx, "tf.random.* with op seed=5 (global seed from the reset)")
    first = tf.random.normal((64,), seed=5).numpy()
    second = tf.random.normal((64,), seed=5).numpy()
    truncated = tf.random.truncated_normal((256,), seed=5).numpy()
    logits = tf.math.log([[0.1, 0.2, 0.3, 0.4]])
    categorical = tf.random.categorical(logits, 32, seed=5).numpy()
    shuffled = tf.random.shuffle(tf.range(32), seed=5).numpy()
    for name, value in (("normal", first), ("normal_again", second), ("truncated_normal", truncated)):
        ctx.record(name, value)
    ctx.record("categorical", categorical.astype(np.int64))
    ctx.record("shuffle", shuffled.astype(np.int64), kind="ordering")
    ctx.check("op_seed_counter_advances", not np.array_equal(first, second))
    ctx.check(
        "truncated_within_two_std", bool((np.abs(truncated) <= 2.0).all()), max_abs=float(np.abs(truncated).max())
    )
    ctx.check("categorical_in_range", bool(((categorical >= 0) & (categorical < 4)).all()))
    permutation(ctx, "shuffle_is_permutation", shuffled, range(32))


@scenario(area="randomness", requires=["tensorflow"])
def tf_random_stateless(ctx: Context) -> None:
    """Catches a release that changes ``tf.random.stateless_*`` (normal, uniform, int uniform, truncated normal,
    categorical) for a fixed seed pair: these are promised to be pure functions of (shape, seed, dtype), so
    augmentations written with them must give the same numbers in every release.
    """
    import tensorflow as tf

    seed = [1, 2]
    seeded(ctx, f"tf.random.stateless_*(seed={seed})")
    ops: dict[str, Callable[[], Any]] = {
        "stateless_normal": lambda: tf.random.stateless_normal((64,), seed=seed),
        "stateless_uniform": lambda: tf.random.stateless_uniform((64,), seed=seed),
        "stateless_uniform_int": lambda: tf.random.stateless_uniform(
            (64,), seed=seed, minval=0, maxval=10, dtype=tf.int32
        ),
        "stateless_truncated_normal": lambda: tf.random.stateless_truncated_normal((64,), seed=seed),
        "stateless_categorical": lambda: tf.random.stateless_categorical(
            tf.math.log([[0.1, 0.2, 0.3, 0.4]]), 32, seed=seed
        ),
    }
    for name, op in ops.items():
        value, again = op().numpy(), op().numpy()
        ctx.record(name, value)
        ctx.check(f"{name}_is_pure", bool(np.array_equal(value, again)))
    uniform = tf.random.stateless_uniform((64,), seed=seed).numpy()
    ctx.check("uniform_in_unit_interval", bool(((uniform >= 0) & (uniform < 1)).all()))


@scenario(area="randomness", requires=["tensorflow"])
def tf_random_generator(ctx: Context) -> None:
    """Catches a release that changes ``tf.random.Generator.from_seed``'s stream (normal, uniform, split): the
    recommended replacement of stateful ops, used for reproducible augmentation and noise.

    Two generators from the same seed must agree; a split generator must differ from its parent.
    """
    import tensorflow as tf

    seeded(ctx, "tf.random.Generator.from_seed(7) (twice)")
    generator = tf.random.Generator.from_seed(7)
    normal = generator.normal((64,)).numpy()
    uniform = generator.uniform((64,)).numpy()
    child = generator.split(1)[0]
    from_child = child.normal((64,)).numpy()
    twin = tf.random.Generator.from_seed(7).normal((64,)).numpy()
    for name, value in (("normal", normal), ("uniform", uniform), ("split_normal", from_child)):
        ctx.record(name, value)
    ctx.check("same_seed_same_stream", bool(np.array_equal(normal, twin)))
    ctx.check("split_differs", not np.array_equal(from_child, normal))
    ctx.check("uniform_in_unit_interval", bool(((uniform >= 0) & (uniform < 1)).all()))


# ---------------------------------------------------------------------------------------------------- torch


def _generator(ctx: Context, seed: int) -> Any:
    import torch

    seeded(ctx, f"torch.Generator().manual_seed({seed})")
    return torch.Generator().manual_seed(seed)


@scenario(area="randomness", requires=["torch"])
def torch_sampling_ops(ctx: Context) -> None:
    """Catches a release that changes what ``bernoulli_``, ``multinomial``, ``randperm`` or ``normal_`` draw from a
    seeded generator: masks, sampled classes, permutations and noise in a training loop change.

    ``randperm`` is drawn for a small and a large n (implementations switch algorithm with the size).
    """
    import torch

    draws: dict[str, Callable[[Any], Any]] = {
        "bernoulli": lambda g: torch.empty(256).bernoulli_(0.3, generator=g),
        "multinomial_replacement": lambda g: torch.multinomial(
            torch.tensor([0.1, 0.2, 0.3, 0.4]), 64, replacement=True, generator=g
        ),
        "multinomial_no_replacement": lambda g: torch.multinomial(torch.ones(32), 32, generator=g),
        "randperm_10": lambda g: torch.randperm(10, generator=g),
        "randperm_1000": lambda g: torch.randperm(1000, generator=g),
        "normal": lambda g: torch.empty(256).normal_(generator=g),
    }
    values = {name: to_numpy(draw(_generator(ctx, 3))) for name, draw in draws.items()}
    for name, value in values.items():
        kind = "ordering" if name.startswith("randperm") or name.endswith("no_replacement") else None
        ctx.record(name, value, kind=kind)
    bern = values["bernoulli"]
    ctx.check("bernoulli_is_binary", bool(np.isin(bern, (0.0, 1.0)).all()), mean=float(bern.mean()))
    ctx.check(
        "multinomial_in_range",
        bool(((values["multinomial_replacement"] >= 0) & (values["multinomial_replacement"] < 4)).all()),
    )
    permutation(ctx, "multinomial_without_replacement_is_permutation", values["multinomial_no_replacement"], range(32))
    permutation(ctx, "randperm_10_is_permutation", values["randperm_10"], range(10))
    permutation(ctx, "randperm_1000_is_permutation", values["randperm_1000"], range(1000))
    normal_moments(ctx, "normal_moments", values["normal"], 0.0, 1.0)


@scenario(area="randomness", requires=["torch"])
def torch_nn_init(ctx: Context) -> None:
    """Catches a release that changes what ``nn.init`` kaiming/xavier (uniform, normal), orthogonal and
    trunc_normal draw after ``torch.manual_seed``: custom ``reset_parameters`` give other initial weights.

    Each draw is checked against the distribution its documentation gives (bounds, std, orthonormality, truncation).
    """
    import torch

    init = torch.nn.init
    fan_out, fan_in = 64, 128
    draws: dict[str, Callable[[Any], Any]] = {
        "kaiming_uniform": lambda t: init.kaiming_uniform_(t, nonlinearity="relu"),
        "kaiming_normal": lambda t: init.kaiming_normal_(t, nonlinearity="relu"),
        "xavier_uniform": init.xavier_uniform_,
        "xavier_normal": init.xavier_normal_,
        "orthogonal": init.orthogonal_,
        "trunc_normal": lambda t: init.trunc_normal_(t, std=1.0, a=-2.0, b=2.0),
    }
    values = {}
    for seed, (name, draw) in enumerate(draws.items(), start=21):
        torch.manual_seed(seed)
        seeded(ctx, f"torch.manual_seed({seed}) before nn.init.{name}_")
        values[name] = to_numpy(draw(torch.empty(fan_out, fan_in)))
        ctx.record(name, values[name])
    uniform_bound(ctx, "kaiming_uniform_bound", values["kaiming_uniform"], math.sqrt(2.0) * math.sqrt(3.0 / fan_in))
    normal_moments(ctx, "kaiming_normal_std", values["kaiming_normal"], 0.0, math.sqrt(2.0 / fan_in))
    uniform_bound(ctx, "xavier_uniform_bound", values["xavier_uniform"], math.sqrt(6.0 / (fan_in + fan_out)))
    normal_moments(ctx, "xavier_normal_std", values["xavier_normal"], 0.0, math.sqrt(2.0 / (fan_in + fan_out)))
    orthogonal(ctx, "orthogonal_rows", values["orthogonal"])
    peak = float(np.abs(values["trunc_normal"]).max())
    ctx.check("trunc_normal_truncated", peak <= 2.0, max_abs=peak)


@scenario(area="randomness", requires=["torch"])
def torch_dataloader_generator(ctx: Context) -> None:
    """Catches a release that changes the shuffle order a ``DataLoader(shuffle=True, generator=...)`` gives over
    three epochs, or the order of a ``WeightedRandomSampler``: training sees its batches in another order.
    """
    from torch.utils.data import DataLoader, WeightedRandomSampler

    loader = DataLoader(list(range(24)), batch_size=5, shuffle=True, generator=_generator(ctx, 17))
    for epoch in range(3):
        order = [int(i) for batch in loader for i in batch]
        ctx.record(f"epoch{epoch}", np.array(order, dtype=np.int64), kind="ordering")
        permutation(ctx, f"epoch{epoch}_is_permutation", order, range(24))
    weights = [1.0] * 12 + [3.0] * 12
    sampler = WeightedRandomSampler(weights, num_samples=48, replacement=True, generator=_generator(ctx, 18))
    weighted = np.array(list(sampler), dtype=np.int64)
    ctx.record("weighted_sampler", weighted)
    ctx.check("weighted_in_range", bool(((weighted >= 0) & (weighted < 24)).all()))


class WorkerDraws:
    """A map-style dataset whose items report which worker made them, that worker's seed and its first draws.

    Module-level, so it is importable in a worker started by any multiprocessing method.
    """

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> tuple[int, int, int, float, float, float]:
        import torch
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, seed = (info.id, info.seed) if info is not None else (-1, -1)
        return index, worker, seed, torch.rand(1).item(), random.random(), float(np.random.random())


def worker_seed_problems(rows: list[tuple[int, int, int, float, float]]) -> list[str]:
    """What breaks the documented worker seeding in ``rows`` (index, worker, seed, torch draw, python draw), each
    worker's rows in the order it made them: seeds ``base_seed + worker_id``, torch and ``random`` seeded with it.
    """
    import torch

    problems: list[str] = []
    seeds = {worker: seed for _, worker, seed, _, _ in rows}
    if sorted(seeds) != [0, 1]:
        return [f"expected workers 0 and 1, saw {sorted(seeds)}"]
    if seeds[1] - seeds[0] != 1:
        problems.append(f"worker seeds {seeds[0]} and {seeds[1]} are not base_seed + worker_id")
    for worker, seed in seeds.items():
        _, _, _, torch_draw, python_draw = next(row for row in rows if row[1] == worker)
        expected_torch = torch.rand(1, generator=torch.Generator().manual_seed(seed)).item()
        if torch_draw != expected_torch:
            problems.append(f"worker {worker}: torch draw {torch_draw} is not the first of manual_seed({seed})")
        if python_draw != random.Random(seed).random():
            problems.append(f"worker {worker}: random draw is not the first of random.seed({seed})")
    return problems


@scenario(area="randomness", requires=["torch"], timeout=60)
def torch_dataloader_workers(ctx: Context) -> None:
    """Catches a release that changes how a ``DataLoader(num_workers=2, generator=...)`` seeds its workers (the
    base seed drawn from the generator, ``base_seed + worker_id``, the numpy/random seeding inside workers) or
    which worker gets which batch: per-sample augmentation in workers then draws other numbers.

    Bounded in time: the loader's ``timeout`` stops a hung worker after 30 s, the cell's timeout after 60 s.
    """
    from torch.utils.data import DataLoader

    loader = DataLoader(
        WorkerDraws(), batch_size=3, shuffle=True, num_workers=2, generator=_generator(ctx, 19), timeout=30
    )
    rows = []
    for batch in loader:
        rows += list(zip(*[column.tolist() for column in batch], strict=True))
    order = [int(row[0]) for row in rows]
    ctx.record("order", np.array(order, dtype=np.int64), kind="ordering")
    ctx.record("workers", np.array([row[1] for row in rows], dtype=np.int64))
    ctx.record("worker_seeds", np.array(sorted({int(row[2]) for row in rows}), dtype=np.int64))
    for column, name in ((3, "torch_draws"), (4, "python_draws"), (5, "numpy_draws")):
        ctx.record(name, np.array([row[column] for row in rows], dtype=np.float64))
    permutation(ctx, "order_is_permutation", order, range(12))
    problems = worker_seed_problems([(int(r[0]), int(r[1]), int(r[2]), r[3], r[4]) for r in rows])
    ctx.check("documented_worker_seeding", not problems, "; ".join(problems))
