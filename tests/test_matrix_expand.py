"""generate: blocks: axes multiplied, exclude removed, include added, each with a stable readable name."""

from __future__ import annotations

from harness import matrix
from tests.test_matrix import problems, write


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
