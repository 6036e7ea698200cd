"""distribution: data parallelism on one machine, where an upgrade can change the numbers or the plumbing.

A team develops its multi-replica training on a laptop: ``MirroredStrategy`` over two logical CPUs, or torch DDP
with the gloo backend in two local processes. Both promise the same result as one device (gradients averaged over
the replicas, variables kept in sync); what upgrades moved is the machinery around it (Keras 3 wraps TensorFlow's
``MirroredVariable`` in its own ``Variable``; DDP's constructor and store changed across torch releases).

Logical devices must be configured before TensorFlow initialises its devices, which the worker has done long before
a scenario runs, and DDP needs processes of its own: so each scenario runs its framework part in ONE fresh
sub-process of the environment's interpreter (``sys.executable``, the worker's environment inherited), which prints
its result as one JSON line on stdout. The sub-process runs in its own session and dies with its parent; it is
bounded in time, and on a timeout its whole process group is killed: a failure there is this cell's error only.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario

#: The prefix of the one stdout line that carries a sub-process's result (frameworks may print on stdout too).
RESULT_MARK = "compat-matrix-result: "
#: Seconds a sub-process may take: TensorFlow's import alone is 3-7 s on a busy 2-core machine.
CHILD_TIMEOUT_S = 120.0
#: The one-process DDP cell takes 0.1-0.8 s. It used to hang in torch 2.13 about once in 25 runs on a loaded machine
#: (the destructor deadlock ``_KEPT_ALIVE`` avoids): a short bound keeps any other hang to half a minute of the run.
ONE_PROCESS_TIMEOUT_S = 30.0
#: Seconds a gloo rank waits for its peer before giving up (init and collectives).
GLOO_TIMEOUT_S = 30
FEATURES, HIDDEN, UNITS, SAMPLES, WORLD = 4, 5, 3, 16, 2
#: One step from the same weights on the same data: replicas only reorder float32 sums (measured 3e-8).
ONE_STEP_TOLERANCE = 1e-6
_ROOT = Path(__file__).resolve().parent.parent


# --- the sub-process: start, bound, clean up, read ---------------------------------------------------------------


@dataclass(frozen=True)
class ChildOutcome:
    """What a sub-process left: its result line (None without one), exit code (None when killed), its stderr."""

    payload: dict[str, Any] | None
    returncode: int | None
    stderr: str
    seconds: float
    timed_out: bool

    def problem(self) -> str | None:
        """Why there is no usable result, in words for the cell's message; None when there is one."""
        if self.timed_out:
            return f"sub-process timed out after {self.seconds:.0f} s; its process group was killed"
        if self.payload is None:
            tail = self.stderr.strip().splitlines()[-3:]
            return f"sub-process exited with {self.returncode} and no result line: {' | '.join(tail)}"
        return None


