"""Order center: the orders cancelsync holds (hold_on_request) on the overview, and hold
and release actions in words on an order's page."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta

from cancelsync.store import Store

from .conftest import BEARER, MAGENTO_ORDER, SCOPE, TIKTOK_ORDER, Client, Site

CANCEL_ID = "4001"
HELD = "held in Magento while the buyer&#39;s request is pending"


def _hold(site: Site, *, released: bool = False) -> dict[str, int]:
    """cancelsync's hold of the seeded order (an hour ago), with its timeline; and its
    release, when asked."""
    ids: dict[str, int] = {}
    at = site.clock.now() - timedelta(hours=1)
    with closing(site.store()) as store:
        _action(store, ids, "hold", "magento_hold", at)
        if released:
            _action(store, ids, "release", "magento_unhold", at + timedelta(minutes=30))
    return ids


def _action(
    store: Store, ids: dict[str, int], name: str, action: str, at: datetime
) -> None:
    entry = store.ledger.begin(
        f"{name}:7495000000000000001:{CANCEL_ID}", scope=SCOPE, store_name="us-main",
        direction="tiktok_to_magento", action=action, now=at, state="done",
        tiktok_order_id=TIKTOK_ORDER, tiktok_cancel_id=CANCEL_ID, magento_entity_id=42,
        magento_increment_id=MAGENTO_ORDER, reason=f"{name} reason",
    )  # fmt: skip
    ids[name] = entry.action_id
    for kind, message in (("attempt", f"{action} attempt 1"),
                          ("done", f"{action} done (remote id x)")):  # fmt: skip
        store.timeline.add(
            at=at, scope=SCOPE, kind=kind, action_id=entry.action_id,
            tiktok_order_id=TIKTOK_ORDER, magento_entity_id=42,
            magento_increment_id=MAGENTO_ORDER, message=message,
        )  # fmt: skip


def _us(text: str) -> str:
    return text.split('id="store-us-main"')[1].split('id="store-uk-main"')[0]


def test_overview_shows_the_orders_on_hold(site: Site, signed_in: Client) -> None:
    """A store with a hold still on: its count, the order linked, since when."""
    assert "On hold by cancelsync" not in signed_in.get("/").text
    _hold(site)

    us = _us(signed_in.get("/").text)

    assert "<dt>On hold by cancelsync</dt>" in us
    assert (
        '<span class="count" id="on-hold-us-main">1 order(s) waiting for the buyer'
        "'s request to be answered</span>" in us
    )
    assert f'<a href="/order?q={MAGENTO_ORDER}">#{MAGENTO_ORDER}</a>' in us
    assert f'<a href="/order?q={TIKTOK_ORDER}">{TIKTOK_ORDER}</a>' in us
    assert "since 2026-11-01 11:00 UTC (1 h ago)" in us
    assert "hold_on_request is off: no new holds" in us
    assert (
        "On hold by cancelsync"
        not in signed_in.get("/").text.split('id="store-uk-main"')[1]
    )


def test_a_released_hold_leaves_the_overview(site: Site, signed_in: Client) -> None:
    """Once released, the order is no longer listed (nor the line, with the option off)."""
    _hold(site, released=True)

    assert "On hold by cancelsync" not in signed_in.get("/").text


def test_api_stores_carries_the_orders_on_hold(site: Site) -> None:
    """/api/stores: each store's on_hold list, with the hold's age."""
    ids = _hold(site)

    stores = site.client().get("/api/stores", headers=BEARER).json()["stores"]

    us = next(s for s in stores if s["name"] == "us-main")
    (hold,) = us["on_hold"]
    assert (hold["action_id"], hold["magento_increment_id"], hold["age_seconds"]) == (
        ids["hold"], MAGENTO_ORDER, 3600,
    )  # fmt: skip
    assert us["hold_on_request"] is False


def test_order_page_says_what_hold_and_release_did(
    site: Site, signed_in: Client
) -> None:
    """The actions table and the timeline name the hold and the release in words."""
    ids = _hold(site, released=True)

    text = signed_in.get(f"/order?q={TIKTOK_ORDER}").text

    hold_row = text.split(f'<tr id="action-{ids["hold"]}">')[1].split("</tr>")[0]
    assert f"<td>{HELD}<br><small>magento_hold · " in hold_row
    release_row = text.split(f'<tr id="action-{ids["release"]}">')[1].split("</tr>")[0]
    assert "<td>hold released<br><small>magento_unhold · " in release_row
    timeline = text.split('<ol class="timeline">')[1]
    assert (
        f'<small>#{ids["hold"]}</small> <strong class="what">hold in Magento while the '
        "buyer&#39;s request is pending</strong> — magento_hold attempt 1" in timeline
    )
    assert f'<strong class="what">{HELD}</strong> — magento_hold done' in timeline
    assert (
        '<strong class="what">hold released</strong> — magento_unhold done' in timeline
    )
    api = signed_in.get(f"/api/orders/{TIKTOK_ORDER}").json()
    labels = {a["action"]: a["action_label"] for a in api["actions"]}
    assert labels["magento_unhold"] == "hold released"


def test_overview_shows_what_tiktok_said_of_the_authorization(
    site: Site, signed_in: Client
) -> None:
    """A webhook type 6 kept for the store (``store.notices``) shows under its TikTok
    authorization, with when and how often, until connect clears it."""
    with closing(site.store()) as store:
        for _ in range(2):
            store.notices.note("us-main", 6, "TikTok says the seller revoked it",
                               site.clock.now())  # fmt: skip

    us = _us(signed_in.get("/").text)

    assert "TikTok says the seller revoked it (received" in us
    assert ", 2 times)" in us
