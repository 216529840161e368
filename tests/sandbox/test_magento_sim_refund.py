"""Refund rules of the Magento simulator (``POST order/{id}/refund``), reference §5."""

from __future__ import annotations

from typing import Any

import pytest

from cancelsync.sandbox.magento import MagentoError, MagentoSimulator

try:
    from test_magento_sim_support import (
        call,
        configurable_order,
        item_ids,
        new_sim,
        simple_order,
    )
except ImportError:  # pragma: no cover - when tests/ becomes a package
    from .test_magento_sim_support import (
        call,
        configurable_order,
        item_ids,
        new_sim,
        simple_order,
    )

PREFIX = "Creditmemo Document Validation Error(s):\n"
TYPE_ERROR = (
    'The "%value" value\'s type is invalid. The "%type" type was expected.'
    " Verify and try again."
)


@pytest.fixture
def sim() -> MagentoSimulator:
    return new_sim()


def refund(sim: MagentoSimulator, order_id: int, body: Any = None) -> tuple[int, Any]:
    return call(sim, "POST", f"/rest/default/V1/order/{order_id}/refund", body or {})


def lines(body: dict[str, Any]) -> list[str]:
    """The validation lines of a joined 400 (which carries no parameters)."""
    assert "parameters" not in body
    message: str = body["message"]
    assert message.startswith(PREFIX), message
    return message[len(PREFIX) :].split("\n")


def test_full_refund_closes_the_order_and_returns_a_bare_id(
    sim: MagentoSimulator,
) -> None:
    """An empty body refunds every item and all shipping; the reply is the memo id."""
    order_id = simple_order(sim)
    status, memo_id = refund(sim, order_id)
    assert (status, memo_id) == (200, 1)
    assert isinstance(memo_id, int)
    order = sim.order(order_id)
    assert (order["state"], order["status"]) == ("closed", "closed")
    assert order["total_refunded"] == order["total_offline_refunded"] == 50.5
    assert order["shipping_refunded"] == 5
    assert [(i["qty_refunded"], i["amount_refunded"]) for i in order["items"]] == [
        (2, 20),
        (1, 25.5),
    ]
    assert order["status_histories"][0]["comment"] == "We refunded $50.50 offline."
    status, memo = call(sim, "GET", f"/rest/V1/creditmemo/{memo_id}")
    assert status == 200
    assert memo["order_id"] == order_id
    assert memo["increment_id"] == "000000001"
    assert (memo["state"], memo["invoice_id"], memo["extension_attributes"]) == (
        2,
        None,
        [],
    )
    assert (memo["subtotal"], memo["shipping_amount"], memo["grand_total"]) == (
        45.5,
        5,
        50.5,
    )
    assert [
        (i["order_item_id"], i["sku"], i["qty"], i["parent_id"]) for i in memo["items"]
    ] == [
        (1, "A", 2, memo_id),
        (2, "B", 1, memo_id),
    ]


def test_repeated_full_refund_fails(sim: MagentoSimulator) -> None:
    """Refunding a closed order again is one 400 listing every failed check."""
    order_id = simple_order(sim)
    refund(sim, order_id)
    status, body = refund(sim, order_id)
    assert status == 400
    assert lines(body) == [
        "A creditmemo can not be created when an order has a status of closed",
        "The credit memo's total must be positive.",
    ]


def test_repeated_partial_refund_succeeds_until_qty_runs_out(
    sim: MagentoSimulator,
) -> None:
    """A partial refund repeats fine (double-refund) until the item's qty is gone."""
    order_id = simple_order(sim)
    body = {
        "items": [{"order_item_id": 1, "qty": 1}],
        "arguments": {"shipping_amount": 0},
    }
    assert refund(sim, order_id, body) == (200, 1)
    assert refund(sim, order_id, body) == (200, 2)
    order = sim.order(order_id)
    assert (order["state"], order["total_refunded"]) == ("processing", 20)
    assert order["items"][0]["qty_refunded"] == 2
    status, error = refund(sim, order_id, body)
    assert status == 400
    assert error == {
        "message": 'We found an invalid quantity to refund item "%1".',
        "parameters": ["Alpha"],
    }


