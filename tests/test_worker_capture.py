"""Warnings with their origin: Python warnings, log records (absl included) and warning lines of the output."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from harness.worker import capture
from harness.worker.protocol import WarningRecord

ROOT = Path(__file__).resolve().parent.parent
SITE = os.sep.join(["", "venv", "lib", "python3.11", "site-packages"])


def _call_as(module_name: str, source: str, **names: object) -> None:
    """Run ``source`` as code of a module called ``module_name`` (no such module is imported or created)."""
    exec(compile(source, f"{module_name}.py", "exec"), {"__name__": module_name, "warnings": warnings, **names})


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("torch", True),
        ("torch.serialization", True),
        ("keras.src.saving.saving_api", True),
        ("tf_keras.src.engine", True),
        ("tensorflow.python.util.deprecation", True),
        ("torchvision.models", True),
        ("jax._src.api", True),
        ("random", False),
        ("absl.logging", False),
        ("numpy.core", False),
        ("torchaudio_like_but_not", False),
        ("scenarios.save_load", False),
        ("", False),
    ],
)
def test_framework_is_decided_by_the_top_level_package(module, expected):
    assert capture.is_framework(module) is expected


def test_module_of_file_from_the_path():
    assert capture.module_of_file(os.path.join(SITE, "torch", "serialization.py")) == "torch.serialization"
    assert capture.module_of_file(os.path.join(SITE, "keras", "src", "__init__.py")) == "keras.src"
    assert capture.module_of_file(random.__file__) == "random"  # imported: found through sys.modules
    assert capture.module_of_file(os.path.join(os.path.dirname(random.__file__), "not_imported_x.py")) == (
        "not_imported_x"
    )
    assert capture.module_of_file("<frozen importlib._bootstrap>") == "importlib._bootstrap"
    assert capture.module_of_file("<string>") == ""


def test_framework_warning_is_the_frameworks_even_when_it_points_at_the_caller():
    with capture.capture() as collector:
        _call_as("torch.serialization", "warnings.warn('weights_only will default to True', FutureWarning, 2)")
    [item] = collector.items
    assert item == {
        "source": "warnings",
        "category": "FutureWarning",
        "message": "weights_only will default to True",
        "module": "torch.serialization",
        "framework": True,
    }


def test_scenario_warning_with_stacklevel_1_is_not_a_frameworks():
    with capture.capture() as collector:
        warnings.warn("scenario's own", UserWarning, stacklevel=1)
    assert collector.items[0]["module"] == __name__ and collector.items[0]["framework"] is False


@pytest.mark.skipif(sys.version_info[:2] not in ((3, 10), (3, 11)), reason="randrange(float) warns in 3.10-3.11")
def test_stdlib_deprecation_inside_a_framework_call_is_the_stdlib():
    # random.randrange warns with stacklevel=2, so the warning's filename is the (framework) caller's file.
    with capture.capture() as collector:
        _call_as("tensorflow.python.data.ops", "random.randrange(1.0)", random=random)
    [item] = collector.items
    assert item["category"] == "DeprecationWarning" and "randrange" in item["message"]
    assert (item["module"], item["framework"]) == ("random", False)


def test_stdlib_module_warning_with_stacklevel_1_is_the_stdlibs():
    with capture.capture() as collector:
        _call_as("json.decoder", "warnings.warn('old json thing', DeprecationWarning, stacklevel=1)")
    assert (collector.items[0]["module"], collector.items[0]["framework"]) == ("json.decoder", False)


def test_absl_log_record_is_captured_with_its_caller():
    with capture.capture() as collector:
        logging.getLogger("absl").warning("You are saving your model as an HDF5 file %s", "(legacy)")
        logging.getLogger("absl").info("not a warning")
    assert collector.items == [
        {
            "source": "logging",
            "category": "WARNING",
            "message": "You are saving your model as an HDF5 file (legacy)",
            "module": __name__,
            "framework": False,
        }
    ]


def test_framework_logger_and_non_propagating_logger_are_captured():
    quiet = logging.getLogger("compat_test_quiet")
    quiet.propagate = False
    try:
        with capture.capture() as collector:
            logging.getLogger("tensorflow").error("graph broke")
            quiet.warning("still seen")
        assert [(i["category"], i["message"], i["framework"]) for i in collector.items] == [
            ("ERROR", "graph broke", True),
            ("WARNING", "still seen", False),
        ]
    finally:
        quiet.propagate = True
    assert all(capture.Collector not in map(type, h.handlers) for h in (logging.getLogger(), quiet))


def test_stderr_lines_that_look_like_warnings():
    output = "\n".join(
        [
            "plain progress 3/10",
            f"{SITE}/keras/src/a.py:3: UserWarning: \x1b[33mbad input\x1b[0m",
            "WARNING:tensorflow:retracing happened",
            "W0000 00:00:1733.123 1234 cpu_feature_guard.cc:12] AVX512 not used",
            "WARNING:absl:already collected through logging",
        ]
    )
    known: list[WarningRecord] = [
        {"source": "logging", "category": "WARNING", "message": "already collected through logging",
         "module": "x", "framework": False},
    ]  # fmt: skip
    found = capture.stderr_warnings(output, known)
    assert [(f["category"], f["message"], f["module"], f["framework"]) for f in found] == [
        ("UserWarning", "bad input", "keras.src.a", True),
        ("WARNING", "retracing happened", "tensorflow", True),
        ("WARNING", "W0000 00:00:1733.123 1234 cpu_feature_guard.cc:12] AVX512 not used", "", False),
    ]
    assert {f["source"] for f in found} == {"stderr"}


def test_deduplicated_keeps_order_and_the_cap():
    item: WarningRecord = {"source": "warnings", "category": "W", "message": "m", "module": "", "framework": False}
    items = [item, dict(item), {**item, "message": "n"}, {**item, "message": "o"}]
    assert [i["message"] for i in capture.deduplicated(items)] == ["m", "n", "o"]
    assert [i["message"] for i in capture.deduplicated(items, limit=2)] == ["m", "n"]


TINY = """
import logging, sys, warnings
from harness.worker import capture
from harness.worker.scenario import scenario


