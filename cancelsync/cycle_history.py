"""Closing a store's cycle: the one place a cycle is added to the history ``status`` shows.

A cycle that ran (``sync.cycle.run_store_cycle``) and one that could not start because the
store's shop could not be resolved (``service.Worker``) both end here, so they are
recorded alike.
"""

from __future__ import annotations

from datetime import datetime

from cancelsync.store import Store
from cancelsync.sync.engine import CycleReport


def finish_cycle(store: Store, report: CycleReport, finished_at: datetime) -> None:
    """Stamp ``report`` finished and record it (a dry run leaves no history)."""
    report.finished_at = finished_at
    if report.dry_run:
        return
    store.cycles.record(
        run_id=report.run_id, scope=report.scope, store_name=report.store_name,
        started_at=report.started_at, finished_at=finished_at, outcome=report.outcome,
        counts=dict(report.counts), error=report.error,
    )  # fmt: skip
