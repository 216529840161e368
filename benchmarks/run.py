"""``make bench``: throughput and memory of one sync cycle against the simulators.

For each size N, a child process serves both simulators on loopback (so the worker
measured here does not share its GIL, RSS or allocations with them), seeds N TikTok
orders imported into Magento and lets every buyer cancel. This process then runs
``cancelsync run --once`` through the real CLI (N Magento credit memos), then once more
over the same data (an idempotent re-read: nothing to write), and prints:

- wall time and actions per second of the first run,
- HTTP requests per action, split by endpoint (from the simulators' journals),
- peak RSS of this process (``getrusage``, includes the interpreter and imports),
- tracemalloc peak of a first run (a separate, fresh child: tracing slows the run,
  so its time is not the throughput figure),
- the second run's time and write count.

Figures only; nothing is asserted about timing. ``--profile`` adds a cProfile of the
largest first run. ``--sizes 200,1000`` picks the sizes. JSON logs go to a temp folder.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

_TIKTOK_WRITES = re.compile(
    r"POST /return_refund/[^/]+/cancellations(/[^/]+/(approve|reject))?"
)


# --------------------------------------------------------------------------- child


def serve(n: int, config_path: Path) -> int:
    """Child process: simulators + N cancelled orders; answers ``stats`` / ``quit``."""
    from cancelsync.sandbox.harness import Sandbox

    with Sandbox() as sb:
        sb.add_store("us-main")  # TikTok cancel → Magento refund (restock), the default
        started = time.perf_counter()
        for i in range(n):
            lines: list[dict[str, Any]] = [
                {"sku": f"TEE-{i % 40:02d}", "qty": 1 + i % 3, "price": 19.99}
            ]
            if i % 4 == 0:
                lines.append(
                    {"sku": f"HOODIE-{i % 7}", "qty": 1, "price": 45.0,
                     "product_type": "configurable"}
                )  # fmt: skip
            order = sb.place_order(lines)
            sb.tiktok.buyer_cancel(order.tiktok_order_id)
        seed_seconds = time.perf_counter() - started
        sb.write_config(config_path)
        _reply({"ready": True, "seed_seconds": seed_seconds})
        for command in sys.stdin:
            if command.strip() == "stats":
                _reply(
                    {
                        "magento": _journal_stats(sb.magento_server.journal, "magento"),
                        "tiktok": _journal_stats(sb.tiktok_server.journal, "tiktok"),
                        "memos": len(sb.magento.credit_memos()),
                    }
                )
            elif command.strip() == "quit":
                break
    return 0


def _journal_stats(journal: Any, side: str) -> dict[str, Any]:
    entries = journal.entries()
    writes = [
        e
        for e in entries
        if (
            e.method != "GET"
            if side == "magento"
            else _TIKTOK_WRITES.fullmatch(e.endpoint)
        )
    ]
    return {
        "requests": len(entries),
        "writes": len(writes),
        "by_endpoint": dict(Counter(e.endpoint for e in entries)),
    }


def _reply(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


class Child:
    """The parent's handle on a ``serve`` child process."""

    def __init__(self, n: int, config_path: Path) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "--serve", str(n), "--config", str(config_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator child exited early")
        data: dict[str, Any] = json.loads(line)
        return data

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@contextlib.contextmanager
def child(n: int, folder: Path) -> Iterator[tuple[Child, Path]]:
    # A folder (so a database) per child: the seeded ids repeat from child to child.
    workdir = folder / f"n{n}-{time.monotonic_ns()}"
    workdir.mkdir()
    config_path = workdir / "cancelsync.toml"
    handle = Child(n, config_path)
    try:
        yield handle, config_path
    finally:
        handle.close()


# --------------------------------------------------------------------------- parent


def run_once(config_path: Path, log: TextIO) -> tuple[int, float]:
    from cancelsync.cli import main as cli_main

    with contextlib.redirect_stderr(log):
        started = time.perf_counter()
        rc = cli_main(
            ["--config", str(config_path), "run", "--once"], stdout=io.StringIO()
        )
        return rc, time.perf_counter() - started


def _diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("magento", "tiktok"):
        a, b = after[side], before[side]
        endpoints = Counter(a["by_endpoint"])
        endpoints.subtract(b["by_endpoint"])
        out[side] = {
            "requests": a["requests"] - b["requests"],
            "writes": a["writes"] - b["writes"],
            "by_endpoint": {k: v for k, v in endpoints.items() if v},
        }
    out["memos"] = after["memos"] - before["memos"]
    return out


def _rss_mib() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def bench_size(n: int, folder: Path, log: TextIO, *, profile: bool) -> None:
    print(f"\n== {n} buyer cancellations of imported orders → Magento credit memos ==")
    with child(n, folder) as (sim, config_path):
        print(f"seeded in {sim.ready['seed_seconds']:.2f} s (child process)")
        base = sim.stats()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        rc, first = run_once(config_path, log)
        if profiler:
            profiler.disable()
        mid = sim.stats()
        rc2, second = run_once(config_path, log)
        end = sim.stats()
    d1, d2 = _diff(mid, base), _diff(end, mid)
    actions = d1["magento"]["writes"] + d1["tiktok"]["writes"]
    requests = d1["magento"]["requests"] + d1["tiktok"]["requests"]
    label = " (cProfile on: slower)" if profiler else ""
    print(f"first run  exit {rc}: {first:.2f} s wall{label}, {actions} actions "
          f"({d1['memos']} credit memos), {actions / first:.0f} actions/s, "
          f"{first / max(actions, 1) * 1000:.2f} ms/action")  # fmt: skip
    print(f"  HTTP: {requests} requests, {requests / max(actions, 1):.2f} per action "
          f"(Magento {d1['magento']['requests']}, TikTok {d1['tiktok']['requests']})")  # fmt: skip
    for side in ("magento", "tiktok"):
        for endpoint, count in sorted(d1[side]["by_endpoint"].items()):
            print(f"    {side:<7} {endpoint:<58} {count:>6}")
    print(f"  peak RSS of this process so far: {_rss_mib():.1f} MiB")
    writes2 = d2["magento"]["writes"] + d2["tiktok"]["writes"]
    requests2 = d2["magento"]["requests"] + d2["tiktok"]["requests"]
    print(f"second run exit {rc2}: {second:.3f} s wall, {requests2} requests, "
          f"{writes2} writes (idempotent re-read)")  # fmt: skip

    with child(n, folder) as (_sim, config_path):
        tracemalloc.start()
        tracemalloc.reset_peak()
        _, traced = run_once(config_path, log)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"tracemalloc peak of a first run: {peak / (1024 * 1024):.1f} MiB "
          f"(that run took {traced:.2f} s with tracing on)")  # fmt: skip

    if profiler:
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("tottime").print_stats(15)
        print(stream.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000", help="comma-separated N values")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest N")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.config)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cancelsync-bench-") as tmp:
        folder = Path(tmp)
        print(
            "cancelsync benchmark: one `run --once` against the simulators on 127.0.0.1"
        )
        print(f"python {sys.version.split()[0]}; simulators in a child process; "
              "worker logs (JSON) to a temp file")  # fmt: skip
        print(f"peak RSS before any run: {_rss_mib():.1f} MiB")
        with (folder / "cancelsync.log").open("w", encoding="utf-8") as log:
            for n in sizes:
                bench_size(n, folder, log, profile=args.profile and n == max(sizes))
    print(f"\nbenchmark finished in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
