"""Direction B rules: a TikTok cancellation → a Magento refund, cancel, or nothing."""

from __future__ import annotations

from decimal import Decimal
from itertools import product

import pytest
from hypothesis import given, settings

from cancelsync.config import CancelToRefundConfig
from cancelsync.models import MagentoOrder, TikTokLine
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    Code,
    Decision,
    Done,
    MagentoCancelPlan,
    RefundPlan,
    Skip,
    marker,
)
from cancelsync.rules.tiktok_to_magento import (
    CancellationFacts,
    LinkFacts,
    LinkStatus,
    amount_mismatch,
    before_magento,
    decide_refund,
    fully_refunded,
    whole_order_cancelled,
)

from .strategies import (
    CANCEL_STATUSES,
    ROLES,
    bundle,
    configurable,
    make_cancellation,
    make_order,
    make_tiktok_order,
    refund_cases,
    simple,
)

CENT = Decimal("0.01")
DEFAULTS = CancelToRefundConfig()
FAST = settings(max_examples=200, deadline=None)

Case = tuple[CancellationFacts, MagentoOrder, CancelToRefundConfig]


def _two_sku_order(**kw: str) -> MagentoOrder:
    """A simple SKU-A x1 at 10.00 and a configurable SKU-B x3 at 20.00, 5.00 shipping."""
    return make_order(
        simple(100, "SKU-A", 1, price="10.00"),
        configurable(110, "SKU-B", 3, price="20.00"),
        **kw,
    )


def _lines(order: MagentoOrder, *line_ids: str) -> tuple[TikTokLine, ...]:
    lines = make_tiktok_order(order).lines
    return tuple(line for line in lines if line.line_id in line_ids)


def _partial(order: MagentoOrder, *line_ids: str, **kw: str) -> CancellationFacts:
    """Facts for a buyer cancellation of some lines; the TikTok order stays open."""
    cancelled = frozenset(line_ids)
    after = make_tiktok_order(order, cancelled=cancelled)
    return CancellationFacts(
        make_cancellation(_lines(order, *line_ids), **kw),
        caused_by_us=False,
        tiktok_order=after,
    )


def _whole(order: MagentoOrder, **kw: str) -> CancellationFacts:
    """Facts for a whole-order cancellation (every line listed, order CANCELLED)."""
    lines = make_tiktok_order(order).lines
    return CancellationFacts(
        make_cancellation(lines, **kw),
        caused_by_us=False,
        tiktok_order=make_tiktok_order(order, "CANCELLED"),
    )


def _plan(decision: Decision) -> RefundPlan:
    assert isinstance(decision, Apply), decision
    assert isinstance(decision.plan, RefundPlan), decision.plan
    return decision.plan


# ----------------------------------------------------------------------------- which count


@pytest.mark.parametrize(
    "status", ["CANCELLATION_REQUEST_SUCCESS", "CANCELLATION_REQUEST_COMPLETE"]
)
def test_accepted_cancellations_are_mirrored(status: str) -> None:
    """SUCCESS and COMPLETE are accepted cancellations and lead to a refund."""
    order = _two_sku_order()
    decision = decide_refund(_whole(order, status=status), order, DEFAULTS)
    assert _plan(decision).whole_order


@pytest.mark.parametrize(
    "status",
    [
        "CANCELLATION_REQUEST_PENDING",
        "CANCELLATION_REQUEST_CANCEL",
        "CANCELLATION_REQUEST_CANCELLED",
        "",
    ],
)
def test_unaccepted_cancellations_are_skipped(status: str) -> None:
    """Pending, withdrawn and unknown statuses are not cancellations to mirror."""
    order = _two_sku_order()
    decision = decide_refund(_whole(order, status=status), order, DEFAULTS)
    assert isinstance(decision, Skip)
    assert "not an accepted cancellation" in decision.reason


