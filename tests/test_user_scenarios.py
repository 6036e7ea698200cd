"""The user's own scenarios (``scenarios.paths`` in matrix.yaml): found beside the matrix file, imported from
``compat_matrix`` like the built-in ones use ``harness.worker.scenario``, namespaced ``user.`` so they never take a
built-in id, and a broken file costing its own cell only. The end-to-end run through a real worker is at the end."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness import cache, matrix
from harness.errors import MatrixError
from harness.pipeline import EnvironmentPipeline
from harness.worker import scenario as scenario_mod

GOOD = '''
from compat_matrix import Context, scenario

@scenario(area="layer_init")
def keras_dense(ctx: Context) -> None:
    """A user scenario named like a built-in one: it must not replace it."""
    import numpy as np
    ctx.record("values", np.arange(6.0).reshape(2, 3))
'''

BROKEN = "from compat_matrix import scenario\n\ndef oops(:\n"

MATRIX = """
scenarios:
  paths: [{paths}]
  ids: ["user.*"]
environments:
  - name: plain
    packages: {{six: "1.16.0"}}
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def _matrix(tmp_path: Path, paths: str) -> matrix.Matrix:
    path = tmp_path / "project" / "matrix.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MATRIX.format(paths=paths))
    return matrix.load(path, scenario_mod.discover(("scenarios",)))


def test_user_ids_are_namespaced_and_leave_the_built_in_alone(tmp_path):
    builtin = scenario_mod.discover(("scenarios",))["layer_init.keras_dense"]
    registry = scenario_mod.discover_paths([_write(tmp_path / "mine", {"layers.py": GOOD})])
    user = registry["user.layer_init_keras_dense"]
    assert user.area == "user" and user.module == "compat_matrix_user.layers"
    assert registry["layer_init.keras_dense"] is builtin


def test_paths_resolve_against_the_matrix_file_not_the_working_directory(tmp_path, monkeypatch):
    _write(tmp_path / "project" / "checks", {"layers.py": GOOD})
    monkeypatch.chdir(tmp_path)  # "checks" does not exist here, only beside the matrix file
    m = _matrix(tmp_path, '"checks"')
    assert m.scenario_paths == ((tmp_path / "project" / "checks").resolve(),)
    assert m.scenario_ids == ("user.layer_init_keras_dense",)


def test_a_path_that_does_not_exist_is_an_error_naming_file_line_and_key(tmp_path):
    with pytest.raises(MatrixError) as caught:
        _matrix(tmp_path, '"nowhere"')
    message = str(caught.value)
    assert "matrix.yaml:3: scenarios.paths[0]" in message and "nowhere" in message


def test_a_file_that_does_not_import_is_one_error_scenario_of_its_own(tmp_path):
    folder = _write(tmp_path / "mine", {"layers.py": GOOD, "broken.py": BROKEN})
    registry = scenario_mod.discover_paths([folder])
    assert "user.layer_init_keras_dense" in registry  # the good file is unaffected
    broken = registry["user.import_broken"]
    with pytest.raises(ImportError, match=r"broken\.py does not import: SyntaxError"):
        broken.func(scenario_mod.Context("user.import_broken"))


def test_two_files_of_one_name_do_not_shadow_each_other_silently(tmp_path):
    first = _write(tmp_path / "a", {"layers.py": GOOD})
    second = _write(tmp_path / "b", {"layers.py": GOOD.replace("keras_dense", "other")})
    registry = scenario_mod.discover_paths([first, second])
    assert "user.layer_init_keras_dense" in registry and "user.layer_init_other" not in registry
    with pytest.raises(ImportError, match=r"another user scenario file is named layers\.py"):
        registry["user.import_layers"].func(scenario_mod.Context("user.import_layers"))


def test_each_load_starts_the_user_scenarios_afresh(tmp_path):
    scenario_mod.discover_paths([_write(tmp_path / "a", {"layers.py": GOOD})])
    registry = scenario_mod.discover_paths([_write(tmp_path / "b", {"other.py": GOOD.replace("keras_dense", "x")})])
    assert "user.layer_init_x" in registry and "user.layer_init_keras_dense" not in registry


