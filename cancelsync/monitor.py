"""What the worker does around its runs for the people watching it: each store's health
(failed cycles in a row, last completed cycle), alerts (``alerts``) and metrics
(``metrics``).

The ``Worker`` makes one ``Monitor`` and calls it in three places: ``observing()`` around a
store's cycle (API calls are counted), ``after_run(reports)`` once a run's cycles are over
(health, then alerts queued and sent, then metrics), and ``serving()`` around service mode
(the metrics server). A dry run leaves no trace here. Nothing in it may fail a run: the
sync is done by then, so an error is logged and the run's outcome stands.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import structlog

from cancelsync.alerts import Alerter
from cancelsync.clients.http import observe_requests
from cancelsync.clock import Clock
from cancelsync.config import Config
from cancelsync.log import Redactor
from cancelsync.metrics import Metrics, MetricsServer
from cancelsync.store import Store
from cancelsync.store.alerts import StoreHealthRow
from cancelsync.sync.engine import CycleReport

log = structlog.get_logger("cancelsync.monitor")


class Monitor:
    """Health, alerts and metrics of one worker.

    Args:
        alerter: ``None`` when ``worker.alert_webhook_url`` is unset.
        metrics: ``None`` when ``worker.metrics_port`` is unset.
        metrics_port: where ``serving()`` listens (``0``: any free port).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        alerter: Alerter | None = None,
        metrics: Metrics | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.alerter = alerter
        self.metrics = metrics
        self.metrics_port = metrics_port
        self.server: MetricsServer | None = None

    @classmethod
    def from_config(
        cls, config: Config, store: Store, *, clock: Clock, redactor: Redactor
    ) -> Monitor:
        port = config.worker.metrics_port
        return cls(
            store, clock=clock,
            alerter=Alerter.from_config(
                config.worker, store, redactor=redactor, clock=clock
            ),
            metrics=(
                Metrics(config, store, clock=clock, redactor=redactor)
                if port is not None else None
            ),
            metrics_port=port,
        )  # fmt: skip

    def close(self) -> None:
        if self.alerter is not None:
            self.alerter.close()

    def observing(self) -> AbstractContextManager[None]:
        """Count the API calls made inside (metrics only)."""
        return observe_requests(self.metrics.observe_request if self.metrics else None)

    def after_run(self, reports: Sequence[CycleReport]) -> None:
        """Count each store's cycle, queue and send the alerts, refresh the metrics."""
        done = [r for r in reports if not r.dry_run]
        if not done:
            return
        try:
            before: dict[str, StoreHealthRow | None] = {}
            after: dict[str, StoreHealthRow] = {}
            for report in done:
                name = report.store_name
                before[name] = self.store.health.get(name)
                after[name] = self.store.health.note_cycle(
                    name, error=report.error,
                    finished_at=report.finished_at or self.clock.now(),
                )  # fmt: skip
            if self.alerter is not None:
                self.alerter.queue(done, before, after)
                with self.observing():
                    self.alerter.flush()
            if self.metrics is not None:
                self.metrics.after_run(done, after)
        except sqlite3.Error:
            raise  # the database's trouble is the run's, reported like any other
        except Exception:
            # The run's cycles are recorded: alerts and metrics must not undo its outcome.
            log.exception("monitor.failed")

    @contextmanager
    def serving(self) -> Iterator[None]:
        """The metrics server while inside (when ``metrics_port`` is set); a port that
        cannot be bound is logged, and the sync runs anyway."""
        if self.metrics is None or self.metrics_port is None:
            yield
            return
        try:
            self.server = MetricsServer(self.metrics, self.metrics_port).start()
        except OSError as exc:
            log.error("metrics.unavailable", port=self.metrics_port, error=str(exc))  # noqa: TRY400 - a busy port needs no traceback
            yield
            return
        try:
            yield
        finally:
            self.server.stop()
            self.server = None
