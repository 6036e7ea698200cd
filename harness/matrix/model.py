"""The shapes of matrix.yaml: pydantic specs (what the file may say) and the concrete Environment and Matrix.

The specs are the one definition of the file's keys: they validate it and generate the published JSON Schema. The
dataclasses are what the rest of the harness receives after parsing, with every default applied.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from harness.errors import MatrixError
from harness.matrix.limits import MAX_TIMEOUT_SECONDS
from harness.results import InstallOptions

__all__ = [
    "Defaults",
    "DriftSpec",
    "Environment",
    "EnvironmentSpec",
    "GeneratorSpec",
    "Matrix",
    "MatrixSpec",
    "ScenarioSelection",
    "ToleranceSpec",
    "UpgradeChainSpec",
    "UpgradePairSpec",
    "WaiverSpec",
    "matrix_schema",
    "tensorflow_package",
    "venv_slug",
]

EnvValue = Any  # str or int; checked by checks.check_env_block so a YAML boolean gets a clear message


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: Seconds, finite and at most a week: ``timeout: 1e999`` is infinity to YAML and an overflow to ``select()``.
Seconds = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False)]


class Defaults(_Spec):
    python: str = "3.11"
    timeout: Seconds = Field(default=300.0, description="Seconds one scenario may run before it is a timeout.")
    startup_timeout: Seconds = Field(default=600.0, description="Seconds the worker may take to import frameworks.")
    seed: int = Field(default=1337, ge=0, lt=2**32, description="Seeds every RNG; NumPy takes 0 to 2**32 - 1.")


class ScenarioSelection(_Spec):
    areas: list[str] = Field(default_factory=list, description="Areas to run; empty means all.")
    ids: list[str] = Field(default_factory=list, description="Scenario ids or globs to run; empty means all.")
    exclude: list[str] = Field(default_factory=list, description="Scenario ids or globs to leave out.")
    timeouts: dict[str, float] = Field(default_factory=dict, description="Scenario id or glob -> seconds.")
    paths: list[str] = Field(
        default_factory=list,
        description="The user's scenario files or folders of them, relative to the matrix file; their scenarios' "
        "ids are user.<area>_<name>.",
    )

    @field_validator("timeouts")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for key, seconds in value.items():
            if not 0 < seconds <= MAX_TIMEOUT_SECONDS:  # NaN fails this too
                raise ValueError(f"timeout for {key!r} must be positive and at most a week, got {seconds}")
        return value


class EnvironmentSpec(_Spec):
    name: str
    python: str | None = None
    packages: dict[str, str] = Field(description="Distribution name -> exact version, or 'latest'.")
    env: dict[str, EnvValue] = Field(default_factory=dict)
    install: InstallOptions = Field(default_factory=InstallOptions)
    no_deps: list[str] = Field(
        default_factory=list, description="Packages installed after the others without their dependencies."
    )
    tags: list[str] = Field(default_factory=list)


class Axes(_Spec):
    packages: dict[str, list[str]] = Field(default_factory=dict)
    env: dict[str, list[EnvValue]] = Field(default_factory=dict)


class GeneratorSpec(_Spec):
    name: str | None = Field(default=None, description="Name template, e.g. 'tf{tensorflow-cpu}-keras{keras}'.")
    python: str | None = None
    packages: dict[str, str] = Field(default_factory=dict, description="Pins shared by every generated env.")
    env: dict[str, EnvValue] = Field(default_factory=dict)
    install: InstallOptions = Field(default_factory=InstallOptions)
    no_deps: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    axes: Axes
    include: list[dict[str, EnvValue]] = Field(default_factory=list)
    exclude: list[dict[str, EnvValue]] = Field(default_factory=list)


class ToleranceSpec(_Spec):
    rtol: float = Field(ge=0, allow_inf_nan=False)
    atol: float = Field(ge=0, allow_inf_nan=False)


class WaiverSpec(_Spec):
    """An accepted difference: which scenario/record (globs), for which candidates, why, whose, until when."""

    scenario: str
    record: str = "*"
    candidate: str = "*"
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: datetime.date


class DriftSpec(_Spec):
    tolerances: dict[str, ToleranceSpec] = Field(
        default_factory=dict, description="'<scenario-id glob>::<record glob>' -> {rtol, atol}; first match wins."
    )
    waivers: list[WaiverSpec] = Field(default_factory=list)
    waivers_file: str | None = Field(
        default=None, description="A YAML file (relative to matrix.yaml) with more waivers."
    )


class UpgradePairSpec(_Spec):
    """One upgrade path: from the environment a user runs now to the candidate they consider."""

    from_: str = Field(alias="from", description="The environment a user runs now.")
    to: str = Field(description="The candidate environment.")


class UpgradeChainSpec(_Spec):
    """Consecutive upgrade paths written once: ``[A, B, C]`` means A -> B and B -> C."""

    chain: list[str] = Field(min_length=2, description="Environments from oldest to newest.")


#: The forms of an ``upgrades:`` item, as pydantic names them in an error's location (the file has no such key).
UPGRADE_FORMS = ("pair", "chain")


def _upgrade_form(value: Any) -> str | None:
    """Which form an item is, decided by its keys, so an error speaks of that form only."""
    if not isinstance(value, dict):
        return None
    return "chain" if "chain" in value else "pair"


UpgradeSpec = Annotated[
    Annotated[UpgradePairSpec, Tag("pair")] | Annotated[UpgradeChainSpec, Tag("chain")],
    Discriminator(
        _upgrade_form,
        custom_error_type="upgrade_form",
        custom_error_message="an upgrade path is {from: A, to: B} or {chain: [A, B, C]}",
    ),
]


class SampleInputs(_Spec):
    """Inputs drawn for a model: a seeded standard normal of this shape (``numpy.random.default_rng(seed)``)."""

    shape: list[Annotated[int, Field(ge=1, le=4096)]] = Field(min_length=1, max_length=8)
    seed: int = 0
    dtype: Literal["float32", "float64", "int32", "int64"] = "float32"


class ModelSpec(_Spec):
    """A saved model of the user's, loaded in every environment the plain way and its predictions compared."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,60}$", description="Its cell is user.model_<name>.")
    path: str = Field(
        description="The file or SavedModel folder, relative to the matrix file: .keras, .h5, a SavedModel folder, "
        ".pt/.pth (torch.load: a module or a state_dict with 'module'), .pt2 (torch.export)."
    )
    framework: Literal["keras", "torch"] | None = Field(default=None, description="Default: told by the path.")
    inputs: str | SampleInputs = Field(description="An .npz (its first array) or {shape, seed, dtype}.")
    expected: str | None = Field(default=None, description="An .npz of the outputs it should give (first array).")
    module: str | None = Field(
        default=None,
        description="For a torch state_dict: 'package.module:callable' returning the nn.Module to load it into "
        "(from the user's code in the environments).",
    )
    imports: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]] = Field(
        default_factory=list,
        max_length=32,
        description="Modules imported before loading, e.g. the ones of your library (local:) that register custom "
        "layers with keras.saving.register_keras_serializable.",
    )


