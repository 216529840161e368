"""Scheduling: one run over every store (cron), and the APScheduler loop (systemd) with a
warm shutdown on SIGTERM/SIGINT. The clients come from a ``ClientFactory`` (``wiring``).

Both modes stop alike: the action in flight finishes, nothing new starts, and the waits in
between (retry backoffs) end at once (``StopSignal``). A database that cannot be written any
more (a full disk, a read-only folder) stops the service too, so the command reports it.
"""

from __future__ import annotations

import queue
import signal
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from types import FrameType
from typing import Any

import structlog

from cancelsync.config import Config, StoreConfig
from cancelsync.config.model import split_listen
from cancelsync.cycle_history import finish_cycle
from cancelsync.monitor import Monitor
from cancelsync.scopes import store_scope
from cancelsync.stopping import StopRequested, StopSignal
from cancelsync.store import Store
from cancelsync.store.notices import REVOKED
from cancelsync.sync.cycle import StoreRun, run_store_cycle
from cancelsync.sync.engine import CycleReport
from cancelsync.webhooks import Waker, WebhookApp, WebhookServer
from cancelsync.wiring import ClientFactory

log = structlog.get_logger("cancelsync.service")


def notice_text(store_name: str, kind: int) -> str:
    """What a person is told about webhook type 6 or 7, with what to do."""
    fix = (
        "the seller authorizes the app again (the consent page), then `cancelsync "
        f"connect --store {store_name} --auth-code CODE`"
    )
    if kind == REVOKED:
        return (
            "TikTok says the seller revoked the app's authorization (webhook type 6): "
            f"this shop's cancellations are no longer synced; {fix}"
        )
    return (
        "TikTok says the app's authorization ends soon (webhook type 7, sent daily "
        f"from 30 days before): {fix} before it does"
    )


