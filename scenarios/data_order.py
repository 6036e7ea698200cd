"""data_order: the order in which data arrives, under fixed seeds (tf.data, Keras ``fit``, torch DataLoader).

Every scenario records the element order per epoch (kind ``ordering``) so a changed shuffle algorithm or RNG stream
shows as drift with the number of positions that moved, and checks what must hold in any version: each epoch is a
permutation of the input (nothing lost, nothing duplicated), batches have the sizes they should.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from harness.worker.checks import batch_sizes, permutation
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import keras, keras_identity, to_numpy

N = 20


def _epochs(dataset: Any, count: int = 2) -> list[list[int]]:
    return [[int(x) for x in dataset.as_numpy_iterator()] for _ in range(count)]


def _record_epochs(ctx: Context, prefix: str, epochs: list[list[int]], expected: Any) -> None:
    for i, order in enumerate(epochs):
        ctx.record(f"{prefix}epoch{i}", np.array(order, dtype=np.int64), kind="ordering")
        permutation(ctx, f"{prefix}epoch{i}_is_permutation", order, expected)


# ------------------------------------------------------------------------------------------------- tf.data


@scenario(area="data_order", requires=["tensorflow"])
def tf_shuffle_op_seed(ctx: Context) -> None:
    """Catches a change of ``Dataset.shuffle``'s order with an op-level seed, and of per-epoch reshuffling."""
    import tensorflow as tf

    epochs = _epochs(tf.data.Dataset.range(N).shuffle(N, seed=7))
    _record_epochs(ctx, "", epochs, range(N))
    ctx.check("reshuffled_each_epoch", epochs[0] != epochs[1], "both epochs came in the same order")


@scenario(area="data_order", requires=["tensorflow"])
def tf_shuffle_global_seed(ctx: Context) -> None:
    """Catches a change of ``Dataset.shuffle``'s order when only the global seed (``tf.random.set_seed``) is set."""
    import tensorflow as tf

    _record_epochs(ctx, "", _epochs(tf.data.Dataset.range(N).shuffle(N)), range(N))


@scenario(area="data_order", requires=["tensorflow"])
def tf_shuffle_no_reshuffle(ctx: Context) -> None:
    """Catches ``reshuffle_each_iteration=False`` no longer repeating the first epoch's order."""
    import tensorflow as tf

    epochs = _epochs(tf.data.Dataset.range(N).shuffle(N, seed=7, reshuffle_each_iteration=False))
    _record_epochs(ctx, "", epochs, range(N))
    ctx.check("same_order_each_epoch", epochs[0] == epochs[1], "epochs differ")


@scenario(area="data_order", requires=["tensorflow"])
def tf_shuffle_and_batch(ctx: Context) -> None:
    """Records shuffle-then-batch and batch-then-shuffle (both legitimate pipelines, with different orders)."""
    import tensorflow as tf

    base = tf.data.Dataset.range(N)
    for name, dataset in (
        ("shuffle_then_batch", base.shuffle(N, seed=7).batch(4)),
        ("batch_then_shuffle", base.batch(4).shuffle(N, seed=7)),
    ):
        batches = [b.tolist() for b in dataset.as_numpy_iterator()]
        order = [x for b in batches for x in b]
        ctx.record(name, np.array(order, dtype=np.int64), kind="ordering")
        permutation(ctx, f"{name}_is_permutation", order, range(N))
        batch_sizes(ctx, f"{name}_batch_sizes", [len(b) for b in batches], N, 4)
    ctx.check(
        "batch_then_shuffle_keeps_batches_whole",
        all(sorted(b) == list(range(b[0], b[0] + 4)) for b in _batches(base.batch(4).shuffle(N, seed=7))),
    )


def _batches(dataset: Any) -> list[list[int]]:
    return [b.tolist() for b in dataset.as_numpy_iterator()]


