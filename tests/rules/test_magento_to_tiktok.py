"""Direction A rules: a Magento credit memo → a TikTok cancel, an approval, or nothing."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings

from cancelsync import reasons
from cancelsync.config import RefundToCancelConfig
from cancelsync.models import (
    MagentoCreditMemo,
    MagentoCreditMemoItem,
    MagentoOrder,
    TikTokCancellation,
    TikTokOrder,
)
from cancelsync.rules.decisions import (
    Apply,
    ApproveRequestPlan,
    Attention,
    Code,
    Decision,
    Done,
    Skip,
    TikTokCancelPlan,
    marker,
)
from cancelsync.rules.magento_to_tiktok import (
    SHIPPED_STATUSES,
    CreditMemoFacts,
    decide_cancel,
    is_full_refund,
    linked_elsewhere,
    looks_like_tiktok_order_id,
    reason_after_refusal,
    refunded_skus,
)

from .strategies import (
    T0,
    TIKTOK_ORDER_ID,
    MemoCase,
    bundle,
    configurable,
    make_cancellation,
    make_memo,
    make_order,
    make_tiktok_order,
    memo_cases,
    simple,
)

FAST = settings(max_examples=200, deadline=None)
DEFAULTS = RefundToCancelConfig(enabled=True)
CANCEL_ITEMS = RefundToCancelConfig(enabled=True, partial_refunds="cancel_items")
PENDING = make_cancellation(status="CANCELLATION_REQUEST_PENDING", cancel_id="4035777")


def _full_order(**kw: str) -> MagentoOrder:
    """SKU-A x1 and configurable SKU-B x2, every unit refunded (shipping kept)."""
    return make_order(
        simple(100, "SKU-A", 1, refunded=1),
        configurable(110, "SKU-B", 2, refunded=2),
        **kw,
    )


def _partial_order(**kw: str) -> MagentoOrder:
    """SKU-A x1 and configurable SKU-B x3, one SKU-B unit refunded."""
    return make_order(
        simple(100, "SKU-A", 1),
        configurable(110, "SKU-B", 3, refunded=1),
        **kw,
    )


def _facts(
    order: MagentoOrder,
    rows: dict[int, int],
    tiktok: TikTokOrder | None,
    *,
    comments: tuple[str, ...] = (),
    created_by_us: bool = False,
    pending: TikTokCancellation | None = None,
) -> CreditMemoFacts:
    memo = make_memo(order, rows, comments=comments)
    return CreditMemoFacts(memo, order, created_by_us, tiktok, pending)


def _cancel_plan(decision: Decision) -> TikTokCancelPlan:
    assert isinstance(decision, Apply), decision
    assert isinstance(decision.plan, TikTokCancelPlan), decision.plan
    return decision.plan


def _reason_cfg(reason: str) -> RefundToCancelConfig:
    return RefundToCancelConfig(enabled=True, cancel_reason=reason)


# ----------------------------------------------------------------------------- echo, status


def test_memo_carrying_our_marker_is_skipped() -> None:
    """A memo whose comment carries the [cancelsync:...] marker is our own echo."""
    order = _full_order()
    comments = (f"cancelsync: TikTok cancellation {marker('4035012345678')}",)
    facts = _facts(order, {100: 1}, make_tiktok_order(order), comments=comments)
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Skip)
    assert "created by cancelsync" in decision.reason


def test_memo_in_our_ledger_is_skipped() -> None:
    """A memo the ledger says we created is skipped even without the marker."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order), created_by_us=True)
    assert isinstance(decide_cancel(facts, DEFAULTS, "US"), Skip)


def test_unknown_tiktok_order_needs_attention() -> None:
    """A memo whose TikTok order is not in this shop is reported."""
    order = _full_order()
    decision = decide_cancel(_facts(order, {100: 1}, None), DEFAULTS, "US")
    assert isinstance(decision, Attention)
    assert "not found" in decision.reason


def test_cancelled_tiktok_order_is_done() -> None:
    """An order TikTok already cancelled needs nothing more."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order, "CANCELLED"))
    assert isinstance(decide_cancel(facts, DEFAULTS, "US"), Done)


@pytest.mark.parametrize("status", sorted(SHIPPED_STATUSES))
def test_shipped_tiktok_order_needs_attention(status: str) -> None:
    """After shipment TikTok only takes a return/refund: the merchant is told."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order, status))
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Attention)
    assert "return/refund" in decision.reason


