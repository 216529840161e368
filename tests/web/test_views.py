"""Order center pages and JSON API: what they show, escaping, filters, paging, actions."""

from __future__ import annotations

import csv
import io
from contextlib import closing
from datetime import timedelta

import pytest

from cancelsync.store.ledger import RESOLVED_CODE
from cancelsync.web.gather import Links
from cancelsync.web.views import duration

from .conftest import (
    BEARER,
    HOSTILE,
    MAGENTO_ORDER,
    SCOPE,
    TIKTOK_ORDER,
    Client,
    Site,
)

PAGES = ["/", "/attention", "/activity", f"/order?q={TIKTOK_ORDER}",
         f"/order?q={MAGENTO_ORDER}", "/order?q=%3Cscript%3E", "/order"]  # fmt: skip


def test_overview_shows_each_store(signed_in: Client) -> None:
    """Directions, last cycle, cursor lag, token expiry and counts for every store."""
    text = signed_in.get("/").text
    assert 'id="store-us-main"' in text
    assert 'id="store-uk-main"' in text
    us = text.split('id="store-us-main"')[1].split('id="store-uk-main"')[0]
    assert "TikTok cancellation → Magento refund</dt>" in us
    assert '<span class="tag on">on</span>' in us
    assert '<span class="tag off">off</span>' in us  # refund → cancel is off by default
    assert '<span class="tag on">ok</span>' in us  # last cycle
    assert "2026-11-01 09:00 UTC (2 h 59 min ago)" in us
    assert "tiktok.cancellations: 3 h 5 min behind" in us
    assert "(in 6 d)" in us  # the access token
    assert "2 needs attention" in us
    assert "1 done" in us
    assert "never" in text.split('id="store-uk-main"')[1]  # uk-main never ran


def test_attention_lists_open_items_with_links_age_and_buttons(
    signed_in: Client,
) -> None:
    """Each open item: orders linked to the admin pages, reason, age, attempts, buttons."""
    text = signed_in.get("/attention").text
    assert text.count('<tr id="action-') == 2
    assert ('href="https://magento.example.com/admin/sales/order/view/order_id/42/"'
            in text)  # fmt: skip
    assert (
        'href="https://seller-us.tiktok.com/order/detail?order_no=576000000000000001'
        '&amp;shop=7495000000000000001"' in text
    )
    assert f'href="/order?q={TIKTOK_ORDER}"' in text
    assert "3 h" in text
    assert "Retry</button>" in text
    assert "Resolve for good</button>" in text
    assert '<span class="badge hot" id="open-count">2</span>' in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", 2), ("?store=us-main", 2), ("?store=uk-main", 0),
     ("?direction=magento_to_tiktok", 1), ("?store=us-main&direction=tiktok_to_magento", 1)],
)  # fmt: skip
def test_attention_filters_by_store_and_direction(
    signed_in: Client, query: str, expected: int
) -> None:
    """The filters narrow the list; the API answers the same."""
    assert signed_in.get(f"/attention{query}").text.count('<tr id="action-') == expected
    api = signed_in.get(f"/api/attention{query}").json()
    assert len(api["items"]) == expected


def test_unknown_filter_values_are_a_bad_request(signed_in: Client) -> None:
    """A store or state that does not exist is a 400 naming the choices."""
    reply = signed_in.get("/attention?store=nope")
    assert reply.status == 400
    assert "us-main, uk-main" in reply.text
    assert signed_in.get("/api/attention?direction=sideways").status == 400
    assert signed_in.get("/activity?page=two").status == 400


def test_hostile_text_is_escaped_on_every_page(signed_in: Client) -> None:
    """A reason or SKU holding markup is shown as text: no page carries it as HTML."""
    for path in PAGES:
        text = signed_in.get(path).text
        assert "<script" not in text, path
        assert "<img" not in text, path
    attention = signed_in.get("/attention").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in attention
    assert "SKU-&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in attention
    order = signed_in.get(f"/order?q={TIKTOK_ORDER}").text
    assert "needs attention: &lt;script&gt;" in order