@scenario(area="data_order", requires=["tensorflow"])
def tf_parallel_map(ctx: Context) -> None:
    """Catches ``map(num_parallel_calls, deterministic=True)`` reordering, and records the non-deterministic order."""
    import tensorflow as tf

    base = tf.data.Dataset.range(N)
    ordered = [int(x) for x in base.map(lambda x: x * 2, num_parallel_calls=4, deterministic=True).as_numpy_iterator()]
    loose = [int(x) for x in base.map(lambda x: x * 2, num_parallel_calls=4, deterministic=False).as_numpy_iterator()]
    ctx.record("deterministic", np.array(ordered, dtype=np.int64), kind="ordering")
    ctx.check("deterministic_keeps_order", ordered == [2 * i for i in range(N)], first=ordered[:5])
    permutation(ctx, "non_deterministic_is_permutation", loose, [2 * i for i in range(N)])


@scenario(area="data_order", requires=["tensorflow"])
def tf_interleave(ctx: Context) -> None:
    """Catches a change of ``interleave``'s documented cycling order (cycle_length=2, block_length=1)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.range(4).interleave(
        lambda x: tf.data.Dataset.range(x * 10, x * 10 + 3),
        cycle_length=2,
        block_length=1,
        num_parallel_calls=2,
        deterministic=True,
    )
    order = [int(x) for x in dataset.as_numpy_iterator()]
    ctx.record("order", np.array(order, dtype=np.int64), kind="ordering")
    expected = [0, 10, 1, 11, 2, 12, 20, 30, 21, 31, 22, 32]
    ctx.check("documented_cycle_order", order == expected, order=order, expected=expected)


@scenario(area="data_order", requires=["tensorflow>=2.6"])
def tf_dataset_random(ctx: Context) -> None:
    """Catches a change of ``Dataset.random``'s stream for a fixed seed."""
    import tensorflow as tf

    values = [int(x) for x in tf.data.Dataset.random(seed=4).take(8).as_numpy_iterator()]
    ctx.record("values", np.array(values, dtype=np.int64))
    ctx.check("distinct", len(set(values)) == len(values), values=values)


@scenario(area="data_order", requires=["tensorflow>=2.7"])
def tf_sample_from_datasets(ctx: Context) -> None:
    """Catches a change of ``sample_from_datasets``'s interleaving for a fixed seed; each source keeps its order."""
    import tensorflow as tf

    first, second = tf.data.Dataset.range(0, 10), tf.data.Dataset.range(100, 110)
    mixed = tf.data.Dataset.sample_from_datasets([first, second], weights=[0.5, 0.5], seed=3)
    order = [int(x) for x in mixed.as_numpy_iterator()]
    ctx.record("order", np.array(order, dtype=np.int64), kind="ordering")
    permutation(ctx, "all_elements_once", order, [*range(10), *range(100, 110)])
    ctx.check(
        "sources_keep_their_order",
        [x for x in order if x < 100] == list(range(10)) and [x for x in order if x >= 100] == list(range(100, 110)),
    )


# --------------------------------------------------------------------------------------------------- Keras


