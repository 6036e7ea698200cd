"""Command line of the orchestrator (``python -m harness``); nox sessions call it, users may too.

Each command is a short chain of plain steps (load the matrix, discover scenarios, act, summarize) and returns its
exit code: 0 done, 1 the run finished with problems where the command gates on them, 2 a usage error (bad
matrix, unknown environment, missing results), always with a one-line reason per problem on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import matrix as matrix_mod
from harness import workspace
from harness.errors import HarnessError, Terminated
from harness.results import EnvironmentResult, load_run, new_run_id, results_schema
from harness.split_work import side_by_side
from harness.worker import scenario as scenario_mod

if TYPE_CHECKING:
    from harness.judge import Verdict
    from harness.pipeline import EnvironmentPipeline
    from harness.scan import ScanReport
    from harness.verdicts import Policy

__all__ = ["main"]

DEFAULT_MATRIX = "matrix.yaml"
SCHEMA_DIR = Path(__file__).parent / "schemas"


def _packages(value: str | None) -> tuple[str, ...]:
    raw = value or os.environ.get("COMPAT_SCENARIO_PACKAGES", "scenarios")
    return tuple(p for p in raw.split(",") if p)


def _load(args: argparse.Namespace) -> tuple[matrix_mod.Matrix, dict[str, scenario_mod.Scenario]]:
    matrix = matrix_mod.load(args.matrix, scenario_mod.discover(_packages(args.scenario_packages)))
    return matrix, scenario_mod.get()  # with the user's scenarios (``scenarios.paths``) the matrix imported


def cmd_init(args: argparse.Namespace) -> int:
    """Write a working starting point (a matrix with one upgrade path, an example scenario) into ``--dir``."""
    from harness.starter import save_example_model, write_starter

    directory = Path(args.dir)
    for path in write_starter(directory, force=args.force, model=False):
        print(f"wrote {path}")
    if args.no_model:
        return 0
    print("saving the example model in the first environment (provisioned now, reused by run)", flush=True)
    print(f"wrote {save_example_model(directory, workspace.state_dir(cwd=directory.resolve()))}")
    write_starter(directory, force=True)  # the matrix again, now with its models: entry
    print("next: compat-matrix run, then compat-matrix report and compat-matrix gonogo (in that folder)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    matrix, _ = _load(args)
    print(f"{matrix.path}: {len(matrix.environments)} environments, {len(matrix.scenario_ids)} scenarios: ok")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    matrix, registry = _load(args)
    listing: dict[str, Any] = {
        "environments": [
            {
                "name": e.name,
                "python": e.python,
                "packages": e.packages,
                "env": e.env,
                "frameworks": e.frameworks,
            }
            for e in matrix.environments.values()
        ],
        "baseline": matrix.baseline,
        "scenarios": [
            {"id": sid, "area": registry[sid].area, "requires": list(registry[sid].requires)}
            for sid in matrix.scenario_ids
        ],
    }
    if args.json:
        print(json.dumps(listing, indent=2))
    else:
        for env in listing["environments"]:
            pins = ", ".join(f"{k}=={v}" for k, v in env["packages"].items())
            print(f"{env['name']}: {pins} {env['env'] or ''}".rstrip())
        for item in listing["scenarios"]:
            print(f"  {item['id']} requires {item['requires']}")
    return 0


def _pipeline(args: argparse.Namespace) -> EnvironmentPipeline:
    """The environment's pipeline in the run the arguments (or ``COMPAT_RUN_ID``) name, or in a new run."""
    from harness.cache import CellCache, default_cache_dir
    from harness.pipeline import EnvironmentPipeline
    from harness.progress import Progress, expected_seconds

    matrix, registry = _load(args)
    env = matrix.environment(args.env)
    run_id = args.run_id or os.environ.get("COMPAT_RUN_ID") or new_run_id()
    venv_dir = Path(args.venv_dir) if args.venv_dir else workspace.state_dir() / env.venv_slug
    extra = tuple(Path(p) for p in os.environ.get("COMPAT_EXTRA_PYTHONPATH", "").split(os.pathsep) if p)
    return EnvironmentPipeline(
        matrix,
        env.name,
        Path(args.results_dir) / run_id,
        venv_dir.resolve(),
        registry,
        run_id=run_id,
        scenario_packages=_packages(args.scenario_packages),
        extra_pythonpath=extra,
        cache=CellCache(default_cache_dir(), enabled=not args.no_cache),
        progress=Progress(env.name, expected_seconds(Path(args.results_dir), run_id, env.name)),
    )