def test_items_refunded_with_shipping_kept_is_complete(sim: MagentoSimulator) -> None:
    """All items refunded with shipping_amount 0 is complete; shipping can follow."""
    order_id = simple_order(sim)
    assert refund(sim, order_id, {"arguments": {"shipping_amount": 0}}) == (200, 1)
    assert sim.order(order_id)["state"] == "complete"
    assert refund(sim, order_id) == (200, 2)
    memo = sim.credit_memos(order_id)[-1]
    assert (memo["items"], memo["grand_total"]) == ([], 5)
    assert sim.order(order_id)["state"] == "closed"


def test_omitted_shipping_refunds_all_remaining_shipping(sim: MagentoSimulator) -> None:
    """Leaving arguments.shipping_amount out refunds the remaining shipping too."""
    order_id = simple_order(sim)
    refund(sim, order_id, {"items": [{"order_item_id": 1, "qty": 1}]})
    memo = sim.credit_memos(order_id)[0]
    assert (memo["subtotal"], memo["shipping_amount"], memo["grand_total"]) == (
        10,
        5,
        15,
    )


def test_explicit_shipping_and_its_ceiling(sim: MagentoSimulator) -> None:
    """Partial shipping is honoured; more than what is left is refused up front."""
    order_id = simple_order(sim)
    partial = {
        "items": [{"order_item_id": 2, "qty": 1}],
        "arguments": {"shipping_amount": 2.5},
    }
    assert refund(sim, order_id, partial)[0] == 200
    assert sim.credit_memos(order_id)[0]["shipping_amount"] == 2.5
    status, body = refund(sim, order_id, {"arguments": {"shipping_amount": 3}})
    assert status == 400
    assert body == {
        "message": "Maximum shipping amount allowed to refund is: %1",
        "parameters": ["$2.50"],
    }


def test_money_ceiling(sim: MagentoSimulator) -> None:
    """A memo above the money left names the amount available (a raw number)."""
    order_id = simple_order(sim)
    refund(
        sim,
        order_id,
        {
            "items": [{"order_item_id": 1, "qty": 1}],
            "arguments": {"shipping_amount": 0},
        },
    )
    status, body = refund(sim, order_id, {"arguments": {"adjustment_positive": 100}})
    assert status == 400
    assert lines(body) == ["The most money available to refund is 40.5."]


def test_adjustments_change_the_memo_total(sim: MagentoSimulator) -> None:
    """adjustment_positive/negative are added to / taken from the memo grand total."""
    order_id = simple_order(sim)
    body = {"arguments": {"adjustment_negative": 5.5, "adjustment_positive": 0}}
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert (memo["grand_total"], memo["adjustment_negative"], memo["adjustment"]) == (
        45,
        5.5,
        -5.5,
    )


def test_unknown_order_is_404(sim: MagentoSimulator) -> None:
    """Refunding a missing order id is the no-such-entity 404."""
    assert refund(sim, 42) == (
        404,
        {
            "message": "The entity that was requested doesn't exist."
            " Verify the entity and try again."
        },
    )


@pytest.mark.parametrize("foreign", [False, True])
def test_item_not_on_the_order(sim: MagentoSimulator, foreign: bool) -> None:
    """An order_item_id that is unknown or belongs to another order is reported."""
    order_id = simple_order(sim)
    other = simple_order(sim, "576999")
    item_id = item_ids(sim, other)["A"] if foreign else 999
    status, body = refund(
        sim, order_id, {"items": [{"order_item_id": item_id, "qty": 1}]}
    )
    assert status == 400
    assert lines(body) == [
        "The creditmemo contains product item that is not part of the original order."
    ]


def test_fractional_qty_over_the_ceiling_hits_both_qty_validators(
    sim: MagentoSimulator,
) -> None:
    """2.5 of 2 passes the integer cast but fails the memo and item qty checks."""
    order_id = simple_order(sim)
    status, body = refund(sim, order_id, {"items": [{"order_item_id": 1, "qty": 2.5}]})
    assert status == 400
    assert lines(body) == [
        "The quantity to creditmemo must not be greater than the unrefunded quantity"
        ' for product SKU "A".',
        "The quantity to refund must not be greater than the unrefunded quantity.",
    ]