def parse_payload(stdout: str) -> dict[str, Any] | None:
    """The last result line's JSON object, or None when the sub-process printed none (or a broken one)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            try:
                value = json.loads(line[len(RESULT_MARK) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def child_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with this repository first on ``PYTHONPATH``, so the sub-process imports these scenarios."""
    paths = [str(_ROOT), *[p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(_ROOT)]]
    return {**base, "PYTHONPATH": os.pathsep.join(paths)}


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in the group (ranks a sub-process forked included); gone already is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def start_child(code: str, env: Mapping[str, str] | None, stderr: int, text: bool) -> subprocess.Popen[Any]:
    """``code`` in a fresh ``sys.executable``, in a session of its own (its group is killed as one), stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=text,
        env=child_environment(env if env is not None else os.environ),
        start_new_session=True,
    )


def run_child(code: str, timeout: float = CHILD_TIMEOUT_S, env: Mapping[str, str] | None = None) -> ChildOutcome:
    """Run ``code`` in a fresh ``sys.executable`` in its own session; kill its group on timeout and after it."""
    started = time.perf_counter()
    proc = start_child(code, env, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        stdout, stderr = proc.communicate()
        timed_out = True
    finally:
        kill_group(proc.pid)  # a rank the sub-process forked must not outlive it
    seconds = time.perf_counter() - started
    payload = None if timed_out else parse_payload(stdout)
    return ChildOutcome(payload, None if timed_out else proc.returncode, stderr[-4000:], seconds, timed_out)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a worker killed on timeout leaves no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


def child_main(body: Callable[[], dict[str, Any]]) -> None:
    """The sub-process side: run ``body`` and print its result line, or an ``error`` line with the text."""
    die_with_parent()
    try:
        payload = body()
    except Exception as exc:
        payload = {"error": error_text(exc)}
    print(RESULT_MARK + json.dumps(payload), flush=True)
    sys.stderr.flush()
    os._exit(0)  # no destructors: the DDP wrappers in ``_KEPT_ALIVE`` must not be dropped at interpreter exit


def child_result(ctx: Context, code: str, timeout: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    """Run the sub-process; its result, or this cell's error, skip or failure with the sub-process's words."""
    outcome = run_child(code, timeout)
    ctx.record("subprocess_seconds", round(outcome.seconds, 1), kind="info")
    problem = outcome.problem()
    if problem is not None:
        raise RuntimeError(problem)
    payload = outcome.payload or {}
    if "skip" in payload:
        ctx.skip(str(payload["skip"]))
    if "error" in payload:
        raise RuntimeError(f"in the sub-process: {payload['error']}")
    return payload


def flat(arrays: list[Any]) -> list[float]:
    """Every value of ``arrays`` in order, as one list of floats (JSON carries it; the parent makes it an array)."""
    return [float(v) for a in arrays for v in np.asarray(a, dtype=np.float64).ravel()]


def fixed_data() -> tuple[np.ndarray, np.ndarray]:
    """Inputs and class labels from NumPy's generator: the same bytes in every environment and process."""
    rng = np.random.default_rng(20261219)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype(np.float32)
    return x, rng.integers(0, UNITS, size=SAMPLES)


def fixed_weights(shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.uniform(-0.5, 0.5, size=shape).astype(np.float32) for shape in shapes]