def _finish(pipeline: EnvironmentPipeline, line: str) -> None:
    """The environment's one closing line: through its progress display (which it replaces), else printed."""
    if pipeline.progress is not None:
        pipeline.progress.finish(line)
    else:
        print(line)


def cmd_run(args: argparse.Namespace) -> int:
    if args.env is None:
        return _run_every_environment(args)
    pipeline = _pipeline(args)
    env, run_dir = pipeline.env, pipeline.run_dir
    doc = pipeline.run(selection=args.scenarios, repeat=args.repeat)
    counts: dict[str, int] = {}
    for cell in doc.scenarios:
        counts[cell.status] = counts.get(cell.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    reused = f", {doc.timings.cells_reused} reused" if doc.timings.cells_reused else ""
    _finish(
        pipeline,
        f"{env.name}: {doc.state}; {summary or 'no scenarios'}{reused}; results in {run_dir / (env.name + '.json')}",
    )
    if doc.env_error:
        print(f"{env.name}: could not be provisioned: {doc.env_error.message}", file=sys.stderr)
        return 1
    return 0


def _run_every_environment(args: argparse.Namespace) -> int:
    """``run`` without ``--env``: every environment, one after the other, then every relay consumer, in one run.

    The installed tool's whole job in the user's directory (the checkout's ``./cm`` does the same through nox,
    in parallel); exit 1 when an environment could not be provisioned, after all the others ran.
    """
    from harness.relay import PRODUCE_ID

    matrix, _ = _load(args)
    run_id = args.run_id or os.environ.get("COMPAT_RUN_ID") or new_run_id()
    codes = [cmd_run(_for_environment(args, name, run_id)) for name in matrix.environments]
    if PRODUCE_ID in matrix.scenario_ids:
        codes += [cmd_relay(_for_environment(args, name, run_id, relay_from=None)) for name in matrix.environments]
    print(f"run {run_id}: {len(matrix.environments)} environments in {Path(args.results_dir) / run_id}")
    return max(codes, default=0)


def _for_environment(args: argparse.Namespace, env: str, run_id: str, **extra: object) -> argparse.Namespace:
    """The arguments of ``run --env ENV`` (or ``relay``) in the given run, its venv in the state folder."""
    return argparse.Namespace(**{**vars(args), "env": env, "run_id": run_id, "venv_dir": None, **extra})


def cmd_relay(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    env = pipeline.env
    doc = pipeline.consume(Path(args.relay_from) if args.relay_from else None)
    counts: dict[str, int] = {}
    for row in doc.relay:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to load"
    reused = f", {doc.timings.relay_cells_reused} cells reused" if doc.timings.relay_cells_reused else ""
    _finish(pipeline, f"{env.name}: relay consumer: {summary}{reused}; {len(doc.relay_problems)} unreadable manifests")
    return 0


def _run_dir(args: argparse.Namespace) -> Path:
    """The run named by ``--run`` (refused, with the runs there are, when it does not exist), else the latest."""
    from harness.report import latest_run

    results_dir = Path(args.results_dir)
    if not args.run:
        return latest_run(results_dir)
    run_dir = results_dir / str(args.run)
    if not (run_dir.is_dir() and any(run_dir.glob("*.json"))):
        runs = sorted(p.name for p in results_dir.iterdir() if p.is_dir()) if results_dir.is_dir() else []
        known = ", ".join(runs[-10:]) or "none yet"
        raise HarnessError(f"{results_dir}: no run {args.run!r} with results (runs there: {known})")
    return run_dir


def _matrix_or_none(args: argparse.Namespace) -> matrix_mod.Matrix | None:
    """The matrix orders columns and holds paths, tolerances and waivers; reports still work from results alone."""
    try:
        return matrix_mod.load(args.matrix, scenario_mod.discover(_packages(args.scenario_packages)))
    except HarnessError as exc:
        print(f"note: {args.matrix} not used ({str(exc).splitlines()[0]})", file=sys.stderr)
        return None


def _default_pairs(matrix: matrix_mod.Matrix | None) -> list[tuple[str, str]]:
    """The matrix's upgrade paths (a side without results in the run is judged INCOMPLETE, never skipped)."""
    if matrix is None:
        return []
    return [(p.baseline, p.candidate) for p in matrix_mod.upgrade_paths(matrix)]


def _listing(unreadable: dict[str, str]) -> str:
    return "(" + "; ".join(unreadable.values()) + ")" if unreadable else ""


@contextlib.contextmanager
def _documents_kept() -> Iterator[None]:
    """The run's documents stay until the command ends and hold no reference cycles: out of the cyclic garbage
    collector's sight meanwhile (``gc.freeze``: here what is there already, ``_freeze_what_was_read`` the run),
    its passes stop rescanning them, so judging a path costs the same in a run of 10,000 cells as in one of
    100,000. Handed back (``gc.unfreeze``) however the command ends.
    """
    import gc

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _freeze_what_was_read() -> None:
    """Inside ``_documents_kept``: the run's documents, just read, out of the collector's sight too (it unfreezes
    everything when the command ends)."""
    import gc

    gc.freeze()


def cmd_report(args: argparse.Namespace) -> int:
    from harness.verdicts import load_and_judge, policy_of

    run_dir = _run_dir(args)
    matrix = _matrix_or_none(args)

    def past_of(docs: dict[str, EnvironmentResult], unreadable: dict[str, str]) -> _Past:
        return _past(args, run_dir, docs, unreadable)

    # a bad file is reported, every other environment still is; a large run's paths are judged while it is read,
    # and what the earlier runs say is read while the last of them are judged
    with _documents_kept():
        pairs, policy = _default_pairs(matrix), policy_of(matrix)
        docs, unreadable, verdicts, past = load_and_judge(run_dir, pairs, policy, past_of, read=_freeze_what_was_read)
        if past is None:
            raise HarnessError(f"{run_dir}: the folder holds no readable results document {_listing(unreadable)}")
        return _report(args, run_dir, (docs, verdicts, past), matrix)


@dataclass(frozen=True)
class _Past:
    """What a report says from beyond this run's verdicts: its flags (unreadable files, missing cells), the trend
    over the earlier runs and the releases new since the last one."""

    flags: list[str]
    trend: dict[str, Any]
    releases: list[dict[str, str]]


def _past(
    args: argparse.Namespace, run_dir: Path, docs: dict[str, EnvironmentResult], unreadable: dict[str, str]
) -> _Past:
    from harness import history

    results_dir = Path(args.results_dir)
    runs = history.list_runs(results_dir, known={run_dir: docs})  # every run read once, this one not again
    flags = [f"unreadable results file: {line}" for line in unreadable.values()]
    flags += history.completeness_flags(run_dir, docs, results_dir, runs)
    trend = history.trend(results_dir, runs=runs)
    return _Past(flags, trend, history.new_releases(run_dir, docs, results_dir, runs))


def _report(
    args: argparse.Namespace,
    run_dir: Path,
    judged: tuple[dict[str, EnvironmentResult], list[Verdict], _Past],
    matrix: matrix_mod.Matrix | None,
) -> int:
    from harness import report

    docs, verdicts, past = judged
    order = list(matrix.environments) if matrix else []
    flags, trend, releases = past.flags, past.trend, past.releases

    def html_written() -> None:
        html = report.render_html(run_dir, docs, order, verdicts, flags, trend, releases)
        report.write_text(run_dir / "report.html", html)

    def others_written() -> str:
        markdown = report.render_markdown(run_dir, docs, order, verdicts, flags, releases)
        report.write_text(run_dir / "report.md", markdown)
        report.write_text(run_dir / "junit.xml", report.render_junit(docs, order, verdicts))
        # compact: an indented dump goes through json's pure-Python encoder (10k cells: 0.35 s instead of 0.03 s)
        report.write_text(run_dir / "history" / "trend.json", json.dumps(trend, separators=(",", ":")) + "\n")
        return markdown

    # a large run's HTML takes as long as the other three: rendered by a forked copy meanwhile (``split_work``)
    markdown, _ = side_by_side(others_written, html_written, split=_cell_count(docs) >= _SPLIT_RENDERING_CELLS)
    print(markdown)
    print(f"reports written to {run_dir}: report.md, report.html, junit.xml, gonogo/*.json, ledger/*.json")
    for flag in flags:
        print(f"INCOMPLETE RUN: {flag}", file=sys.stderr)
    blocked = [f"{v.baseline} -> {v.candidate}: {v.verdict}" for v in verdicts if v.exit_code]
    for line in blocked:
        print(f"upgrade path {line}", file=sys.stderr)
    if matrix is None:
        print("report: no verdicts: the matrix could not be read (see the note above)", file=sys.stderr)
        return 2
    return 1 if flags or (blocked and args.gate == "verdicts") else 0


#: From how many cells on ``report`` renders its HTML in a forked copy while it writes the other reports: below,
#: rendering takes a few tenths of a second and the fork would only add to it.
_SPLIT_RENDERING_CELLS = 2000


def _cell_count(docs: Mapping[str, EnvironmentResult]) -> int:
    return sum(len(doc.scenarios) for doc in docs.values())


def cmd_gonogo(args: argparse.Namespace) -> int:
    from harness.results import load_run

    if (args.baseline is None) != (args.candidate is None):
        raise HarnessError("give both --baseline and --candidate, or neither (every upgrade path of the matrix)")
    run_dir = _run_dir(args)
    unreadable: dict[str, str] = {}
    docs = load_run(run_dir, unreadable)
    for line in unreadable.values():
        print(f"unreadable results file: {line}", file=sys.stderr)
    with _documents_kept():
        return _gonogo(args, run_dir, docs, unreadable)


def _gonogo(
    args: argparse.Namespace, run_dir: Path, docs: dict[str, EnvironmentResult], unreadable: dict[str, str]
) -> int:
    from harness import paths, report
    from harness.verdicts import check_comparable, judge_paths, policy_of

    matrix = _matrix_or_none(args)
    if args.baseline is not None:
        if not {args.baseline, args.candidate} & set(unreadable):  # a side whose file is bad: INCOMPLETE below
            check_comparable(docs, matrix, args.baseline, args.candidate)
        pairs = [(args.baseline, args.candidate)]
    else:
        pairs = _default_pairs(matrix)
        if not pairs:
            raise HarnessError(f"{args.matrix}: the matrix has no upgrade path to judge (declare one under upgrades:)")
    judged = judge_paths(run_dir, docs, pairs, policy_of(matrix), unreadable)
    if args.scan:
        judged = [_with_scan(args, run_dir, verdict, policy_of(matrix)) for verdict in judged]
    order = list(matrix.environments) if matrix else []
    for verdict in judged:
        markdown = report.render_verdict_markdown(verdict, limit=args.limit)
        report.write_text(paths.verdict_file(run_dir, verdict.baseline, verdict.candidate, "md"), markdown)
        pair = {k: docs[k] for k in (verdict.baseline, verdict.candidate) if k in docs}
        html = report.render_html(run_dir, pair, order, [verdict])
        report.write_text(paths.verdict_file(run_dir, verdict.baseline, verdict.candidate, "html"), html)
        print(markdown)
        stem = paths.verdict_file(run_dir, verdict.baseline, verdict.candidate, "{md,json,html}")
        ledger = f"; ledger in {run_dir / verdict.ledger}" if verdict.ledger else ""
        print(f"verdict written to {stem}{ledger}")
    return max(v.exit_code for v in judged)


def _scan_report(args: argparse.Namespace, paths: list[str], baseline: str, candidate: str) -> ScanReport:
    from harness.scan import run_scan

    matrix, _ = _load(args)
    if baseline == candidate:
        raise HarnessError(f"scan: --baseline and --candidate are both {baseline!r}: nothing to compare")
    return run_scan(matrix, paths, baseline, candidate, timeout=args.scan_timeout, use_cache=not args.no_cache)


def cmd_bisect(args: argparse.Namespace) -> int:
    """The first release of a package where the selected scenarios' behaviour changed (``harness.bisect``)."""
    from harness.bisect.command import run

    return run(args)


def cmd_scan(args: argparse.Namespace) -> int:
    """Which lines of the code under PATH use something that works in A and not in B (exit 1 when any does)."""
    from harness.scan.format import render

    report = _scan_report(args, args.paths, args.baseline, args.candidate)
    print(render(report, args.format), end="")
    for problem in report.not_scanned:
        print(f"scan: not scanned: {problem.error}", file=sys.stderr)
    return 1 if report.blocking else 0


def _with_scan(args: argparse.Namespace, run_dir: Path, verdict: Verdict, policy: Policy) -> Verdict:
    """The verdict with the scan's findings on its path as reasons (its JSON file rewritten to hold them)."""
    from harness import paths
    from harness.judge.scan import with_scan
    from harness.verdicts import verdict_json
    from harness.worker.atomic import write_text_atomic

    report = _scan_report(args, args.scan, verdict.baseline, verdict.candidate)
    pair = f"--baseline {shlex.quote(verdict.baseline)} --candidate {shlex.quote(verdict.candidate)}"
    command = f"python -m harness scan {' '.join(shlex.quote(p) for p in args.scan)} {pair}"
    updated = with_scan(verdict, report, list(policy.waivers), policy.today, command)
    write_text_atomic(paths.verdict_file(run_dir, verdict.baseline, verdict.candidate), verdict_json(updated))
    return updated


def cmd_shard(args: argparse.Namespace) -> int:
    matrix, _ = _load(args)
    print(" ".join(matrix_mod.shard(matrix, args.spec)))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.merge import merge_runs

    docs = merge_runs(Path(args.into), [Path(s) for s in args.sources])
    cells = sum(len(d.scenarios) for d in docs.values())
    relay = sum(len(d.relay) for d in docs.values())
    summary = f"{len(docs)} environments, {cells} cells, {relay} relay loads"
    print(f"merged {len(args.sources)} folders into {args.into}: {summary}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from harness.judge import verdict_schema

    schemas = {
        "results.schema.json": results_schema(),
        "matrix.schema.json": matrix_mod.matrix_schema(),
        "verdict.schema.json": verdict_schema(),
    }
    for name, schema in schemas.items():
        text = json.dumps(schema, indent=2) + "\n"
        if args.write:
            (SCHEMA_DIR / name).write_text(text)
            print(f"wrote {SCHEMA_DIR / name}")
        else:
            print(text)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """``cache prune``: bound the cell cache; ``cache info``: what it holds (the same listing, nothing removed)."""
    from harness.cache import default_cache_dir
    from harness.cache_prune import parse_size, prune

    root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    try:
        max_bytes = parse_size(args.max_size) if args.max_size is not None else None
    except ValueError as exc:
        raise HarnessError(f"--max-size: {exc}") from None
    if args.older_than is not None and not math.isfinite(args.older_than):
        raise HarnessError(f"--older-than: {args.older_than} is not a number of days")
    if args.older_than is not None and args.older_than < 0:
        raise HarnessError(f"--older-than: {args.older_than} is negative (a number of days)")
    older = args.older_than * 86400 if args.older_than is not None else None
    dry_run = args.action == "info" or args.dry_run
    if args.action == "prune" and older is None and max_bytes is None:
        raise HarnessError("cache prune: say what to remove: --older-than DAYS, --max-size SIZE, or both")
    if root.is_symlink():
        raise HarnessError(f"{root}: a symbolic link; give the folder it points to (--cache-dir): no link is followed")
    if not root.is_dir():
        print(f"{root}: no cell cache here yet: nothing to remove")
        return 0
    print(f"{root}: {prune(root, older, max_bytes, dry_run=dry_run).line(dry_run)}")
    return 0


def cmd_catalogue(args: argparse.Namespace) -> int:
    from harness import catalogue
    from harness.report import catalogue as catalogue_page
    from harness.report.common import latest_run

    _, registry = _load(args)
    run_dir = Path(args.run) if args.run else _latest_or_none(Path(args.results_dir), latest_run)
    problems: dict[str, str] = {}
    run = load_run(run_dir, problems) if run_dir is not None else None
    for problem in problems.values():
        print(f"catalogue: {problem}; left out", file=sys.stderr)
    source = f"the run {run_dir.name}" if run_dir is not None else "no run (run the matrix to fill these columns)"
    target = args.write or "docs/SCENARIOS.md"
    page = catalogue_page.render(catalogue.gather(registry, run), source, target)
    if args.write:
        from harness.report.common import write_text

        print(f"wrote {write_text(Path(args.write), page)}")
    else:
        print(page, end="")
    return 0


def _latest_or_none(results_dir: Path, latest: Any) -> Path | None:
    try:
        return Path(latest(results_dir))
    except HarnessError:
        return None


def build_parser(prog: str = "python -m harness") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="What breaks, and by how much, when TensorFlow, Keras or PyTorch moves from one release to "
        "another: pinned environments, scenarios run in each, saved files loaded across them, a verdict per upgrade.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: object, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.set_defaults(func=func)
        cmd.add_argument("--matrix", default=os.environ.get("COMPAT_MATRIX", DEFAULT_MATRIX))
        cmd.add_argument("--scenario-packages", default=None, help="comma-separated packages of scenarios")
        cmd.add_argument("--results-dir", default=os.environ.get("COMPAT_RESULTS_DIR", "results"))
        return cmd

    init = add("init", cmd_init, "write a starting point here: matrix.yaml with one upgrade path, an example scenario")
    init.add_argument("--dir", default=".", help="the folder to write into (default: the current one)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.add_argument("--no-model", action="store_true", help="no example model (nothing is provisioned)")
    add("check", cmd_check, "validate matrix.yaml and the scenario selection")
    add("list", cmd_list, "list environments and selected scenarios").add_argument("--json", action="store_true")
    run = add("run", cmd_run, "provision an environment (default: every one, then the relay) and run its scenarios")
    run.add_argument("--env", default=None, help="only this environment (default: all of them, then the relay)")
    run.add_argument("--run-id", default=None)
    run.add_argument("--venv-dir", default=None)
    run.add_argument("--repeat", type=int, default=1, help="run each cell N times; records that differ are flaky")
    run.add_argument(
        "--scenarios", "-k", action="append", default=[], help="only scenarios matching this glob (repeatable)"
    )
    relay = add("relay", cmd_relay, "load every producer's relay artifacts in one environment")
    relay.add_argument("--env", required=True)
    relay.add_argument("--run-id", default=None)
    relay.add_argument("--venv-dir", default=None)
    relay.add_argument("--relay-from", default=None, help="read artifacts from this folder instead of the run's")
    for command in (run, relay):
        command.add_argument(
            "--no-cache",
            action="store_true",
            default=os.environ.get("COMPAT_NO_CACHE", "") not in ("", "0"),
            help="measure every cell again instead of reusing unchanged ones (COMPAT_NO_CACHE=1 does the same)",
        )
    report = add("report", cmd_report, "write the run's reports (Markdown, HTML, JUnit XML, verdicts, trend)")
    report.add_argument("--run", default=os.environ.get("COMPAT_RUN_ID"))
    report.add_argument(
        "--gate",
        choices=["verdicts", "incomplete"],
        default="verdicts",
        help="exit 1 on a NO-GO or INCOMPLETE upgrade path and on an incomplete run (default), or only on the latter",
    )
    gonogo = add("gonogo", cmd_gonogo, "judge upgrade paths: GO, GO-WITH-WARNINGS (exit 0); NO-GO, INCOMPLETE (exit 1)")
    gonogo.add_argument("--baseline", default=None, help="with --candidate: judge this pair only")
    gonogo.add_argument("--candidate", default=None, help="default: every upgrade path of the matrix")
    gonogo.add_argument("--run", default=os.environ.get("COMPAT_RUN_ID"))
    gonogo.add_argument("--limit", type=int, default=10, help="blocking reasons shown before folding")
    gonogo.add_argument(
        "--scan", action="append", default=[], metavar="PATH", help="add the findings of `scan PATH` as reasons"
    )
    scan = add("scan", cmd_scan, "which lines of the code under PATH break in the candidate (exit 1 when any does)")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="Python files or folders to scan")
    scan.add_argument("--baseline", required=True, help="the environment the code runs on now")
    scan.add_argument("--candidate", required=True, help="the environment to move to")
    scan.add_argument("--format", choices=["text", "json", "md"], default="text")
    for command in (gonogo, scan):
        command.add_argument("--scan-timeout", type=float, default=300.0, help="seconds per environment's prober")
        command.add_argument("--no-cache", action="store_true", help="probe again instead of reusing an answer")
    from harness.bisect.arguments import add_arguments as add_bisect_arguments

    add_bisect_arguments(
        add("bisect", cmd_bisect, "the first release of a package where the selected scenarios' behaviour changed")
    )
    add("shard", cmd_shard, "print the environments of shard K/N (for any CI system)").add_argument(
        "spec", metavar="K/N"
    )
    merge = add("merge", cmd_merge, "merge result folders from different machines into one run")
    merge.add_argument("--into", required=True)
    merge.add_argument("sources", nargs="+")
    catalogue = add("catalogue", cmd_catalogue, "the scenario catalogue (Markdown), observed in a run")
    catalogue.add_argument("--run", default=None, help="the run folder to observe (default: the latest run)")
    catalogue.add_argument("--write", nargs="?", const="docs/SCENARIOS.md", default=None, help="write it there")
    add("schema", cmd_schema, "print or --write the JSON Schemas").add_argument("--write", action="store_true")
    cache = add("cache", cmd_cache, "bound the cell cache: entries unused for days, then the least recently used")
    cache.add_argument("action", choices=("prune", "info"), help="prune: remove; info: what prune would find")
    cache.add_argument("--older-than", type=float, default=None, metavar="DAYS", help="unused for longer than this")
    cache.add_argument("--max-size", default=None, metavar="SIZE", help="then keep at most this much (500M, 2G)")
    cache.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    cache.add_argument("--cache-dir", default=None, help="the cache (default: COMPAT_CACHE_DIR or the state folder's)")
    return parser


#: A failure of compat-matrix itself, never to be mistaken for a verdict (1) or a usage error (2).
INTERNAL_ERROR = 3


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"signal {signum}")


def main(argv: Sequence[str] | None = None, prog: str = "python -m harness") -> int:
    args = build_parser(prog).parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # a cancelled CI job stops like Ctrl-C
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted; every finished cell is kept", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"{args.command}: terminated ({exc}); every finished cell is kept", file=sys.stderr)
        return 143
    except OSError as exc:  # a full disk, a read-only folder: what was written before stays (atomic writes)
        print(
            f"{args.command}: {exc.filename or 'a file'}: {exc.strerror or exc}; files already written are kept",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        return _internal_error(exc)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _internal_error(exc: Exception) -> int:
    """A bug or an input no check foresaw: one line with the place, its own exit code, not a traceback."""
    if os.environ.get("COMPAT_DEBUG"):
        raise exc
    where = exc.__traceback__
    while where is not None and where.tb_next is not None:
        where = where.tb_next
    line = f" at {where.tb_frame.f_code.co_filename}:{where.tb_lineno}" if where else ""
    print(f"compat-matrix internal error{line}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return INTERNAL_ERROR
