"""The in-environment prober of ``scan``: what each framework symbol the user's code names is, here.

``python -m harness.worker.symbols REQUEST OUT`` reads the symbols, calls and string lookups the orchestrator
extracted (``harness.scan``) and writes, for each: whether it resolves (and the error when not), its qualified name
(``__module__.__qualname__``: where it really lives, so a move or an alias shows), deprecation warnings raised while
it is looked up (with the module that raised them) or named in its metadata, a placeholder a compatibility namespace
hands out (a class whose constructor only raises, like Keras 3's ``keras.optimizers.legacy.*``), its parameters
and defaults, and whether each call's keywords bind to its signature.

Nothing of the user's code runs: names are imported and looked up, signatures and sources are read, and the only
framework code called is a string lookup's getter (``keras.initializers.get("glorot_uniform")``), which the user's
code calls the same way. Standard library only, importable by Python 3.9 (``tests/test_worker_boundary.py``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import sys
import textwrap
import time
import warnings
from typing import Any

__all__ = ["main", "probe"]

PROBE_FORMAT = 1
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_DEPRECATION = re.compile(r"deprecat|no longer (be )?supported|will be removed", re.IGNORECASE)
_TEXT_LIMIT = 400


def _short(text: str, limit: int = _TEXT_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _origin(filename: str) -> str:
    """The dotted module a warning came from, read from its file name (``.../site-packages/keras/src/x.py``)."""
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        return path.rsplit("/", 1)[-1]
    return path[:-3].replace("/", ".") if path.endswith(".py") else path.replace("/", ".")


def _looked_up(name: str) -> tuple[Any, list[dict[str, str]]]:
    """The object ``name`` denotes, importing modules along the chain as ``import a.b.c`` would; and its warnings."""
    parts = name.split(".")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj: Any = importlib.import_module(parts[0])
        for i, part in enumerate(parts[1:], start=2):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                if not inspect.ismodule(obj):
                    raise
                try:  # a submodule not yet imported by its package
                    obj = importlib.import_module(".".join(parts[:i]))
                except ModuleNotFoundError:
                    raise AttributeError(f"module {obj.__name__!r} has no attribute {part!r}") from None
    owner = ".".join(parts[:-1]) or parts[0]  # a warning attributed to this file was raised by the lookup itself
    found = [
        {
            "category": w.category.__name__,
            "message": _short(str(w.message)),
            "origin": owner if w.filename == __file__ else _origin(w.filename),
        }
        for w in caught
    ]
    return obj, found


def _qualified(obj: Any) -> str:
    if inspect.ismodule(obj):
        return str(obj.__name__)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return f"<{type(obj).__module__}.{type(obj).__qualname__} instance>"


def _kind(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    return "function" if callable(obj) else "value"


def _doc_deprecation(obj: Any) -> str:
    """A deprecation the object's metadata states: PEP 702's ``__deprecated__``, or its docstring's first lines."""
    marked = getattr(obj, "__deprecated__", None)
    if isinstance(marked, str) and marked:
        return _short(marked)
    if inspect.ismodule(obj):
        return ""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if not isinstance(doc, str):
        return ""
    head = [line.strip() for line in doc.strip().splitlines()[:3]]
    return next((_short(line) for line in head if _DEPRECATION.search(line)), "")


def _function_node(func: Any) -> ast.FunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None  # type: ignore[return-value]


def _placeholder(obj: Any) -> str:
    """What a stand-in raises: a class whose own ``__init__`` (or a function whose body) does nothing but raise.

    Read from the source, never called: Keras 3 keeps ``keras.optimizers.legacy.SGD`` as a name whose constructor
    raises ImportError, so a name that resolves is not an API that works.
    """
    target = obj.__dict__.get("__init__") if inspect.isclass(obj) else obj
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        return ""
    node = _function_node(target)
    if node is None:
        return ""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if body and isinstance(body[0], ast.Raise) and body[0].exc is not None:
        return _short(ast.unparse(body[0].exc))
    return ""


def _default(value: Any) -> str | None:
    if value is inspect.Parameter.empty:
        return None
    return _short(_ADDRESS.sub("", repr(value)), 200)


def _parameters(obj: Any) -> tuple[inspect.Signature | None, list[dict[str, Any]], str]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return None, [], _short(f"{type(exc).__name__}: {exc}")
    params = [
        {"name": p.name, "kind": p.kind.name, "default": _default(p.default)} for p in signature.parameters.values()
    ]
    return signature, params, ""


def _sources(obj: Any) -> list[tuple[str, str]]:
    """(where, source) of the code a ``**kwargs`` may reach: the function, or every ``__init__`` along the MRO."""
    targets: list[tuple[str, Any]] = []
    if inspect.isclass(obj):
        targets = [(_qualified(k), k.__dict__["__init__"]) for k in obj.__mro__ if "__init__" in k.__dict__]
        targets = [(where, f) for where, f in targets if inspect.isfunction(f)]
    elif callable(obj):
        targets = [(_qualified(obj), obj)]
    found = []
    for where, func in targets:
        try:
            found.append((where, inspect.getsource(func)))
        except (OSError, TypeError):
            continue
    return found


def _keyword_note(keyword: str, sources: list[tuple[str, str]]) -> str:
    """How a keyword that only ``**kwargs`` takes is handled: named in the code it reaches (and warned about)?"""
    quoted = re.compile(r"""["']""" + re.escape(keyword) + r"""["']""")
    for where, source in sources:
        lines = source.splitlines()
        for number, line in enumerate(lines):
            if quoted.search(line):
                nearby = " ".join(lines[number : number + 5])
                if _DEPRECATION.search(nearby):
                    return f"deprecated: {where} takes it from **kwargs and warns it is deprecated"
                return f"named: {where} takes it from **kwargs by name"
    return "unnamed: no code along the way names it (rejected or ignored at run time, not checked here)"


