"""Static extraction: every TensorFlow / Keras / tf-keras / torch symbol a user's files use, with file, line, column.

Read with ``ast`` only: the user's code is never imported or run. Import aliases are followed (``import tensorflow
as tf``, ``from keras import layers as L``, ``from torch import nn``), attribute chains are kept whole
(``tf.keras.optimizers.experimental.SGD``), calls keep their keyword names and positional count, class bases and
decorators are uses too, and string identifiers given to Keras getters (``kernel_initializer="glorot_uniform"``,
``compile(optimizer="adam")``, ``keras.losses.get("mse")``) become lookups. What cannot be resolved statically
(``getattr`` with a computed name, ``importlib.import_module(var)``, star imports) is listed as unchecked.

Aliases are tracked per file in source order, not per scope: a name rebound inside a function keeps its framework
meaning for the rest of the file (rare in user code, and the error is a finding too many, never one too few).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.scan.model import Extraction, Lookup, NotScanned, Unchecked, Use, UseKind

__all__ = ["FRAMEWORKS", "extract", "extract_source", "python_files"]

FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "torch")
_MAX_BYTES = 5_000_000
_SKIPPED_DIRS = {"__pycache__", "site-packages", "node_modules", ".git", ".nox", ".tox", ".venv", "venv"}
#: keyword name -> the Keras module whose ``get`` resolves a string given there
_LOOKUP_SUFFIXES = (("_initializer", "initializers"), ("_regularizer", "regularizers"), ("_constraint", "constraints"))
_LOOKUP_KEYWORDS = {
    "initializer": "initializers",
    "activation": "activations",
    "recurrent_activation": "activations",
    "optimizer": "optimizers",
    "loss": "losses",
    "metrics": "metrics",
}
_GETTER_MODULES = ("initializers", "activations", "optimizers", "losses", "metrics", "regularizers", "constraints")


def python_files(paths: Sequence[str]) -> list[Path]:
    """The ``.py`` files of ``paths`` (files as given, folders walked, sorted); a path that does not exist is a
    usage error naming it."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(
                p for p in path.rglob("*.py") if p.is_file() and not _SKIPPED_DIRS & set(p.relative_to(path).parts)
            )
        else:
            raise HarnessError(f"scan: {text}: no such file or folder")
    return list(dict.fromkeys(files))


def _keras_root(symbol: str) -> str | None:
    for root in ("tensorflow.keras", "tf_keras", "keras"):
        if symbol == root or symbol.startswith(root + "."):
            return root
    return None


def _lookup_module(keyword: str) -> str | None:
    if keyword in _LOOKUP_KEYWORDS:
        return _LOOKUP_KEYWORDS[keyword]
    return next((module for suffix, module in _LOOKUP_SUFFIXES if keyword.endswith(suffix)), None)