def test_get_never_changes_the_database(site: Site, signed_in: Client) -> None:
    """Every page, API read, export, and a GET on an action URL leave the database as is."""
    before = site.dump()
    held = site.ids["held"]
    for path in [*PAGES, "/activity.csv", "/api/stores", "/api/attention",
                 f"/api/orders/{TIKTOK_ORDER}"]:  # fmt: skip
        assert signed_in.get(path).status in (200, 404), path
    for path in (f"/actions/{held}/resolve", f"/api/actions/{held}/retry"):
        reply = signed_in.get(path, headers=BEARER)
        assert reply.status == 405
        assert reply.header("Allow") == "POST"
    assert site.dump() == before


def test_order_page_is_the_explain_timeline(signed_in: Client) -> None:
    """Searching a TikTok id or a Magento number shows the link, actions and timeline."""
    for ref in (TIKTOK_ORDER, MAGENTO_ORDER):
        text = signed_in.get(f"/order?q={ref}").text
        assert "TikTok order <strong>576000000000000001</strong>" in text
        assert "Magento order <strong>#000000042</strong> (entity 42)" in text
        assert '<tr id="action-1">' in text
        assert '<span class="tag">attention</span>' in text
    missing = signed_in.get("/order?q=999")
    assert missing.status == 404
    assert "Nothing recorded for order 999." in missing.text
    assert signed_in.get("/order?q=" + "9" * 101).status == 400


def test_retry_and_resolve_from_the_page(site: Site, signed_in: Client) -> None:
    """Retry re-queues, Resolve closes with the note; both go back to the list with a message."""
    csrf = signed_in.csrf()
    held, shipped = site.ids["held"], site.ids["shipped"]
    reply = signed_in.post(f"/actions/{held}/retry",
                           form={"csrf": csrf, "next": "/attention"})  # fmt: skip
    assert (reply.status, reply.header("Location")) == (303, "/attention")
    page = signed_in.get("/attention").text
    assert f"re-queued action #{held}; the next run picks it up" in page
    reply = signed_in.post(f"/actions/{shipped}/resolve",
                           form={"csrf": csrf, "note": f"cancelled in Seller Center {HOSTILE}",
                                 "next": "//evil.example"})  # fmt: skip
    assert (reply.status, reply.header("Location")) == (303, "/attention")
    page = signed_in.get("/attention").text
    assert f"resolved action #{shipped}; it will not be retried" in page
    assert "Nothing needs attention." in page
    with closing(site.store()) as store:
        entry = store.ledger.get_by_id(shipped)
        assert entry is not None
        assert (entry.state, entry.reason_code) == ("done", RESOLVED_CODE)
        requeued = store.ledger.get_by_id(held)
        assert requeued is not None
        assert requeued.state == "pending"
    order = signed_in.get("/order?q=576000000000000002").text
    assert "resolved by hand: cancelled in Seller Center &lt;script&gt;" in order
    assert '<span class="tag">resolved</span>' in order


def test_api_stores_attention_and_orders(site: Site) -> None:
    """The JSON API: stores as status gathers them, open items with links, an order."""
    client = site.client()
    stores = client.get("/api/stores", headers=BEARER).json()["stores"]
    assert [s["name"] for s in stores] == ["us-main", "uk-main"]
    assert stores[0]["actions"]["needs_attention"] == 2
    assert stores[0]["cursor_lag_seconds"]["tiktok.cancellations"] == 3 * 3600 + 300
    assert stores[0]["auth"]["expires_in_seconds"] == 6 * 86_400
    items = client.get("/api/attention", headers=BEARER).json()["items"]
    assert [i["action_id"] for i in items] == [site.ids["held"], site.ids["shipped"]]
    assert items[0]["magento_url"].endswith("/order_id/42/")
    assert items[0]["age_seconds"] == 3 * 3600
    assert "payload" not in items[0]
    order = client.get(f"/api/orders/{MAGENTO_ORDER}", headers=BEARER).json()
    assert order["link"]["tiktok_order_id"] == TIKTOK_ORDER
    assert [a["action_id"] for a in order["actions"]] == [site.ids["held"]]
    assert order["timeline"][0]["kind"] == "attention"
    missing = client.get("/api/orders/nope", headers=BEARER)
    assert (missing.status, missing.json()) == (
        404, {"error": "nothing recorded for order nope"},
    )  # fmt: skip


