"""Hold rules: what a pending buyer request does to the linked Magento order."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from cancelsync.models import MagentoOrder
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    Code,
    Done,
    HoldPlan,
    ReleasePlan,
    Skip,
    hold_marker,
    release_marker,
)
from cancelsync.rules.holds import (
    carries_our_hold,
    decide_carry_over,
    decide_hold,
    decide_release,
    is_buyer_request,
)

from .strategies import make_cancellation, make_order, simple

PENDING = "CANCELLATION_REQUEST_PENDING"
REQUEST = make_cancellation(status=PENDING, cancel_id="C1")


def _order(state: str = "processing", comments: tuple[str, ...] = ()) -> MagentoOrder:
    return replace(make_order(simple(1, "TEE", 2), state=state), comments=comments)


def test_only_a_pending_buyer_request_is_one_to_hold() -> None:
    assert is_buyer_request(REQUEST)
    assert not is_buyer_request(replace(REQUEST, cancel_type="CANCEL"))
    assert not is_buyer_request(
        replace(REQUEST, cancel_status="CANCELLATION_REQUEST_COMPLETE")
    )


def test_a_processing_order_is_held_with_the_marker_in_its_comment() -> None:
    decision = decide_hold(REQUEST, _order())

    assert isinstance(decision, Apply)
    plan = decision.plan
    assert isinstance(plan, HoldPlan)
    assert plan.tiktok_cancel_id == "C1"
    assert plan.comment.startswith(hold_marker("C1"))
    assert "do not ship" in plan.comment


def test_an_order_carrying_our_hold_is_done_not_held_again() -> None:
    order = _order("holded", (f"{hold_marker('C1')} On hold",))

    decision = decide_hold(REQUEST, order)

    assert isinstance(decision, Done)
    assert decision.code is Code.HELD
    assert carries_our_hold(order, "C1")


@pytest.mark.parametrize(
    "comments", [(), (f"{hold_marker('OTHER')} On hold",), ("merchant: fraud check",)]
)
def test_someone_elses_hold_is_left_alone(comments: tuple[str, ...]) -> None:
    decision = decide_hold(REQUEST, _order("holded", comments))

    assert isinstance(decision, Skip)
    assert decision.code is Code.NOT_OUR_HOLD


def test_a_shipped_order_is_not_held_and_needs_attention() -> None:
    order = _order()
    shipped = replace(
        order, items=tuple(replace(it, qty_shipped=Decimal(1)) for it in order.items)
    )

    for candidate in (shipped, _order("complete")):
        decision = decide_hold(REQUEST, candidate)
        assert isinstance(decision, Attention)
        assert decision.code is Code.SHIPPED
        assert "shipped" in decision.reason


@pytest.mark.parametrize("state", ["canceled", "closed"])
def test_a_finished_order_is_skipped(state: str) -> None:
    assert isinstance(decide_hold(REQUEST, _order(state)), Skip)


def test_payment_review_cannot_be_held_and_says_so() -> None:
    decision = decide_hold(REQUEST, _order("payment_review"))

    assert isinstance(decision, Attention)
    assert decision.code is Code.BLOCKED


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("CANCELLATION_REQUEST_CANCEL", "rejected or withdrawn"),
        ("CANCELLATION_REQUEST_SUCCESS", "accepted"),
    ],
)
def test_release_of_a_held_order_says_how_the_request_ended(
    status: str, words: str
) -> None:
    answered = replace(REQUEST, cancel_status=status)

    decision = decide_release(answered, _order("holded"), held_for="C1")

    assert isinstance(decision, Apply)
    assert isinstance(decision.plan, ReleasePlan)
    assert decision.plan.comment.startswith(release_marker("C1"))
    assert words in decision.plan.comment


def test_release_of_an_order_no_longer_held_is_done() -> None:
    answered = replace(REQUEST, cancel_status="CANCELLATION_REQUEST_CANCEL")

    decision = decide_release(answered, _order("processing"), held_for="C1")

    assert isinstance(decision, Done)
    assert "no longer on hold" in decision.reason


def test_a_carried_over_hold_posts_only_this_requests_marker() -> None:
    decision = decide_carry_over(REQUEST, _order("holded"), earlier="C0")

    assert isinstance(decision, Apply)
    plan = decision.plan
    assert isinstance(plan, HoldPlan)
    assert (plan.tiktok_cancel_id, plan.carry_over_from) == ("C1", "C0")
    assert plan.comment.startswith(hold_marker("C1"))
    assert "request C0 carries over" in plan.comment
