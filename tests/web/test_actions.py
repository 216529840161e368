"""``cancelsync.actions``: retry and resolve as the CLI and the order center share them."""

from __future__ import annotations

import io
from contextlib import closing

import pytest

from cancelsync.actions import MAX_NOTE_LENGTH, clean_note, resolve_action, retry_action
from cancelsync.cli import main
from cancelsync.clock import FakeClock
from cancelsync.store import Store

from .conftest import TIKTOK_ORDER, Site


def test_resolve_closes_for_good_and_tells_the_timeline(site: Site) -> None:
    """Resolve: done with the note, never re-queued, and explain shows who closed it."""
    held = site.ids["held"]
    with closing(site.store()) as store:
        result = resolve_action(store, held, site.clock.now(),
                                note="  refunded\x00 in the admin\n", by="cli")  # fmt: skip
        assert (result.ok, result.outcome, result.exit_code) == (True, "resolved", 0)
        assert result.entry is not None
        assert result.entry.reason == "resolved by hand: refunded in the admin"
        # retry --all takes the other open rows (one failed, one needing attention) only
        assert store.ledger.requeue(site.clock.now()) == 2
        again = retry_action(store, held, site.clock.now())
        assert (again.outcome, again.exit_code) == ("not_open", 1)
        assert "is done: only failed or needs-attention" in again.message
    out = io.StringIO()
    assert main(["--config", str(site.config.path), "explain", TIKTOK_ORDER],
                stdout=out) == 0  # fmt: skip
    text = out.getvalue()
    assert (
        "resolved   [#1] resolved by hand: refunded in the admin (cli); was: " in text
    )
    assert f"#{held} magento_refund (tiktok_to_magento) done attempts=0 " in text
    assert "reason=resolved by hand: refunded in the admin" in text


def test_retry_requeues_and_notes_it(store: Store, clock: FakeClock) -> None:
    """Retry puts a needs-attention row back to pending and leaves a timeline entry."""
    entry = store.ledger.begin("k", scope="shop:1", store_name="s", direction="d",
                               action="a", now=clock.now(), state="needs_attention",
                               tiktok_order_id="576")  # fmt: skip
    result = retry_action(store, entry.action_id, clock.now(), by="order center")
    assert (result.outcome, result.exit_code) == ("requeued", 0)
    assert result.entry is not None
    assert result.entry.state == "pending"
    (event,) = store.timeline.for_order("576", None, "576")
    assert (event.kind, event.message, event.details) == (
        "requeued", "re-queued by hand (order center)", {"by": "order center"},
    )  # fmt: skip
    assert result.as_dict()["state"] == "pending"


@pytest.mark.parametrize("name", ["retry", "resolve"])
def test_unknown_action_is_a_usage_error(
    store: Store, clock: FakeClock, name: str
) -> None:
    """An id with no row is ``not_found`` (exit 2), naming where ids are listed."""
    do = retry_action if name == "retry" else resolve_action
    result = do(store, 42, clock.now())
    assert (result.ok, result.outcome, result.exit_code) == (False, "not_found", 2)
    assert result.message == "no action #42 (see `cancelsync status` for action ids)"
    assert result.as_dict()["state"] is None


def test_only_needs_attention_can_be_resolved(store: Store, clock: FakeClock) -> None:
    """A failed row (the retry pass owns it) is not resolved, and nothing is written."""
    entry = store.ledger.begin("k", scope="shop:1", store_name="s", direction="d",
                               action="a", now=clock.now(), state="failed")  # fmt: skip
    result = resolve_action(store, entry.action_id, clock.now(), note="x")
    assert result.outcome == "not_open"
    assert store.ledger.get("k") == entry
    assert store.timeline.for_order(None, None, "") == []


def test_notes_are_cleaned_and_bounded() -> None:
    """Control characters go, whitespace is trimmed, the length is capped."""
    assert clean_note(None) == ""
    assert clean_note(" a\tb\nc\x1b[31m ") == "a\tb\nc[31m"
    assert len(clean_note("x" * 5000)) == MAX_NOTE_LENGTH
