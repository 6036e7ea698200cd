"""Provisioning with uv: index options, exact pins, reuse, latest, and refusals in the installer's words.

The real tests provision tiny environments (six, numpy) from the package index, so they exercise uv itself.
"""

from __future__ import annotations

import os

import pytest

from harness.errors import ProvisionError
from harness.matrix import Environment
from harness.provision import index_args, provision, redact
from harness.results import InstallOptions


def env(packages: dict[str, str], **kwargs) -> Environment:
    return Environment(name="t", python="3.11", packages=packages, **kwargs)


def test_index_args_matrix_first_then_pip_variables():
    e = env(
        {"torch": "2.13.0"},
        install=InstallOptions(find_links=["/wheels"], extra_index_urls=["https://x/simple"]),
    )
    args = index_args(e, {"PIP_FIND_LINKS": "/opt/a /opt/b", "PIP_INDEX_URL": "https://mirror/simple"})
    assert args == [
        "--index-url", "https://mirror/simple",
        "--extra-index-url", "https://x/simple",
        "--find-links", "/wheels",
        "--find-links", "/opt/a",
        "--find-links", "/opt/b",
    ]  # fmt: skip


def test_uv_variables_win_over_pip_variables():
    args = index_args(
        env({}),
        {
            "PIP_FIND_LINKS": "/opt/a",
            "UV_FIND_LINKS": "/opt/u",
            "PIP_INDEX_URL": "https://p",
            "UV_INDEX_URL": "https://u",
        },
    )
    assert args == []  # uv reads its own variables; pip's are not added on top


def test_matrix_index_url_wins_over_pip_index_url():
    e = env({}, install=InstallOptions(index_url="https://own/simple"))
    assert index_args(e, {"PIP_INDEX_URL": "https://mirror/simple"}) == ["--index-url", "https://own/simple"]


def test_redact_hides_credentials():
    assert redact("https://user:secret@host/simple") == "https://***@host/simple"


def _environ():
    return {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}


@pytest.mark.integration  # uv resolves and installs from the package registry
def test_exact_pins_lock_and_reuse(tmp_path):
    venv = tmp_path / "venv"
    first = provision(env({"six": "1.16.0"}), venv, environ=_environ())
    assert first.packages["six"] == "1.16.0" and "numpy" in first.packages
    assert "six==1.16.0" in first.lock_text and not first.reused
    assert (venv / "bin" / "python").exists()
    second = provision(env({"six": "1.16.0"}), venv, environ=_environ())
    assert second.reused and second.lock_sha256 == first.lock_sha256
    third = provision(env({"six": "1.17.0"}), venv, environ=_environ())
    assert not third.reused and third.packages["six"] == "1.17.0"


@pytest.mark.integration  # uv resolves and installs from the package registry
def test_sync_removes_what_is_no_longer_pinned(tmp_path):
    venv = tmp_path / "venv"
    provision(env({"six": "1.16.0", "packaging": "24.1"}), venv, environ=_environ())
    after = provision(env({"six": "1.16.0"}), venv, environ=_environ())
    assert "packaging" not in after.packages


@pytest.mark.integration  # uv resolves and installs from the package registry
def test_latest_is_resolved_and_recorded(tmp_path):
    result = provision(env({"six": "latest"}), tmp_path / "venv", environ=_environ())
    assert result.latest["six"] == result.packages["six"]
    assert any(step.startswith("latest six resolved to") for step in result.install_steps)


@pytest.mark.integration  # uv resolves and installs from the package registry
def test_no_deps_package_is_installed_without_its_dependencies(tmp_path):
    # python-dateutil depends on six; installed without dependencies, six must stay out.
    e = env({"python-dateutil": "2.9.0.post0"}, no_deps=("python-dateutil",))
    result = provision(e, tmp_path / "venv", environ=_environ())
    assert result.packages["python-dateutil"] == "2.9.0.post0" and "six" not in result.packages
    assert any("without its dependencies" in step for step in result.install_steps)


@pytest.mark.integration  # uv resolves and installs from the package registry
def test_missing_version_is_a_provision_error_with_uv_words(tmp_path):
    with pytest.raises(ProvisionError) as info:
        provision(env({"six": "0.0.99"}), tmp_path / "venv", environ=_environ())
    assert "six==0.0.99" in str(info.value) and "no version" in str(info.value)
    assert info.value.installer_output


@pytest.mark.integration  # uv resolves and installs from the package registry
def test_impossible_combination_is_a_provision_error(tmp_path):
    # tf-keras 2.17 declares tensorflow>=2.17,<2.18. (tf-keras 2.15 declares no upper bound, so 2.15 with
    # TensorFlow 2.16 installs; what breaks there is the import, which scenarios report as errors.)
    with pytest.raises(ProvisionError) as info:
        provision(env({"tensorflow": "2.16.2", "tf-keras": "2.17.0"}), tmp_path / "venv", environ=_environ())
    assert "tf-keras==2.17.0" in str(info.value) and "unsatisfiable" in str(info.value)
    assert not (tmp_path / "venv" / "compat-matrix-stamp.json").exists()


def test_the_installers_words_are_stored_and_shown_without_credentials(tmp_path):
    """uv repeats the index URL it could not use; a token in it must not reach results or the screen."""
    import subprocess

    def fake_uv(command, **kwargs):
        if "--version" in command:
            return subprocess.CompletedProcess(command, 0, "uv 0.9.0\n", "")
        return subprocess.CompletedProcess(
            command, 2, "", "error: https://bot:s3cret@pkgs.example/simple/ returned 401"
        )

    env = Environment(name="e", python="3.11", packages={"six": "1.16.0"})
    with pytest.raises(ProvisionError) as caught:
        provision(env, tmp_path / "venv", environ={}, run=fake_uv)
    assert "s3cret" not in str(caught.value) and "s3cret" not in caught.value.installer_output
    assert "//***@pkgs.example" in str(caught.value)