@pytest.mark.parametrize("role", ["BUYER", "SYSTEM", "OPERATOR"])
def test_buyer_system_and_operator_count_by_default(role: str) -> None:
    """Buyer, system and platform cancellations are mirrored with default settings."""
    order = _two_sku_order()
    assert isinstance(decide_refund(_whole(order, role=role), order, DEFAULTS), Apply)


def test_seller_cancellation_skipped_by_default() -> None:
    """A Seller Center cancellation is skipped unless include_seller_cancellations is on."""
    order = _two_sku_order()
    facts = _whole(order, role="SELLER", cancel_type="CANCEL")
    decision = decide_refund(facts, order, DEFAULTS)
    assert isinstance(decision, Skip)
    assert "include_seller_cancellations" in decision.reason
    opted_in = CancelToRefundConfig(include_seller_cancellations=True)
    assert isinstance(decide_refund(facts, order, opted_in), Apply)


@pytest.mark.parametrize("role", ["", "ADMIN"])
def test_unknown_role_is_skipped(role: str) -> None:
    """A cancellation by an unknown role is never mirrored."""
    order = _two_sku_order()
    opted_in = CancelToRefundConfig(include_seller_cancellations=True)
    assert isinstance(decide_refund(_whole(order, role=role), order, opted_in), Skip)


def test_own_cancellation_is_never_echoed() -> None:
    """A cancellation cancelsync caused itself is skipped, whatever the settings."""
    order = _two_sku_order()
    facts = CancellationFacts(
        _whole(order).cancellation, caused_by_us=True, tiktok_order=None
    )
    opted_in = CancelToRefundConfig(include_seller_cancellations=True)
    decision = decide_refund(facts, order, opted_in)
    assert isinstance(decision, Skip)
    assert "cancelsync itself" in decision.reason


def test_every_role_status_and_setting_combination_is_gated() -> None:
    """Exhaustively: a write happens iff accepted, counted, and not our own."""
    order = _two_sku_order()
    lines = make_tiktok_order(order).lines
    for role, status, include, ours in product(
        ROLES, CANCEL_STATUSES, (False, True), (False, True)
    ):
        facts = CancellationFacts(
            make_cancellation(lines, role=role, status=status),
            caused_by_us=ours,
            tiktok_order=make_tiktok_order(order, "CANCELLED"),
        )
        cfg = CancelToRefundConfig(include_seller_cancellations=include)
        counted = role in {"BUYER", "SYSTEM", "OPERATOR"} or (
            role == "SELLER" and include
        )
        accepted = status.endswith(("_SUCCESS", "_COMPLETE"))
        decision = decide_refund(facts, order, cfg)
        assert isinstance(decision, Apply) is (counted and accepted and not ours), (
            role,
            status,
            include,
            ours,
            decision,
        )


# ----------------------------------------------------------------------------- Magento state


