"""Scheduling: one run over every store (cron), and the APScheduler loop (systemd) with a
warm shutdown on SIGTERM/SIGINT. The clients come from a ``ClientFactory`` (``wiring``).
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import structlog

from cancelsync.config import Config, StoreConfig
from cancelsync.cycle_history import finish_cycle
from cancelsync.monitor import Monitor
from cancelsync.scopes import store_scope
from cancelsync.store import Store
from cancelsync.sync.cycle import run_store_cycle
from cancelsync.sync.engine import CycleReport
from cancelsync.wiring import ClientFactory

log = structlog.get_logger("cancelsync.service")


class Worker:
    """Runs every enabled store's cycle, once or on the poll interval, until stopped."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clients: ClientFactory,
        *,
        monitor: Monitor | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clients = clients
        self.clock = clients.clock
        self._stop = threading.Event()
        # Health, alerts and metrics after each run (``monitor``).
        self.monitor = monitor or Monitor.from_config(
            config, store, clock=self.clock, redactor=clients.redactor
        )

    # ------------------------------------------------------------------ runs

    def run_once(
        self, *, store_name: str | None = None, dry_run: bool = False
    ) -> list[CycleReport]:
        """One cycle over every enabled store (or one), each isolated from the others."""
        run_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(run_id=run_id)
        targets = [self.config.store(store_name)] if store_name else [
            s for s in self.config.stores if s.enabled
        ]  # fmt: skip
        reports = []
        for cfg in targets:
            if self._stop.is_set():
                break
            reports.append(self._run_store(cfg, run_id, dry_run))
        structlog.contextvars.unbind_contextvars("run_id")
        self.monitor.after_run(reports)
        return reports

    def _run_store(self, cfg: StoreConfig, run_id: str, dry_run: bool) -> CycleReport:
        with self.monitor.observing(), self.clients.tiktok(cfg) as tt:
            try:
                shop = self.clients.resolve_shop(cfg, tt)
            except Exception as exc:  # noqa: BLE001 - one store's trouble must not stop others
                report = CycleReport(cfg.name, store_scope(self.store, cfg), run_id,
                                     self.clock.now(), dry_run=dry_run)  # fmt: skip
                report.error = str(exc)
                log.error("cycle.store_failed", store=cfg.name, error=str(exc))  # noqa: TRY400 - expected trouble, no traceback
                finish_cycle(self.store, report, self.clock.now())
                return report
            return run_store_cycle(
                store=self.store, cfg=cfg, worker=self.config.worker, shop=shop,
                magento=self.clients.magento, tiktok=tt.api, clock=self.clock,
                run_id=run_id, dry_run=dry_run,
                other_stores_claim=self._others_claim(cfg),
                should_stop=self._stop.is_set,
                write_timeout_seconds=max(self.config.magento.timeout_seconds,
                                          self.config.tiktok.timeout_seconds),
            )  # fmt: skip

    def _others_claim(self, cfg: StoreConfig) -> bool:
        """Could another enabled direction-A store own this store's credit memos?"""
        mine = set(cfg.magento_store_ids)
        for other in self.config.stores:
            if other.name == cfg.name or not other.enabled:
                continue
            theirs = set(other.magento_store_ids)
            if not mine or not theirs or mine & theirs:
                return True
        return False

    # ------------------------------------------------------------------ service mode

    def request_stop(self) -> None:
        self._stop.set()

    def serve(self) -> int:
        """APScheduler loop: one job, every poll interval; SIGTERM/SIGINT finish and exit 0."""
        from apscheduler.schedulers.background import BackgroundScheduler

        from cancelsync.web.server import serving as order_center

        interval = self.config.worker.poll_interval_seconds
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            self._scheduled_run, "interval", seconds=interval, id="cancelsync-cycle",
            max_instances=1, coalesce=True, misfire_grace_time=interval,
            next_run_time=self.clock.now(),
        )  # fmt: skip
        with (
            _signals(self.request_stop),
            self.monitor.serving(),
            # worker.web_listen: the order center, on its own database connection.
            order_center(self.config, clock=self.clock, redactor=self.clients.redactor),
        ):
            scheduler.start()
            log.info("service.started", poll_interval_seconds=interval,
                     stores=[s.name for s in self.config.stores if s.enabled])  # fmt: skip
            self._stop.wait()
            # wait=True lets the cycle in flight finish its current action.
            scheduler.shutdown(wait=True)
        log.info("service.stopped")
        return 0

    def _scheduled_run(self) -> None:
        try:
            self.run_once()
        except Exception:
            log.exception("cycle.crashed")


@contextmanager
def _signals(on_stop: Callable[[], None]) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        on_stop()

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