@scenario(area="data_order", requires=["keras"])
def keras_fit_shuffle_order(ctx: Context) -> None:
    """Catches a change of the order in which ``model.fit(shuffle=True)`` presents samples under a fixed seed.

    The order is captured from inside training: the model's first layer records the sample ids (the inputs are
    the ids) of every batch it is called on in training mode, run eagerly.
    """
    k = keras()
    seen: list[list[int]] = []

    class RecordIds(k.layers.Layer):  # type: ignore[misc, name-defined]  # an untyped framework's class
        def call(self, inputs: Any, training: bool | None = None) -> Any:
            if training:
                seen.append(to_numpy(inputs)[:, 0].astype(np.int64).tolist())
            return inputs

    model = k.Sequential([k.Input((1,)), RecordIds(), k.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    x = np.arange(16, dtype=np.float32).reshape(-1, 1)
    model.fit(x, np.zeros((16, 1), dtype=np.float32), batch_size=4, epochs=2, shuffle=True, verbose=0)
    ctx.record("keras", keras_identity(), kind="info")
    batch_sizes(ctx, "batch_sizes", [len(b) for b in seen], 32, 4)
    epochs = [[i for b in seen[e * 4 : (e + 1) * 4] for i in b] for e in range(2)]
    _record_epochs(ctx, "", epochs, range(16))


def _need_tf_data(k: Any, name: str) -> Any:
    function = getattr(k.utils, name, None)
    if function is None:
        Context.skip(f"{k.__name__}.utils.{name} does not exist in {k.__name__} {k.__version__}")
    return function


def _as_lists(dataset: Any) -> list[Any]:
    if hasattr(dataset, "as_numpy_iterator"):
        return [np.asarray(x).tolist() for x in dataset.as_numpy_iterator()]
    return [to_numpy(x).tolist() for x in dataset]


@scenario(area="data_order", requires=["keras"])
def keras_split_dataset(ctx: Context) -> None:
    """Catches a change of ``keras.utils.split_dataset(shuffle=True, seed=...)``'s split."""
    k = keras()
    split = _need_tf_data(k, "split_dataset")
    try:
        left, right = split(np.arange(N), left_size=0.8, shuffle=True, seed=3)
        left_ids, right_ids = _as_lists(left), _as_lists(right)
    except ImportError as exc:
        Context.skip(f"split_dataset needs TensorFlow here: {exc}")
    ctx.record("left", np.array(left_ids, dtype=np.int64), kind="ordering")
    ctx.record("right", np.array(right_ids, dtype=np.int64), kind="ordering")
    ctx.check("sizes", (len(left_ids), len(right_ids)) == (16, 4), left=len(left_ids), right=len(right_ids))
    permutation(ctx, "nothing_lost", left_ids + right_ids, range(N))


@scenario(area="data_order", requires=["keras"])
def keras_timeseries_dataset(ctx: Context) -> None:
    """Catches a change of ``timeseries_dataset_from_array(shuffle=True, seed=...)``'s window order."""
    k = keras()
    make = _need_tf_data(k, "timeseries_dataset_from_array")
    try:
        batches = _as_lists(make(np.arange(N), None, sequence_length=5, batch_size=4, shuffle=True, seed=3))
    except ImportError as exc:
        Context.skip(f"timeseries_dataset_from_array needs TensorFlow here: {exc}")
    windows = [w for batch in batches for w in batch]
    starts = [w[0] for w in windows]
    ctx.record("window_starts", np.array(starts, dtype=np.int64), kind="ordering")
    ctx.check("windows_contiguous", all(w == list(range(w[0], w[0] + 5)) for w in windows))
    permutation(ctx, "every_window_once", starts, range(N - 5 + 1))


# --------------------------------------------------------------------------------------------------- torch


def _generator(seed: int = 7) -> Any:
    import torch

    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@scenario(area="data_order", requires=["torch"])
def torch_dataloader_shuffle(ctx: Context) -> None:
    """Catches a change of ``DataLoader(shuffle=True, generator=...)``'s order, epoch after epoch."""
    from torch.utils.data import DataLoader

    loader = DataLoader(list(range(N)), batch_size=4, shuffle=True, generator=_generator())
    epochs, sizes = [], []
    for _ in range(2):
        batches = [b.tolist() for b in loader]
        sizes += [len(b) for b in batches]
        epochs.append([i for b in batches for i in b])
    _record_epochs(ctx, "", epochs, range(N))
    batch_sizes(ctx, "batch_sizes", sizes, 2 * N, 4)
    ctx.check("reshuffled_each_epoch", epochs[0] != epochs[1])


@scenario(area="data_order", requires=["torch"])
def torch_samplers(ctx: Context) -> None:
    """Catches changes of ``RandomSampler`` (with and without replacement) and ``SubsetRandomSampler`` orders."""
    from torch.utils.data import RandomSampler, SubsetRandomSampler

    plain = list(RandomSampler(range(N), generator=_generator()))
    replaced = list(RandomSampler(range(N), replacement=True, num_samples=10, generator=_generator()))
    subset_ids = list(range(0, N, 2))
    subset = list(SubsetRandomSampler(subset_ids, generator=_generator()))
    ctx.record("random_sampler", np.array(plain, dtype=np.int64), kind="ordering")
    ctx.record("random_sampler_replacement", np.array(replaced, dtype=np.int64))
    ctx.record("subset_random_sampler", np.array(subset, dtype=np.int64), kind="ordering")
    permutation(ctx, "random_sampler_is_permutation", plain, range(N))
    permutation(ctx, "subset_sampler_is_permutation", subset, subset_ids)
    ctx.check("replacement_in_range", all(0 <= i < N for i in replaced) and len(replaced) == 10)


@scenario(area="data_order", requires=["torch"])
def torch_random_split(ctx: Context) -> None:
    """Catches a change of ``random_split``'s assignment for a seeded generator (lengths and fractions)."""
    from torch.utils.data import random_split

    train, test = random_split(range(N), [15, 5], generator=_generator())
    ctx.record("train", np.array(train.indices, dtype=np.int64), kind="ordering")
    ctx.record("test", np.array(test.indices, dtype=np.int64), kind="ordering")
    permutation(ctx, "disjoint_and_complete", list(train.indices) + list(test.indices), range(N))
    try:
        parts = random_split(range(N), [0.75, 0.25], generator=_generator())
    except (ValueError, TypeError) as exc:  # fractions arrived in torch 1.13
        ctx.note(f"random_split with fractions unavailable: {exc}")
    else:
        ctx.check("fractions_match_lengths", [len(p) for p in parts] == [15, 5], sizes=[len(p) for p in parts])


class _RandomItems:
    """A map-style dataset whose items draw from torch's RNG: shows which process's seed they came from."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> Any:
        import torch

        return index, torch.rand(1).item(), random.random()


def _seed_worker(worker_id: int) -> None:
    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


@scenario(area="data_order", requires=["torch"], timeout=120)
def torch_dataloader_workers(ctx: Context) -> None:
    """Catches a change of order between ``num_workers`` 0 and 2 (the sampler runs in the main process, so they
    must agree) and of the per-worker RNG streams under a worker seed function."""
    from torch.utils.data import DataLoader

    results = {}
    for workers in (0, 2):
        loader = DataLoader(
            _RandomItems(),
            batch_size=3,
            shuffle=True,
            num_workers=workers,
            worker_init_fn=_seed_worker if workers else None,
            generator=_generator(),
        )
        ids, draws = [], []
        for index, torch_draw, _python_draw in loader:
            ids += index.tolist()
            draws += torch_draw.tolist()
        results[workers] = ids
        ctx.record(f"order_workers{workers}", np.array(ids, dtype=np.int64), kind="ordering")
        ctx.record(f"draws_workers{workers}", np.array(draws, dtype=np.float64))
        permutation(ctx, f"workers{workers}_is_permutation", ids, range(12))
    ctx.check("order_independent_of_workers", results[0] == results[2], workers0=results[0], workers2=results[2])


@scenario(area="data_order", requires=["torch"])
def torch_drop_last(ctx: Context) -> None:
    """Catches a change of ``drop_last`` semantics: the incomplete final batch is dropped, nothing else."""
    from torch.utils.data import DataLoader

    kept = [b.tolist() for b in DataLoader(list(range(10)), batch_size=4, drop_last=False)]
    dropped = [b.tolist() for b in DataLoader(list(range(10)), batch_size=4, drop_last=True)]
    batch_sizes(ctx, "drop_last_false", [len(b) for b in kept], 10, 4)
    batch_sizes(ctx, "drop_last_true", [len(b) for b in dropped], 10, 4, drop_last=True)
    ctx.check("unshuffled_order", [i for b in dropped for i in b] == list(range(8)))
