"""The shapes of a scan: what the user's code uses (extraction), what each environment says (probe), the findings.

One home per meaning: the extractor builds ``Use``/``Unchecked``/``NotScanned``, the prober's JSON is read into
``ProbeAnswer`` (untrusted: validated), ``harness.scan.findings`` turns both into ``Finding``s and
``harness.judge.scan`` turns findings into verdict reasons.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = [
    "CallProbe",
    "Extraction",
    "Finding",
    "Lookup",
    "LookupProbe",
    "NotScanned",
    "ParamProbe",
    "ProbeAnswer",
    "ScanReport",
    "SymbolProbe",
    "Unchecked",
    "Use",
    "UseKind",
]

UseKind = Literal["import", "attribute", "call", "base", "decorator", "string"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Lookup(_Frozen):
    """A string identifier handed to a framework getter: ``kernel_initializer="glorot_uniform"``."""

    getter: str = Field(description="The getter that resolves it, e.g. 'keras.initializers.get'.")
    value: str
    via: str = Field(description="Where the string was written: 'kernel_initializer=' or 'keras.losses.get()'.")


class Use(_Frozen):
    """One place the user's code touches a framework symbol."""

    path: str
    line: int
    col: int = Field(description="1-based, as editors show it.")
    symbol: str = Field(description="The fully qualified name as written, aliases resolved.")
    kind: UseKind
    positional: int = 0
    keywords: tuple[str, ...] = ()
    starred: bool = Field(False, description="The call passes *args or **kwargs: its binding cannot be checked.")
    lookup: Lookup | None = None


class Unchecked(_Frozen):
    """A dynamic use that cannot be resolved statically (``getattr(layers, name)``): listed, never dropped."""

    path: str
    line: int
    col: int
    code: str
    why: str


class NotScanned(_Frozen):
    """A file the scan could not read or parse, with the one line that says why."""

    path: str
    line: int = 0
    error: str


class Extraction(_Frozen):
    files: tuple[str, ...] = ()
    uses: tuple[Use, ...] = ()
    unchecked: tuple[Unchecked, ...] = ()
    not_scanned: tuple[NotScanned, ...] = ()


# -------------------------------------------------------------------------------------------- probe answer


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ParamProbe(_Answer):
    name: str
    kind: str
    default: str | None = None


class WarningProbe(_Answer):
    category: str
    message: str
    origin: str


class SymbolProbe(_Answer):
    resolved: bool
    error: str = ""
    qualified: str = ""
    kind: str = ""
    warnings: list[WarningProbe] = Field(default_factory=list)
    doc_deprecated: str = ""
    placeholder: str = ""
    params: list[ParamProbe] | None = None
    signature_error: str = ""
    var_keyword: bool = False
    keyword_notes: dict[str, str] = Field(default_factory=dict)
    suggestions: list[str] = Field(default_factory=list)

    @property
    def works(self) -> bool:
        """Resolves to something real: a placeholder that only raises when constructed does not count."""
        return self.resolved and not self.placeholder


class CallProbe(_Answer):
    symbol: str
    positional: int = 0
    keywords: list[str] = Field(default_factory=list)
    binding: str


class LookupProbe(_Answer):
    getter: str
    value: str
    resolved: str = ""
    error: str = ""


class ProbeAnswer(_Answer):
    format: int
    python: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    symbols: dict[str, SymbolProbe] = Field(default_factory=dict)
    calls: list[CallProbe] = Field(default_factory=list)
    lookups: list[LookupProbe] = Field(default_factory=list)
    seconds: float = 0.0
    reused: bool = Field(False, description="Taken from the scan cache: nothing was imported this time.")
    environment: str = ""


# ------------------------------------------------------------------------------------------------ findings

Change = Literal[
    "missing",
    "keyword-rejected",
    "lookup-failed",
    "keyword-deprecated",
    "keyword-unverified",
    "default-changed",
    "deprecated",
    "moved",
    "fixed",
]
FindingSeverity = Literal["no-go", "warning", "info"]


class Finding(_Frozen):
    """One line of the user's code and what changes for it between the baseline A and the candidate B."""

    path: str
    line: int
    col: int
    symbol: str
    change: Change
    severity: FindingSeverity
    status_a: str
    status_b: str
    detail: str
    suggestions: tuple[str, ...] = ()


class ScanReport(_Frozen):
    """Everything one scan found, with the counts a closing note shows."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # its JSON carries ``blocking``, computed, read back

    baseline: str
    candidate: str
    findings: tuple[Finding, ...]
    unchecked: tuple[Unchecked, ...]
    not_scanned: tuple[NotScanned, ...]
    files: tuple[str, ...]
    counts: dict[str, int]
    seconds: dict[str, float] = Field(default_factory=dict, description="Probe time per environment.")
    reused: dict[str, bool] = Field(default_factory=dict)
    versions: dict[str, dict[str, str]] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blocking(self) -> bool:
        """Something the code uses works in A and not in B: the command exits 1."""
        return any(f.severity == "no-go" for f in self.findings)