def _suggestions(name: str, probe_name: Any) -> list[str]:
    """Same-named objects in sibling namespaces: the chain with one segment dropped, and ``keras`` for ``tf.keras``."""
    parts = name.split(".")
    candidates: list[str] = []
    for i in range(1, len(parts) - 1):
        candidates.append(".".join(parts[:i] + parts[i + 1 :]))
    roots = {"tensorflow.keras": "keras", "keras": "tensorflow.keras"}
    for old, new in roots.items():
        for text in [name, *candidates]:
            if text.startswith(old + "."):
                candidates.append(new + text[len(old) :])
    found: list[str] = []
    for text in dict.fromkeys(candidates):
        if text == name:
            continue
        info = probe_name(text)
        if info["resolved"] and not info["placeholder"]:
            found.append(text)
    return found[:3]


def _symbol(name: str, keywords: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {"resolved": False, "error": "", "qualified": "", "kind": "", "warnings": [],
                            "doc_deprecated": "", "placeholder": "", "params": None, "signature_error": "",
                            "var_keyword": False, "keyword_notes": {}}  # fmt: skip
    try:
        obj, info["warnings"] = _looked_up(name)
    except Exception as exc:  # any failure to import or look up is the finding, with its words
        info["error"] = _short(f"{type(exc).__name__}: {exc}")
        return info
    info.update(resolved=True, qualified=_qualified(obj), kind=_kind(obj), doc_deprecated=_doc_deprecation(obj))
    if info["kind"] in ("class", "function"):
        info["placeholder"] = _placeholder(obj)
        signature, info["params"], info["signature_error"] = _parameters(obj)
        if signature is not None:
            var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
            info["var_keyword"] = var_kw
            named = {p.name for p in signature.parameters.values()}
            unnamed = [k for k in keywords if k not in named]
            if var_kw and unnamed:
                sources = _sources(obj)
                info["keyword_notes"] = {k: _keyword_note(k, sources) for k in unnamed}
    return info


def _binding(info: dict[str, Any], call: dict[str, Any], obj_signature: inspect.Signature | None) -> str:
    if not info["resolved"]:
        return "unresolved"
    if obj_signature is None:
        return "unknown: " + (info["signature_error"] or "no signature")
    args = [None] * int(call.get("positional", 0))
    kwargs = dict.fromkeys(call.get("keywords", []))
    try:
        obj_signature.bind_partial(*args, **kwargs)
    except TypeError as exc:
        return _short(f"rejected: {exc}")
    named = {p.name for p in obj_signature.parameters.values()}
    return "binds via **kwargs" if any(k not in named for k in kwargs) else "binds"


def _signature_of(name: str) -> inspect.Signature | None:
    try:
        obj, _ = _looked_up(name)
        return inspect.signature(obj)
    except Exception:
        return None


#: The only framework functions the prober calls: Keras's string getters (``keras.losses.get``), nothing else.
_GETTER = re.compile(r"(tensorflow\.keras|tf_keras|keras)\.(initializers|activations|optimizers|losses|metrics|"
                     r"regularizers|constraints)\.get")  # fmt: skip


def _lookup(getter: str, value: str) -> dict[str, str]:
    """A string identifier through the framework's own getter (``keras.losses.get("mse")``)."""
    if not _GETTER.fullmatch(getter):
        return {"getter": getter, "value": value, "resolved": "", "error": "not a known string getter: not called"}
    try:
        func, _ = _looked_up(getter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = func(value)
    except Exception as exc:
        return {"getter": getter, "value": value, "resolved": "", "error": _short(f"{type(exc).__name__}: {exc}")}
    target = found if inspect.isclass(found) or inspect.isfunction(found) else type(found)
    return {"getter": getter, "value": value, "resolved": _qualified(target), "error": ""}


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for dist in ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """Every symbol, call and lookup of ``request``, probed here; the caller writes the answer."""
    started = time.perf_counter()
    keywords: dict[str, list[str]] = {}
    for call in request.get("calls", []):
        keywords.setdefault(call["symbol"], []).extend(call.get("keywords", []))
    memo: dict[str, dict[str, Any]] = {}

    def probe_name(name: str) -> dict[str, Any]:
        if name not in memo:
            memo[name] = _symbol(name, sorted(set(keywords.get(name, []))))
        return memo[name]

    symbols = {name: probe_name(name) for name in request.get("symbols", [])}
    for name, info in symbols.items():
        info["suggestions"] = _suggestions(name, probe_name) if not info["resolved"] or info["placeholder"] else []
    signatures = {name: _signature_of(name) for name in keywords if symbols.get(name, {}).get("resolved")}
    calls = [
        {**call, "binding": _binding(symbols[call["symbol"]], call, signatures.get(call["symbol"]))}
        for call in request.get("calls", [])
        if call["symbol"] in symbols
    ]
    lookups = [_lookup(item["getter"], item["value"]) for item in request.get("lookups", [])]
    return {"format": PROBE_FORMAT, "python": sys.version.split()[0], "versions": _versions(), "symbols": symbols,
            "calls": calls, "lookups": lookups, "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m harness.worker.symbols REQUEST.json OUT.json", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as handle:
        request = json.load(handle)
    answer = probe(request)
    from pathlib import Path

    from harness.worker.atomic import write_text_atomic

    write_text_atomic(Path(args[1]), json.dumps(answer, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