def test_unknown_tiktok_status_needs_attention() -> None:
    """A status outside the seller-cancellable ones is never cancelled."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order, "SOMETHING_NEW"))
    assert isinstance(decide_cancel(facts, DEFAULTS, "US"), Attention)


# ----------------------------------------------------------------------------- full refunds


def test_full_refund_is_judged_cumulatively() -> None:
    """A memo refunding the last unit makes the order fully refunded: whole cancel."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order))
    plan = _cancel_plan(decide_cancel(facts, DEFAULTS, "US"))
    assert plan == TikTokCancelPlan(
        TIKTOK_ORDER_ID, "seller_cancel_paid_reason_address_not_deliver"
    )
    assert plan.whole_order


def test_kept_shipping_does_not_make_a_refund_partial() -> None:
    """Every invoiced unit refunded is a full refund whatever happened to shipping."""
    order = _full_order(shipping="9.99", shipping_refunded="0")
    assert is_full_refund(order)
    assert is_full_refund(_full_order(shipping="9.99", shipping_refunded="9.99"))


def test_order_with_nothing_invoiced_is_never_fully_refunded() -> None:
    """No invoiced unit means no full refund (all() of nothing is not enough)."""
    assert not is_full_refund(make_order(simple(100, "SKU-A", 1, invoiced=0)))


def test_pending_buyer_request_is_approved() -> None:
    """A pending buyer request is approved instead of a seller cancel."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order), pending=PENDING)
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Apply)
    assert decision.plan == ApproveRequestPlan(TIKTOK_ORDER_ID, "4035777")


def test_pending_request_not_approved_when_setting_off() -> None:
    """With approve_buyer_requests off the order is seller-cancelled instead."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order), pending=PENDING)
    cfg = RefundToCancelConfig(enabled=True, approve_buyer_requests=False)
    assert _cancel_plan(decide_cancel(facts, cfg, "US")).whole_order


@pytest.mark.parametrize(
    ("reason", "market", "status", "key"),
    [
        (
            "seller_cancel_paid_reason_address_not_deliver",
            "UK",
            "AWAITING_SHIPMENT",
            "seller_cancel_paid_reason_address_not_deliver_uk",
        ),
        (
            "seller_cancel_paid_reason_address_not_deliver",
            "GB",
            "ON_HOLD",
            "seller_cancel_paid_reason_address_not_deliver_uk",
        ),
        (
            "seller_cancel_reason_out_of_stock",
            "US",
            "UNPAID",
            "seller_cancel_unpaid_reason_out_of_stock",
        ),
        ("out_of_stock", "UK", "UNPAID", "seller_cancel_unpaid_reason_out_of_stock_uk"),
        ("wrong_price", "DE", "AWAITING_SHIPMENT", "seller_cancel_reason_wrong_price"),
        (
            "address_not_deliver",
            "SG",
            "AWAITING_SHIPMENT",
            "seller_cancel_unable_to_deliver_to_buyer_address",
        ),
    ],
)
def test_reason_is_translated_for_market_and_status(
    reason: str, market: str, status: str, key: str
) -> None:
    """The configured reason becomes the key valid for the shop's market and the status."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order, status))
    plan = _cancel_plan(decide_cancel(facts, _reason_cfg(reason), market))
    assert plan.cancel_reason == key


@pytest.mark.parametrize(
    ("reason", "market", "status"),
    [
        ("seller_cancel_paid_reason_address_not_deliver", "US", "UNPAID"),
        ("address_not_deliver", "UK", "UNPAID"),
        ("buyer_requested", "UK", "AWAITING_SHIPMENT"),
        ("seller_cancel_paid_reason_buyer_requested_cancellation", "UK", "ON_HOLD"),
        ("wrong_price", "BR", "AWAITING_SHIPMENT"),
        ("potential_fraud", "US", "AWAITING_SHIPMENT"),
        ("no_such_reason", "US", "AWAITING_SHIPMENT"),
    ],
)
def test_reason_without_a_key_needs_attention(
    reason: str, market: str, status: str
) -> None:
    """No valid key for (market, status): the merchant picks another reason."""
    order = _full_order()
    facts = _facts(order, {100: 1}, make_tiktok_order(order, status))
    decision = decide_cancel(facts, _reason_cfg(reason), market)
    assert isinstance(decision, Attention)
    assert "cancelsync reasons" in decision.reason


# ----------------------------------------------------------------------------- partial memos


def test_partial_memo_is_reported_by_default() -> None:
    """partial_refunds = "report": the TikTok order is left alone and a person is told
    which SKUs TikTok still expects shipped."""
    order = _partial_order()
    facts = _facts(order, {110: 1}, make_tiktok_order(order))
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Attention)
    assert "1 x SKU-B" in decision.reason
    assert "cancel_items" in decision.reason


def test_partial_memo_on_shipped_order_points_to_return_refund() -> None:
    """A reported partial memo on a shipped TikTok order names the return/refund path."""
    order = _partial_order()
    facts = _facts(order, {110: 1}, make_tiktok_order(order, "DELIVERED"))
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Attention)
    assert "1 x SKU-B" in decision.reason
    assert "return/refund" in decision.reason


def test_partial_memo_without_items_is_skipped() -> None:
    """A shipping- or adjustment-only memo leaves no unit diverging: nothing to report."""
    order = _partial_order()
    facts = _facts(order, {}, make_tiktok_order(order))
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Skip)
    assert "no items" in decision.reason


@pytest.mark.parametrize(
    ("market", "status", "key"),
    [
        ("US", "AWAITING_SHIPMENT", "seller_cancel_reason_out_of_stock"),
        ("UK", "ON_HOLD", "seller_cancel_reason_out_of_stock_uk"),
        ("US", "UNPAID", "seller_cancel_unpaid_reason_out_of_stock"),
        ("UK", "UNPAID", "seller_cancel_unpaid_reason_out_of_stock_uk"),
    ],
)
def test_cancel_items_cancels_lines_with_out_of_stock(
    market: str, status: str, key: str
) -> None:
    """Opted in, a partial memo cancels that many lines with the out-of-stock key."""
    order = _partial_order()
    facts = _facts(order, {110: 1}, make_tiktok_order(order, status))
    plan = _cancel_plan(decide_cancel(facts, CANCEL_ITEMS, market))
    assert plan == TikTokCancelPlan(TIKTOK_ORDER_ID, key, ("L110-0",))


def test_cancel_items_counts_configurable_rows_once() -> None:
    """The memo's child row of a configurable is not counted as a second unit."""
    order = make_order(
        simple(100, "SKU-A", 1), configurable(110, "SKU-B", 3, refunded=2)
    )
    facts = _facts(order, {110: 2}, make_tiktok_order(order))
    assert len(facts.memo.items) == 2  # the parent row and its child row
    plan = _cancel_plan(decide_cancel(facts, CANCEL_ITEMS, "US"))
    assert plan.order_line_item_ids == ("L110-0", "L110-1")


