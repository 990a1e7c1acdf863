"""localqueue side by side with the queues people pick instead, and with the raw engines.

One command, one process tree, one run::

    python benchmarks/compare.py                 # the full comparison, median of 3 runs
    python benchmarks/compare.py --quick         # tiny sizes: proves it works, measures nothing
    python benchmarks/compare.py --runs 5 --json results.json

Every row states its durability (SQLite ``synchronous`` NORMAL/FULL, LMDB
sync/nosync) and is compared with the raw sqlite3/lmdb loop doing the same
writes at the same setting. Then: 1 producer + 2 consumer processes per engine
counting lost and duplicated messages, blocking-get wake-up latency, and a
consumer's memory growth, and get+ack with a thousand versus a million
messages queued.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stores import DURABILITY_NOTES, TARGETS, StoreTarget, unavailable_reason
from cases import FULL, QUICK, SQLITE_LEVELS, Sizes, build_cases
from end_to_end import (
    depth_get_ack,
    latency_cross_process,
    latency_same_process,
    memory_growth,
    mp_engines,
    percentiles,
    run_multi_process,
)
from processes import LOCALQUEUE_CONSUMER


@dataclass
class Result:
    """One row of the output: an engine, an operation, a durability, one value per run."""

    section: str
    engine: str
    operation: str
    durability: str
    unit: str
    values: list[float] = field(default_factory=list)
    baseline: str | None = None
    """``key`` of the raw-loop row this one is divided by."""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity of the row across runs."""
        return f"{self.engine}|{self.operation}|{self.durability}"

    @property
    def median(self) -> float | None:
        """Median over runs; ``None`` when every run failed."""
        return statistics.median(self.values) if self.values else None


# -- the run ---------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def filesystem(path: Path) -> str:
    """The type of the file system holding ``path`` (from ``/proc/mounts``): fsync costs differ.

    On ``tmpfs`` an fsync costs nothing, so FULL and sync rows would mean nothing.
    """
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    with contextlib.suppress(OSError), open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            parts = line.split()
            mount_point, fs_type = parts[1], parts[2]
            inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) > len(best):
                best, kind = mount_point, fs_type
    return kind


def environment(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    """The machine and versions, printed above the tables and saved in the JSON."""
    try:
        import lmdb

        lmdb_version = ".".join(map(str, lmdb.version()))
    except ImportError:
        lmdb_version = "not installed"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "lmdb": lmdb_version,
        "packages": {
            d: _version(d) for d in ("durable-localqueue", "persist-queue", "huey", "litequeue")
        },
        "workdir": f"{args.workdir} ({filesystem(args.workdir)})",
        "runs": args.runs,
        "quick": args.quick,
        "payload_bytes": args.payload_size,
        "sizes": asdict(sizes),
        "sqlite_journal_mode": "WAL for every SQLite engine",
    }


def _fmt_rate(value: float | None) -> str:
    return "failed" if value is None else f"{value:,.0f}"


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A plain fixed-width table."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _durability_label(engine: str, durability: str) -> str:
    if durability in SQLITE_LEVELS and "lmdb" not in engine:
        return f"synchronous={durability.upper()}"
    return durability


