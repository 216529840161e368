"""The soak's phases: build the world, abuse the worker, let it converge, check.

1. **World** (``world``): stores, orders and their fates on a seeded ``Sandbox`` whose
   simulators run in this process's threads on 127.0.0.1.
2. **Fault phase**: the fault mix on (``faults``). The world's waves are played one by one;
   after each the real worker runs as a child process (``worker``): first ``run --once``
   runs, some SIGKILLed and restarted at once, then service mode (``run``) SIGKILLed and
   restarted at chosen moments (in the full profile also as a Magento hold or unhold
   arrives) and finally stopped with SIGTERM. Access tokens expire
   mid-run. In the full profile a partial refund is also held past the client's timeout
   and an operator runs ``retry --all`` while the server is still committing it.
3. **Convergence**: faults off, late memos committed, slow requests drained; then
   ``run --once`` until two runs in a row send no write and ``status --json`` shows nothing
   pending or failed (bounded in runs and time; a parked write is waited for).
4. **Checks** (``oracle``) and the figures (``report``).
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cancelsync.sandbox.common import SimRequest
from cancelsync.sandbox.harness import Sandbox
from cancelsync.sandbox.magento import MagentoError
from cancelsync.sandbox.soak import oracle
from cancelsync.sandbox.soak.faults import WRITES, FaultMix
from cancelsync.sandbox.soak.oracle import MAGENTO_ORDER
from cancelsync.sandbox.soak.outcomes import HOLD, UNHOLD
from cancelsync.sandbox.soak.worker import KillSwitch, Runner, RunRecord
from cancelsync.sandbox.soak.world import World

# A kill moment that did not come twice gives way to a commoner one.
FALLBACK = {
    "slow_partial_refund": "in_write", "slow_write": "in_write", "line_cancel": "in_write",
    "in_write": "random", "hold": "in_write", "release": "in_write",
}  # fmt: skip


@dataclass(frozen=True)
class SoakSettings:
    """One soak's size, faults and bounds (``short()`` is the variant in ``make test``)."""

    orders: int = 1000
    kills: int = 12
    service_kills: int = 6
    seed: int = 1
    profile: str = "full"
    waves: int = 12
    service_waves: int = 5
    dwell_seconds: float = 5.0  # service mode: how long each wave runs
    timeout_seconds: float = 2.0  # both clients' per-request timeout
    run_timeout: float = 240.0  # one `run --once` longer than this is killed as hung
    converge_seconds: float = 240.0
    max_cycles: int = 40
    late_share: float = 0.25
    hold_fate_scale: float = 1.0  # the hold fates' weights x this (model.HOLD_FATES)
    write_fault_scale: float = 1.0  # transport fault rates on writes x this (faults)
    read_fault_scale: float = 0.8  # ... and on reads
    data_fault_rate: float = 0.1
    token_expiries: int = 2
    impatient_retry: bool = True
    once_kill_modes: tuple[str, ...] = (
        "slow_partial_refund", "line_cancel", "random", "in_write", "hold",
        "slow_partial_refund",
    )  # fmt: skip
    service_kill_modes: tuple[str, ...] = (
        "random", "slow_partial_refund", "release", "line_cancel", "slow_write", "scan",
    )  # fmt: skip
    workdir: Path | None = None

    @classmethod
    def short(cls, seed: int = 1, workdir: Path | None = None) -> SoakSettings:
        """150 orders, 4 kills (one in service mode), the short fault profile: writes at
        0.8 and reads at 0.35 of the base rates (each fault costs a real backoff sleep),
        half as many hold fates."""
        return cls(
            orders=150, kills=4, service_kills=1, seed=seed, profile="short", waves=4,
            service_waves=1, dwell_seconds=3.0, run_timeout=40.0, converge_seconds=20.0,
            max_cycles=8, token_expiries=1, impatient_retry=False, write_fault_scale=0.8,
            read_fault_scale=0.35, hold_fate_scale=0.5,
            once_kill_modes=("scan",), service_kill_modes=("scan",),
            workdir=workdir,
        )  # fmt: skip


