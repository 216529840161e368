"""finish_cycle: the one place a store's cycle, run or failed to start, is recorded."""

from __future__ import annotations

from cancelsync.clock import FakeClock
from cancelsync.cycle_history import finish_cycle
from cancelsync.store import Store
from cancelsync.sync.engine import CycleReport


def test_a_cycle_that_could_not_start_is_recorded_as_an_error(
    store: Store, clock: FakeClock
) -> None:
    """A report with an error and no counts is stamped finished and recorded as 'error'."""
    report = CycleReport("us-main", "store:us-main", "run-1", clock.now())
    report.error = "stores[us-main].shop_id: the app is authorized for 2 shops"
    finished = clock.advance(2)

    finish_cycle(store, report, finished)

    assert report.finished_at == finished
    last = store.cycles.last("store:us-main")
    assert last is not None
    assert (last.run_id, last.store_name, last.outcome, last.counts, last.error) == (
        "run-1", "us-main", "error", {}, report.error,
    )  # fmt: skip


def test_counts_and_outcome_come_from_the_report(
    store: Store, clock: FakeClock
) -> None:
    """A cycle that ran is recorded with its counts and outcome."""
    report = CycleReport("us-main", "shop:7495", "run-2", clock.now())
    report.counts["refunded"] += 2
    report.new_attention = 1

    finish_cycle(store, report, clock.advance(1))

    last = store.cycles.last("shop:7495")
    assert last is not None
    assert (last.outcome, last.counts) == ("attention", {"refunded": 2})


def test_a_dry_run_leaves_no_history(store: Store, clock: FakeClock) -> None:
    """A dry run's report is finished but never recorded."""
    report = CycleReport("us-main", "shop:7495", "run-3", clock.now(), dry_run=True)

    finish_cycle(store, report, clock.now())

    assert report.finished_at == clock.now()
    assert store.cycles.last("shop:7495") is None