def max_gap(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


# --- TensorFlow: MirroredStrategy over two logical CPUs ----------------------------------------------------------


def _keras_model(k: Any) -> Any:
    model = k.Sequential([k.Input((FEATURES,)), k.layers.Dense(HIDDEN, activation="tanh"), k.layers.Dense(UNITS)])
    model.set_weights(fixed_weights([tuple(w.shape) for w in model.get_weights()]))
    model.compile(
        optimizer=k.optimizers.SGD(learning_rate=0.1),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _one_fit_step(k: Any) -> tuple[float, list[Any], Any]:
    """One full-batch SGD step from fixed weights: the loss, the weights after, and the model."""
    x, y = fixed_data()
    model = _keras_model(k)
    history = model.fit(x, y, batch_size=SAMPLES, epochs=1, shuffle=False, verbose=0)
    return float(history.history["loss"][0]), model.get_weights(), model


def _tf_variable(variable: Any) -> Any:
    """TensorFlow's variable behind a Keras one: Keras 3 wraps it (``.value`` is a property), Keras 2 is it."""
    value = getattr(variable, "value", None)
    return variable if value is None or callable(value) else value


def _replica_copies_gap(strategy: Any, model: Any) -> float:
    """The largest difference between the replicas' copies of any variable: 0 when they are in sync."""
    gaps = [0.0]
    for variable in model.weights:
        copies = [np.asarray(c) for c in strategy.experimental_local_results(_tf_variable(variable))]
        gaps += [max_gap(copy, copies[0]) for copy in copies[1:]]
    return max(gaps)


def mirrored_body() -> dict[str, Any]:
    """The sub-process: split the CPU in two before anything initialises it, then train mirrored and alone."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * WORLD)
    from harness.worker import determinism
    from scenarios._frameworks import keras, keras_identity

    k = keras()
    seeding = determinism.reset()
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(WORLD)])
    with strategy.scope():
        loss, weights, model = _one_fit_step(k)
    ids = strategy.run(lambda: tf.distribute.get_replica_context().replica_id_in_sync_group)
    single_loss, single_weights, _ = _one_fit_step(k)
    variable = model.weights[0]
    return {
        "keras": keras_identity(),
        "seeding": seeding,
        "logical_cpus": len(tf.config.list_logical_devices("CPU")),
        "replicas_in_sync": int(strategy.num_replicas_in_sync),
        "replica_ids": [int(i) for i in strategy.experimental_local_results(ids)],
        "variable_type": f"{type(variable).__module__}.{type(variable).__name__}",
        "tf_variable_type": type(_tf_variable(variable)).__name__,
        "replica_copies_gap": _replica_copies_gap(strategy, model),
        "losses": [loss, single_loss],
        "mirrored_weights": flat(weights),
        "single_weights": flat(single_weights),
    }


def mirrored_main() -> None:
    child_main(mirrored_body)


@scenario(area="distribution", requires=["keras", "tensorflow"], timeout=CHILD_TIMEOUT_S + 60)
def keras_mirrored_two_cpus(ctx: Context) -> None:
    """Catches ``MirroredStrategy`` over two logical CPUs changing under a Keras upgrade: replicas in sync, the
    variable type a model gets in ``strategy.scope()`` (Keras 3 wraps ``MirroredVariable`` in ``keras.Variable``),
    and one ``fit`` step no longer equal to the single-device step within float32 rounding (measured: Keras 3.3.3
    on TensorFlow 2.16 reports replica 0's half-batch loss and its replicas' copies of a kernel drift apart)."""
    result = child_result(ctx, "from scenarios.distribution import mirrored_main; mirrored_main()")
    ctx.record("keras", result["keras"], kind="info")
    ctx.record("subprocess_seeding", result["seeding"], kind="info")
    ctx.record("replicas", {k: result[k] for k in ("logical_cpus", "replicas_in_sync", "replica_ids")}, kind="config")
    ctx.record("variable_type", {k: result[k] for k in ("variable_type", "tf_variable_type")}, kind="config")
    ctx.record("losses", np.array(result["losses"], dtype=np.float64))
    ctx.record("mirrored_weights", np.array(result["mirrored_weights"], dtype=np.float64))
    gap = max_gap(result["mirrored_weights"], result["single_weights"])
    ctx.check("two_replicas_in_sync", result["replicas_in_sync"] == WORLD, replica_ids=result["replica_ids"])
    ctx.check("replica_copies_equal", result["replica_copies_gap"] == 0.0, gap=result["replica_copies_gap"])
    ctx.check("one_step_equals_single_device", gap <= ONE_STEP_TOLERANCE, max_abs_error=gap)
    loss_gap = max_gap(result["losses"][0], result["losses"][1])
    ctx.check("loss_equals_single_device", loss_gap <= ONE_STEP_TOLERANCE, max_abs_error=loss_gap)


# --- torch: DDP with gloo in two local processes -----------------------------------------------------------------


def loopback_refusal() -> str | None:
    """Why two local processes cannot talk over 127.0.0.1 here (a sandbox whose loopback is down), else None.

    Binding alone is not enough: in a network namespace whose ``lo`` is down, ``bind`` succeeds and ``connect``
    fails ("Network is unreachable"), which is where gloo's store fails too.
    """
    try:
        with socket.socket() as server, socket.socket() as client:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            client.settimeout(5)
            client.connect(server.getsockname())
    except OSError as exc:
        return f"gloo needs TCP on 127.0.0.1 and this machine refuses it: {type(exc).__name__}: {exc}"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _torch_model(torch: Any) -> Any:
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, UNITS))
    with torch.no_grad():
        shapes = [tuple(p.shape) for p in model.parameters()]
        for param, value in zip(model.parameters(), fixed_weights(shapes), strict=True):
            param.copy_(torch.from_numpy(value))
    return model


#: Every DDP wrapper this process made, kept until it ends without running destructors (``os._exit``).
#: torch 2.13 deadlocks when the last reference to a wrapper goes in Python: the Reducer destroys the gloo process
#: group, whose destructor joins its work thread with the GIL held, while that thread waits for the GIL to free the
#: work it just finished (native stacks taken with gdb; 1 in ~25 runs on a loaded 2-core machine).
_KEPT_ALIVE: list[Any] = []


def _rank(rank: int, port: int, queue: Any) -> None:
    """One DDP rank: its half of the batch, backward (DDP all-reduces and averages), one SGD step."""
    import datetime

    import torch
    import torch.distributed as dist

    die_with_parent()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    timeout = datetime.timedelta(seconds=GLOO_TIMEOUT_S)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timeout)
    except Exception as exc:
        queue.put({"rank": rank, "skip": f"gloo could not start its process group: {error_text(exc, 600)}"})
        return
    try:
        model = torch.nn.parallel.DistributedDataParallel(_torch_model(torch))
        _KEPT_ALIVE.append(model)  # dropped on return, it deadlocked rank 0 in about 1 run in 15 on a loaded machine
        x, y = fixed_data()
        shard = slice(rank * SAMPLES // WORLD, (rank + 1) * SAMPLES // WORLD)
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[shard])), torch.from_numpy(y[shard]))
        loss.backward()
        grads = flat([p.grad.detach().numpy() for p in model.parameters()])
        torch.optim.SGD(model.parameters(), lr=0.1).step()
        params = flat([p.detach().numpy() for p in model.parameters()])
        queue.put({"rank": rank, "loss": float(loss.detach()), "grads": grads, "params": params})
    finally:
        dist.destroy_process_group()


def _single_process(torch: Any) -> dict[str, Any]:
    """The reference: the whole batch in one process, the mean loss's gradients."""
    model, (x, y) = _torch_model(torch), fixed_data()
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    return {"loss": float(loss.detach()), "grads": flat([p.grad.detach().numpy() for p in model.parameters()])}


def ddp_body(port: int) -> dict[str, Any]:
    """The sub-process: rank 0 here, rank 1 forked from it once the imports are warm, and the reference."""
    import importlib

    import torch

    # The peer is forked before anything starts threads: importing torch._dynamo first (DDP's constructor imports it
    # lazily) saved seconds but let a fork inherit a held lock, and in a full run the peer hung until the cell's
    # timeout. Each rank imports it after the fork instead (slower on 2 busy cores, never stuck).
    context = torch.multiprocessing.get_context("fork")
    queue = context.Queue()
    peer = context.Process(target=_rank, args=(1, port, queue), daemon=True)
    peer.start()
    importlib.import_module("torch._dynamo")
    _rank(0, port, queue)
    ranks = sorted((queue.get(timeout=GLOO_TIMEOUT_S) for _ in range(WORLD)), key=lambda r: int(r["rank"]))
    peer.join(GLOO_TIMEOUT_S)
    skipped = [r["skip"] for r in ranks if "skip" in r]
    if skipped:
        return {"skip": skipped[0]}
    return {"torch": torch.__version__, "ranks": ranks, "single": _single_process(torch)}


def ddp_main(port: int) -> None:
    child_main(lambda: ddp_body(port))


@scenario(area="distribution", requires=["torch"], timeout=CHILD_TIMEOUT_S + 60)
def torch_ddp_gloo_two_processes(ctx: Context) -> None:
    """Catches DDP with the gloo backend in two local processes no longer averaging gradients to what one process
    computes on the whole batch, the ranks' parameters drifting apart after a step, or the loss moving."""
    refusal = loopback_refusal()
    if refusal is not None:
        ctx.skip(refusal)
    result = child_result(ctx, f"from scenarios.distribution import ddp_main; ddp_main({free_port()})")
    ctx.record("torch", result["torch"], kind="info")
    ranks, single = result["ranks"], result["single"]
    ctx.record("rank_losses", np.array([r["loss"] for r in ranks], dtype=np.float64))
    ctx.record("single_loss", np.array([single["loss"]], dtype=np.float64))
    ctx.record("ddp_grads", np.array(ranks[0]["grads"], dtype=np.float64))
    ctx.record("single_grads", np.array(single["grads"], dtype=np.float64))
    grad_gap = max_gap(ranks[0]["grads"], single["grads"])
    ctx.check("averaged_grads_equal_single_process", grad_gap <= ONE_STEP_TOLERANCE, max_abs_error=grad_gap)
    rank_gap = max_gap(ranks[0]["grads"], ranks[1]["grads"])
    ctx.check("ranks_hold_the_same_grads", rank_gap == 0.0, max_abs_error=rank_gap)
    param_gap = max_gap(ranks[0]["params"], ranks[1]["params"])
    ctx.check("ranks_in_sync_after_step", param_gap == 0.0, max_abs_error=param_gap)
    mean_gap = max_gap(np.mean([r["loss"] for r in ranks]), single["loss"])
    ctx.check("mean_rank_loss_equals_single", mean_gap <= ONE_STEP_TOLERANCE, max_abs_error=mean_gap)


# --- torch: DDP with gloo in the worker's own process (world size 1) -----------------------------------------------


def _single_rank_ddp(torch: Any) -> dict[str, Any]:
    """One gloo rank over an in-memory store: DDP's wrapper, one backward and one SGD step, and the plain model's."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        wrapped = torch.nn.parallel.DistributedDataParallel(_torch_model(torch))
        _KEPT_ALIVE.append(wrapped)
        x, y = fixed_data()
        loss = torch.nn.functional.cross_entropy(wrapped(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        grads = flat([p.grad.detach().numpy() for p in wrapped.parameters()])
        torch.optim.SGD(wrapped.parameters(), lr=0.1).step()
        return {
            "loss": float(loss.detach()),
            "grads": grads,
            "state_dict_keys": sorted(wrapped.state_dict()),
            "module_keys": sorted(wrapped.module.state_dict()),
            "backend": str(dist.get_backend()),
        }
    finally:
        dist.destroy_process_group()


@scenario(area="distribution", requires=["torch"], timeout=ONE_PROCESS_TIMEOUT_S)
def torch_ddp_gloo_one_process(ctx: Context) -> None:
    """Catches DDP's plumbing changing in the default run's time (the two-process scenario runs nightly in
    matrix-extras.yaml): ``init_process_group`` with the gloo backend over an in-memory ``HashStore``, the wrapper's
    ``state_dict`` keys (the ``module.`` prefix checkpoints carry), and one step through DDP equal to one without."""
    import torch

    refusal = loopback_refusal()
    if refusal is not None:
        ctx.skip(refusal)
    ctx.record("torch", torch.__version__, kind="info")
    try:
        ddp = _single_rank_ddp(torch)
    except Exception as exc:
        ctx.fail(f"DDP with gloo in one process: {error_text(exc, 600)}")
    single = _single_process(torch)
    ctx.record("backend", ddp["backend"], kind="config")
    ctx.record("state_dict_keys", ddp["state_dict_keys"], kind="config")
    ctx.record("ddp_loss", np.array([ddp["loss"]], dtype=np.float64), precision="float32")
    ctx.record("ddp_grads", np.array(ddp["grads"], dtype=np.float64), precision="float32")
    prefixed = [f"module.{key}" for key in ddp["module_keys"]]
    ctx.check("state_dict_keys_carry_module_prefix", ddp["state_dict_keys"] == prefixed, keys=ddp["state_dict_keys"])
    gap = max_gap(ddp["grads"], single["grads"])
    ctx.check("one_rank_grads_equal_plain_grads", gap <= ONE_STEP_TOLERANCE, max_abs_error=gap)
    loss_gap = max_gap(ddp["loss"], single["loss"])
    ctx.check("one_rank_loss_equals_plain_loss", loss_gap <= ONE_STEP_TOLERANCE, max_abs_error=loss_gap)


# --- torch: freeing a DDP model after its process group is gone --------------------------------------------------

#: Build, step and drop this many one-rank DDP models in a row; each takes 20-60 ms on a busy 2-core machine. At the
#: interval below torch 2.13 stopped after 2, 3, 3, 9, 30, 38 and 82 (mean 24): 300 leave it no real chance to pass.
TEARDOWN_ITERATIONS = 300
#: A 0.1 ms GIL switch interval makes the race below show early: torch 2.5 ran 200 in each of 3 tries (at the
#: default 5 ms, 2.13 stopped within 2-163 of 300 in 5 tries, 2.5 never in 900).
TEARDOWN_SWITCH_INTERVAL_S = 1e-4
#: No progress line for this long means the sub-process is stuck (a healthy iteration prints within a second).
TEARDOWN_STALL_S = 15.0
PROGRESS_MARK = "compat-matrix-progress: "


def teardown_body() -> dict[str, Any]:
    """The sub-process: one-rank DDP models built, stepped, their process group destroyed, then dropped, in a loop."""
    import importlib

    import torch
    import torch.distributed as dist

    importlib.import_module("torch._dynamo")  # DDP's constructor imports it: seconds, before the first step
    sys.setswitchinterval(TEARDOWN_SWITCH_INTERVAL_S)
    x, y = fixed_data()
    print(f"{PROGRESS_MARK}0", flush=True)  # imported: from here on, a step's silence is the stall clock
    for done in range(1, TEARDOWN_ITERATIONS + 1):
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        try:
            wrapped = torch.nn.parallel.DistributedDataParallel(_torch_model(torch))
            torch.nn.functional.cross_entropy(wrapped(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        finally:
            dist.destroy_process_group()
        del wrapped  # the last reference: the Reducer, and with it the process group, is destroyed here
        print(f"{PROGRESS_MARK}{done}", flush=True)
    return {"torch": torch.__version__, "iterations": TEARDOWN_ITERATIONS}


def teardown_main() -> None:
    child_main(teardown_body)


@dataclass(frozen=True)
class WatchedChild:
    """What a watched sub-process did: its last progress count, whether it stalled, and its outcome otherwise."""

    progress: int
    stalled: bool
    outcome: ChildOutcome | None


def _progress(lines: list[str]) -> int:
    counts = [int(line[len(PROGRESS_MARK) :]) for line in lines if line.startswith(PROGRESS_MARK)]
    return counts[-1] if counts else 0


def run_child_watching(code: str, stall_s: float, timeout: float = CHILD_TIMEOUT_S) -> WatchedChild:
    """Run ``code`` like ``run_child``, but stop it as stalled when, once it printed its first progress line, it
    prints none for ``stall_s``: a deadlock is told from a slow machine by the time since the last step (the
    imports before the first line are bounded by ``timeout`` only)."""
    started = time.perf_counter()
    proc = start_child(code, None, stderr=subprocess.DEVNULL, text=False)
    assert proc.stdout is not None
    output, last = b"", None
    try:
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            chunk = os.read(proc.stdout.fileno(), 1 << 16) if ready else b""
            if ready and not chunk:
                break
            now = time.perf_counter()
            if PROGRESS_MARK.encode() in chunk:
                last = now
            output += chunk
            stalled = last is not None and now - last > stall_s
            if stalled or now - started > timeout:
                return WatchedChild(_progress(output.decode(errors="replace").splitlines()), stalled, None)
        proc.wait(timeout=stall_s)
    finally:
        kill_group(proc.pid)
    text = output.decode(errors="replace")
    outcome = ChildOutcome(parse_payload(text), proc.returncode, "", time.perf_counter() - started, False)
    return WatchedChild(_progress(text.splitlines()), False, outcome)


@scenario(area="distribution", requires=["torch"], timeout=CHILD_TIMEOUT_S + 60)
def torch_ddp_teardown(ctx: Context) -> None:
    """Catches dropping a DDP model after ``destroy_process_group`` deadlocking the process (torch 2.13: the
    Reducer destroys the gloo process group, whose destructor joins its work thread with the GIL held while that
    thread waits for the GIL to free the work it finished; gdb's native stacks). A test suite or notebook that
    builds DDP models one after another hangs; torch 2.5 never did."""
    refusal = loopback_refusal()
    if refusal is not None:
        ctx.skip(refusal)
    watched = run_child_watching("from scenarios.distribution import teardown_main; teardown_main()", TEARDOWN_STALL_S)
    ctx.record("iterations_done", watched.progress, kind="info")
    if watched.outcome is None and not watched.stalled:
        raise RuntimeError(f"sub-process outran {CHILD_TIMEOUT_S:g} s, still progressing ({watched.progress} done)")
    if watched.outcome is not None:
        problem = watched.outcome.problem()
        error = (watched.outcome.payload or {}).get("error")
        if problem or error:
            raise RuntimeError(problem or f"in the sub-process: {error}")
    ctx.record("teardown_deadlocks", watched.stalled, kind="config")
    ctx.check(
        "dropping_ddp_models_never_hangs",
        not watched.stalled,
        iterations_done=watched.progress,
        of=TEARDOWN_ITERATIONS,
        stall_s=TEARDOWN_STALL_S,
    )