def test_configurable_parent_refund_carries_the_child(sim: MagentoSimulator) -> None:
    """Listing the configurable parent refunds it and its child row follows."""
    order_id = configurable_order(sim)
    ids = item_ids(sim, order_id)
    body = {
        "items": [{"order_item_id": ids["TEE-RED-M:parent"], "qty": 1}],
        "arguments": {"shipping_amount": 0},
    }
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert [
        (i["order_item_id"], i["qty"], i.get("row_total")) for i in memo["items"]
    ] == [
        (ids["TEE-RED-M:parent"], 1, 20),
        (ids["TEE-RED-M:child"], 1, None),
    ]
    assert memo["grand_total"] == 20
    items = {i["item_id"]: i for i in sim.order(order_id)["items"]}
    assert items[ids["TEE-RED-M:parent"]]["qty_refunded"] == 1
    assert items[ids["TEE-RED-M:child"]]["qty_refunded"] == 1
    assert (
        items[ids["TEE-RED-M:child"]]["parent_item"]["item_id"]
        == ids["TEE-RED-M:parent"]
    )


def test_child_only_refund_becomes_shipping_only_memo(sim: MagentoSimulator) -> None:
    """A child-only list refunds no product: with shipping left, a shipping memo."""
    order_id = configurable_order(sim)
    child = item_ids(sim, order_id)["TEE-RED-M:child"]
    assert (
        refund(sim, order_id, {"items": [{"order_item_id": child, "qty": 1}]})[0] == 200
    )
    memo = sim.credit_memos(order_id)[0]
    assert (memo["items"], memo["grand_total"]) == ([], 5)
    assert all(i["qty_refunded"] == 0 for i in sim.order(order_id)["items"])


def test_child_only_refund_without_shipping_left_is_refused(
    sim: MagentoSimulator,
) -> None:
    """With no shipping to refund a child-only list is a memo without products."""
    order_id = configurable_order(sim, shipping=0)
    child = item_ids(sim, order_id)["TEE-RED-M:child"]
    body: dict[str, Any] = {"items": [{"order_item_id": child, "qty": 1}]}
    status, error = refund(sim, order_id, body)
    assert status == 400
    assert lines(error) == ["The credit memo's total must be positive."]
    body["arguments"] = {"adjustment_positive": 1}
    status, error = refund(sim, order_id, body)
    assert lines(error) == ["You can't create a creditmemo without products."]


def test_return_to_stock_ids_are_validated(sim: MagentoSimulator) -> None:
    """return_to_stock_items must be order items that are on this memo."""
    order_id = configurable_order(sim)
    ids = item_ids(sim, order_id)
    only_s = [{"order_item_id": ids["S"], "qty": 1}]
    status, body = refund(
        sim,
        order_id,
        {
            "items": only_s,
            "arguments": {"extension_attributes": {"return_to_stock_items": [9999]}},
        },
    )
    assert status == 400
    assert lines(body) == [
        "The return to stock argument contains product item that is not part of the"
        " original order."
    ]
    child = ids["TEE-RED-M:child"]
    status, body = refund(
        sim,
        order_id,
        {
            "items": only_s,
            "arguments": {"extension_attributes": {"return_to_stock_items": [child]}},
        },
    )
    assert lines(body) == [
        'The "TEE-RED-M" product is not part of the current creditmemo.'
    ]


@pytest.mark.parametrize(
    ("setup", "status_code"),
    [("hold_order", "holded"), ("set_payment_review", "payment_review")],
)
def test_blocked_states(sim: MagentoSimulator, setup: str, status_code: str) -> None:
    """Holded and payment_review orders cannot be refunded (status code in the line)."""
    order_id = simple_order(sim)
    getattr(sim, setup)(order_id)
    status, body = refund(sim, order_id)
    assert status == 400
    assert lines(body)[0] == (
        f"A creditmemo can not be created when an order has a status of {status_code}"
    )