def test_cancel_items_skips_lines_already_cancelled() -> None:
    """Lines already cancelled on TikTok are not chosen again."""
    order = make_order(
        simple(100, "SKU-A", 1), configurable(110, "SKU-B", 3, refunded=2)
    )
    tiktok = make_tiktok_order(order, cancelled=frozenset({"L110-0"}))
    facts = _facts(order, {110: 1}, tiktok)
    plan = _cancel_plan(decide_cancel(facts, CANCEL_ITEMS, "US"))
    assert plan.order_line_item_ids == ("L110-1",)


@pytest.mark.parametrize("market", ["DE", "SG", "JP"])
def test_cancel_items_outside_us_uk_needs_attention(market: str) -> None:
    """Line cancels exist only in the US and UK."""
    order = _partial_order()
    facts = _facts(order, {110: 1}, make_tiktok_order(order))
    decision = decide_cancel(facts, CANCEL_ITEMS, market)
    assert isinstance(decision, Attention)
    assert "only in US/UK" in decision.reason


def test_cancel_items_accepts_gb_as_uk() -> None:
    """The TikTok region GB is the UK market for line cancels too."""
    order = _partial_order()
    facts = _facts(order, {110: 1}, make_tiktok_order(order))
    plan = _cancel_plan(decide_cancel(facts, CANCEL_ITEMS, "GB"))
    assert plan.cancel_reason == "seller_cancel_reason_out_of_stock_uk"


def test_cancel_items_never_cancels_every_remaining_line() -> None:
    """A partial memo that would leave no live line is refused (never a whole cancel)."""
    order = make_order(
        simple(100, "SKU-A", 1), configurable(110, "SKU-B", 3, refunded=2)
    )
    tiktok = make_tiktok_order(order, cancelled=frozenset({"L100-0", "L110-0"}))
    facts = _facts(order, {110: 2}, tiktok)
    decision = decide_cancel(facts, CANCEL_ITEMS, "US")
    assert isinstance(decision, Attention)
    assert "every remaining TikTok line" in decision.reason


def test_cancel_items_with_too_few_live_lines_needs_attention() -> None:
    """More refunded units than live TikTok lines of the SKU is reported."""
    order = make_order(
        simple(100, "SKU-A", 1), configurable(110, "SKU-B", 3, refunded=2)
    )
    tiktok = make_tiktok_order(order, cancelled=frozenset({"L110-0", "L110-1"}))
    facts = _facts(order, {110: 2}, tiktok)
    decision = decide_cancel(facts, CANCEL_ITEMS, "US")
    assert isinstance(decision, Attention)
    assert "1 such live line" in decision.reason