@dataclass
class SoakResult:
    """Figures and verdict; ``world``, ``status`` and ``database`` allow a re-check."""

    settings: SoakSettings
    figures: dict[str, Any]
    verdict: oracle.Verdict
    runs: list[RunRecord]
    workdir: Path
    world: World
    status: dict[str, Any]
    database: Path
    anomalies: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.anomalies

    def to_json(self) -> dict[str, Any]:
        settings = {k: str(v) if isinstance(v, Path) else v
                    for k, v in asdict(self.settings).items()}  # fmt: skip
        return {
            "ok": self.ok,
            "settings": settings,
            "figures": self.figures,
            "anomalies": self.anomalies,
            "violations": [asdict(v) for v in self.verdict.violations],
            "surfaced_as_attention": self.verdict.surfaced,
            "runs": [
                {"number": r.number, "mode": r.mode, "args": list(r.args), "rc": r.rc,
                 "killed": r.killed, "seconds": round(r.seconds, 2), "writes": r.writes,
                 "log": str(r.log)}
                for r in self.runs
            ],
            "workdir": str(self.workdir),
        }  # fmt: skip


class Soak:
    """One soak run; ``run()`` does the phases above and returns the result."""

    def __init__(self, settings: SoakSettings) -> None:
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.workdir = (
            settings.workdir
            or Path(tempfile.mkdtemp(prefix=f"cancelsync-soak-{settings.seed}-"))
        ).resolve()  # the config's paths are relative to its own folder otherwise
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database = self.workdir / "cancelsync.db"
        self.kills: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.fallbacks: Counter[str] = Counter()
        self.impatient = 0
        self.figures: dict[str, Any] = {}
        self.anomalies: list[str] = []
        self.integrity_after_kills: list[str] = []

    def run(self) -> SoakResult:
        started = time.monotonic()
        s = self.s
        with Sandbox(seed=s.seed) as sb:
            world = World(sb, s.seed, s.orders, s.waves, late_share=s.late_share,
                          hold_fate_scale=s.hold_fate_scale)  # fmt: skip
            config = sb.write_config(
                self.workdir / "cancelsync.toml", database=str(self.database),
                timeout_seconds=s.timeout_seconds, poll_interval_seconds=1,
                overlap_seconds=120, retry_backoff_seconds=1, max_attempts=6,
            )  # fmt: skip
            faults = FaultMix(sb, s.profile, s.seed, timeout=s.timeout_seconds,
                              data_rate=s.data_fault_rate, write_scale=s.write_fault_scale,
                              read_scale=s.read_fault_scale)  # fmt: skip
            switch = KillSwitch(
                slow_seconds=s.timeout_seconds * 1.5,
                hold_seconds=s.timeout_seconds * 6,
                repeatable=lambda request: _refund_repeatable(sb, request),
            )
            sb.magento_server.on_request = sb.tiktok_server.on_request = switch
            runner = Runner(config, self.workdir, sb.magento_server, sb.tiktok_server,
                            random.Random(s.seed + 5), switch)  # fmt: skip
            try:
                faults.install()
                fault_started = time.monotonic()
                self._fault_phase(world, runner)
                fault_seconds = time.monotonic() - fault_started
                faults.clear()
                cycles, converged = self._converge(world, runner)
                status = self._status(runner)
                verdict = oracle.check(
                    world, status, self.database, self.workdir / "logs"
                )
            finally:
                runner.close()
            self.figures = self._figures(world, faults, runner, verdict, sb)
            self.figures.update({
                "cycles to convergence": cycles if converged else f"not converged after {cycles}",
                "fault phase seconds": round(fault_seconds, 1),
                "wall seconds": round(time.monotonic() - started, 1),
            })  # fmt: skip
            if not converged:
                self.anomalies.append(f"did not converge within {cycles} run(s)")
        self.anomalies += [
            f"integrity after a kill: {r}" for r in self.integrity_after_kills
        ]
        # A step the world refused means the worker (or the driver) did something no
        # fate allows, e.g. approved a request the buyer was about to withdraw.
        self.anomalies += [f"step refused: {text}" for text in world.tally.skipped]
        return SoakResult(
            s, self.figures, verdict, runner.runs, self.workdir, world, status,
            self.database, self.anomalies,
        )  # fmt: skip

    # ------------------------------------------------------------------ fault phase

    def _fault_phase(self, world: World, runner: Runner) -> None:
        s = self.s
        once_waves = list(range(s.waves - s.service_waves))
        service_waves = list(range(s.waves - s.service_waves, s.waves))
        expiry_waves = self._expiry_waves(once_waves, service_waves)
        modes = [s.once_kill_modes[i % len(s.once_kill_modes)]
                 for i in range(s.kills - s.service_kills)]  # fmt: skip
        impatient = set(
            self.rng.sample(once_waves, min(2, len(once_waves)))
            if s.impatient_retry
            else []
        )
        for position, wave in enumerate(once_waves):
            self._play(world, wave, expiry_waves)
            for _ in range(-(-len(modes) // (len(once_waves) - position))):  # ceil
                self._kill_once(runner, modes)
            if wave in impatient:
                self._impatient_retry(world, runner)
            self._once(runner)
        for _ in range(4 * len(modes)):  # kills whose moment has not come yet
            if not modes:
                break
            self._kill_once(runner, modes)
            self._once(runner)
        self.anomalies += [f"once-mode kill ({m}) never landed" for m in modes]
        self._service_phase(world, runner, service_waves, expiry_waves)

    def _kill_once(self, runner: Runner, modes: list[str]) -> None:
        """A ``run --once`` killed at the moment ``modes[0]`` (the restart follows at
        once); a moment that does not come twice gives way to a commoner one."""
        mode = modes[0]
        record = runner.run_once(kill=mode, timeout=self.s.run_timeout)
        if record.killed == mode:
            modes.pop(0)
            self.kills[f"once/{mode}"] += 1
            self._after_kill()
        else:
            self._missed(modes)

    def _missed(self, modes: list[str]) -> None:
        self.misses[modes[0]] += 1
        if self.misses[modes[0]] % 2 == 0 and modes[0] in FALLBACK:
            self.fallbacks[f"{modes[0]} -> {FALLBACK[modes[0]]}"] += 1
            modes[0] = FALLBACK[modes[0]]

    def _service_phase(
        self, world: World, runner: Runner, waves: list[int], expiry_waves: set[int]
    ) -> None:
        s = self.s
        modes = [s.service_kill_modes[i % len(s.service_kill_modes)]
                 for i in range(s.service_kills)]  # fmt: skip
        if not waves:
            return
        runner.start_service()
        extra = 0
        for position, wave in enumerate([*waves, *([None] * (2 * len(modes) + 2))]):
            if wave is None:
                if not modes:
                    break
                extra += 1
            else:
                self._play(world, wave, expiry_waves)
            end = time.monotonic() + s.dwell_seconds
            for _ in range(-(-len(modes) // max(1, len(waves) - position))):
                budget = end - time.monotonic()
                if budget <= 0.3 or not modes:
                    break
                mode = modes[0]
                if runner.kill_service(mode, budget):
                    modes.pop(0)
                    self.kills[f"service/{mode}"] += 1
                    self._after_kill()
                else:
                    self._missed(modes)
            time.sleep(max(0.0, end - time.monotonic()))
        self.figures["service-mode rounds after the last wave"] = extra
        self.anomalies += [
            f"service mode exited by itself: rc={r.rc} (log {r.log})"
            for r in runner.exited
        ]
        self.anomalies += [f"service-mode kill ({m}) never landed" for m in modes]
        # The short profile stops between events: a SIGTERM during a send leaves its row
        # held for timeout + 60 s (by design), longer than the short run.
        stop = runner.stop_service(timeout=120, between_events=s.profile == "short")
        self.figures["service stop (SIGTERM) exit code"] = stop.rc
        if stop.rc != 0:
            self.anomalies.append(
                f"service mode did not stop cleanly on SIGTERM: rc={stop.rc}, "
                f"killed={stop.killed} (log {stop.log})"
            )

    def _expiry_waves(self, once: list[int], service: list[int]) -> set[int]:
        groups = [g for g in (once, service) if g] or [[0]]
        picks = {
            self.rng.choice(groups[i % len(groups)])
            for i in range(self.s.token_expiries)
        }
        return picks

    def _play(self, world: World, wave: int, expiry_waves: set[int]) -> None:
        world.apply_wave(wave)
        if wave in expiry_waves:
            world.sb.tiktok.expire_access_tokens()
            world.tally.counts["token_expiry"] += 1

    def _once(self, runner: Runner) -> RunRecord:
        record = runner.run_once(timeout=self.s.run_timeout)
        if record.killed == "hung":
            self.anomalies.append(
                f"run --once #{record.number} hung (log {record.log})"
            )
        return record

    def _impatient_retry(self, world: World, runner: Runner) -> None:
        """A partial refund outlives the client's timeout; the worker records it failed
        (to be re-read after it settles); the run ends; an operator runs ``retry --all``
        at once and the next run starts while the refund is still being committed."""
        if runner.run_once_past_a_timeout(
            client_timeout=self.s.timeout_seconds, timeout=self.s.run_timeout
        ):
            runner.cli("retry", "--all")
            world.operator_retried()
            self.impatient += 1
            self._once(runner)

    def _after_kill(self) -> None:
        if self.database.exists():
            result = oracle.integrity_check(self.database)
            if result != "ok":
                self.integrity_after_kills.append(result)

    # ------------------------------------------------------------------ convergence

    def _converge(self, world: World, runner: Runner) -> tuple[int, bool]:
        sb = world.sb
        world.stop_timers()
        for server in (sb.magento_server, sb.tiktok_server):
            if not server.wait_idle(30):
                self.anomalies.append(
                    f"{server.url}: requests still in flight after 30 s"
                )
        deadline = time.monotonic() + self.s.converge_seconds
        cycles = quiet = 0
        while cycles < self.s.max_cycles:
            record = runner.run_once(timeout=self.s.run_timeout)
            cycles += 1
            open_rows = self._open_rows()
            quiet = quiet + 1 if record.writes == 0 and open_rows == 0 else 0
            if quiet >= 2:
                return cycles, True
            if time.monotonic() > deadline:
                return cycles, False
            if record.writes == 0 and open_rows:
                # Parked writes (a timeout is re-read only after timeout + 60 s).
                wait = self._next_due() + 0.5
                time.sleep(max(0.2, min(wait, deadline - time.monotonic())))
        return cycles, False

    def _open_rows(self) -> int:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM ledger WHERE state IN ('pending', 'failed')"
            ).fetchone()
        return int(row[0])

    def _next_due(self) -> float:
        """Seconds until the earliest parked ledger row is due (scheduling only)."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM ledger WHERE state IN "
                "('pending', 'failed') AND next_attempt_at IS NOT NULL"
            ).fetchone()
        if not row or row[0] is None:
            return 0.0
        due = datetime.fromisoformat(str(row[0]))
        return max(0.0, (due - datetime.now(UTC)).total_seconds())

    def _status(self, runner: Runner) -> dict[str, Any]:
        rc, out = runner.cli("status", "--json")
        if rc != 0:
            raise RuntimeError(f"cancelsync status --json exited {rc}")
        data: dict[str, Any] = json.loads(out)
        return data

    # ------------------------------------------------------------------ figures

    def _figures(
        self, world: World, faults: FaultMix, runner: Runner, verdict: oracle.Verdict,
        sb: Sandbox,
    ) -> dict[str, Any]:  # fmt: skip
        orders = world.orders
        by_store = Counter(o.store.name for o in orders)
        counts = world.tally.counts
        writes = Counter(
            e.endpoint for server in (sb.magento_server, sb.tiktok_server)
            for e in server.journal.entries() if WRITES.fullmatch(e.endpoint)
        )  # fmt: skip
        incomplete = sum(
            1 for server in (sb.magento_server, sb.tiktok_server)
            for e in server.journal.entries() if e.fault == "incomplete_body"
        )  # fmt: skip
        figures: dict[str, Any] = {
            "orders": len(orders),
            "orders by store": dict(sorted(by_store.items())),
            "orders never imported": sum(1 for o in orders if o.magento_entity_id is None),
            "orders of another channel": sum(1 for o in orders if o.fate == "foreign_memo"),
            "events": {
                "TikTok cancellations": sum(counts[k] for k in (
                    "cancel_full", "cancel_part", "cancel_rest", "approve", "auto_approve",
                    "seller_center")),
                "buyer requests (pending)": counts["request"],
                "requests withdrawn": counts["withdraw"],
                "requests rejected": counts["reject"],
                "requests approved (Seller Center)": counts["approve"],
                "requests auto-approved": counts["auto_approve"],
                "orders the merchant held": counts["merchant_hold"],
                "orders shipped in Magento": counts["magento_ship"],
                "holds the merchant took off to refund": counts["merchant_unhold"],
                "merchant credit memos": sum(counts[k] for k in (
                    "memo_full", "memo_part", "memo_rest", "memo_any", "memo_late")),
                "shipments": counts["ship"],
                "late events": counts["late_cancellation"] + counts["late_memo"],
                "steps the world refused": len(world.tally.skipped),
            },
            "faults injected": dict(sorted(faults.injected().items())),
            "token expiries": counts["token_expiry"],
            "kills (SIGKILL)": sum(self.kills.values()),
            "kills by mode": dict(sorted(self.kills.items())),
            "kill moments that never came (fell back)": dict(sorted(self.fallbacks.items())),
            "worker processes": len([r for r in runner.runs if r.mode != "cli"]),
            "writes attempted": sum(writes.values()),
            "writes by endpoint": dict(sorted(writes.items())),
            "request bodies cut short (refused 400)": incomplete,
            "holds applied (Magento answered 200)": world.holds.applied(HOLD),
            "releases applied (Magento answered 200)": world.holds.applied(UNHOLD),
            "orders on hold at the end": _held_at_end(world),
            "partial refunds held past a kill or a timeout": runner.switch.slowed,
            "retry --all while a timed-out partial refund was held": self.impatient,
        }  # fmt: skip
        figures.update({k: v for k, v in self.figures.items() if k not in figures})
        figures.update(dict(sorted(verdict.figures.items())))
        return figures


def _held_at_end(world: World) -> dict[str, int]:
    """Orders on hold once converged: the merchant's, cancelsync's for a pending request,
    and any other (a hold the oracle reports)."""
    held: Counter[str] = Counter()
    for o in world.orders:
        if o.magento_entity_id is None:
            continue
        if world.sb.magento.order(o.magento_entity_id)["state"] != "holded":
            continue
        if o.merchant_held:
            held["the merchant's"] += 1
        elif o.holdable and o.request_outcome == "pending":
            held["cancelsync's (request pending)"] += 1
        else:
            held["other (must be 0)"] += 1
    return dict(held)


def _refund_repeatable(sb: Sandbox, request: SimRequest) -> bool:
    """Magento would apply this refund twice: every row keeps at least twice its qty."""
    found = MAGENTO_ORDER.search(request.path)
    try:
        body = request.json()
        order = sb.magento.order(int(found.group(1))) if found else None
    except (ValueError, MagentoError):
        return False
    if order is None or not isinstance(body, dict):
        return False
    left = {
        int(i["item_id"]): float(i["qty_invoiced"]) - float(i["qty_refunded"])
        for i in order["items"]
    }
    items = [i for i in body.get("items", []) if isinstance(i, dict)]
    return bool(items) and all(
        left.get(int(i.get("order_item_id", 0)), 0.0) >= 2 * float(i.get("qty", 0))
        for i in items
    )


def run_soak(settings: SoakSettings) -> SoakResult:
    """Run one soak (see the module docstring)."""
    return Soak(settings).run()
