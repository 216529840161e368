"""``make bench``: the worker's API calls, CPU, memory and speed against the simulators.

Each scenario starts the simulators in a child process (``benchmarks/sim.py``: their CPU,
memory and GIL stay out of the figures), seeds them, and runs the real worker as
``python -m cancelsync run --once`` in a process of its own, whose CPU time and peak RSS
come from ``wait4``. Request counts come from the simulators' journals. The table prints
each figure beside its goal (issue 12); ``--json`` writes them all.

1. **Idle calls**: both directions on, a warm store (the first run binds the shop), nothing
   new: requests per enabled direction, and authorization calls.
2. **Calls per event**: a 10,000-event backlog per direction, run until it is done; calls
   per event and their ratio to the floor (one write per event plus the page reads, see
   ``FLOOR``).
3. **Worker CPU per event** of those runs (zero latency).
4. **Throughput** at 100 ms simulated latency on every request, at the default
   ``max_in_flight`` and rate caps, against the bound ``max_in_flight / per-event
   latency`` (calls per event x latency); each side's journal is checked against its
   token bucket (never more than ``capacity + rate x t`` requests in any ``t``).
5. **Peak RSS** of the direction-B backlog run of 2., with 1,000,000 links stored in its
   database. The backlog is 10,000 events, not 100,000: one run reads at most
   ``MAX_SCAN_PAGES`` x 50 = 10,000 cancellations whatever the backlog (the rest waits for
   the next run), so a larger backlog adds runs, not memory; and the simulators, whose
   searches scan every order they hold, would need about half an hour to serve 100,000.
6. **``run --once`` wall time** with nothing to do (median of 5).

Figures only; nothing is asserted. ``--quick`` shrinks every size for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIM = Path(__file__).with_name("sim.py")
# The least a backlog can cost per event: its one write, plus per page the listing and the
# batched reads at the APIs' batch limits (issue 12's floors). B: a refund + 1/50 of a
# cancellation search page + 1/100 of a Magento order search. A: a cancel + 1/100 of a
# credit memo page + 1/50 of a Magento order search + 1/50 of a TikTok detail call.
FLOOR = {"B": 1.03, "A": 1.05}
DEFAULT_MAX_IN_FLIGHT = 4
CAP_KEYS = ("requests_per_second",)


# --------------------------------------------------------------------------- processes


class Sim:
    """The parent's handle on a ``sim.py`` child (one JSON line each way per command)."""

    def __init__(self, config: Path, *, refunds: bool, cancels: bool) -> None:
        args = [sys.executable, str(SIM), "--config", str(config)]
        args += ["--refunds"] if refunds else []
        args += ["--cancels"] if cancels else []
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process exited early")
        data: dict[str, Any] = json.loads(line)
        return data

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with suppress(BrokenPipeError, RuntimeError):
            self.ask("quit")
        self.proc.wait(timeout=60)


@dataclass
class Run:
    """One worker process: exit code, wall time, CPU time (user + system), peak RSS."""

    rc: int
    wall: float
    cpu: float
    rss_mib: float
    cycle_seconds: float | None = None


@dataclass
class Scenario:
    """A simulator child, its config and the worker's log, in one folder."""

    sim: Sim
    config: Path
    log: Path
    runs: list[Run] = field(default_factory=list)

    def run(self) -> Run:
        """``cancelsync run --once`` in a process of its own."""
        args = [sys.executable, "-m", "cancelsync", "--config", str(self.config),
                "run", "--once"]  # fmt: skip
        with self.log.open("a", encoding="utf-8") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter
                args, stdout=subprocess.DEVNULL, stderr=log
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        run = Run(
            proc.returncode, wall, usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024, _last_cycle_seconds(self.log),
        )  # fmt: skip
        self.runs.append(run)
        return run

    def set_worker(self, **values: Any) -> None:
        """Change ``[worker]`` keys, or drop the client rate caps (``defaults=True``)."""
        lines = self.config.read_text(encoding="utf-8").splitlines()
        out = []
        section = ""
        for line in lines:
            if line.startswith("["):
                section = line
            key = line.split("=")[0].strip()
            if section == "[worker]" and key in values:
                continue
            if values.get("default_caps") and key in CAP_KEYS:
                continue
            out.append(line)
            if line == "[worker]":
                out += [f"{k} = {v}" for k, v in values.items() if k != "default_caps"]
        self.config.write_text("\n".join(out) + "\n", encoding="utf-8")