def test_cancel_items_shipping_only_memo_is_skipped() -> None:
    """A memo that refunds no items (shipping or adjustment only) cancels nothing."""
    order = _partial_order()
    facts = _facts(order, {}, make_tiktok_order(order))
    assert isinstance(decide_cancel(facts, CANCEL_ITEMS, "US"), Skip)


def test_cancel_items_on_shipped_order_needs_attention() -> None:
    """Opted in, a partial memo on a shipped order goes to a person."""
    order = _partial_order()
    facts = _facts(order, {110: 1}, make_tiktok_order(order, "IN_TRANSIT"))
    assert isinstance(decide_cancel(facts, CANCEL_ITEMS, "US"), Attention)


# ----------------------------------------------------------------------------- properties


def _every_invoiced_unit_refunded(order: MagentoOrder) -> bool:
    top = [it for it in order.items if it.parent_item_id is None]
    invoiced = [it for it in top if it.qty_invoiced > 0]
    return bool(invoiced) and all(it.qty_refunded >= it.qty_invoiced for it in invoiced)


@FAST
@given(memo_cases())
def test_decisions_are_repeatable_and_spare_shipped_and_own(case: MemoCase) -> None:
    """Same answer twice; no write for our own memos or shipped/completed/cancelled orders."""
    facts = case.facts
    decision = decide_cancel(facts, case.settings, case.market)
    assert decide_cancel(facts, case.settings, case.market) == decision
    if not isinstance(decision, Apply):
        return
    assert not facts.created_by_us
    assert not any("[cancelsync:" in c for c in facts.memo.comments)
    assert facts.tiktok_order is not None
    assert facts.tiktok_order.status in {"UNPAID", "ON_HOLD", "AWAITING_SHIPMENT"}


@FAST
@given(memo_cases())
def test_whole_order_actions_only_on_full_refunds(case: MemoCase) -> None:
    """A whole cancel or approval needs every invoiced unit refunded; keys always valid."""
    decision = decide_cancel(case.facts, case.settings, case.market)
    if not isinstance(decision, Apply):
        return
    plan = decision.plan
    tiktok = case.facts.tiktok_order
    assert tiktok is not None
    if isinstance(plan, ApproveRequestPlan):
        assert case.settings.approve_buyer_requests
        assert case.facts.pending_request is not None
    else:
        assert isinstance(plan, TikTokCancelPlan)
        assert plan.cancel_reason in reasons.reasons_for(case.market, tiktok.status)
    if isinstance(plan, ApproveRequestPlan) or plan.whole_order:
        assert _every_invoiced_unit_refunded(case.facts.magento_order)


@FAST
@given(memo_cases(line_cancels=True))
def test_line_cancels_never_cover_every_live_line(case: MemoCase) -> None:
    """Line cancels: opted in, US/UK, out of stock, distinct live lines, never all."""
    decision = decide_cancel(case.facts, case.settings, case.market)
    if not (
        isinstance(decision, Apply) and isinstance(decision.plan, TikTokCancelPlan)
    ):
        return
    plan = decision.plan
    if plan.whole_order:
        return
    tiktok = case.facts.tiktok_order
    assert tiktok is not None
    live = {line.line_id for line in tiktok.lines if not line.cancelled}
    chosen = set(plan.order_line_item_ids)
    assert case.settings.partial_refunds == "cancel_items"
    assert reasons.normalize_market(case.market) in reasons.PARTIAL_CANCEL_MARKETS
    assert reasons.is_out_of_stock(plan.cancel_reason)
    assert len(chosen) == len(plan.order_line_item_ids)
    assert chosen < live
    order = case.facts.magento_order
    refunded: Counter[str] = Counter()  # units per SKU on the memo's top-level rows
    for row in case.facts.memo.items:
        item = order.item(row.order_item_id)
        if item is not None and item.parent_item_id is None:
            refunded[row.sku] += int(row.qty)
    by_line = {line.line_id: line.seller_sku for line in tiktok.lines}
    assert Counter(by_line[line_id] for line_id in chosen) == refunded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("576461413038785752", True),
        ("5764614130387857521", True),
        ("123-1234567-1234567", False),  # an Amazon order id in the shared column
        ("100000123", False),  # a Magento increment id
        ("", False),
        (None, False),
    ],
)
def test_only_tiktok_shaped_ids_are_taken_for_tiktok_orders(
    value: str | None, expected: bool
) -> None:
    """ext_order_id values other channels wrote are not mistaken for TikTok orders."""
    assert looks_like_tiktok_order_id(value) is expected