def test_a_helper_module_the_scenario_imports_relatively_is_in_its_cache_key(tmp_path):
    folder = _write(
        tmp_path / "mine",
        {"_helpers.py": "SCALE = 1.0\n", "layers.py": GOOD.replace("import numpy as np", "from . import _helpers")},
    )
    scenario_mod.discover_paths([folder])
    before = cache.source_digest("compat_matrix_user.layers")
    (folder / "_helpers.py").write_text("SCALE = 2.0\n")
    cache.source_digest.cache_clear()
    assert cache.source_digest("compat_matrix_user.layers") != before


@pytest.mark.integration  # provisions a real venv with uv from the package registry
def test_user_scenarios_run_in_a_real_worker_and_a_broken_file_costs_its_own_cell(tmp_path):
    _write(tmp_path / "project" / "checks", {"layers.py": GOOD, "broken.py": BROKEN})
    m = _matrix(tmp_path, '"checks"')
    environ = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    doc = EnvironmentPipeline(
        m, "plain", tmp_path / "results" / "r", tmp_path / "venvs" / "plain", scenario_mod.get(), run_id="r",
        environ=environ,
    ).run()  # fmt: skip
    statuses = {c.id: c.status for c in doc.scenarios}
    assert statuses == {"user.import_broken": "error", "user.layer_init_keras_dense": "pass"}
    assert "broken.py does not import: SyntaxError" in doc.cell("user.import_broken").message
    with np.load(tmp_path / "results" / "r" / doc.records_file) as data:
        assert data["user.layer_init_keras_dense::values"].tolist() == [[0, 1, 2], [3, 4, 5]]


LIBRARY_SCENARIO = '''
from compat_matrix import Context, scenario

@scenario(area="mylib")
def scale(ctx: Context) -> None:
    """Our own library, installed into the environment from the matrix's local: folder."""
    import mylib
    ctx.record("scaled", mylib.scale([1.0, 2.0]))
'''


def _library(root: Path, factor: float) -> Path:
    (root / "mylib").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mylib"\nversion = "0.1"\n'
    )
    (root / "mylib" / "__init__.py").write_text(f"def scale(xs):\n    return [x * {factor} for x in xs]\n")
    return root


def test_local_code_must_be_a_project_or_a_wheel(tmp_path):
    (tmp_path / "project" / "notaproject").mkdir(parents=True)
    path = tmp_path / "project" / "matrix.yaml"
    path.write_text("local: [notaproject]\n" + MATRIX.format(paths=""))
    with pytest.raises(MatrixError, match=r"matrix.yaml:1: local\[0\]: 'notaproject' is neither a project folder"):
        matrix.load(path, scenario_mod.discover(("scenarios",)))


@pytest.mark.integration  # provisions a real venv with uv and builds the user's library with setuptools from PyPI
def test_the_users_library_is_installed_and_an_edit_is_measured_again(tmp_path):
    _write(tmp_path / "project" / "checks", {"uses_lib.py": LIBRARY_SCENARIO})
    library = _library(tmp_path / "project" / "mylib", 2.0)
    path = tmp_path / "project" / "matrix.yaml"
    path.write_text("local: [mylib]\n" + MATRIX.format(paths='"checks"'))
    environ = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}

    def run(run_id: str) -> tuple[list[float], str]:
        m = matrix.load(path, scenario_mod.discover(("scenarios",)))
        pipeline = EnvironmentPipeline(
            m, "plain", tmp_path / "results" / run_id, tmp_path / "venvs" / "plain", scenario_mod.get(),
            run_id=run_id, environ=environ, cache=cache.CellCache(tmp_path / "cells"),
        )  # fmt: skip
        doc = pipeline.run()
        assert doc.cell("user.mylib_scale").status == "pass", doc.cell("user.mylib_scale").message
        with np.load(tmp_path / "results" / run_id / doc.records_file) as data:
            return data["user.mylib_scale::scaled"].tolist(), doc.environment.resolved.lock_sha256

    first, lock = run("r1")
    assert first == [2.0, 4.0]
    _library(library, 3.0)  # an edit of the library: installed again, its cell measured again (not reused)
    second, edited_lock = run("r2")
    assert second == [3.0, 6.0] and edited_lock != lock