def report(results: list[Result], env: dict[str, Any], skipped: list[str]) -> None:
    """Print every table."""
    by_key = {r.key: r for r in results}
    print("# localqueue comparison")
    if "(tmpfs)" in env["workdir"]:
        print("\n**warning: the workdir is on tmpfs (fsync is free): pass --workdir on a disk**\n")
    for name, value in env.items():
        print(f"- {name}: {value}")
    print(
        "- durability: "
        + "; ".join(
            f"{scheme} {level} survives {text}"
            for (scheme, level), text in DURABILITY_NOTES.items()
        )
    )
    rows = []
    for r in (r for r in results if r.section == "single"):
        ratio = ""
        base = by_key.get(r.baseline) if r.baseline else None
        if base is not None and base.median and r.median is not None:
            ratio = f"{r.median / base.median:.0%}"
        rows.append(
            [
                r.engine,
                r.operation,
                _durability_label(r.engine, r.durability),
                _fmt_rate(r.median),
                ratio,
                r.note,
            ]
        )
    if rows:
        print_table(
            f"Single process, msgs/s, median of {env['runs']} runs"
            " ('vs raw': the raw loop at the same durability)",
            ["engine", "operation", "durability", "msgs/s", "vs raw", "notes"],
            rows,
        )
    deep = [r for r in results if r.section == "depth"]
    if deep:
        shallow = {
            r.engine + r.durability: r.median
            for r in deep
            if r.extra["depth"] == min(d.extra["depth"] for d in deep)
        }
        print_table(
            f"get+ack by queue depth, msgs/s, median of {env['runs']} runs",
            ["engine", "durability", "queued", "msgs/s", "vs shallowest"],
            [
                [
                    r.engine,
                    _durability_label(r.engine, r.durability),
                    f"{r.extra['depth']:,}",
                    _fmt_rate(r.median),
                    f"{r.median / first:.0%}"
                    if r.median and (first := shallow.get(r.engine + r.durability))
                    else "",
                ]
                for r in deep
            ],
        )
    mp = [r for r in results if r.section == "multi-process"]
    if mp:
        print_table(
            "1 producer + 2 consumer processes"
            " (lost: put, never acked; duplicated: acked more than once)",
            ["engine", "durability", "msgs/s", "lost", "duplicated", "consumer"],
            [
                [
                    r.engine,
                    _durability_label(r.engine, r.durability),
                    _fmt_rate(r.median),
                    str(r.extra.get("lost", "?")),
                    str(r.extra.get("duplicated", "?")),
                    r.note,
                ]
                for r in mp
            ],
        )
    lat = [r for r in results if r.section == "latency"]
    if lat:
        print_table(
            "Blocking get wake-up after a put returns, ms",
            ["engine", "durability", "where", "p50", "p99"],
            [
                [
                    r.engine,
                    r.durability,
                    r.operation,
                    f"{r.extra['p50_ms']:.3f}",
                    f"{r.extra['p99_ms']:.3f}",
                ]
                for r in lat
            ],
        )
    mem = [r for r in results if r.section == "memory"]
    if mem:
        print_table(
            "Consumer memory growth (anonymous RSS after warm-up -> after all messages)",
            ["engine", "durability", "messages", "start MiB", "end MiB", "growth MiB"],
            [
                [
                    r.engine,
                    r.durability,
                    f"{r.extra['messages']:,}",
                    f"{r.extra['start_kib'] / 1024:.1f}",
                    f"{r.extra['end_kib'] / 1024:.1f}",
                    f"{(r.extra['end_kib'] - r.extra['start_kib']) / 1024:.1f}",
                ]
                for r in mem
            ],
        )
    failed = [r for r in results if r.extra.get("errors")]
    if skipped or failed:
        print("\n## Left out or failed\n")
        for line in skipped:
            print(f"- {line}")
        for r in failed:
            print(f"- {r.engine} {r.operation} ({r.durability}): {r.extra['errors'][0]}")


def _record(
    results: dict[str, Result], result: Result, value: float | None, error: str | None = None
) -> Result:
    kept = results.setdefault(result.key, result)
    if value is not None:
        kept.values.append(value)
    if error is not None:
        kept.extra.setdefault("errors", []).append(error)
    return kept


def run(args: argparse.Namespace) -> list[Result]:
    """Run every part ``args`` asks for, ``args.runs`` times; return the merged rows."""
    sizes = QUICK if args.quick else FULL
    if args.messages:
        sizes = Sizes(
            args.messages,
            args.messages * 10,
            args.messages,
            sizes.latency_samples,
            sizes.memory_messages,
            sizes.idle_seconds,
            sizes.depths,
        )
    only = set(args.only.split(",")) if args.only else None
    payload = b"x" * args.payload_size
    cases, skipped = build_cases(sizes, payload, only)
    if args.skip_single:
        cases = []
    results: dict[str, Result] = {}
    env = environment(args, sizes)
    for run_index in range(args.runs):
        run_dir = Path(tempfile.mkdtemp(prefix=f"run{run_index}-", dir=args.workdir))
        try:
            for number, case in enumerate(cases):
                print(
                    f"[run {run_index + 1}/{args.runs}] {case.engine} {case.operation}"
                    f" ({case.durability})",
                    file=sys.stderr,
                )
                workdir = run_dir / f"case{number}"
                workdir.mkdir()
                row = Result(
                    "single",
                    case.engine,
                    case.operation,
                    case.durability,
                    "msgs/s",
                    baseline=case.baseline,
                    note=case.note,
                )
                try:
                    seconds = case.run(workdir)
                    _record(results, row, case.count / seconds)
                except Exception as exc:
                    _record(results, row, None, f"{type(exc).__name__}: {exc}")
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
            if not args.skip_depth:
                _run_depth(results, run_dir, sizes, args, only)
            if not args.skip_multi_process:
                _run_multi_process(results, run_dir, sizes, args, only)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    run_dir = Path(tempfile.mkdtemp(prefix="once-", dir=args.workdir))
    try:
        if not args.skip_latency:
            _run_latency(results, run_dir, sizes, only)
        if not args.skip_memory:
            _run_memory(results, run_dir, sizes, args, only)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    ordered = list(results.values())
    report(ordered, env, skipped)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "environment": env,
                    "skipped": skipped,
                    "results": [asdict(r) | {"median": r.median} for r in ordered],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        print(f"\nSaved {args.json}")
    return ordered