class _Visitor(ast.NodeVisitor):
    """Walks one module in source order, keeping its alias table and collecting uses."""

    def __init__(self, path: str, source: str) -> None:
        self.path, self.source = path, source
        self.aliases: dict[str, str] = {}
        self.uses: list[Use] = []
        self.unchecked: list[Unchecked] = []
        self.keras_root: str | None = None

    # -------------------------------------------------------------------------------------------- helpers

    def _use(self, node: ast.AST, symbol: str, kind: UseKind, **extra: object) -> None:
        line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", -1) + 1
        self.uses.append(Use(path=self.path, line=line, col=col, symbol=symbol, kind=kind, **extra))

    def _unchecked(self, node: ast.AST, why: str) -> None:
        code = ast.get_source_segment(self.source, node) or ast.dump(node)[:80]
        line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", -1) + 1
        self.unchecked.append(Unchecked(path=self.path, line=line, col=col, code=" ".join(code.split())[:200], why=why))

    def _bind(self, name: str, target: str) -> None:
        self.aliases[name] = target
        root = _keras_root(target)
        if root and self.keras_root is None:
            self.keras_root = root

    def resolve(self, node: ast.AST) -> str | None:
        """The dotted name an expression denotes when it is a framework name or attribute chain, else None."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    @staticmethod
    def _tracked(module: str) -> bool:
        return module.split(".", 1)[0] in (*FRAMEWORKS, "importlib")

    # ------------------------------------------------------------------------------------------- imports

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self._tracked(alias.name):
                continue
            if alias.asname:
                self._bind(alias.asname, alias.name)
            else:
                head = alias.name.split(".", 1)[0]
                self._bind(head, head)
            if alias.name.split(".", 1)[0] != "importlib":
                self._use(node, alias.name, "import")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or not self._tracked(node.module):
            return
        for alias in node.names:
            if alias.name == "*":
                self._unchecked(node, f"star import from {node.module}: the names it binds are not known statically")
                continue
            full = f"{node.module}.{alias.name}"
            self._bind(alias.asname or alias.name, full)
            if node.module.split(".", 1)[0] != "importlib":
                self._use(node, full, "import")

    # ------------------------------------------------------------------------------------ uses in the code

    def visit_Attribute(self, node: ast.Attribute) -> None:
        symbol = self.resolve(node)
        if symbol is None:
            self.generic_visit(node)
        elif not symbol.startswith("importlib"):
            self._use(node, symbol, "attribute")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            symbol = self.resolve(base)
            if symbol:
                self._use(base, symbol, "base")
            else:
                self.visit(base)
        self._decorators(node.decorator_list)
        for keyword in node.keywords:
            self.visit(keyword.value)
        for statement in node.body:
            self.visit(statement)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._decorators(node.decorator_list)
        for child in (node.args, *node.body):
            self.visit(child)
        if node.returns is not None:
            self.visit(node.returns)

    visit_AsyncFunctionDef = visit_FunctionDef

    def _decorators(self, decorators: Iterable[ast.expr]) -> None:
        for decorator in decorators:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            symbol = self.resolve(target)
            if symbol is None:
                self.visit(decorator)
            elif isinstance(decorator, ast.Call):
                self._call(decorator, symbol, "decorator")
            else:
                self._use(decorator, symbol, "decorator")

    def visit_Call(self, node: ast.Call) -> None:
        symbol = self.resolve(node.func)
        if symbol is None:
            self._unresolved_call(node)
        elif symbol in ("importlib.import_module", "importlib.__import__"):
            self._dynamic_import(node)
        elif not symbol.startswith("importlib"):
            self._call(node, symbol, "call")
        else:
            self.generic_visit(node)

    def _call(self, node: ast.Call, symbol: str, kind: UseKind) -> None:
        keywords = tuple(k.arg for k in node.keywords if k.arg is not None)
        starred = any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args)
        self._use(node, symbol, kind, positional=len(node.args), keywords=keywords, starred=starred)
        self._keyword_lookups(node, _keras_root(symbol))
        self._getter_lookup(node, symbol)
        for child in (*node.args, *(k.value for k in node.keywords)):
            self.visit(child)

    def _unresolved_call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            self._getattr(node)
        elif isinstance(func, ast.Name) and func.id == "__import__" and node.args:
            self._dynamic_import(node)
        elif isinstance(func, ast.Attribute) and func.attr == "compile" and self.keras_root:
            self._keyword_lookups(node, self.keras_root)  # model.compile(optimizer="adam", loss="mse")
            self.generic_visit(node)
        else:
            self.generic_visit(node)

    def _getattr(self, node: ast.Call) -> None:
        owner, name = self.resolve(node.args[0]), node.args[1]
        if owner is None:
            self.generic_visit(node)
        elif isinstance(name, ast.Constant) and isinstance(name.value, str):
            self._use(node, f"{owner}.{name.value}", "attribute")
        else:
            self._unchecked(node, f"getattr on {owner} with a name computed at run time")
        for child in node.args[2:]:
            self.visit(child)

    def _dynamic_import(self, node: ast.Call) -> None:
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            if first.value.split(".", 1)[0] in FRAMEWORKS:
                self._use(node, first.value, "import")
        else:
            self._unchecked(node, "a module imported by a name computed at run time")

    # ---------------------------------------------------------------------------------- string identifiers

    def _strings(self, value: ast.expr) -> Iterator[ast.Constant]:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            yield value
        elif isinstance(value, (ast.List, ast.Tuple)):
            for item in value.elts:
                yield from self._strings(item)

    def _keyword_lookups(self, node: ast.Call, root: str | None) -> None:
        if root is None:
            return
        for keyword in node.keywords:
            module = _lookup_module(keyword.arg) if keyword.arg else None
            if module is None:
                continue
            for constant in self._strings(keyword.value):
                lookup = Lookup(getter=f"{root}.{module}.get", value=constant.value, via=f"{keyword.arg}=")
                self._use(constant, lookup.getter, "string", lookup=lookup)

    def _getter_lookup(self, node: ast.Call, symbol: str) -> None:
        module, _, name = symbol.rpartition(".")
        if name != "get" or module.rpartition(".")[2] not in _GETTER_MODULES or not _keras_root(symbol):
            return
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            lookup = Lookup(getter=symbol, value=first.value, via=f"{symbol}()")
            self._use(first, symbol, "string", lookup=lookup)


def extract_source(source: str, path: str) -> tuple[list[Use], list[Unchecked]]:
    """The uses in one module's text (``SyntaxError`` propagates: the caller lists the file as not scanned)."""
    tree = ast.parse(source, filename=path)
    visitor = _Visitor(path, source)
    visitor.visit(tree)
    return visitor.uses, visitor.unchecked


def _read(path: Path) -> str:
    if path.stat().st_size > _MAX_BYTES:
        raise ValueError(f"larger than {_MAX_BYTES:,} bytes")
    return path.read_bytes().decode("utf-8")


def extract(paths: Sequence[str]) -> Extraction:
    """Every use in the files and folders of ``paths``; unreadable or unparsable files are listed, the rest go on."""
    uses: list[Use] = []
    unchecked: list[Unchecked] = []
    not_scanned: list[NotScanned] = []
    files = python_files(paths)
    for file in files:
        name = str(file)
        try:
            found, dynamic = extract_source(_read(file), name)
        except SyntaxError as exc:
            line = exc.lineno or 0
            not_scanned.append(NotScanned(path=name, line=line, error=f"{name}:{line}: SyntaxError: {exc.msg}"))
            continue
        except (OSError, ValueError, RecursionError, MemoryError) as exc:
            reason = "nested too deeply to parse" if isinstance(exc, RecursionError) else str(exc) or type(exc).__name__
            not_scanned.append(NotScanned(path=name, error=f"{name}: {reason}"))
            continue
        uses += found
        unchecked += dynamic
    return Extraction(
        files=tuple(str(f) for f in files), uses=tuple(uses), unchecked=tuple(unchecked), not_scanned=tuple(not_scanned)
    )
