"""Both directions under OAuth 1.0a against a simulator that verifies like Magento 2.4.

Magento signs the raw query with ``rawurldecode`` (a ``+`` stays a plus), so every
``created_at`` filter (its value holds a space) must reach it as ``%20``.
"""

from __future__ import annotations

import tomllib

from .conftest import Harness


def test_sandbox_config_uses_oauth1_and_bearer_would_be_refused(
    harness: Harness,
) -> None:
    """The e2e config signs with OAuth 1.0a; the store ignores integration bearers."""
    config = tomllib.loads(harness.sb.config_text())
    assert config["magento"]["auth"] == "oauth1"
    assert not harness.sb.magento.integration_bearer_enabled


def test_both_directions_sync_under_oauth1_with_date_filters(
    harness: Harness,
) -> None:
    """A merchant memo and a TikTok cancel sync in one run; no Magento call is refused."""
    harness.sb.add_store("us-main", refund_to_cancel=True)
    memo_order = harness.sb.place_order([{"sku": "A", "qty": 1, "price": 5.0}])
    cancel_order = harness.sb.place_order([{"sku": "B", "qty": 1, "price": 7.0}])
    harness.sb.magento.create_credit_memo(memo_order.magento_entity_id, None)
    harness.sb.tiktok.buyer_cancel(cancel_order.tiktok_order_id)

    rc, _ = harness.run("run", "--once")

    assert rc == 0
    assert harness.sb.tiktok.order(memo_order.tiktok_order_id)["status"] == "CANCELLED"
    assert len(harness.memos(cancel_order.magento_entity_id)) == 1
    calls = harness.sb.magento_server.journal.entries()
    assert calls, "the run made no Magento call"
    assert all(c.headers["authorization"].startswith("OAuth ") for c in calls)
    assert [c.status for c in calls if c.status != 200] == []
    date_filters = [
        value
        for c in calls
        if c.endpoint == "GET creditmemos"
        for key, value in c.query
        if key.endswith("[value]") and " " in value
    ]
    assert date_filters, "direction A's created_at filter was never sent"