def _mkdir(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_multi_process(
    results: dict[str, Result],
    run_dir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    only: set[str] | None,
) -> None:
    for engine, spec, target, note in mp_engines(lambda name: _mkdir(run_dir, name), only):
        print(f"[multi-process] {engine} ({spec.durability})", file=sys.stderr)
        row = Result(
            "multi-process",
            engine,
            "1 producer + 2 consumers",
            spec.durability,
            "msgs/s",
            note=note,
        )
        workdir = _mkdir(run_dir, f"{engine.replace(' ', '-')}-{spec.durability}-ids")
        try:
            outcome = run_multi_process(
                spec, sizes.multi_process, args.payload_size, sizes.idle_seconds, workdir
            )
            kept = _record(results, row, outcome["msgs_per_s"])
            # Lost and duplicated are summed over runs: any loss in any run counts.
            for name in ("lost", "duplicated", "extra_deliveries"):
                kept.extra[name] = kept.extra.get(name, 0) + outcome[name]
            kept.extra.setdefault("exit_codes", []).append(outcome["exit_codes"])
        except Exception as exc:
            _record(results, row, None, f"{type(exc).__name__}: {exc}")
        finally:
            if target is not None:
                target.cleanup(spec.location)


def _localqueue_targets(only: set[str] | None) -> Iterator[tuple[str, StoreTarget]]:
    """(engine name, target) of each available store ``--only`` lets through."""
    for target in TARGETS:
        engine = f"localqueue {target.scheme}"
        if only is not None and not any(word in engine for word in only):
            continue
        if unavailable_reason(target) is None:
            yield engine, target


DEPTH_TARGETS = ("sqlite-normal", "lmdb-sync")
"""The configurations get+ack is measured at several depths on (the targets name SQLite)."""


def _run_depth(
    results: dict[str, Result],
    run_dir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    only: set[str] | None,
) -> None:
    for engine, target in _localqueue_targets(only):
        if target.label not in DEPTH_TARGETS:
            continue
        for depth in sizes.depths:
            print(f"[depth] {engine} ({target.durability}) {depth:,} queued", file=sys.stderr)
            # The depth goes on the row itself: a row whose every run failed still has one.
            row = Result(
                "depth",
                engine,
                f"get+ack at {depth:,}",
                target.durability,
                "msgs/s",
                extra={"depth": depth},
            )
            workdir = _mkdir(run_dir, f"{target.label}-depth-{depth}")
            try:
                rate = depth_get_ack(target, depth, sizes.single, args.payload_size, workdir)
                _record(results, row, rate)
            except Exception as exc:
                _record(results, row, None, f"{type(exc).__name__}: {exc}")
            finally:
                shutil.rmtree(workdir, ignore_errors=True)


def _run_latency(
    results: dict[str, Result], run_dir: Path, sizes: Sizes, only: set[str] | None
) -> None:
    from localqueue import Capability
    from localqueue.registry import get_backend

    for engine, target in _localqueue_targets(only):
        modes: list[tuple[str, Callable[[str, int], list[float]]]] = [
            ("same process", latency_same_process)
        ]
        if Capability.MULTI_PROCESS in get_backend(target.scheme).capabilities:
            modes.append(("cross process", latency_cross_process))
        for where, measure in modes:
            print(f"[latency] {engine} ({target.durability}) {where}", file=sys.stderr)
            url = target.url(_mkdir(run_dir, f"{target.label}-lat-{where[:5]}"), "msgpack")
            row = Result("latency", engine, where, target.durability, "ms")
            try:
                p50, p99 = percentiles(measure(url, sizes.latency_samples))
                kept = _record(results, row, p50)
                kept.extra.update({"p50_ms": p50, "p99_ms": p99, "samples": sizes.latency_samples})
            except Exception as exc:
                _record(results, row, None, f"{type(exc).__name__}: {exc}")
            finally:
                target.cleanup(url)


def _run_memory(
    results: dict[str, Result],
    run_dir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    only: set[str] | None,
) -> None:
    for engine, target in _localqueue_targets(only):
        if target.durability in {"full", "sync"}:
            continue  # the fastest setting moves the most messages per second: the harshest test
        print(f"[memory] {engine} ({target.durability})", file=sys.stderr)
        row = Result(
            "memory", engine, "consume", target.durability, "KiB", note=LOCALQUEUE_CONSUMER
        )
        try:
            start_kib, end_kib = memory_growth(
                target,
                sizes.memory_messages,
                args.payload_size,
                _mkdir(run_dir, f"{target.label}-mem"),
            )
            kept = _record(results, row, float(end_kib - start_kib))
            kept.extra.update(
                {"messages": sizes.memory_messages, "start_kib": start_kib, "end_kib": end_kib}
            )
        except Exception as exc:
            _record(results, row, None, f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="repeat the throughput parts; report the median (default 3)",
    )
    parser.add_argument("--json", metavar="PATH", help="also save every result as JSON")
    parser.add_argument(
        "--payload-size", type=int, default=100, help="bytes per message (default 100)"
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=0,
        help="override the per-call message count (batches move 10x)",
    )
    parser.add_argument(
        "--only", help="comma-separated words; run only engines whose name contains one"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where databases are created (its disk decides fsync cost)",
    )
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--skip-depth", action="store_true")
    parser.add_argument("--skip-multi-process", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = run(args)
    return 1 if any(r.extra.get("errors") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
