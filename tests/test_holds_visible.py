"""Orders cancelsync holds (hold_on_request): the ledger query and status."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest

from cancelsync.clock import FakeClock
from cancelsync.status import render_status
from cancelsync.store import Store
from cancelsync.store.ledger import FINAL_STATES, RESOLVED_CODE
from cancelsync.sync.engine import FINAL_STATES as ENGINE_FINAL_STATES

SCOPE = "shop:7495"


def _hold(
    store: Store, clock: FakeClock, cancel_id: str, state: str = "done", **kw: Any
) -> int:
    entry = store.ledger.begin(
        f"hold:7495:{cancel_id}", scope=kw.pop("scope", SCOPE), store_name="us-main",
        direction="tiktok_to_magento", action="magento_hold", now=clock.now(),
        state=state, tiktok_order_id=f"576{cancel_id}", tiktok_cancel_id=cancel_id,
        magento_entity_id=int(cancel_id), magento_increment_id=f"00000{cancel_id}",
        **kw,
    )  # fmt: skip
    return entry.action_id


def _release(store: Store, clock: FakeClock, cancel_id: str, state: str) -> None:
    store.ledger.begin(
        f"release:7495:{cancel_id}", scope=SCOPE, store_name="us-main",
        direction="tiktok_to_magento", action="magento_unhold", now=clock.now(),
        state=state, tiktok_order_id=f"576{cancel_id}", tiktok_cancel_id=cancel_id,
    )  # fmt: skip


def test_final_states_are_the_engines() -> None:
    """The store's copy of the final states is the engine's set."""
    assert set(FINAL_STATES) == ENGINE_FINAL_STATES


def test_holds_on_lists_done_holds_whose_release_is_not_final(
    store: Store, clock: FakeClock
) -> None:
    """Done holds with no release, or an open one (pending, failed), are on, oldest
    first; a final release, a hold that never held, one closed by hand, another
    scope's hold and other actions are not."""
    late = _hold(store, clock, "1")
    clock.advance(-60)
    early = _hold(store, clock, "2")
    clock.advance(60)
    failed_release = _hold(store, clock, "3")
    _release(store, clock, "2", "pending")
    _release(store, clock, "3", "failed")
    for cancel_id, state in (("4", "done"), ("5", "skipped"), ("6", "needs_attention")):
        _hold(store, clock, cancel_id)
        _release(store, clock, cancel_id, state)
    _hold(store, clock, "7", "skipped", reason_code="not_our_hold")
    _hold(store, clock, "8", "needs_attention", reason_code="shipped")
    resolved = _hold(store, clock, "9", "needs_attention", reason_code="shipped")
    closed = store.ledger.resolve(resolved, "answered by hand", clock.now())
    assert closed is not None
    assert (closed.state, closed.reason_code) == ("done", RESOLVED_CODE)
    _hold(store, clock, "10", "pending")
    _hold(store, clock, "11", scope="shop:other")
    store.ledger.begin("refund:7495:12", scope=SCOPE, store_name="us-main",
                       direction="tiktok_to_magento", action="magento_refund",
                       now=clock.now(), state="done")  # fmt: skip

    on = store.ledger.holds_on(SCOPE)

    assert [e.action_id for e in on] == [early, late, failed_release]
    assert [e.magento_increment_id for e in store.ledger.holds_on("shop:other")] == [
        "0000011"
    ]


def _store_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "us-main", "enabled": True, "scope": SCOPE, "market": "US",
        "market_source": "config",
        "directions": {"tiktok_cancel_to_magento_refund": True,
                       "magento_refund_to_tiktok_cancel": False},
        "auth": {"status": "not connected"}, "cursors": {}, "last_cycle": None,
        "actions": {"done": 1}, "never_imported": 0, "hold_on_request": True,
        "on_hold": [], "needs_attention": [], "failed": [],
    }  # fmt: skip
    return {**data, **changes}


def _render(clock: FakeClock, **changes: Any) -> str:
    out = io.StringIO()
    render_status({"stores": [_store_data(**changes)]}, out, now=clock.now())
    return out.getvalue()


def test_status_lists_each_held_order_with_since(clock: FakeClock) -> None:
    """Each held order: Magento #increment, TikTok order id, ISO time and how long ago."""
    since = (clock.now() - timedelta(minutes=42)).isoformat()
    hold = {"magento_increment_id": "000000042", "tiktok_order_id": "576042",
            "held_since": since}  # fmt: skip

    text = _render(clock, on_hold=[hold])

    assert (
        "  on hold by cancelsync: 1 order(s) waiting for the buyer's request to be "
        "answered\n"
        "    Magento #000000042 (TikTok order 576042) since 2026-11-01 11:18:00 UTC "
        "(42 minutes ago)\n"
    ) in text


@pytest.mark.parametrize(
    ("hold_on_request", "held", "line"),
    [
        (True, False, "  on hold by cancelsync: none\n"),
        (False, False, None),
        (False, True, "waiting for the buyer's request to be answered (hold_on_request "
                      "is off: no new holds)\n"),
    ],
)  # fmt: skip
def test_status_shows_holds_only_when_on_or_held(
    clock: FakeClock, hold_on_request: bool, held: bool, line: str | None
) -> None:
    """The holds line shows when hold_on_request is on, or when holds are left on."""
    hold = {"magento_increment_id": "1", "tiktok_order_id": "2",
            "held_since": clock.now().isoformat()}  # fmt: skip

    text = _render(clock, hold_on_request=hold_on_request,
                   on_hold=[hold] if held else [])  # fmt: skip

    if line is None:
        assert "on hold" not in text
    else:
        assert line in text
