"""Action kinds in words, as explain and the order center show them."""

from __future__ import annotations

import pytest

from cancelsync.plan_text import row_label
from cancelsync.store.ledger import RESOLVED_CODE


@pytest.mark.parametrize(
    ("action", "state", "code", "label"),
    [
        ("magento_hold", "done", None,
         "held in Magento while the buyer's request is pending"),
        ("magento_hold", "needs_attention", "shipped",
         "hold in Magento while the buyer's request is pending: not done, needs attention"),
        ("magento_hold", "done", RESOLVED_CODE,
         "hold in Magento while the buyer's request is pending: closed by hand"),
        ("magento_unhold", "done", None, "hold released"),
        ("magento_unhold", "pending", None,
         "release cancelsync's hold in Magento: not done yet"),
        ("tiktok_cancel", "skipped", "echo", "cancel on TikTok: not done (skipped)"),
        ("magento_refund", "done", None, "refunded in Magento"),
        ("something_new", "done", None, "something new"),
    ],
)  # fmt: skip
def test_row_labels_say_what_was_done_or_meant(
    action: str, state: str, code: str | None, label: str
) -> None:
    """A done row says what happened; any other (or one closed by hand) what it meant,
    and that it was not done."""
    assert row_label(action, state, code) == label