@scenario(area="tiny")
def noisy(ctx):
    warnings.warn("scenario deprecation", DeprecationWarning, stacklevel=1)
    warnings.warn("scenario deprecation", DeprecationWarning, stacklevel=1)
    logging.getLogger("absl").warning("legacy HDF5 format")
    print("W0000 00:00:1.0 1 cc_file.cc:1] a C++ warning", file=sys.stderr)
    with capture.capture():  # what a scenario recording one call's warnings does
        logging.getLogger("absl").warning("said inside a nested capture")
    ctx.check("fine", True)
"""

RUN = """
import json, sys
from pathlib import Path
from harness.worker.loop import run_scenario
from harness.worker.scenario import discover
entry = discover(["tiny_scenarios"])["tiny.noisy"]
print(json.dumps(run_scenario(entry, Path(sys.argv[1]), 1337)))
"""


def test_run_scenario_collects_all_three_sources_once(tmp_path):
    package = tmp_path / "tiny_scenarios"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "probe.py").write_text(TINY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(tmp_path)], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(proc.stdout)
    assert [(w["source"], w["category"], w["message"], w["module"]) for w in result["warnings"]] == [
        ("warnings", "DeprecationWarning", "scenario deprecation", "tiny_scenarios.probe"),
        ("logging", "WARNING", "legacy HDF5 format", "tiny_scenarios.probe"),
        ("logging", "WARNING", "said inside a nested capture", "tiny_scenarios.probe"),
        ("stderr", "WARNING", "W0000 00:00:1.0 1 cc_file.cc:1] a C++ warning", ""),
    ]
    # logging still prints what it printed without the capture, once
    assert result["output_tail"].count("legacy HDF5 format") == 1
    assert result["output_tail"].count("said inside a nested capture") == 1


def test_a_nested_capture_does_not_take_warnings_from_the_outer_one():
    with capture.capture() as outer:
        with capture.capture() as inner:
            _call_as("keras.src.saving", "warnings.warn('h5 is legacy', UserWarning, 2)")
            logging.getLogger("absl").warning("absl says so")
        warnings.warn("after the inner one", UserWarning, stacklevel=1)
    assert [(i["message"], i["module"]) for i in inner.items] == [
        ("h5 is legacy", "keras.src.saving"),
        ("absl says so", __name__),
    ]
    assert [i["message"] for i in outer.items] == ["h5 is legacy", "absl says so", "after the inner one"]
    assert outer.items[0]["module"] == "keras.src.saving"  # attributed to the raiser, not to the forwarding


ABSL_FILE = os.path.join(SITE, "absl", "logging", "__init__.py")
LOG_THROUGH_ABSL = (
    "logging.getLogger('absl').handle(logging.LogRecord('absl', 30, path, 1, 'HDF5 is legacy', None, None))"
)


def test_a_record_carrying_absls_own_path_is_the_callers():
    # Keras 3 logs through absl.logging.warning, whose records can name absl's file: the live stack names Keras.
    with capture.capture() as collector:
        _call_as("keras.src.saving.saving_api", LOG_THROUGH_ABSL, logging=logging, path=ABSL_FILE)
    [item] = collector.items
    assert (item["source"], item["message"]) == ("logging", "HDF5 is legacy")
    assert (item["module"], item["framework"]) == ("keras.src.saving.saving_api", True)
