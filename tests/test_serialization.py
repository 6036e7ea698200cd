"""The serialization scenarios' own logic, offline: outcome bookkeeping, the schedule's closed form, and the fresh
interpreter's protocol and time bound (driven with stand-in modules on the path: the plumbing, not a framework)."""

from __future__ import annotations

import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

from harness.worker.scenario import Context
from scenarios import serialization


def test_outcomes_name_the_error_class_and_keep_the_text_apart():
    found = serialization.Outcomes()
    assert found.run("ok", lambda: 42) == 42
    assert found.run("saved", lambda: None, serialization.SAVED) is None

    def refuse() -> None:
        raise ValueError("Invalid filepath extension for saving")

    assert found.run("bare", refuse) is None
    assert found.outcomes == {"ok": "loaded", "saved": "saved", "bare": "ValueError"}
    ctx = Context("serialization.x")
    found.record(ctx, "saves")
    assert ctx.records["saves"] == ("outcomes", {"ok": "loaded", "saved": "saved", "bare": "ValueError"})
    kind, errors = ctx.records["saves_errors"]
    assert kind == "info" and "Invalid filepath extension" in errors["bare"]


def test_outcomes_without_errors_record_no_error_text():
    found = serialization.Outcomes()
    found.run("ok", lambda: 1)
    ctx = Context("serialization.x")
    found.record(ctx, "loads")
    assert set(ctx.records) == {"loads"}


def test_next_rate_is_exponential_decay_after_three_steps():
    # ExponentialDecay: lr0 * rate ** (step / decay_steps) = 0.1 * 0.5 ** 0.3 = 0.1 * exp(-0.3 ln 2)
    assert abs(serialization.NEXT_RATE - 0.0812252396) <= 1e-10


def test_written_configs_differ_where_the_generations_do():
    configs = serialization.WRITTEN_CONFIGS
    assert configs["MeanSquaredError"]["keras2"]["reduction"] == "auto"
    assert configs["MeanSquaredError"]["keras3"]["reduction"] == "sum_over_batch_size"
    assert "is_legacy_optimizer" in configs["Adam"]["keras2"] and "loss_scale_factor" in configs["Adam"]["keras3"]
    assert {generation for entry in configs.values() for generation in entry} == {"keras2", "keras3"}


def _stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> types.ModuleType:
    """A module the child imports by name (on PYTHONPATH); the parent only passes its name."""
    (tmp_path / "modules").mkdir(exist_ok=True)
    (tmp_path / "modules" / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "modules"))
    return types.ModuleType(name)


def _artifacts(tmp_path: Path) -> Path:
    folder = tmp_path / "cell"
    folder.mkdir()
    np.save(folder / "inputs.npy", np.ones((2, 3), dtype=np.float32))
    (folder / "artifact_good").write_text("good")
    (folder / "artifact_bad").write_text("bad")
    return folder


def test_the_child_loads_each_artifact_and_reports_outcome_and_class(tmp_path, monkeypatch):
    module = _stand_in(
        tmp_path,
        monkeypatch,
        "stand_in_keras",
        """
        import types
        from pathlib import Path

        class Doubler:
            def __call__(self, x, training=False):
                return x * 2

        def load_model(path):
            if Path(path).read_text() != "good":
                raise KeyError(path)
            return Doubler()

        models = types.SimpleNamespace(load_model=load_model)
        layers = types.SimpleNamespace()
        """,
    )
    folder = _artifacts(tmp_path)
    loads = serialization._run_child(module, folder)
    assert loads == {
        "artifact_bad": {"outcome": "KeyError", "class": ""},
        "artifact_good": {"outcome": "loaded", "class": "Doubler"},
    }
    np.testing.assert_array_equal(np.load(folder / "artifact_good.npy"), np.full((2, 3), 2.0, dtype=np.float32))


def test_a_child_that_hangs_is_killed_within_the_bound_and_errors_the_cell(tmp_path, monkeypatch):
    module = _stand_in(tmp_path, monkeypatch, "stand_in_hang", "import time\ntime.sleep(60)\n")
    monkeypatch.setattr(serialization, "CHILD_TIMEOUT", 1.0)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not finish within 1 s"):
        serialization._run_child(module, _artifacts(tmp_path))
    assert time.monotonic() - started < 10


def test_a_child_that_crashes_errors_the_cell_with_its_stderr(tmp_path, monkeypatch):
    module = _stand_in(tmp_path, monkeypatch, "stand_in_crash", "raise SystemExit('no framework here')\n")
    with pytest.raises(RuntimeError, match=r"exited 1: .*no framework here"):
        serialization._run_child(module, _artifacts(tmp_path))