def _last_cycle_seconds(log: Path) -> float | None:
    """The duration of the last ``cycle.finished`` in the worker's JSON log."""
    last = None
    with log.open(encoding="utf-8") as lines:
        for line in lines:
            if '"cycle.finished"' in line:
                try:
                    last = json.loads(line).get("duration_ms")
                except ValueError:
                    continue
    return None if last is None else float(last) / 1000


@contextmanager
def scenario(folder: Path, name: str, *, refunds: bool, cancels: bool,
             **worker: Any) -> Iterator[Scenario]:  # fmt: skip
    workdir = folder / name
    workdir.mkdir()
    config = workdir / "cancelsync.toml"
    sim = Sim(config, refunds=refunds, cancels=cancels)
    try:
        s = Scenario(sim, config, workdir / "worker.log")
        if worker:
            s.set_worker(**worker)
        yield s
    finally:
        sim.close()


# --------------------------------------------------------------------------- figures


def _calls(stats: dict[str, Any]) -> int:
    return int(stats["magento"]["requests"] + stats["tiktok"]["requests"])


def _endpoints(stats: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for side in ("magento", "tiktok"):
        for endpoint, count in stats[side]["by_endpoint"].items():
            out[f"{side} {endpoint}"] = count
    return out


def idle_calls(folder: Path) -> dict[str, Any]:
    """Requests of a cycle with nothing to do, per direction, on a warm store."""
    with scenario(folder, "idle", refunds=True, cancels=True) as s:
        s.run()  # binds the shop, starts both cursors
        first = _endpoints(s.sim.ask("stats"))
        s.sim.ask("clear")
        run = s.run()
        calls = _endpoints(s.sim.ask("stats"))
    direction_b = sum(
        v for k, v in calls.items()
        if "cancellations/search" in k or "orders/search" in k
    )  # fmt: skip
    direction_a = sum(v for k, v in calls.items() if "creditmemos" in k)
    auth = sum(v for k, v in calls.items() if "authorization" in k or "/token/" in k)
    return {
        "B": direction_b,
        "A": direction_a,
        "authorization": auth,
        "other": sum(calls.values()) - direction_a - direction_b - auth,
        "endpoints": calls,
        "first_run_authorization": sum(
            v for k, v in first.items() if "authorization" in k
        ),
        "rc": run.rc,
    }


def backlog(folder: Path, direction: str, n: int, links: int = 0) -> dict[str, Any]:
    """Calls, CPU, peak RSS and wall time to work off an ``n``-event backlog at zero
    latency, with ``links`` links stored beforehand."""
    refunds = direction == "B"
    with scenario(folder, f"backlog-{direction}", refunds=refunds,
                  cancels=not refunds) as s:  # fmt: skip
        s.run()  # a warm store: the backlog arrives after the first cycle
        started = time.perf_counter()
        _insert_links(s.config.parent / "cancelsync.db", links)
        insert_seconds = time.perf_counter() - started
        seeded = s.sim.ask("seed_refunds" if refunds else "seed_cancels", n=n)
        s.sim.ask("clear")
        runs = []
        for _ in range(10):
            runs.append(s.run())
            stats = s.sim.ask("stats")
            writes = _writes(stats, direction)
            if writes >= n or runs[-1].rc != 0:
                break
        calls = _calls(stats)
    cpu = sum(r.cpu for r in runs)
    return {
        "events": n,
        "writes": writes,
        "runs": len(runs),
        "exit_codes": [r.rc for r in runs],
        "calls": calls,
        "calls_per_event": calls / n,
        "floor": FLOOR[direction],
        "ratio_to_floor": calls / n / FLOOR[direction],
        "cpu_seconds": cpu,
        "cpu_ms_per_event": cpu / n * 1000,
        "wall_seconds": sum(r.wall for r in runs),
        "peak_rss_mib": max(r.rss_mib for r in runs),
        "endpoints": _endpoints(stats),
        "seed_seconds": seeded["seconds"],
        "links": links,
        "link_insert_seconds": insert_seconds,
    }


def _writes(stats: dict[str, Any], direction: str) -> int:
    by = stats["magento" if direction == "B" else "tiktok"]["by_endpoint"]
    if direction == "B":
        return int(by.get("POST order/{id}/refund", 0))
    return int(sum(v for k, v in by.items() if k.startswith("POST /return_refund")
                   and not k.endswith("/search")))  # fmt: skip


def throughput(folder: Path, direction: str, n: int, latency: float) -> dict[str, Any]:
    """Events per second at ``latency`` per request, at the default caps."""
    refunds = direction == "B"
    with scenario(folder, f"throughput-{direction}", refunds=refunds,
                  cancels=not refunds) as s:  # fmt: skip
        s.set_worker(default_caps=True)
        s.run()
        s.sim.ask("seed_refunds" if refunds else "seed_cancels", n=n)
        s.sim.ask("clear")
        s.sim.ask("latency", seconds=latency)
        run = s.run()
        stats = s.sim.ask("stats")
    calls_per_event = _calls(stats) / n
    seconds = run.cycle_seconds or run.wall
    rate = n / seconds
    bound = DEFAULT_MAX_IN_FLIGHT / (calls_per_event * latency)
    caps = _default_caps()
    return {
        "events": n,
        "writes": _writes(stats, direction),
        "rc": run.rc,
        "latency_seconds": latency,
        "cycle_seconds": seconds,
        "events_per_second": rate,
        "calls_per_event": calls_per_event,
        "bound_events_per_second": bound,
        "ratio_to_bound": rate / bound,
        "rate_caps": caps,
        "worst_bucket_excess": {
            side: _bucket_excess(stats[side]["at"], caps[side])
            for side in ("magento", "tiktok")
        },
        "peak_requests_in_1s": {
            side: _peak(stats[side]["at"], 1.0) for side in ("magento", "tiktok")
        },
    }


def _default_caps() -> dict[str, float]:
    from cancelsync.config.model import MagentoConfig, TikTokConfig

    return {
        "magento": MagentoConfig("https://x.test").requests_per_second,
        "tiktok": TikTokConfig().requests_per_second,
    }


def _bucket_excess(arrivals: list[float], rate: float) -> float:
    """How far the arrivals ever ran ahead of a token bucket of ``rate`` per second and
    ``capacity = max(1, rate)`` (the client's): requests beyond what it admits, at most
    (<= 0: never exceeded; small jitter of loopback arrival times aside)."""
    capacity = max(1.0, rate)
    times = sorted(arrivals)
    worst = float("-inf")
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            admitted = capacity + rate * (times[j] - start)
            worst = max(worst, (j - i + 1) - admitted)
            if times[j] - start > 2.0:
                break
    return worst if times else 0.0


def _peak(arrivals: list[float], window: float) -> int:
    times = sorted(arrivals)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def _insert_links(database: Path, count: int) -> None:
    """``count`` links of orders the simulators do not know (ids far above theirs)."""
    if count <= 0:
        return
    conn = sqlite3.connect(database)
    try:
        scope = conn.execute("SELECT scope FROM cursors LIMIT 1").fetchone()[0]
        rows = (
            (f"59{i:016d}", scope, 10_000_000 + i, f"9{i:08d}", 1,
             "2026-01-01T00:00:00+00:00")
            for i in range(count)
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO links (tiktok_order_id, scope, magento_entity_id, "
            "magento_increment_id, magento_store_id, created_at) VALUES (?,?,?,?,?,?)",
            rows,
        )
        conn.commit()
    finally:
        conn.close()


def noop_run(folder: Path, repeats: int = 5) -> dict[str, Any]:
    """Wall time of ``run --once`` with nothing to do (both directions on, warm)."""
    with scenario(folder, "noop", refunds=True, cancels=True) as s:
        s.run()
        s.run()
        runs = [s.run() for _ in range(repeats)]
    walls = [r.wall for r in runs]
    return {
        "median_seconds": statistics.median(walls),
        "all_seconds": walls,
        "cpu_seconds": statistics.median(r.cpu for r in runs),
    }


# --------------------------------------------------------------------------- report


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(figure, value, goal, met)`` rows."""
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, goal: str, ok: bool) -> None:
        rows.append((name, value, goal, "yes" if ok else "NO"))

    idle = results.get("idle")
    if idle:
        for d in ("B", "A"):
            row(f"1. idle cycle calls, direction {d}", str(idle[d]), "1", idle[d] <= 1)
        row("1. authorization calls per run (warm)", str(idle["authorization"]), "0",
            idle["authorization"] == 0)  # fmt: skip
    for d in ("B", "A"):
        b = results.get(f"backlog_{d}")
        if b:
            row(f"2. calls/event, {d}, {b['events']:,} events",
                f"{b['calls_per_event']:.3f} ({b['ratio_to_floor']:.3f} x floor "
                f"{b['floor']})", "<= 1.1 x floor", b["ratio_to_floor"] <= 1.1)  # fmt: skip
    for d in ("B", "A"):
        b = results.get(f"backlog_{d}")
        if b:
            row(f"3. worker CPU/event, {d} (0 latency)",
                f"{b['cpu_ms_per_event']:.2f} ms", "<= 1 ms",
                b["cpu_ms_per_event"] <= 1.0)  # fmt: skip
    for d in ("B", "A"):
        t = results.get(f"throughput_{d}")
        if t:
            latency_ms = t["latency_seconds"] * 1000
            row(f"4. events/s, {d}, {latency_ms:.0f} ms latency",
                f"{t['events_per_second']:.1f} ({t['ratio_to_bound']:.2f} x bound "
                f"{t['bound_events_per_second']:.1f})", ">= 0.8 x bound, >= 30",
                t["ratio_to_bound"] >= 0.8 and t["events_per_second"] >= 30)  # fmt: skip
            excess = max(t["worst_bucket_excess"].values())
            caps = ", ".join(f"{k} {v:g}/s" for k, v in t["rate_caps"].items())
            over = max(0, int(excess + 0.5))
            row(f"4. rate cap, {d} ({caps})",
                f"peak {max(t['peak_requests_in_1s'].values())} req in 1 s, "
                f"{over} beyond the bucket", "never exceeded", excess < 1)  # fmt: skip
    r = results.get("backlog_B")
    if r:
        row(f"5. peak RSS, {r['links']:,} links, {r['events']:,}-event backlog",
            f"{r['peak_rss_mib']:.0f} MiB", "<= 150 MB",
            r["peak_rss_mib"] * 1.048576 <= 150)  # fmt: skip
    n = results.get("noop")
    if n:
        row("6. run --once, nothing to do", f"{n['median_seconds']:.3f} s", "<= 0.5 s",
            n["median_seconds"] <= 0.5)  # fmt: skip
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in [("figure", "value", "goal", "met"), *rows])
              for i in range(4)]  # fmt: skip
    header = ("figure", "value", "goal", "met")
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--events", type=int, default=10_000, help="backlog per direction"
    )
    parser.add_argument("--throughput-events", type=int, default=1_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--only", default="idle,backlog,throughput,noop",
                        help="comma-separated scenarios")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.throughput_events, args.links = 300, 200, 10_000
    only = set(args.only.split(","))
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "settings": vars(args) | {"json": str(args.json) if args.json else None},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cancelsync-bench-") as tmp:
        folder = Path(tmp)
        steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("idle", lambda: {"idle": idle_calls(folder)}),
            ("backlog", lambda: {
                "backlog_B": backlog(folder, "B", args.events, args.links),
                "backlog_A": backlog(folder, "A", args.events)}),
            ("throughput", lambda: {
                f"throughput_{d}": throughput(
                    folder, d, args.throughput_events, args.latency_ms / 1000)
                for d in ("B", "A")}),
            ("noop", lambda: {"noop": noop_run(folder)}),
        ]  # fmt: skip
        for name, step in steps:
            if name in only:
                step_started = time.perf_counter()
                results.update(step())
                print(f"[{name}: {time.perf_counter() - step_started:.0f} s]",
                      file=sys.stderr, flush=True)  # fmt: skip
    results["seconds"] = time.perf_counter() - started
    machine = results["machine"]
    print(f"cancelsync bench: python {machine['python']}, {machine['cpus']} CPUs, "
          f"{machine['platform']}; {results['seconds']:.0f} s")  # fmt: skip
    print_table(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