def test_unpaid_order_does_not_allow_a_creditmemo(sim: MagentoSimulator) -> None:
    """Without a paid invoice there is nothing to refund (and no money available)."""
    order_id = sim.import_tiktok_order(
        "u1", [{"sku": "A", "qty": 1, "price": 10}], shipping_amount=5, invoiced=False
    )
    status, body = refund(sim, order_id)
    assert status == 400
    assert lines(body) == [
        "The order does not allow a creditmemo to be created.",
        "The most money available to refund is 0.",
    ]


def test_comment_goes_on_the_memo(sim: MagentoSimulator) -> None:
    """comment.comment becomes a memo comment, listed by creditmemo/{id}/comments."""
    order_id = simple_order(sim)
    body = {
        "notify": False,
        "appendComment": False,
        "comment": {
            "comment": "cancelsync: TikTok order 576001 cancelled",
            "is_visible_on_front": 0,
        },
    }
    _, memo_id = refund(sim, order_id, body)
    memo = sim.credit_memos(order_id)[0]
    assert memo["comments"][0]["comment"] == "cancelsync: TikTok order 576001 cancelled"
    status, listed = call(sim, "GET", f"/rest/V1/creditmemo/{memo_id}/comments")
    assert status == 200
    assert [c["parent_id"] for c in listed["items"]] == [memo_id]


@pytest.mark.parametrize(
    ("path", "raw", "headers", "expected"),
    [
        ("/rest/V1/order/1/refund", b"{not json", None, {"message": "Decoding error."}),
        (
            "/rest/V1/order/1/refund",
            b'{"items": [{"order_item_id": 1, "qty": "abc"}]}',
            None,
            {
                "message": TYPE_ERROR,
                "parameters": {"value": "abc", "type": "float"},
            },
        ),
        (
            "/rest/V1/order/abc/refund",
            b"{}",
            None,
            {
                "message": TYPE_ERROR,
                "parameters": {"value": "abc", "type": "int"},
            },
        ),
        (
            "/rest/V1/order/1/refund",
            b"items=1",
            {"content-type": "application/x-www-form-urlencoded"},
            {
                "message": (
                    "Server cannot understand Content-Type HTTP header media type %1"
                ),
                "parameters": ["application/x-www-form-urlencoded"],
            },
        ),
    ],
)
def test_bad_input_gets_the_400_envelope(
    sim: MagentoSimulator,
    path: str,
    raw: bytes,
    headers: dict[str, str] | None,
    expected: dict[str, Any],
) -> None:
    """Invalid JSON, wrong types and unknown content types are 400s, never a crash."""
    simple_order(sim)
    assert call(sim, "POST", path, raw=raw, headers=headers) == (400, expected)
    assert sim.last_internal_error is None
    assert sim.credit_memos() == []


def test_scenario_refund_by_sku_uses_the_same_rules(sim: MagentoSimulator) -> None:
    """create_credit_memo maps SKUs to rows and raises the API's error on failure."""
    order_id = configurable_order(sim)
    memo_id = sim.create_credit_memo(order_id, {"TEE-RED-M": 2}, shipping_amount=0)
    assert sim.credit_memos(order_id)[0]["entity_id"] == memo_id
    with pytest.raises(MagentoError) as excinfo:
        sim.create_credit_memo(order_id, {"TEE-RED-M": 1}, shipping_amount=0)
    assert excinfo.value.status == 400
    assert (
        excinfo.value.rendered
        == 'We found an invalid quantity to refund item "Product TEE-RED-M".'
    )


# ------------------------------------------------- shipping tax, base currency (§5)


def taxed_store(*, incl_tax_display: bool, rate: float = 1.25) -> MagentoSimulator:
    """A USD-order store whose base currency is EUR (1 EUR = ``rate`` USD)."""
    return new_sim(
        currency="USD",
        base_currency="EUR",
        base_to_order_rate=rate,
        display_sales_shipping_incl_tax=incl_tax_display,
    )


def taxed_order(sim: MagentoSimulator) -> int:
    """SKU A 2 x 10.00 USD, shipping 12.50 USD plus 2.50 USD tax (10 + 2 EUR)."""
    return sim.import_tiktok_order(
        "576101",
        [{"sku": "A", "qty": 2, "price": 10.0}],
        shipping_amount=12.5,
        shipping_tax_amount=2.5,
    )


