"""matrix.yaml parsing: every error path names file, line and key. Also the helpers the test_matrix_* files share."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import matrix
from harness.errors import MatrixError
from harness.worker.scenario import Scenario


def _registry(*ids: str) -> dict[str, Scenario]:
    return {i: Scenario(id=i, area=i.split(".")[0], name=i.split(".")[1], func=lambda ctx: None) for i in ids}


REGISTRY = _registry("layer_init.keras_dense", "layer_init.torch_linear", "data_order.tf_shuffle")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def problems(tmp_path: Path, text: str, registry=REGISTRY) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(MatrixError) as info:
        matrix.load(path, registry)
    return info.value.problems


GOOD = """
baseline: tf
environments:
  - name: tf
    packages: {tensorflow-cpu: "2.16.2", keras: "3.3.3"}
  - name: legacy
    packages: {tensorflow-cpu: "2.21.0", tf-keras: "2.21.0"}
    no_deps: [tf-keras]
    env: {TF_USE_LEGACY_KERAS: 1}
  - name: torch-new
    python: "3.11"
    packages: {torch: latest}
    install:
      find_links: [/opt/wheels]
"""


def test_good_matrix_parses(tmp_path):
    m = matrix.load(write(tmp_path, GOOD), REGISTRY)
    assert list(m.environments) == ["tf", "legacy", "torch-new"]
    assert m.baseline == "tf"
    legacy = m.environment("legacy")
    assert legacy.env == {"TF_USE_LEGACY_KERAS": "1"}
    assert legacy.no_deps == ("tf-keras",)
    assert m.environment("torch-new").packages == {"torch": "latest"}
    assert m.environment("torch-new").install.find_links == ["/opt/wheels"]
    assert m.scenario_ids == ("data_order.tf_shuffle", "layer_init.keras_dense", "layer_init.torch_linear")
    assert m.environment("tf").frameworks == ("tensorflow", "keras")
    assert m.environment("torch-new").frameworks == ("torch",)


def test_unknown_key_names_file_line_and_key(tmp_path):
    found = problems(
        tmp_path,
        """
        environments:
          - name: tf
            pakages: {tensorflow-cpu: "2.16.2"}
        """,
    )
    path = tmp_path / "matrix.yaml"
    assert f"{path}:3: environments[0].pakages: unknown key; did you mean 'packages'?" in found
    assert any("environments[0]: missing required key 'packages'" in p for p in found)


def test_unknown_top_level_key(tmp_path):
    found = problems(tmp_path, 'environment: []\nenvironments: [{name: a, packages: {torch: "2.5.1"}}]\n')
    assert found == [f"{tmp_path / 'matrix.yaml'}:1: environment: unknown key; did you mean 'environments'?"]


def test_duplicate_names_and_duplicate_keys(tmp_path):
    found = problems(
        tmp_path,
        """
        environments:
          - name: a
            packages: {torch: "2.5.1"}
          - name: a
            packages: {torch: "2.5.1", torch: "2.6.0"}
        """,
    )
    path = tmp_path / "matrix.yaml"
    assert f"{path}:5: environments[1].packages.torch: duplicate key (first at line 5)" in found


def test_duplicate_environment_name(tmp_path):
    found = problems(
        tmp_path,
        """
        environments:
          - name: a
            packages: {torch: "2.5.1"}
          - name: a
            packages: {torch: "2.6.0"}
        """,
    )
    assert found == [f"{tmp_path / 'matrix.yaml'}:4: name: duplicate environment name 'a' (first defined at line 2)"]


def test_names_that_share_a_nox_venv_folder(tmp_path):
    found = problems(
        tmp_path,
        'environments:\n  - {name: tf2.1, packages: {torch: "2.5.1"}}\n  - {name: TF2-1, packages: {torch: "2.5.1"}}\n',
    )
    assert len(found) == 1 and "shares the venv folder .nox/tf2-1" in found[0]


def test_unknown_scenarios_areas_and_baseline(tmp_path):
    found = problems(
        tmp_path,
        """
        baseline: nope
        scenarios:
          areas: [layer_init, optimisers]
          ids: ["layer_init.*", "save_load.*"]
          exclude: [missing]
          timeouts: {"nothing.*": 10}
        environments:
          - name: a
            packages: {torch: "2.5.1"}
        """,
    )
    joined = "\n".join(found)
    assert ":1: baseline: baseline 'nope' is not an environment" in joined
    assert ":3: scenarios.areas[1]: unknown area 'optimisers'" in joined
    assert ":4: scenarios.ids[1]: 'save_load.*' matches no scenario" in joined
    assert ":5: scenarios.exclude[0]: 'missing' matches no scenario" in joined
    assert ":6: scenarios.timeouts.nothing.*: 'nothing.*' matches no scenario" in joined


def test_selection_and_timeouts(tmp_path):
    m = matrix.load(
        write(
            tmp_path,
            """
            defaults: {timeout: 42}
            scenarios:
              areas: [layer_init]
              exclude: ["*torch*"]
              timeouts: {"layer_init.keras_*": 7}
            environments:
              - {name: a, packages: {torch: "2.5.1"}}
            """,
        ),
        REGISTRY,
    )
    assert m.scenario_ids == ("layer_init.keras_dense",)
    assert m.timeouts == {"layer_init.keras_dense": 7}


def test_negative_timeout_is_refused(tmp_path):
    found = problems(tmp_path, 'defaults: {timeout: -1}\nenvironments: [{name: a, packages: {torch: "2.5.1"}}]\n')
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'matrix.yaml'}:1: defaults.timeout: ")


def test_yaml_syntax_error(tmp_path):
    found = problems(tmp_path, "environments:\n  - name: a\n   packages: [\n")
    assert len(found) == 1 and "syntax error" in found[0] and found[0].startswith(str(tmp_path / "matrix.yaml"))


def test_empty_matrix_is_refused(tmp_path):
    assert problems(tmp_path, "version: 1\n") == [
        f"{tmp_path / 'matrix.yaml'}:1: (top level): the matrix declares no environment"
    ]


def test_unknown_environment_lookup(tmp_path):
    m = matrix.load(write(tmp_path, GOOD))
    with pytest.raises(MatrixError, match="unknown environment 'nope' \\(known: tf, legacy, torch-new\\)"):
        m.environment("nope")


def test_default_matrix_is_valid_and_covers_the_brief():
    from harness.worker import scenario

    m = matrix.load(Path(__file__).resolve().parent.parent / "matrix.yaml", scenario.discover())
    pins = {name: env.packages for name, env in m.environments.items()}
    assert m.baseline in m.environments
    assert any(
        p.get("tensorflow-cpu", "").startswith("2.15.") and p.get("keras", "").startswith("2.15") for p in pins.values()
    )
    assert any(
        p.get("tensorflow-cpu", "").startswith("2.16.") and p.get("keras", "").startswith("3.") for p in pins.values()
    )
    assert any("tf-keras" in p and m.environments[n].env.get("TF_USE_LEGACY_KERAS") == "1" for n, p in pins.items())
    assert any(env.env.get("KERAS_BACKEND") == "torch" for env in m.environments.values())
    torch_versions = sorted(
        int(p["torch"].split(".")[1]) for p in pins.values() if "torch" in p and p["torch"] != "latest"
    )
    assert torch_versions[0] < 6 and torch_versions[-1] >= 6


def test_published_matrix_schema_is_current():
    import json

    published = json.loads((Path(matrix.__file__).parent.parent / "schemas" / "matrix.schema.json").read_text())
    assert published == json.loads(json.dumps(matrix.matrix_schema()))


def test_drift_section_with_waivers_file(tmp_path):
    (tmp_path / "waivers.yaml").write_text(
        "- {scenario: 'layer_init.*', reason: accepted, owner: ml-platform, expires: 2027-01-31}\n"
    )
    m = matrix.load(
        write(
            tmp_path,
            """
            drift:
              tolerances: {"layer_init.*::*": {rtol: 1.0e-5, atol: 1.0e-6}}
              waivers:
                - {scenario: layer_init.keras_dense, record: kernel, reason: new RNG, owner: bob, expires: 2026-12-31}
              waivers_file: waivers.yaml
            environments:
              - {name: a, packages: {torch: "2.5.1"}}
            """,
        )
    )
    assert m.drift.tolerances["layer_init.*::*"].rtol == 1e-5
    assert [w.owner for w in m.drift.waivers] == ["bob", "ml-platform"]
    assert str(m.drift.waivers[1].expires) == "2027-01-31"


def test_waiver_without_owner_or_date_is_refused(tmp_path):
    found = problems(
        tmp_path,
        """
        drift:
          waivers:
            - {scenario: a.b, reason: why, expires: someday}
        environments:
          - {name: a, packages: {torch: "2.5.1"}}
        """,
    )
    joined = "\n".join(found)
    assert ":3: drift.waivers[0]: missing required key 'owner'" in joined
    assert ":3: drift.waivers[0].expires:" in joined


def test_bad_waivers_file_points_at_its_own_line(tmp_path):
    (tmp_path / "waivers.yaml").write_text(
        "- {scenario: a, reason: r, owner: o, expires: 2027-01-01}\n- {scenario: b}\n"
    )
    found = problems(
        tmp_path, 'drift: {waivers_file: waivers.yaml}\nenvironments: [{name: a, packages: {torch: "2.5.1"}}]\n'
    )
    assert any(p.startswith(f"{(tmp_path / 'waivers.yaml').resolve()}:2: [1]") for p in found), found