class MatrixSpec(_Spec):
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=lambda: Defaults())
    baseline: str | None = Field(
        default=None,
        description="The environment reports centre on. It does not decide which pairs are judged: see 'upgrades'.",
    )
    upgrades: list[UpgradeSpec] = Field(
        default_factory=list,
        description="The upgrade paths verdicts judge, {from: A, to: B} or {chain: [A, B, C]}; when absent, every "
        "older -> newer pair of environments within one framework line.",
    )
    scenarios: ScenarioSelection = Field(default_factory=ScenarioSelection)
    models: list[ModelSpec] = Field(default_factory=list, description="The user's saved models to load everywhere.")
    local: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Your own code, installed into every environment after its pins (uv pip install --no-deps): "
        "project folders or wheel files, relative to the matrix file. Declare its dependencies as pins.",
    )
    environments: list[EnvironmentSpec] = Field(default_factory=list)
    generate: list[GeneratorSpec] = Field(default_factory=list)
    drift: DriftSpec = Field(default_factory=lambda: DriftSpec())
    unsafe_formats: bool = Field(
        default=False,
        description="Let the relay load formats that can run code from the file (full pickles, SavedModel, Keras "
        "full models, TorchScript), only inside the sandbox (bubblewrap); where none works they are not loaded.",
    )