def test_api_actions_answer_with_status_codes(site: Site) -> None:
    """200 when done, 404 for no such action, 409 when it is not open, 400 without JSON."""
    client = site.client()
    held, done = site.ids["held"], site.ids["done"]
    resolve = f"/api/actions/{held}/resolve"
    assert client.post(resolve, headers=BEARER).status == 400
    assert client.post(resolve, headers=BEARER, json_body={"note": 5}).status == 400
    reply = client.post(resolve, headers=BEARER, json_body={"note": "by hand"})
    assert reply.json() == {
        "action_id": held, "outcome": "resolved", "ok": True, "state": "done",
        "message": f"resolved action #{held}; it will not be retried",
    }  # fmt: skip
    again = client.post(resolve, headers=BEARER, json_body={"note": "by hand"})
    assert (again.status, again.json()["outcome"]) == (409, "not_open")
    retry = client.post(f"/api/actions/{done}/retry", headers=BEARER, json_body={})
    assert retry.status == 409
    failed = client.post(f"/api/actions/{site.ids['failed']}/retry", headers=BEARER)
    assert (failed.status, failed.json()["state"]) == (200, "pending")
    assert client.post("/api/actions/999/retry", headers=BEARER).status == 404
    assert client.post("/api/actions/abc/retry", headers=BEARER).status == 404


def test_activity_pages_newest_first(site: Site, signed_in: Client) -> None:
    """Activity lists every action by last change with paging and filters."""
    with closing(site.store()) as store:
        for n in range(60):
            store.ledger.begin(
                f"bulk:{n}", scope=SCOPE, store_name="us-main",
                direction="tiktok_to_magento", action="magento_refund",
                now=site.clock.now() + timedelta(seconds=n), state="done",
                tiktok_order_id=f"9{n:03d}",
            )  # fmt: skip
    first = signed_in.get("/activity").text
    assert "65 action(s), newest change first · page 1 of 2" in first
    assert first.index(">9059<") < first.index(">9058<")
    assert 'href="/activity?page=2" rel="next"' in first
    second = signed_in.get("/activity?page=2").text
    assert "page 2 of 2" in second
    assert second.count("<tr>") == 15 + 1  # rows + the header row
    assert 'href="/activity?page=1" rel="prev"' in second
    skipped = signed_in.get("/activity?state=skipped").text
    assert "1 action(s)" in skipped
    assert (
        signed_in.get("/activity?store=uk-main").text.count("<tr>") == 2
    )  # + "nothing"


def test_activity_csv_export_defuses_formulas(site: Site, signed_in: Client) -> None:
    """The CSV holds every filtered row; a cell starting like a formula is quoted."""
    reply = signed_in.get("/activity.csv?state=done")
    assert reply.header("Content-Type") == "text/csv; charset=utf-8"
    assert reply.header("Content-Disposition") == (
        'attachment; filename="cancelsync-activity-20261101-120000.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [r["action_id"] for r in rows] == [str(site.ids["done"])]
    assert rows[0]["magento_increment_id"] == "'=HYPERLINK(1)"
    assert rows[0]["state"] == "done"
    every = list(csv.DictReader(io.StringIO(signed_in.get("/activity.csv").text)))
    assert len(every) == 5


def test_links_quote_ids_into_the_merchants_templates() -> None:
    """An id cannot add a path, query or scheme to the admin link; no template, no link."""
    links = Links("https://m.example.com/admin/order_id/{magento_entity_id}/?n={magento_increment_id}",
                  "https://seller.example.com/o?id={tiktok_order_id}&s={tiktok_shop_id}")  # fmt: skip
    assert links.magento(42, "0001&x=/../") == (
        "https://m.example.com/admin/order_id/42/?n=0001%26x%3D%2F..%2F"
    )
    assert links.tiktok("57/6?a", "shop:7495") == (
        "https://seller.example.com/o?id=57%2F6%3Fa&s=7495"
    )
    assert (
        links.tiktok("576", "store:us-main") == "https://seller.example.com/o?id=576&s="
    )
    assert links.magento(None, "0001") is None
    assert Links().magento(42, "0001") is None
    assert Links().tiktok("576", "shop:1") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (-5, "0 s"), (59, "59 s"), (61, "1 min"), (3600, "1 h"),
     (3 * 3600 + 300, "3 h 5 min"), (86_400 * 2 + 3600 * 4, "2 d 4 h"), (86_400, "1 d")],
)  # fmt: skip
def test_duration_reads_like_people_say_it(seconds: float | None, text: str) -> None:
    """Ages and lags are short and rounded down."""
    assert duration(seconds) == text
