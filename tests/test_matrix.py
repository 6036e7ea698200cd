"""matrix.yaml parsing: every error path names file, line and key; axes expand into stable names."""

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


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ('">=2.15"', "bad version '>=2.15'"),
        ('"2.15.*"', "bad version '2.15.*'"),
        ('"two"', "bad version 'two'"),
        ("2.16", "quote this value"),
        ('"--index-url https://x"', "looks like an installer option"),
    ],
)
def test_bad_versions(tmp_path, version, fragment):
    found = problems(tmp_path, f"environments:\n  - name: a\n    packages:\n      torch: {version}\n")
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'matrix.yaml'}:4: environments[0].packages.torch: ")
    assert fragment in found[0]


def test_exact_pin_with_double_equals_is_accepted(tmp_path):
    m = matrix.load(write(tmp_path, 'environments:\n  - {name: a, packages: {torch: "==2.5.1"}}\n'))
    assert m.environment("a").packages == {"torch": "2.5.1"}


@pytest.mark.parametrize("entry", ["--index-url https://example.org/simple", "-e", "git+https://x/y.git"])
def test_installer_options_posing_as_packages(tmp_path, entry):
    found = problems(tmp_path, f'environments:\n  - name: a\n    packages:\n      "{entry}": "1.0"\n')
    assert len(found) == 1 and "is an installer option, not a package" in found[0]
    assert ":4: environments[0].packages." in found[0]


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


@pytest.mark.parametrize("name", ["../evil", "a/b", "x..y", "tests", " sp"])
def test_unsafe_or_reserved_names(tmp_path, name):
    found = problems(tmp_path, f'environments:\n  - name: "{name}"\n    packages: {{torch: "2.5.1"}}\n')
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'matrix.yaml'}:2: environments[0].name: ")


def test_legacy_keras_without_tf_keras_is_refused(tmp_path):
    found = problems(
        tmp_path,
        'environments:\n  - name: a\n    packages: {tensorflow-cpu: "2.15.1"}\n    env: {TF_USE_LEGACY_KERAS: "1"}\n',
    )
    assert len(found) == 1 and "environments[0].env.TF_USE_LEGACY_KERAS" in found[0] and ":4:" in found[0]


def test_boolean_env_value_and_bad_var_name(tmp_path):
    found = problems(
        tmp_path,
        'environments:\n  - name: a\n    packages: {torch: "2.5.1"}\n    env: {"1BAD": x, OK: true}\n',
    )
    assert any("env.1BAD" in p and "not a valid environment variable name" in p for p in found)
    assert any("env.OK" in p for p in found)


def test_no_deps_must_name_a_package(tmp_path):
    found = problems(tmp_path, 'environments:\n  - name: a\n    packages: {torch: "2.5.1"}\n    no_deps: [tf-keras]\n')
    where = f"{tmp_path / 'matrix.yaml'}:4: environments[0].no_deps[0]"
    assert found == [f"{where}: 'tf-keras' is not one of this environment's packages"]


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


def test_axes_include_exclude_and_names(tmp_path):
    m = matrix.load(
        write(
            tmp_path,
            """
            generate:
              - name: "tf{tensorflow-cpu}-k{keras}-{KERAS_BACKEND}"
                packages: {numpy: "1.26.4"}
                axes:
                  packages:
                    tensorflow-cpu: ["2.16.2", "2.17.1"]
                    keras: ["3.3.3", "3.6.0"]
                  env:
                    KERAS_BACKEND: [tensorflow]
                exclude:
                  - {tensorflow-cpu: "2.17.1", keras: "3.3.3"}
                include:
                  - {tensorflow-cpu: "2.18.0", keras: "3.7.0", KERAS_BACKEND: tensorflow}
            """,
        )
    )
    assert list(m.environments) == [
        "tf2.16.2-k3.3.3-tensorflow",
        "tf2.16.2-k3.6.0-tensorflow",
        "tf2.17.1-k3.6.0-tensorflow",
        "tf2.18.0-k3.7.0-tensorflow",
    ]
    env = m.environment("tf2.17.1-k3.6.0-tensorflow")
    assert env.packages == {"numpy": "1.26.4", "tensorflow-cpu": "2.17.1", "keras": "3.6.0"}
    assert env.env == {"KERAS_BACKEND": "tensorflow"}


def test_axes_default_names_are_stable(tmp_path):
    text = 'generate:\n  - axes:\n      packages: {torch: ["2.5.1", "2.6.0"]}\n'
    first = list(matrix.load(write(tmp_path, text)).environments)
    second = list(matrix.load(write(tmp_path, text)).environments)
    assert first == second == ["torch-2.5.1", "torch-2.6.0"]


def test_axes_errors(tmp_path):
    found = problems(
        tmp_path,
        """
        generate:
          - name: "x{nope}"
            axes:
              packages: {torch: ["2.5.1"]}
            exclude:
              - {keras: "3.0.0"}
        """,
    )
    joined = "\n".join(found)
    assert ":2: generate[0].name: placeholder {nope} is not an axis" in joined
    assert ":6: generate[0].exclude[0].keras: 'keras' is not an axis of this block" in joined


def test_generated_names_collide_with_explicit(tmp_path):
    found = problems(
        tmp_path,
        """
        environments:
          - {name: torch-2.5.1, packages: {torch: "2.5.1"}}
        generate:
          - axes:
              packages: {torch: ["2.5.1"]}
        """,
    )
    assert len(found) == 1 and "duplicate environment name 'torch-2.5.1'" in found[0]


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
