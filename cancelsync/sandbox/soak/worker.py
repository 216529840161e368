"""The real worker, as child processes of the soak driver: ``run --once``, service mode,
``status --json``, ``retry --all``, and SIGKILL at chosen moments.

Every child is started with the same interpreter (``python -m cancelsync --config X ...``),
logs to its own file under ``<workdir>/logs`` (the evidence a violation report quotes), is
bounded in time, and is always reaped: ``close`` kills whatever is still running.

Kill moments: ``random`` (a seeded delay into the run), ``in_write`` (the next write the
worker sends), ``slow_write`` (the next write a delay fault holds up: the process dies while
the server is still going to commit it), ``slow_partial_refund`` (the next partial Magento
refund, made slow by the switch itself: the client dies as it arrives and the server
commits it ``slow_seconds`` later; a second send of it would be applied again rather than
refused),
``line_cancel`` (the next TikTok cancel of some lines), ``hold`` and ``release`` (the
next Magento hold or unhold: the server applies it after the kill, so the worker dies
between the hold and its ledger update) and ``scan`` (after a seeded delay,
the next time the worker lists orders: Magento's or TikTok's order search). All but
``random`` are fired by the ``KillSwitch`` from inside the server the moment the request
arrives (``SimulatorServer.on_request``), so the request is truly in flight: read by the
server, not yet answered. The worker handles one event at a
time and only lists between events, so a ``scan`` kill never cuts a send short (see the
short profile in ``run``).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cancelsync.sandbox.common import Fault, SimRequest, SimulatorServer
from cancelsync.sandbox.soak.faults import WRITES

KILL_MODES = (
    "random", "in_write", "slow_write", "slow_partial_refund", "line_cancel", "scan",
    "hold_partial_refund", "hold", "release",
)  # fmt: skip
# The Magento hold and unhold requests (``hold`` / ``release`` kill moments).
HOLD_ENDPOINTS = {"hold": "POST orders/{id}/hold", "release": "POST orders/{id}/unhold"}
REFUND = "POST order/{id}/refund"
TIKTOK_CANCEL = "POST /return_refund/{v}/cancellations"
# Listing calls, made between events only (never while a write's outcome is open).
SCANS = frozenset({"GET orders", "POST /order/202309/orders/search"})
WAIT_SLICE_SECONDS = 0.05


def _matches(
    mode: str, request: SimRequest, endpoint: str, fault: Fault | None
) -> bool:
    slow = fault is not None and fault.kind == "delay"
    if mode == "in_write":
        return WRITES.fullmatch(endpoint) is not None
    if mode == "slow_write":
        return slow and WRITES.fullmatch(endpoint) is not None
    if mode in ("slow_partial_refund", "hold_partial_refund"):
        # cancelsync sends shipping 0 on a partial refund and leaves it out on a whole one.
        arguments = _body(request).get("arguments")
        return (
            endpoint == REFUND
            and isinstance(arguments, dict)
            and arguments.get("shipping_amount") in (0, "0", 0.0)
        )
    if mode in HOLD_ENDPOINTS:
        return endpoint == HOLD_ENDPOINTS[mode]
    if mode == "line_cancel":
        return endpoint == TIKTOK_CANCEL and bool(
            _body(request).get("order_line_item_ids")
        )
    return endpoint in SCANS  # scan


def _body(request: SimRequest) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class KillSwitch:
    """SIGKILLs an armed process from inside a server thread, the moment a request of the
    chosen kind arrives (install it as ``SimulatorServer.on_request``); the server then goes
    on to handle the request, as a real one does for a client that died.

    Armed with ``hold_partial_refund`` it kills nothing: it holds the next partial refund
    ``hold_seconds`` (the client times out and lives on) and sets ``held``.
    """

    def __init__(
        self,
        slow_seconds: float,
        hold_seconds: float,
        repeatable: Callable[[SimRequest], bool] = lambda request: True,
    ) -> None:
        self._lock = threading.Lock()
        # Whether a second send of this refund would be applied too (enough left to
        # refund): only then does holding it up test anything.
        self.repeatable = repeatable
        self._target: tuple[int, str] | None = None
        self._signal = signal.SIGKILL
        self.slow_seconds = slow_seconds
        self.hold_seconds = hold_seconds
        self.slowed = 0  # requests the switch held up itself
        self.held = threading.Event()

    def arm(self, pid: int, mode: str, sig: signal.Signals = signal.SIGKILL) -> None:
        with self._lock:
            self._target = (pid, mode)
            self._signal = sig
            self.held.clear()

    def disarm(self) -> None:
        with self._lock:
            self._target = None

    def __call__(self, request: SimRequest, endpoint: str, fault: Fault | None) -> None:
        with self._lock:
            if self._target is None or not _matches(
                self._target[1], request, endpoint, fault
            ):
                return
            if self._target[1].endswith("partial_refund") and not self.repeatable(
                request
            ):
                return
            (pid, mode), self._target = self._target, None
            if mode != "hold_partial_refund":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, self._signal)
            if mode in ("slow_partial_refund", "hold_partial_refund"):
                self.slowed += 1
        if mode == "slow_partial_refund":
            time.sleep(self.slow_seconds)  # then the server handles (commits) it
        elif mode == "hold_partial_refund":
            self.held.set()
            time.sleep(self.hold_seconds)


@dataclass
class RunRecord:
    """One child process: what it was, how it ended, what it wrote."""

    number: int
    mode: str  # once | service | cli
    args: tuple[str, ...]
    log: Path
    started: float
    seconds: float = 0.0
    rc: int | None = None  # None: killed (or still running)
    killed: str | None = None  # the kill mode that ended it
    writes: int = 0  # write requests the simulators received while it ran


@dataclass
class Runner:
    """Starts, watches, kills and reaps the worker processes of one soak."""

    config: Path
    workdir: Path
    magento: SimulatorServer
    tiktok: SimulatorServer
    rng: random.Random
    switch: KillSwitch
    python: str = sys.executable
    runs: list[RunRecord] = field(default_factory=list)
    exited: list[RunRecord] = field(
        default_factory=list
    )  # services that died on their own
    typical_run_seconds: float = 1.0
    _service: subprocess.Popen[bytes] | None = None
    _service_record: RunRecord | None = None
    _service_writes: int = 0

    def __post_init__(self) -> None:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ plumbing

    def write_count(self) -> int:
        """Write requests the simulators have received so far."""
        return sum(
            1
            for server in (self.magento, self.tiktok)
            for entry in server.journal.entries()
            if WRITES.fullmatch(entry.endpoint)
        )

    def writes_in_flight(self, *, slow_only: bool = False) -> bool:
        return any(
            WRITES.fullmatch(f.endpoint) and (f.fault == "delay" or not slow_only)
            for server in (self.magento, self.tiktok)
            for f in server.in_flight()
        )

    def _spawn(
        self, mode: str, args: Sequence[str], *, stdout: int | None = None
    ) -> tuple[subprocess.Popen[bytes], RunRecord]:
        number = len(self.runs) + 1
        log = self.workdir / "logs" / f"{number:03d}-{mode}.log"
        command = [self.python, "-m", "cancelsync", "--config", str(self.config), *args]
        record = RunRecord(number, mode, tuple(args), log, time.monotonic())
        self.runs.append(record)
        with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.DEVNULL,
                stderr=handle,
                cwd=self.workdir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return proc, record

    def _finish(
        self, proc: subprocess.Popen[bytes], record: RunRecord, writes_before: int
    ) -> None:
        record.seconds = time.monotonic() - record.started
        record.writes = self.write_count() - writes_before
        if record.killed is None:
            record.rc = proc.returncode

    def _killed_at_moment(
        self, proc: subprocess.Popen[bytes], mode: str, budget: float, typical: float
    ) -> bool:
        """SIGKILL ``proc`` at a ``mode`` moment; True when it died of it, False when it
        ended first or the moment did not come within ``budget`` seconds. ``typical``:
        how long a run usually lasts (the seeded delays fall inside it)."""
        if mode not in KILL_MODES:
            raise ValueError(f"unknown kill mode {mode!r}; use one of {KILL_MODES}")
        deadline = time.monotonic() + budget
        if mode in ("random", "scan"):
            ceiling = min(budget, typical) * (0.9 if mode == "random" else 0.6)
            try:
                proc.wait(timeout=self.rng.uniform(0.05, max(0.1, ceiling)))
            except subprocess.TimeoutExpired:
                if mode == "random":
                    proc.send_signal(signal.SIGKILL)
            else:
                return False
        if mode != "random":
            self.switch.arm(proc.pid, mode)
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=WAIT_SLICE_SECONDS)
            finally:
                self.switch.disarm()
        if mode == "random":
            proc.wait(timeout=30)
        return proc.returncode == -signal.SIGKILL

    # ------------------------------------------------------------------ run --once

    def run_once(self, *, kill: str | None = None, timeout: float) -> RunRecord:
        """One ``run --once``; with ``kill``, SIGKILL it at that kind of moment (if it
        comes before the run ends). A run over ``timeout`` seconds is killed as hung."""
        writes_before = self.write_count()
        proc, record = self._spawn("once", ["run", "--once"])
        try:
            if kill is not None and self._killed_at_moment(
                proc, kill, timeout, self.typical_run_seconds
            ):
                record.killed = kill
            if proc.poll() is None:
                try:
                    proc.wait(
                        timeout=max(1.0, timeout - (time.monotonic() - record.started))
                    )
                except subprocess.TimeoutExpired:
                    proc.kill()
                    record.killed = "hung"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._finish(proc, record, writes_before)
        if record.killed is None:
            # Random kills aim inside a typical run.
            self.typical_run_seconds = (
                0.7 * self.typical_run_seconds + 0.3 * record.seconds
            )
        return record

    def run_once_past_a_timeout(self, *, client_timeout: float, timeout: float) -> bool:
        """A ``run --once`` whose next partial refund the server holds past the client's
        timeout; once the worker has given up on it (and recorded it as failed), the run is
        SIGKILLed so that an operator can ``retry --all`` while the refund is still held.
        False when no partial refund came."""
        writes_before = self.write_count()
        proc, record = self._spawn("once", ["run", "--once"])
        self.switch.arm(proc.pid, "hold_partial_refund")
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if self.switch.held.wait(WAIT_SLICE_SECONDS):
                    # The timeout, the re-read after it and the ledger row, then the kill.
                    time.sleep(client_timeout + 1.0)
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait(timeout=30)
                        record.killed = "after a timed-out partial refund"
                    break
        finally:
            self.switch.disarm()
            if proc.poll() is None:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._finish(proc, record, writes_before)
        return self.switch.held.is_set()

    # ------------------------------------------------------------------ service mode

    def start_service(self) -> RunRecord:
        if self._service is not None:
            raise RuntimeError("the service is already running")
        proc, record = self._spawn("service", ["run"])
        self._service, self._service_record = proc, record
        self._service_writes = self.write_count()
        return record

    def kill_service(self, mode: str, budget: float) -> bool:
        """SIGKILL the service at a ``mode`` moment within ``budget`` seconds and start
        it again at once; False when the moment never came (it keeps running)."""
        proc, record = self._service, self._service_record
        if proc is None or record is None:
            raise RuntimeError("the service is not running")
        if not self._killed_at_moment(proc, mode, budget, budget):
            if proc.poll() is not None:
                # It died on its own (a crash, a broken install): noted, started again.
                self._finish(proc, record, self._service_writes)
                self.exited.append(record)
                self._service = None
                self.start_service()
            return False
        record.killed = mode
        self._finish(proc, record, self._service_writes)
        self._service = None
        self.start_service()
        return True

    def stop_service(
        self, timeout: float, *, between_events: bool = False
    ) -> RunRecord:
        """SIGTERM: the service finishes the action in flight and exits (0 expected).

        ``between_events``: send it while the service lists orders (no send open), so
        no action is left held for its write to settle (see the short profile)."""
        proc, record = self._service, self._service_record
        if proc is None or record is None:
            raise RuntimeError("the service is not running")
        try:
            # A SIGTERM before the handlers are installed (still importing) just ends
            # the process; wait until it says it serves, as systemd would see it running.
            self._wait_for_log(record.log, '"service.started"', timeout=20)
            if between_events:
                self.switch.arm(proc.pid, "scan", signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
                self.switch.disarm()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                record.killed = "stop timed out"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._finish(proc, record, self._service_writes)
            self._service = None
        return record

    def _wait_for_log(self, log: Path, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in log.read_text("utf-8", "replace"):
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ other commands

    def cli(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        """Run a short CLI command to the end; ``(exit code, stdout)``."""
        writes_before = self.write_count()
        proc, record = self._spawn("cli", list(args), stdout=subprocess.PIPE)
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            self._finish(proc, record, writes_before)
        return proc.returncode, out.decode("utf-8", "replace")

    def close(self) -> None:
        """Kill and reap anything still running."""
        self.switch.disarm()
        if self._service is not None:
            self._service.kill()
            self._service.wait()
            self._service = None