def matrix_schema() -> dict[str, Any]:
    """The JSON Schema of matrix.yaml, generated from the models (published in ``harness/schemas``)."""
    schema = MatrixSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "compat-matrix/matrix.schema.json"
    return schema


@dataclass(frozen=True)
class Environment:
    """One concrete environment: what to install, with which variables, and where it was declared."""

    name: str
    python: str
    packages: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    install: InstallOptions = field(default_factory=InstallOptions)
    no_deps: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    line: int = 0
    #: The user's own code (matrix ``local:``): absolute paths installed after the pins, and their content digest.
    local: tuple[str, ...] = ()
    local_digest: str = ""

    @property
    def venv_slug(self) -> str:
        """The folder name nox gives this environment's venv under ``.nox/`` (its own normalization rule)."""
        return venv_slug(self.name)

    @property
    def frameworks(self) -> tuple[str, ...]:
        """Framework tags derived from the packages (what ``nox -t`` selects on)."""
        names = set(self.packages)
        found = []
        if tensorflow_package(self.packages) is not None:
            found.append("tensorflow")
        if "keras" in names or "tf-keras" in names or "tensorflow" in found:
            found.append("keras")
        if "torch" in names:
            found.append("torch")
        return tuple(found)


@dataclass(frozen=True)
class Matrix:
    """The parsed matrix: environments in declaration order, the baseline and the selected scenario ids.

    ``baseline`` is the environment reports centre on; ``upgrades`` the declared (from, to) paths, chains
    expanded, empty when the file declares none (``harness.matrix.upgrade_paths`` then derives them).
    """

    path: Path
    environments: dict[str, Environment]
    baseline: str | None
    defaults: Defaults
    selection: ScenarioSelection
    scenario_ids: tuple[str, ...] = ()
    timeouts: dict[str, float] = field(default_factory=dict)
    drift: DriftSpec = field(default_factory=lambda: DriftSpec())
    sha256: str = ""
    upgrades: tuple[tuple[str, str], ...] = ()
    unsafe_formats: bool = False
    #: The user's scenario files and folders (``scenarios.paths``), absolute: every worker imports them too.
    scenario_paths: tuple[Path, ...] = ()
    #: The user's models (``models:``) as the worker receives them: paths absolute, with their files' digest.
    models: tuple[dict[str, Any], ...] = ()

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments) or "none"
            raise MatrixError([f"{self.path}: unknown environment {name!r} (known: {known})"]) from None


def venv_slug(name: str) -> str:
    """Nox's venv folder name for a session: lowercase, runs of anything but word characters become one '-'."""
    slug = re.sub(r"[^\w\s-]", "-", name).strip().lower()
    return re.sub(r"[-\s]+", "-", slug).strip("-")


#: The TensorFlow builds on PyPI, preferred over other ``tensorflow*`` packages (tensorflow-probability...) when
#: telling which package is the framework.
_TENSORFLOW_BUILDS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos", "tensorflow-intel")


def tensorflow_package(packages: dict[str, str]) -> str | None:
    """The package that brings TensorFlow (any ``tensorflow*``, a known build first), or None without one."""
    for name in _TENSORFLOW_BUILDS:
        if name in packages:
            return name
    return next((name for name in packages if name.startswith("tensorflow")), None)
