"""Requirements are evaluated against resolved versions, with framework aliases."""

from __future__ import annotations

from harness.requirements import capabilities, preload_modules, unmet


def test_tensorflow_cpu_counts_as_tensorflow():
    caps = capabilities({"tensorflow-cpu": "2.16.2", "keras": "3.3.3"}, {})
    assert unmet("tensorflow>=2.16", caps) is None
    assert unmet("tensorflow<2.16", caps) == "requires tensorflow<2.16; the environment has tensorflow 2.16.2"


def test_legacy_keras_is_tf_keras():
    packages = {"tensorflow-cpu": "2.21.0", "keras": "3.15.1", "tf-keras": "2.21.0"}
    assert unmet("keras>=3", capabilities(packages, {"TF_USE_LEGACY_KERAS": "1"})) is not None
    assert unmet("keras<3", capabilities(packages, {"TF_USE_LEGACY_KERAS": "1"})) is None
    assert unmet("keras>=3", capabilities(packages, {})) is None


def test_missing_framework_and_local_versions():
    caps = capabilities({"torch": "2.13.0+cpu"}, {})
    assert unmet("keras", caps) == "requires keras; the environment has no keras"
    assert unmet("torch>=2.6", caps) is None
    assert unmet("torch<2.6", caps) is not None
    assert "invalid requirement" in unmet("torch>>2", caps)


def test_preload_order_puts_torch_before_tensorflow():
    assert preload_modules(["keras", "tensorflow", "torch"], {}) == ["torch", "tensorflow", "keras"]
    assert preload_modules(["keras"], {"TF_USE_LEGACY_KERAS": "1"}) == ["tf_keras"]


def test_alternatives_are_met_by_either():
    assert unmet("keras|torch", capabilities({"torch": "2.5.1"}, {})) is None
    assert unmet("keras>=3|torch", capabilities({"keras": "2.15.0"}, {})) == (
        "requires keras>=3; the environment has keras 2.15.0; requires torch; the environment has no torch"
    )
    assert preload_modules(["keras|torch"], {}) == ["torch", "keras"]


def test_preload_lists_only_installed_frameworks():
    caps = capabilities({"torch": "2.13.0"}, {})
    assert preload_modules(["keras|torch"], {}, caps) == ["torch"]