# ----------------------------------------------------------------------------- bundles


def _dynamic_bundle_memo(order: MagentoOrder, bundles: int) -> MagentoCreditMemo:
    """A memo refunding ``bundles`` dynamic bundles through their children, with the
    parent row showing its whole invoiced qty, as Magento writes it."""
    parent = order.top_level_items[0]
    rows = [MagentoCreditMemoItem(parent.item_id, parent.sku, parent.qty_invoiced)]
    rows += [
        MagentoCreditMemoItem(c.item_id, c.sku, order.qty_per_parent(c) * bundles)
        for c in order.children_of(parent.item_id)
    ]
    return MagentoCreditMemo(9001, order.magento_entity_id, T0, items=tuple(rows))


def test_partial_refund_of_a_dynamic_bundle_is_not_full() -> None:
    """One of two dynamic bundles refunded is partial, although Magento sets the parent
    row's qty_refunded to its whole invoiced qty."""
    order = make_order(bundle(200, "KIT", 2, dynamic=True, refunded=1))
    assert order.top_level_items[0].qty_refunded == 2  # what misled the old check
    assert not is_full_refund(order)
    memo = _dynamic_bundle_memo(order, 1)
    assert refunded_skus(memo, order) == Counter({"KIT": 1})
    facts = CreditMemoFacts(memo, order, False, make_tiktok_order(order))
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Attention)
    assert decision.code == Code.PARTIAL
    assert "1 x KIT" in decision.reason


def test_full_refund_of_a_dynamic_bundle_cancels_the_order() -> None:
    """Every dynamic bundle refunded through its children is a full refund."""
    order = make_order(bundle(200, "KIT", 2, dynamic=True, refunded=2))
    assert is_full_refund(order)
    memo = _dynamic_bundle_memo(order, 2)
    assert refunded_skus(memo, order) == Counter({"KIT": 2})
    facts = CreditMemoFacts(memo, order, False, make_tiktok_order(order))
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Apply)
    assert isinstance(decision.plan, TikTokCancelPlan)
    assert decision.plan.whole_order


# ----------------------------------------------------------------------------- facts


def test_echo_is_decided_by_the_rule_from_the_fact() -> None:
    """A memo the ledger says we created is an echo, even without a marker comment."""
    order = _full_order()
    facts = _facts(order, {100: 1}, None, created_by_us=True)
    decision = decide_cancel(facts, DEFAULTS, "US")
    assert isinstance(decision, Skip)
    assert decision.code == Code.ECHO


def test_a_link_conflict_needs_attention() -> None:
    """A Magento order paired with another TikTok order goes to a person."""
    decision = linked_elsewhere("Magento order 7 is already linked to TikTok order 1")
    assert decision.code == Code.LINK_CONFLICT
    assert "already linked" in decision.reason


# ----------------------------------------------------------------------------- reasons


RETIRED = TikTokCancelPlan(
    TIKTOK_ORDER_ID, "seller_cancel_paid_reason_address_not_deliver"
)


def test_refused_reason_is_replaced_by_the_same_family_only() -> None:
    """A refused key is replaced by the eligibility's key of the same family."""
    live = [
        "seller_cancel_reason_out_of_stock",
        "seller_cancel_paid_reason_address_not_deliver_v2",
    ]
    decision = reason_after_refusal(
        RETIRED, "refused", live, "address_not_deliver", "US"
    )
    assert isinstance(decision, Apply)
    assert isinstance(decision.plan, TikTokCancelPlan)
    assert decision.plan.cancel_reason.endswith("address_not_deliver_v2")


def test_refused_reason_without_same_family_lists_the_keys() -> None:
    """No key of the configured family: a person chooses; out_of_stock is never picked."""
    live = ["seller_cancel_reason_out_of_stock"]
    decision = reason_after_refusal(
        RETIRED, "refused", live, "address_not_deliver", "US"
    )
    assert isinstance(decision, Attention)
    assert decision.code == Code.REASON
    assert "seller_cancel_reason_out_of_stock" in decision.reason


def test_refused_reason_without_eligibility_lists_the_reference_table() -> None:
    """When eligibility cannot be asked, the reference table's keys are shown."""
    decision = reason_after_refusal(
        RETIRED, "refused", None, "address_not_deliver", "US"
    )
    assert isinstance(decision, Attention)
    assert "seller_cancel_reason_wrong_price" in decision.reason