def test_taxed_shipping_order_shows_both_currencies() -> None:
    """The order carries shipping tax and base twins at base_to_order_rate."""
    sim = taxed_store(incl_tax_display=True)
    order = sim.order(taxed_order(sim))
    assert (order["order_currency_code"], order["base_currency_code"]) == ("USD", "EUR")
    assert order["base_to_order_rate"] == 1.25
    assert (order["shipping_amount"], order["base_shipping_amount"]) == (12.5, 10)
    assert (order["shipping_tax_amount"], order["base_shipping_tax_amount"]) == (2.5, 2)
    assert (order["shipping_incl_tax"], order["base_shipping_incl_tax"]) == (15, 12)
    assert (order["grand_total"], order["base_grand_total"]) == (35, 28)
    assert (order["total_paid"], order["base_total_paid"]) == (35, 28)
    assert order["tax_invoiced"] == 2.5


@pytest.mark.parametrize("incl_tax_display", [True, False])
def test_omitted_shipping_refunds_what_is_left_with_tax_in_both_currencies(
    incl_tax_display: bool,
) -> None:
    """No shipping_amount: all remaining shipping and its tax, whatever the display."""
    sim = taxed_store(incl_tax_display=incl_tax_display)
    order_id = taxed_order(sim)
    assert refund(sim, order_id, {"items": [{"order_item_id": 1, "qty": 2}]})[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert (memo["shipping_amount"], memo["base_shipping_amount"]) == (12.5, 10)
    assert (memo["shipping_tax_amount"], memo["base_shipping_tax_amount"]) == (2.5, 2)
    assert (memo["shipping_incl_tax"], memo["base_shipping_incl_tax"]) == (15, 12)
    assert (memo["grand_total"], memo["base_grand_total"]) == (35, 28)
    order = sim.order(order_id)
    assert order["state"] == "closed"
    assert (order["total_refunded"], order["base_total_refunded"]) == (35, 28)
    assert (order["shipping_tax_refunded"], order["base_shipping_tax_refunded"]) == (
        2.5,
        2,
    )
    assert order["status_histories"][0]["comment"] == "We refunded €28.00 offline."


def test_shipping_below_the_incl_tax_maximum_is_a_ratio_of_shipping_and_tax() -> None:
    """Displayed incl. tax, a base amount under the max refunds that share of both."""
    sim = taxed_store(incl_tax_display=True, rate=1.0)
    order_id = taxed_order(sim)  # rate 1: shipping 12.50 + 2.50 tax = 15.00
    body = {
        "items": [{"order_item_id": 1, "qty": 2}],
        "arguments": {"shipping_amount": 12.5},  # the tax-excluded remainder
    }
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    # 12.50 of the 15.00 incl. tax is a 5/6 ratio: 10.42 shipping + 2.08 tax.
    assert (memo["shipping_amount"], memo["shipping_tax_amount"]) == (10.42, 2.08)
    assert memo["shipping_incl_tax"] == 12.5
    assert memo["grand_total"] == 32.5
    assert sim.order(order_id)["state"] == "complete"  # 2.50 left: not closed


def test_shipping_at_the_excl_tax_maximum_refunds_the_rest_with_its_tax() -> None:
    """Displayed excl. tax, the base remainder excl. tax refunds it all, tax included."""
    sim = taxed_store(incl_tax_display=False)
    order_id = taxed_order(sim)
    body = {
        "items": [{"order_item_id": 1, "qty": 2}],
        "arguments": {"shipping_amount": 10},  # base EUR, tax excluded
    }
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert (memo["shipping_amount"], memo["shipping_tax_amount"]) == (12.5, 2.5)
    assert sim.order(order_id)["state"] == "closed"


@pytest.mark.parametrize(
    ("incl_tax_display", "maximum"), [(True, "€12.00"), (False, "€10.00")]
)
def test_order_currency_shipping_above_the_base_maximum_is_refused(
    incl_tax_display: bool, maximum: str
) -> None:
    """An order-currency amount (12.50 USD) exceeds the base max and is a 400 in EUR."""
    sim = taxed_store(incl_tax_display=incl_tax_display)
    order_id = taxed_order(sim)
    amount = 15 if incl_tax_display else 12.5
    body = {
        "items": [{"order_item_id": 1, "qty": 2}],
        "arguments": {"shipping_amount": amount},
    }
    assert refund(sim, order_id, body) == (
        400,
        {
            "message": "Maximum shipping amount allowed to refund is: %1",
            "parameters": [maximum],
        },
    )
    assert sim.credit_memos(order_id) == []


def test_zero_shipping_on_a_partial_refund_keeps_shipping_and_its_tax() -> None:
    """shipping_amount 0 refunds neither shipping nor shipping tax; both stay refundable."""
    sim = taxed_store(incl_tax_display=True)
    order_id = taxed_order(sim)
    body = {
        "items": [{"order_item_id": 1, "qty": 1}],
        "arguments": {"shipping_amount": 0},
    }
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert (memo["shipping_amount"], memo["tax_amount"], memo["grand_total"]) == (
        0,
        0,
        10,
    )
    assert refund(sim, order_id)[0] == 200
    last = sim.credit_memos(order_id)[-1]
    assert (last["shipping_amount"], last["shipping_tax_amount"]) == (12.5, 2.5)
    assert sim.order(order_id)["state"] == "closed"


# ----------------------------------------------------------------- bundles (§5)


def bundle_order(sim: MagentoSimulator, price_type: str, *, shipping: float) -> int:
    """2 x bundle KIT: 1 x KIT-A (10.00) + 2 x KIT-B (5.00) per bundle, fixed 18.00."""
    kit = {
        "sku": "KIT",
        "qty": 2,
        "price": 18.0,
        "product_type": "bundle",
        "bundle_price_type": price_type,
        "bundle_items": [
            {"sku": "KIT-A", "qty": 1, "price": 10.0},
            {"sku": "KIT-B", "qty": 2, "price": 5.0},
        ],
    }
    return sim.import_tiktok_order("576301", [kit], shipping_amount=shipping)


def bundle_rows(sim: MagentoSimulator, order_id: int) -> dict[str, dict[str, Any]]:
    return {i["sku"]: i for i in sim.order(order_id)["items"]}


def test_bundles_show_where_the_price_sits(sim: MagentoSimulator) -> None:
    """Fixed: the parent carries the price; dynamic: each child does (parent = sum)."""
    fixed = bundle_rows(sim, bundle_order(sim, "fixed", shipping=0))
    assert (fixed["KIT"]["product_type"], fixed["KIT"]["price"]) == ("bundle", 18)
    children = [
        (fixed[s]["price"], fixed[s]["qty_ordered"]) for s in ("KIT-A", "KIT-B")
    ]
    assert children == [(0, 2), (0, 4)]
    dynamic_id = bundle_order(sim, "dynamic", shipping=0)
    dynamic = bundle_rows(sim, dynamic_id)
    assert dynamic["KIT"]["price"] == 20
    assert [dynamic[s]["price"] for s in ("KIT-A", "KIT-B")] == [10, 5]
    parent_id = dynamic["KIT"]["item_id"]
    assert [dynamic[s]["parent_item_id"] for s in ("KIT-A", "KIT-B")] == [parent_id] * 2
    assert "product_options" not in dynamic["KIT"]
    assert sim.order(dynamic_id)["subtotal"] == 40


def test_fixed_bundle_parent_refund_carries_its_children(sim: MagentoSimulator) -> None:
    """Listing a fixed-price bundle's parent refunds it; children follow x their qty."""
    order_id = bundle_order(sim, "fixed", shipping=5)
    rows = bundle_rows(sim, order_id)
    body = {
        "items": [{"order_item_id": rows["KIT"]["item_id"], "qty": 1}],
        "arguments": {"shipping_amount": 0},
    }
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert [(i["sku"], i["qty"]) for i in memo["items"]] == [
        ("KIT", 1),
        ("KIT-A", 1),
        ("KIT-B", 2),
    ]
    assert memo["grand_total"] == 18


def test_fixed_bundle_child_only_list_is_a_shipping_only_memo(
    sim: MagentoSimulator,
) -> None:
    """A fixed bundle's children listed alone refund no product (shipping only)."""
    order_id = bundle_order(sim, "fixed", shipping=5)
    child = bundle_rows(sim, order_id)["KIT-A"]["item_id"]
    assert (
        refund(sim, order_id, {"items": [{"order_item_id": child, "qty": 1}]})[0] == 200
    )
    memo = sim.credit_memos(order_id)[0]
    assert (memo["items"], memo["grand_total"]) == ([], 5)


def test_dynamic_bundle_is_refunded_through_its_children(sim: MagentoSimulator) -> None:
    """Children listed with their qtys refund the money; the parent rides along."""
    order_id = bundle_order(sim, "dynamic", shipping=5)
    rows = bundle_rows(sim, order_id)
    body = {
        "items": [
            {"order_item_id": rows["KIT-A"]["item_id"], "qty": 1},
            {"order_item_id": rows["KIT-B"]["item_id"], "qty": 2},
        ],
        "arguments": {"shipping_amount": 0},
    }
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert [(i["sku"], i["qty"], i.get("row_total")) for i in memo["items"]] == [
        ("KIT", 2, None),  # the whole qty_invoiced, not totalled
        ("KIT-A", 1, 10),
        ("KIT-B", 2, 10),
    ]
    assert memo["grand_total"] == 20
    after = bundle_rows(sim, order_id)
    assert (after["KIT-A"]["qty_refunded"], after["KIT-B"]["qty_refunded"]) == (1, 2)
    assert after["KIT"]["qty_refunded"] == 2  # says nothing about bundles left
    assert sim.order(order_id)["state"] == "processing"


def test_dynamic_bundle_parent_only_list_is_a_shipping_only_memo(
    sim: MagentoSimulator,
) -> None:
    """Listing only a dynamic bundle's parent refunds no product: shipping only."""
    order_id = bundle_order(sim, "dynamic", shipping=5)
    parent = bundle_rows(sim, order_id)["KIT"]
    body = {"items": [{"order_item_id": parent["item_id"], "qty": 2}]}
    assert refund(sim, order_id, body)[0] == 200
    memo = sim.credit_memos(order_id)[0]
    assert (memo["items"], memo["grand_total"]) == ([], 5)
    assert all(i["qty_refunded"] == 0 for i in sim.order(order_id)["items"])


def test_dynamic_bundle_parent_only_list_without_shipping_is_refused(
    sim: MagentoSimulator,
) -> None:
    """With no shipping left, a parent-only list has no products (and a zero total)."""
    order_id = bundle_order(sim, "dynamic", shipping=0)
    parent = bundle_rows(sim, order_id)["KIT"]
    body: dict[str, Any] = {"items": [{"order_item_id": parent["item_id"], "qty": 2}]}
    status, error = refund(sim, order_id, body)
    assert status == 400
    assert lines(error) == ["The credit memo's total must be positive."]
    body["arguments"] = {"adjustment_positive": 1}
    assert lines(refund(sim, order_id, body)[1]) == [
        "You can't create a creditmemo without products."
    ]


def test_dynamic_bundle_restock_returns_the_listed_children() -> None:
    """MSI returns the listed child simples; the parent id is allowed (it is on the memo)."""
    sim = new_sim(msi_enabled=True)
    order_id = bundle_order(sim, "dynamic", shipping=0)
    rows = bundle_rows(sim, order_id)
    before = (sim.stock("KIT-A"), sim.stock("KIT-B"))
    ids = [rows[s]["item_id"] for s in ("KIT-A", "KIT-B", "KIT")]
    body = {
        "items": [
            {"order_item_id": rows["KIT-A"]["item_id"], "qty": 2},
            {"order_item_id": rows["KIT-B"]["item_id"], "qty": 4},
        ],
        "arguments": {"extension_attributes": {"return_to_stock_items": ids}},
    }
    assert refund(sim, order_id, body)[0] == 200
    assert (sim.stock("KIT-A"), sim.stock("KIT-B")) == (before[0] + 2, before[1] + 4)
    assert sim.order(order_id)["state"] == "closed"
