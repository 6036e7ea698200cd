"""callbacks: the Keras callbacks a training script relies on, and what each version does with the same call.

``ModelCheckpoint`` refusing an ``.h5`` or a bare-directory path under Keras 3, ``EarlyStopping`` stopping at
another epoch or not restoring the best weights, ``ReduceLROnPlateau``'s trace and the History key it logs
(``lr`` or ``learning_rate``), ``CSVLogger``'s columns, and the order Keras calls a custom callback's hooks in:
each breaks a training script without touching the model. Models and data: ``scenarios.training``.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import keras, keras_identity, to_numpy
from scenarios.training import fixed_data, fixed_model

#: The paths a user hands ModelCheckpoint, with save_weights_only: (suffix, weights only).
CHECKPOINT_PATHS = {
    "keras": ("model.keras", False),
    "h5": ("model.h5", False),
    "bare_directory": ("model_dir", False),
    "weights_h5": ("model.weights.h5", True),
    "h5_weights_only": ("weights.h5", True),
    "ckpt_weights_only": ("weights.ckpt", True),
}


def _compiled(k: Any, learning_rate: float = 0.1) -> Any:
    model = fixed_model(k)
    model.compile(optimizer=k.optimizers.SGD(learning_rate=learning_rate), loss="categorical_crossentropy")
    return model


def _checkpoint_outcome(k: Any, folder: Path, name: str) -> str:
    path, weights_only = CHECKPOINT_PATHS[name]
    target = folder / name / path
    target.parent.mkdir(parents=True)
    x, y = fixed_data()
    try:
        callback = k.callbacks.ModelCheckpoint(str(target), save_weights_only=weights_only)
        _compiled(k).fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    except Exception as exc:
        return f"rejected: {error_text(exc).split(':', 1)[0]}"
    written = sorted(p.relative_to(target.parent).as_posix() for p in target.parent.rglob("*") if p.is_file())
    return "saved" if written else "nothing written"


@scenario(area="callbacks", requires=["keras"])
def keras_model_checkpoint_paths(ctx: Context) -> None:
    """Catches ``ModelCheckpoint`` refusing a path it accepted before (Keras 3 wants ``.keras``, or
    ``.weights.h5`` with ``save_weights_only``; Keras 2 took ``.h5``, ``.ckpt`` and bare SavedModel folders)."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    with tempfile.TemporaryDirectory() as folder:
        outcomes = {name: _checkpoint_outcome(k, Path(folder), name) for name in CHECKPOINT_PATHS}
    ctx.record("outcomes", outcomes, kind="outcomes")
    ctx.check("keras_format_saves", outcomes["keras"] == "saved" or "rejected" in outcomes["keras"], **outcomes)


def _learning_rate(model: Any) -> float:
    return float(np.asarray(to_numpy(model.optimizer.learning_rate)))


@scenario(area="callbacks", requires=["keras"])
def keras_early_stopping(ctx: Context) -> None:
    """Catches ``EarlyStopping`` stopping at another epoch (``stopped_epoch``) or ``restore_best_weights`` no longer
    restoring the first epoch's weights, with a ``min_delta`` no epoch can meet (so it must stop after ``patience``)."""
    k = keras()
    x, y = fixed_data()
    model = _compiled(k)
    after_first: list[np.ndarray] = []

    def snapshot(callback: Any, epoch: int, logs: Any = None) -> None:
        if epoch == 0:
            after_first.extend(np.array(w) for w in callback.model.get_weights())

    Snapshot = type("Snapshot", (k.callbacks.Callback,), {"on_epoch_end": snapshot})
    stop = k.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=10.0, restore_best_weights=True)
    history = model.fit(x, y, epochs=10, batch_size=8, shuffle=False, verbose=0, callbacks=[Snapshot(), stop])
    ctx.record("stopped_epoch", int(stop.stopped_epoch))
    ctx.record("epochs_run", len(history.history["loss"]))
    restored = all(np.array_equal(a, b) for a, b in zip(after_first, model.get_weights(), strict=True))
    ctx.record("restored_first_epoch_weights", bool(restored), kind="config")
    ctx.check("stopped_early", len(history.history["loss"]) < 10, epochs=len(history.history["loss"]))


@scenario(area="callbacks", requires=["keras"])
def keras_reduce_lr_on_plateau(ctx: Context) -> None:
    """Catches a change of ``ReduceLROnPlateau``'s learning-rate trace (a plateau every epoch halves it) and of the
    History key it logs under (``lr`` in Keras 2, ``learning_rate`` in Keras 3)."""
    k = keras()
    x, y = fixed_data()
    model = _compiled(k, learning_rate=0.4)
    trace: list[float] = []

    def read(callback: Any, epoch: int, logs: Any = None) -> None:
        trace.append(_learning_rate(callback.model))

    Trace = type("Trace", (k.callbacks.Callback,), {"on_epoch_end": read})
    reduce = k.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0, min_lr=0.01)
    history = model.fit(x, y, epochs=4, batch_size=8, shuffle=False, verbose=0, callbacks=[reduce, Trace()])
    ctx.record("learning_rates", np.array(trace, dtype=np.float64))
    ctx.record("history_keys", sorted(history.history), kind="config")
    ctx.check("halved", trace[-1] < 0.4, trace=trace)


@scenario(area="callbacks", requires=["keras"])
def keras_csv_logger_and_hook_order(ctx: Context) -> None:
    """Catches a change of ``CSVLogger``'s columns and of the order Keras calls a custom callback's hooks in
    ``fit`` (with validation), ``evaluate`` and ``predict`` (a callback written for one order misfires)."""
    k = keras()
    x, y = fixed_data()
    model = fixed_model(k)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["mae"])
    calls: list[str] = []
    hooks = [name for name in dir(k.callbacks.Callback) if name.startswith("on_")]

    def recorder(name: str) -> Any:
        return lambda self, *args, **kwargs: calls.append(name) if not calls or calls[-1] != name else None

    order_class = type("HookOrder", (k.callbacks.Callback,), {name: recorder(name) for name in hooks})
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.csv"
        model.fit(x, y, epochs=1, batch_size=8, validation_split=0.25, verbose=0,
                  callbacks=[k.callbacks.CSVLogger(str(log)), order_class()])  # fmt: skip
        with log.open() as stream:
            ctx.record("csv_columns", next(csv.reader(stream)), kind="config")
    model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[order_class()])
    model.predict(x, batch_size=8, verbose=0, callbacks=[order_class()])
    ctx.record("hook_order", calls, kind="config")
    ctx.check("train_begins_first", calls[:1] == ["on_train_begin"], first=calls[:3])