@pytest.mark.parametrize("state", ["holded", "payment_review"])
def test_blocked_magento_states_need_attention(state: str) -> None:
    """An order on hold or in payment review cannot be refunded: a person must act."""
    order = _two_sku_order(state=state)
    decision = decide_refund(_whole(order), order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "cancelsync retry" in decision.reason


@pytest.mark.parametrize("state", ["canceled", "closed"])
def test_finished_magento_states_are_done(state: str) -> None:
    """A canceled or closed Magento order already reflects the cancellation."""
    order = _two_sku_order(state=state)
    assert isinstance(decide_refund(_whole(order), order, DEFAULTS), Done)


def test_nothing_invoiced_whole_cancellation_cancels_magento_order() -> None:
    """With nothing invoiced, a whole-order cancellation cancels the Magento order."""
    order = make_order(simple(100, "SKU-A", 2, invoiced=0), state="new")
    decision = decide_refund(_whole(order), order, DEFAULTS)
    assert isinstance(decision, Apply)
    plan = decision.plan
    assert isinstance(plan, MagentoCancelPlan)
    assert plan.magento_entity_id == order.magento_entity_id
    assert marker("4035012345678") in plan.comment


def test_nothing_invoiced_partial_cancellation_needs_attention() -> None:
    """orders/{id}/cancel is all or nothing, so a partial cancellation goes to a person."""
    order = make_order(simple(100, "SKU-A", 2, invoiced=0), state="new")
    decision = decide_refund(_partial(order, "L100-0"), order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "nothing invoiced" in decision.reason


def test_partly_invoiced_order_needs_attention() -> None:
    """An order with some units not invoiced is left to a person."""
    order = make_order(
        simple(100, "SKU-A", 1), configurable(110, "SKU-B", 3, invoiced=1)
    )
    decision = decide_refund(_whole(order), order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "partly invoiced (SKU-B)" in decision.reason


def test_fully_refunded_order_is_done() -> None:
    """Every unit and all money refunded already: nothing to write."""
    order = make_order(simple(100, "SKU-A", 2, refunded=2), shipping_refunded="5.00")
    assert fully_refunded(order)
    assert isinstance(decide_refund(_whole(order), order, DEFAULTS), Done)


# ----------------------------------------------------------------------------- refund plans


def test_whole_cancellation_refunds_everything_left_with_shipping() -> None:
    """A whole-order cancellation refunds every refundable unit and the remaining shipping."""
    order = _two_sku_order()
    plan = _plan(decide_refund(_whole(order), order, DEFAULTS))
    assert plan.whole_order
    assert plan.items == ((100, Decimal("1")), (110, Decimal("3")))
    assert plan.shipping_amount is None  # left out: Magento refunds what is left
    assert plan.expected_amount == Decimal("75.00")
    assert plan.return_to_stock_items == (100, 111, 110)
    assert marker("4035012345678") in plan.comment


def test_whole_cancellation_skips_rows_the_merchant_already_refunded() -> None:
    """Rows already refunded in Magento are left out; partly refunded rows give the rest."""
    order = make_order(
        simple(100, "SKU-A", 1, refunded=1), configurable(110, "SKU-B", 3, refunded=1)
    )
    plan = _plan(decide_refund(_whole(order), order, DEFAULTS))
    assert plan.items == ((110, Decimal("2")),)


def test_cancellation_without_lines_is_whole_order() -> None:
    """A cancellation that lists no lines is a whole-order cancellation."""
    order = _two_sku_order()
    facts = CancellationFacts(
        make_cancellation(), caused_by_us=False, tiktok_order=None
    )
    assert whole_order_cancelled(facts)
    assert _plan(decide_refund(facts, order, DEFAULTS)).whole_order


def test_last_lines_cancelled_make_the_refund_whole() -> None:
    """Cancelling the last live lines (earlier ones already gone) refunds as a whole order."""
    order = _two_sku_order()
    facts = CancellationFacts(
        make_cancellation(_lines(order, "L110-2")),
        caused_by_us=False,
        tiktok_order=make_tiktok_order(order, "CANCELLED"),
    )
    plan = _plan(decide_refund(facts, order, DEFAULTS))
    assert plan.whole_order
    assert plan.shipping_amount is None


def test_partial_cancellation_refunds_grouped_units_on_the_parent_row() -> None:
    """Two TikTok lines of a configurable SKU become qty 2 on its parent row, shipping 0."""
    order = _two_sku_order()
    plan = _plan(decide_refund(_partial(order, "L110-0", "L110-2"), order, DEFAULTS))
    assert not plan.whole_order
    assert plan.items == ((110, Decimal("2")),)
    assert plan.shipping_amount == 0
    assert plan.expected_amount == Decimal("40.00")
    assert set(plan.return_to_stock_items) == {110, 111}


def test_partial_without_tiktok_order_detail_stays_partial() -> None:
    """Lines listed but no order detail: treated as partial, never as a whole order."""
    order = _two_sku_order()
    facts = CancellationFacts(
        make_cancellation(_lines(order, "L100-0")),
        caused_by_us=False,
        tiktok_order=None,
    )
    plan = _plan(decide_refund(facts, order, DEFAULTS))
    assert plan.items == ((100, Decimal("1")),)
    assert plan.shipping_amount == 0


def test_restock_off_lists_nothing_to_return() -> None:
    """With restock = false the plan returns nothing to stock."""
    order = _two_sku_order()
    no_restock = CancelToRefundConfig(restock=False)
    plan = _plan(decide_refund(_whole(order), order, no_restock))
    assert plan.return_to_stock_items == ()


def test_sku_missing_from_magento_order_needs_attention() -> None:
    """A cancelled TikTok SKU with no Magento row is reported, not guessed."""
    order = _two_sku_order()
    other = make_order(simple(100, "SKU-Z", 1))
    facts = CancellationFacts(
        make_cancellation(_lines(other, "L100-0")),
        caused_by_us=False,
        tiktok_order=None,
    )
    decision = decide_refund(facts, order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "'SKU-Z' is not on Magento order" in decision.reason


def test_more_units_cancelled_than_left_to_refund_needs_attention() -> None:
    """Cancelling more units than Magento can still refund is reported (without the
    TikTok order's detail, which would tell the refunded units were these)."""
    order = make_order(
        simple(100, "SKU-A", 1), configurable(110, "SKU-B", 3, refunded=2)
    )
    facts = CancellationFacts(
        make_cancellation(_lines(order, "L110-0", "L110-1")), caused_by_us=False
    )
    decision = decide_refund(facts, order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "only 1 left to refund" in decision.reason


def test_cancelled_lines_already_refunded_are_done() -> None:
    """Lines the merchant already refunded in Magento need no new credit memo."""
    order = make_order(
        simple(100, "SKU-A", 1, refunded=1), configurable(110, "SKU-B", 3)
    )
    decision = decide_refund(_partial(order, "L100-0"), order, DEFAULTS)
    assert isinstance(decision, Done)


def test_refund_beyond_what_was_paid_needs_attention() -> None:
    """A plan worth more than total_paid - total_refunded (+1 cent) is never made."""
    order = _two_sku_order(discount="30.00")
    decision = decide_refund(_whole(order), order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "would exceed" in decision.reason


def test_one_cent_of_rounding_is_tolerated() -> None:
    """A plan one cent over what is left (rounding) is still applied."""
    order = _two_sku_order(discount="0.01")
    plan = _plan(decide_refund(_whole(order), order, DEFAULTS))
    assert plan.expected_amount == order.total_paid + CENT


def test_whole_cancellation_counts_the_shipping_tax_left() -> None:
    """The expected amount of a whole refund includes the shipping tax not yet refunded."""
    order = make_order(simple(100, "SKU-A", 2), shipping="12.50", shipping_tax="2.50")
    plan = _plan(decide_refund(_whole(order), order, DEFAULTS))
    assert plan.shipping_amount is None
    assert plan.expected_amount == Decimal("35.00")  # 20 + 12.50 + 2.50


def test_whole_cancellation_beyond_what_is_left_counts_shipping_tax() -> None:
    """Shipping tax counts against what is left to refund, so the check stays right."""
    order = make_order(
        simple(100, "SKU-A", 2), shipping="12.50", shipping_tax="2.50", discount="2.50"
    )
    decision = decide_refund(_whole(order), order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "refund of 35.00 would exceed the 32.50 left" in decision.reason


def test_whole_cancellation_with_only_shipping_left_needs_attention() -> None:
    """Items already refunded but shipping left: never an item-less credit memo."""
    order = make_order(simple(100, "SKU-A", 2, refunded=2))
    decision = decide_refund(_whole(order), order, DEFAULTS)
    assert isinstance(decision, Attention)
    assert "shipping" in decision.reason


def test_whole_cancellation_with_only_an_adjustment_left_is_done() -> None:
    """Items and shipping refunded, money left over (adjustment): nothing to refund."""
    order = make_order(simple(100, "SKU-A", 2, refunded=2), shipping="0", discount="-3")
    assert not fully_refunded(order)
    assert isinstance(decide_refund(_whole(order), order, DEFAULTS), Done)


@pytest.mark.parametrize(
    ("expected", "tiktok", "mismatch"),
    [
        ("10.00", None, False),
        ("10.00", "10.01", False),
        ("10.00", "10.02", True),
        ("10.00", "9.98", True),
    ],
)
def test_amount_mismatch_tolerates_one_cent(
    expected: str, tiktok: str | None, mismatch: bool
) -> None:
    """TikTok's refund total and Magento's amount may differ by a cent, not more."""
    other = Decimal(tiktok) if tiktok is not None else None
    assert amount_mismatch(Decimal(expected), other) is mismatch


# ----------------------------------------------------------------------------- properties


@FAST
@given(refund_cases())
def test_decisions_are_repeatable_and_gated(case: Case) -> None:
    """Same answer twice; writes only for counted cancellations on a refundable order."""
    facts, order, cfg = case
    decision = decide_refund(facts, order, cfg)
    assert decide_refund(facts, order, cfg) == decision
    if not isinstance(decision, Apply):
        return
    c = facts.cancellation
    assert not facts.caused_by_us
    assert c.accepted
    assert c.role in {"BUYER", "SYSTEM", "OPERATOR"} or (
        c.role == "SELLER" and cfg.include_seller_cancellations
    )
    assert order.state not in {"holded", "payment_review", "canceled", "closed"}
    if isinstance(decision.plan, MagentoCancelPlan):
        assert all(it.qty_invoiced == 0 for it in order.items)
        assert whole_order_cancelled(facts)


@FAST
@given(refund_cases(refundable=True))
def test_refund_plans_stay_within_what_magento_can_refund(case: Case) -> None:
    """Never over paid - refunded (+1 cent) or a row's refundable qty; shipping only whole.

    A whole-order plan leaves shipping out (Magento refunds what is left, tax
    included) and counts that in its amount; a partial one sends 0.
    """
    facts, order, cfg = case
    decision = decide_refund(facts, order, cfg)
    if not (isinstance(decision, Apply) and isinstance(decision.plan, RefundPlan)):
        return
    plan = decision.plan
    assert plan.items, "an item-less memo would refund everything (or nothing)"
    assert len({item_id for item_id, _ in plan.items}) == len(plan.items)
    assert plan.whole_order == whole_order_cancelled(facts)
    if plan.whole_order:
        assert plan.shipping_amount is None  # Magento refunds what is left, with tax
        amount = order.shipping_left
    else:
        assert plan.shipping_amount == 0
        amount = Decimal("0")
    for item_id, qty in plan.items:
        row = order.item(item_id)
        assert row is not None
        # qty goes on the row that holds it: a dynamic bundle's children, else the top
        assert row in order.refund_rows
        assert 0 < qty <= row.refundable_qty
        parent = order.item(row.parent_item_id) if row.parent_item_id else None
        if not plan.whole_order:  # one TikTok line per unit, grouped by SKU
            sku = parent.sku if parent else row.sku
            units = [ln for ln in facts.cancellation.lines if ln.seller_sku == sku]
            per = order.qty_per_parent(row) if parent else 1
            assert qty <= per * len(units)
            # Magento's refunded units of the SKU never pass TikTok's cancelled ones.
            top = parent or row
            left = order.bundles_left(top) if parent else top.refundable_qty
            refunded_before = top.qty_invoiced - left
            tiktok_order = facts.tiktok_order
            if (
                tiktok_order is not None
            ):  # without the detail, TikTok's count is unknown
                cancelled = sum(
                    1 for ln in tiktok_order.lines
                    if ln.cancelled and ln.seller_sku == sku
                )  # fmt: skip
                assert refunded_before + qty / per <= max(cancelled, len(units))
        amount += row.price * qty
    assert amount == plan.expected_amount
    assert amount <= order.total_paid - order.total_refunded + CENT


@FAST
@given(refund_cases(refundable=True))
def test_restock_lists_children_and_parents_only_when_on(case: Case) -> None:
    """restock=false lists no ids; restock=true lists each refunded row, its children
    and (a dynamic bundle's child) its parent."""
    facts, order, cfg = case
    decision = decide_refund(facts, order, cfg)
    if not (isinstance(decision, Apply) and isinstance(decision.plan, RefundPlan)):
        return
    stock = set(decision.plan.return_to_stock_items)
    refunded = {item_id for item_id, _ in decision.plan.items}
    if not cfg.restock:
        assert not stock
        return
    expected = refunded | {
        child.item_id for item_id in refunded for child in order.children_of(item_id)
    }
    for item_id in refunded:
        row = order.item(item_id)
        if row is not None and row.parent_item_id is not None:
            expected.add(row.parent_item_id)
    assert stock == expected


def test_expected_amount_uses_row_total_with_tax_and_discount() -> None:
    """Magento's own per-unit value (row total + tax - discount) prices a partial refund."""
    from dataclasses import replace

    order = _two_sku_order()
    taxed = tuple(
        replace(it, row_total=Decimal("60.00"), tax_amount=Decimal("6.00"),
                discount_amount=Decimal("-12.00"))
        if it.sku == "SKU-B" and it.parent_item_id is None else it
        for it in order.items
    )  # fmt: skip
    order = replace(order, items=taxed)
    line_ids = [line.line_id for line in make_tiktok_order(order).lines
                if line.seller_sku == "SKU-B"][:1]  # fmt: skip

    plan = _plan(decide_refund(_partial(order, *line_ids), order, DEFAULTS))

    assert plan.expected_amount == Decimal("18.00")  # (60 + 6 - 12) / 3


# ----------------------------------------------------------------------------- bundles


def _kit_order(*, dynamic: bool, qty: int = 2, refunded: int = 0) -> MagentoOrder:
    """``qty`` x KIT (ids 100-102: 1 x KIT-A 10.00 + 2 x KIT-B 5.00), 5.00 shipping."""
    return make_order(bundle(100, "KIT", qty, dynamic=dynamic, refunded=refunded))


def test_fixed_bundle_is_refunded_on_its_parent_row() -> None:
    """A fixed-price bundle is listed by its parent; its children are restocked too."""
    order = _kit_order(dynamic=False)
    assert not order.priced_by_children(order.top_level_items[0])
    whole = _plan(decide_refund(_whole(order), order, DEFAULTS))
    assert whole.items == ((100, Decimal("2")),)
    assert whole.expected_amount == Decimal("45.00")
    assert whole.return_to_stock_items == (101, 102, 100)
    partial = _plan(decide_refund(_partial(order, "L100-1"), order, DEFAULTS))
    assert partial.items == ((100, Decimal("1")),)
    assert partial.expected_amount == Decimal("20.00")


def test_dynamic_bundle_is_refunded_through_its_children() -> None:
    """A dynamic-price bundle lists each child at its qty; the parent is restock-only."""
    order = _kit_order(dynamic=True)
    assert order.priced_by_children(order.top_level_items[0])
    whole = _plan(decide_refund(_whole(order), order, DEFAULTS))
    assert whole.items == ((101, Decimal("2")), (102, Decimal("4")))
    assert whole.shipping_amount is None
    assert whole.expected_amount == Decimal("45.00")
    assert whole.return_to_stock_items == (101, 100, 102)


def test_one_dynamic_bundle_cancelled_lists_each_child_per_bundle() -> None:
    """One bundle cancelled: child qty per bundle x bundles cancelled, shipping 0."""
    order = _kit_order(dynamic=True)
    plan = _plan(decide_refund(_partial(order, "L100-0"), order, DEFAULTS))
    assert plan.items == ((101, Decimal("1")), (102, Decimal("2")))
    assert plan.shipping_amount == 0
    assert plan.expected_amount == Decimal("20.00")


def test_dynamic_bundle_left_is_counted_on_its_children() -> None:
    """After bundles were refunded the parent reads fully refunded; children tell."""
    order = _kit_order(dynamic=True, qty=3, refunded=2)
    parent = order.top_level_items[0]
    assert parent.qty_refunded == parent.qty_invoiced  # how Magento books it
    assert order.bundles_left(parent) == 1
    assert not fully_refunded(order)
    whole = _plan(decide_refund(_whole(order), order, DEFAULTS))
    assert whole.items == ((101, Decimal("1")), (102, Decimal("2")))
    # The 2 refunded kits stand for 2 of the 3 kits TikTok shows cancelled: 1 is left,
    # counted on the children, and only that one is refunded.
    facts = CancellationFacts(
        make_cancellation(_lines(order, "L100-0", "L100-1")), caused_by_us=False,
        tiktok_order=make_tiktok_order(
            order, cancelled=frozenset({"L100-0", "L100-1", "L100-2"})
        ),
    )  # fmt: skip
    partial = _plan(decide_refund(facts, order, DEFAULTS))
    assert partial.items == ((101, Decimal("1")), (102, Decimal("2")))
    # TikTok shows only these 2 cancelled: Magento's 2 refunded kits already match.
    done = decide_refund(_partial(order, "L100-0", "L100-1"), order, DEFAULTS)
    assert isinstance(done, Done)
    assert "already refunded" in done.reason


def test_fully_refunded_dynamic_bundle_is_done() -> None:
    """Every child refunded (and shipping): nothing left, whatever the parent row says."""
    order = make_order(
        bundle(100, "KIT", 2, dynamic=True, refunded=2), shipping_refunded="5.00"
    )
    assert fully_refunded(order)
    assert isinstance(decide_refund(_whole(order), order, DEFAULTS), Done)


# ----------------------------------------------------------------------------- links


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (LinkStatus.NOT_IMPORTED, Skip, Code.NOT_IMPORTED),
        (LinkStatus.AMBIGUOUS, Attention, Code.AMBIGUOUS_LINK),
        (LinkStatus.CONFLICT, Attention, Code.LINK_CONFLICT),
        (LinkStatus.GONE, Attention, Code.ORDER_GONE),
    ],
)
def test_link_status_decides_before_magento_is_read(
    status: LinkStatus, kind: type, code: Code
) -> None:
    """Without a single linked order the rules decide from the link facts alone:
    never imported is skipped (and counted), anything that could refund the wrong
    order needs a person."""
    order = make_order(simple(100, "SKU-A", 1))
    decision = before_magento(_whole(order), LinkFacts(status, "detail"), DEFAULTS)
    assert isinstance(decision, kind)
    assert decision.code == code


def test_linked_order_goes_on_to_the_magento_rules() -> None:
    """A linked order is not decided before its Magento order is read."""
    order = make_order(simple(100, "SKU-A", 1))
    assert before_magento(_whole(order), LinkFacts.linked(), DEFAULTS) is None


def test_echo_wins_over_a_missing_link() -> None:
    """Our own cancel is an echo whatever the Magento side looks like."""
    order = make_order(simple(100, "SKU-A", 1))
    facts = CancellationFacts(_whole(order).cancellation, True, None)
    decision = before_magento(
        facts, LinkFacts(LinkStatus.NOT_IMPORTED), CancelToRefundConfig()
    )
    assert isinstance(decision, Skip)
    assert decision.code == Code.ECHO


def test_a_memo_carrying_the_marker_is_done_whatever_is_left() -> None:
    """A credit memo with this cancellation's marker proves the refund, even where
    Magento would accept the same partial refund again."""
    order = make_order(simple(100, "SKU-A", 3, refunded=1))
    # TikTok shows 2 units cancelled (an earlier one refunded already, and this one).
    facts = CancellationFacts(
        make_cancellation(_lines(order, "L100-0")), caused_by_us=False,
        tiktok_order=make_tiktok_order(order, cancelled=frozenset({"L100-0", "L100-1"})),
    )  # fmt: skip
    marked = CancellationFacts(
        facts.cancellation, False, facts.tiktok_order, recorded_by_memo=77
    )
    assert isinstance(decide_refund(facts, order, DEFAULTS), Apply)
    decision = decide_refund(marked, order, DEFAULTS)
    assert isinstance(decision, Done)
    assert "credit memo 77" in decision.reason
