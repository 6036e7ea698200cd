"""Loads as a user loads: the plain call decides; a fallback that works is a finding (no framework needed)."""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from harness.worker import capture
from scenarios import _loads, _torch_io
from scenarios import relay as relay_scenarios


def _refuse(message: str):
    def call():
        raise ValueError(message)

    return call


def test_plain_call_that_works_is_the_outcome():
    attempt = _loads.load_as_user(lambda: "model", [_loads.Fallback("loaded-x", "x=1", lambda: "other")])
    assert (attempt.value, attempt.how, attempt.plain_error) == ("model", _loads.PLAIN, None)
    assert _loads.finding(attempt) == ""


def test_fallback_that_works_is_a_finding_with_the_plain_calls_error():
    fallbacks = [
        _loads.Fallback("loaded-with-custom-objects", "custom_objects", _refuse("still broken")),
        _loads.Fallback("loaded-without-compile", "compile=False", lambda: "model"),
    ]
    attempt = _loads.load_as_user(_refuse("Could not deserialize 'keras.metrics.mse'\nsecond line"), fallbacks)
    assert (attempt.value, attempt.how, attempt.option) == ("model", "loaded-without-compile", "compile=False")
    assert _loads.finding(attempt) == (
        "loads only with compile=False: ValueError: Could not deserialize 'keras.metrics.mse'\nsecond line"
    )


def test_nothing_works_raises_the_plain_calls_error_not_a_fallbacks():
    with pytest.raises(ValueError, match="the plain error"):
        _loads.load_as_user(_refuse("the plain error"), [_loads.Fallback("h", "o", _refuse("fallback error"))])


def test_warnings_of_a_load_are_recorded_and_still_reach_the_cell():
    def noisy():
        warnings.warn("weights_only default will change", FutureWarning, stacklevel=1)
        return "model"

    with capture.capture() as cell:
        attempt = _loads.load_as_user(noisy)
    assert attempt.warnings == ["FutureWarning: weights_only default will change"]
    assert [w["message"] for w in cell.items] == ["weights_only default will change"]


def test_only_a_format_labelled_unsafe_may_fall_back_to_unpickling():
    fallback = _torch_io.TorchFallback("loaded-with-weights-only-false", "weights_only=False", lambda f: None)
    with pytest.raises(ValueError, match="only a format labelled unsafe"):
        _torch_io.TorchFormat("state_dict", lambda: None, lambda m, o, f: None, lambda f: None, fallback=fallback)
    assert all(f.unsafe for f in _torch_io.FORMATS.values() if f.fallback is not None)
    assert _torch_io.FORMATS["pickle_default_load"].fallback is not None


class _FakeTorch(types.ModuleType):
    """Stands in for torch.load: records each call; refuses weights_only=True when told to."""

    def __init__(self, refuse_weights_only: bool) -> None:
        super().__init__("torch")
        self.calls: list[dict] = []
        self.refuse = refuse_weights_only

    def load(self, path, **kwargs):
        self.calls.append(kwargs)
        if self.refuse and kwargs.get("weights_only") is True:
            raise RuntimeError("Weights only load failed: GLOBAL os.system")
        return {"w": 1}


@pytest.mark.parametrize("refuse", [False, True])
def test_plain_load_of_a_safe_format_unpickles_only_what_weights_only_accepts(monkeypatch, tmp_path, refuse):
    fake = _FakeTorch(refuse)
    monkeypatch.setitem(sys.modules, "torch", fake)
    if refuse:
        with pytest.raises(RuntimeError, match=r"GLOBAL os\.system"):
            _torch_io.plain_load(tmp_path / "model.pt")
        assert fake.calls == [{"weights_only": True}]  # the plain (unpickling) call never ran
    else:
        assert _torch_io.plain_load(tmp_path / "model.pt") == {"w": 1}
        assert fake.calls == [{"weights_only": True}, {}]  # the last call is the user's: no argument


def test_plain_load_of_an_unsafe_format_is_the_bare_call(monkeypatch, tmp_path):
    fake = _FakeTorch(refuse_weights_only=True)
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert _torch_io.plain_load(tmp_path / "model.pkl", unsafe=True) == {"w": 1}
    assert fake.calls == [{}]


def test_relay_consumer_reports_fallback_only_with_the_plain_error(monkeypatch, tmp_path):
    folder = tmp_path / "torch" / "tinynet" / "pickle_default_load"
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(b"pickle")
    x, _ = _torch_io.fixed_inputs()
    plain = RuntimeError("\x1b[1mWeights only load failed\x1b[0m: weights_only is now True by default")
    loaded = _torch_io.TorchLoaded(predict=lambda inputs: np.zeros((len(inputs), 3), dtype=np.float32))
    attempt = _loads.LoadAttempt(loaded, "loaded-with-weights-only-false", "weights_only=False", plain)
    monkeypatch.setattr(_torch_io, "load", lambda fmt, where: attempt)
    entry = {
        "family": "torch", "model": "tinynet", "format": "pickle_default_load", "unsafe": True,
        "path": "torch/tinynet/pickle_default_load", "files": relay_scenarios.file_hashes(folder),
        "predictions": np.zeros((len(x), 3)).tolist(), "optimizer": {"count": 0, "sha256": ""},
    }  # fmt: skip
    result = relay_scenarios.consume_entry(entry, tmp_path, unsafe_refusal="")  # as in the sandbox: may load it
    assert result["outcome"] == "fallback-only" and result["how"] == "loaded-with-weights-only-false"
    assert result["unsafe"] and result["sandboxed"]
    assert result["error_class"] == "RuntimeError"
    assert result["message"] == "RuntimeError: Weights only load failed: weights_only is now True by default"
    assert result["max_abs_error"] == 0.0  # the numbers of what the fallback loaded are kept


def test_relay_consumer_of_a_plain_load_keeps_its_outcome(monkeypatch, tmp_path):
    folder = tmp_path / "torch" / "tinynet" / "state_dict"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"tensors")
    loaded = _torch_io.TorchLoaded(predict=lambda inputs: np.ones((len(inputs), 3), dtype=np.float32))
    monkeypatch.setattr(_torch_io, "load", lambda fmt, where: _loads.LoadAttempt(loaded))
    x, _ = _torch_io.fixed_inputs()
    entry = {
        "family": "torch", "model": "tinynet", "format": "state_dict", "path": "torch/tinynet/state_dict",
        "files": relay_scenarios.file_hashes(folder), "predictions": np.ones((len(x), 3)).tolist(),
    }  # fmt: skip
    result = relay_scenarios.consume_entry(entry, tmp_path)
    assert (result["outcome"], result["how"]) == ("loaded", "loaded") and "error_class" not in result


def test_relay_skips_without_its_folders_in_the_context():
    from harness.worker.scenario import Context, Skipped

    with pytest.raises(Skipped, match="no artifacts_dir in the plan's context"):
        relay_scenarios.produce(Context("relay.produce"))
    with pytest.raises(Skipped, match="no relay_source in the plan's context"):
        relay_scenarios.consume(Context("relay.consume[a:torch:state_dict]", "a:torch:state_dict"))
    ctx = Context("relay.consume[a:torch:x]", "a:torch:x", {"relay_source": str(Path("/nowhere"))})
    assert ctx.relay_source == Path("/nowhere") and ctx.artifacts_dir is None and ctx.environment == ""