class Worker:
    """Runs every enabled store's cycle, once or on the poll interval, until stopped."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clients: ClientFactory,
        *,
        monitor: Monitor | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clients = clients
        self.clock = clients.clock
        # Shared with the clients' retry policy (``ClientFactory(sleep=stop.sleep)``).
        self._stop = stop or StopSignal()
        self._fatal: sqlite3.Error | None = None
        # Health, alerts and metrics after each run (``monitor``).
        self.monitor = monitor or Monitor.from_config(
            config, store, clock=self.clock, redactor=clients.redactor
        )
        # One cycle at a time: the poll and the webhook wake-ups share the database
        # connection, so they take turns (a wake during a cycle runs right after it).
        self._cycle_lock = threading.Lock()
        self.waker = Waker()
        # Webhook types 6/7 as they arrive (the request thread never touches the
        # database): recorded by the next cycle's thread, under the cycle lock.
        self._notices: queue.SimpleQueue[tuple[str, int, datetime]] = (
            queue.SimpleQueue()
        )
        self._apps: tuple[WebhookApp, ...] = ()  # what deliveries are checked against

    # ------------------------------------------------------------------ runs

    def run_once(
        self,
        *,
        store_name: str | None = None,
        dry_run: bool = False,
        since: datetime | None = None,
    ) -> list[CycleReport]:
        """One cycle over every enabled store (or one), each isolated from the others;
        ``since``: re-read from then too (``run --once --since``)."""
        run_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(run_id=run_id)
        targets = [self.config.store(store_name)] if store_name else [
            s for s in self.config.stores if s.enabled
        ]  # fmt: skip
        reports = []
        for cfg in targets:
            if self._stop.is_set():
                break
            reports.append(self._run_store(cfg, run_id, dry_run, since))
        structlog.contextvars.unbind_contextvars("run_id")
        if not dry_run:
            self._housekeeping()
        self.monitor.after_run(reports)
        return reports

    def _housekeeping(self) -> None:
        """Old timeline and cycle history go, once a day (``worker.history_days``)."""
        pruned = self.store.prune_history(
            self.clock.now(), self.config.worker.history_days
        )
        if pruned is not None:
            log.info("history.pruned", timeline=pruned.timeline, cycles=pruned.cycles,
                     history_days=self.config.worker.history_days)  # fmt: skip

    def _run_store(
        self, cfg: StoreConfig, run_id: str, dry_run: bool, since: datetime | None
    ) -> CycleReport:
        with self.monitor.observing(), self.clients.tiktok(cfg) as tt:
            try:
                shop = self.clients.resolve_shop(cfg, tt)
            except Exception as exc:  # one store's trouble must not stop the others
                if isinstance(exc, sqlite3.Error):
                    raise  # the database, not the store: every store would fail alike
                report = CycleReport(cfg.name, store_scope(self.store, cfg), run_id,
                                     self.clock.now(), dry_run=dry_run)  # fmt: skip
                if isinstance(exc, StopRequested):  # during a retry's backoff
                    report.counts["stopped_early"] += 1
                else:
                    report.error = str(exc)
                    log.error("cycle.store_failed", store=cfg.name, error=str(exc))  # noqa: TRY400 - expected trouble, no traceback
                finish_cycle(self.store, report, self.clock.now())
                return report
            run = StoreRun(
                store=self.store, cfg=cfg, worker=self.config.worker, shop=shop,
                magento=self.clients.magento, tiktok=tt.api, clock=self.clock,
                run_id=run_id, dry_run=dry_run,
                other_stores_claim=self._others_claim(cfg),
                should_stop=self._stop.is_set,
                write_timeout_seconds=self.config.write_timeout_seconds,
            )  # fmt: skip
            return run_store_cycle(run, since=since)

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

    def run_once_until_stopped(
        self,
        *,
        store_name: str | None = None,
        dry_run: bool = False,
        since: datetime | None = None,
    ) -> list[CycleReport]:
        """``run --once``: ``run_once`` with SIGTERM/SIGINT stopping it like the service."""
        with _signals(self.request_stop):
            reports = self.run_once(store_name=store_name, dry_run=dry_run, since=since)
        if self._stop.is_set():
            log.info("run.stopped", stores_done=len(reports))
        return reports

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
            self._webhooks(),
        ):
            scheduler.start()
            log.info("service.started", poll_interval_seconds=interval,
                     stores=[s.name for s in self.config.stores if s.enabled])  # fmt: skip
            self._stop.wait()
            log.info("service.stopping")
            # wait=True lets the cycle in flight finish its current action.
            scheduler.shutdown(wait=True)
        if self._fatal is not None:
            raise self._fatal
        log.info("service.stopped")
        return 0

    @contextmanager
    def _webhooks(self) -> Iterator[None]:
        """worker.webhook_listen: TikTok deliveries wake their store's cycle at once."""
        listen = self.config.worker.webhook_listen
        if not listen:
            yield
            return
        host, port = split_listen(listen)
        with self._cycle_lock:
            self._refresh_webhook_apps()
        server = WebhookServer(
            host, port, apps=lambda: self._apps, on_wake=self.waker.wake,
            on_authorization=self._authorization_notice,
        ).start()  # fmt: skip
        runner = threading.Thread(
            target=self._run_woken, name="cancelsync-wake", daemon=True
        )
        runner.start()
        try:
            yield
        finally:
            server.stop()
            self.waker.wake("")  # release the runner's wait
            runner.join(timeout=5)

    def _refresh_webhook_apps(self) -> None:
        """The stores as deliveries are checked against, read on the cycle's thread
        (at start and after each run: a shop binding is learned by a first run). The
        request threads only read this tuple: the database connection is the cycles'
        (two threads' savepoints on one connection break each other)."""
        self._apps = tuple(self._webhook_apps())

    def _webhook_apps(self) -> list[WebhookApp]:
        apps = []
        for cfg in self.config.stores:
            if not cfg.enabled:
                continue
            binding = self.store.shops.get(cfg.name)
            shop_id = cfg.shop_id or (binding.tiktok_shop_id if binding else None)
            apps.append(WebhookApp(cfg.name, shop_id, cfg.app_key, cfg.app_secret))
        return apps

    def _authorization_notice(
        self, store_name: str, kind: int, data: Mapping[str, Any]
    ) -> None:
        what = "revoked" if kind == REVOKED else "expiring soon"
        log.warning(
            "tiktok.authorization_notice", store=store_name, notice=what, type=kind,
            hint=f"re-authorize the app, then `cancelsync connect --store {store_name}`",
        )  # fmt: skip
        self._notices.put((store_name, kind, self.clock.now()))
        self.waker.wake(store_name)  # the woken cycle records it (and tries the token)

    def _record_notices(self) -> None:
        """Keep the notices that arrived (``status``) and queue their alerts; called
        with the cycle lock held, from the cycle's thread."""
        while True:
            try:
                store_name, kind, received = self._notices.get_nowait()
            except queue.Empty:
                return
            message = notice_text(store_name, kind)
            with self.store.unit_of_work():
                self.store.notices.note(store_name, kind, message, received)
            alerter = self.monitor.alerter
            if alerter is not None:
                notice = next(
                    n
                    for n in self.store.notices.for_store(store_name)
                    if n.kind == kind
                )
                alerter.authorization(notice)

    def _run_woken(self) -> None:
        """Run the woken stores' cycles, one extra cycle however many wakes came."""
        while not self._stop.is_set():
            woken = self.waker.wait(1.0)
            names = {cfg.name for cfg in self.config.stores if cfg.enabled} & woken
            if not names or self._stop.is_set():
                continue
            log.info("cycle.woken", stores=sorted(names))
            for name in sorted(names):
                self._guarded(partial(self.run_once, store_name=name))

    def _scheduled_run(self) -> None:
        self._guarded(self.run_once)

    def _guarded(self, run: Callable[[], object]) -> None:
        with self._cycle_lock:
            if self._stop.is_set():
                return
            self._run_safely(self._record_notices)
            self._run_safely(run)
            self._run_safely(self._refresh_webhook_apps)

    def _run_safely(self, run: Callable[[], object]) -> None:
        try:
            run()
        except sqlite3.Error as exc:
            # The database cannot be written (a full disk, a read-only folder): every
            # cycle would fail alike, so stop and let the command say what to fix.
            self._fatal = exc
            self._stop.set()
        except Exception:
            log.exception("cycle.crashed")


@contextmanager
def _signals(on_stop: Callable[[], None]) -> Iterator[None]:
    # The handler only sets the stop: logging here could deadlock on the log stream's
    # lock held by the code the signal interrupted.
    def handler(signum: int, frame: FrameType | None) -> None:
        on_stop()

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
