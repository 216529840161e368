"""searchCriteria semantics of the Magento simulator, checked against reference §3."""

from __future__ import annotations

from typing import Any

import pytest

from cancelsync.clock import FakeClock
from cancelsync.sandbox.magento import MagentoSimulator

try:
    from test_magento_sim_support import call, criteria, new_sim
except ImportError:  # pragma: no cover - when tests/ becomes a package
    from .test_magento_sim_support import call, criteria, new_sim

ORDERS = "/rest/V1/orders"


@pytest.fixture
def sim() -> MagentoSimulator:
    """Twelve orders one minute apart; ids 1..12, totals 11..22, stores 1 and 2."""
    clock = FakeClock()
    simulator = new_sim(clock=clock)
    for n in range(1, 13):
        simulator.import_tiktok_order(
            f"5760{n:04d}",
            [{"sku": f"SKU-{n}", "qty": 1, "price": 10.0 + n}],
            store_id=1 if n % 3 else 2,
        )
        clock.advance(60)
    return simulator


def ids(body: dict[str, Any]) -> list[int]:
    return [item["entity_id"] for item in body["items"]]


def search(sim: MagentoSimulator, query: list[tuple[str, str]]) -> dict[str, Any]:
    status, body = call(sim, "GET", ORDERS, query=query)
    assert status == 200, body
    result: dict[str, Any] = body
    return result


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("eq", "9", [9]),
        ("neq", "9", [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]),
        ("gt", "9", [10, 11, 12]),
        ("gteq", "9", [9, 10, 11, 12]),
        ("lt", "3", [1, 2]),
        ("lteq", "3", [1, 2, 3]),
        ("in", "2,4,11", [2, 4, 11]),
        ("nin", "1,2,3,4,5,6,7,8", [9, 10, 11, 12]),
        ("from", "11", [11, 12]),
        ("to", "2", [1, 2]),
        ("like", "1%", [1, 10, 11, 12]),
    ],
)
def test_condition_types_compare_entity_id_numerically(
    sim: MagentoSimulator, condition: str, value: str, expected: list[int]
) -> None:
    """Each condition type filters a numeric column as a number, not as a string."""
    body = search(sim, criteria([("entity_id", value, condition)]))
    assert ids(body) == expected
    assert body["total_count"] == len(expected)


def test_like_on_text_is_case_insensitive_with_wildcards(sim: MagentoSimulator) -> None:
    """``like`` uses % and _ wildcards and MySQL's case-insensitive collation."""
    body = search(sim, criteria([("status", "PROC%", "like")]))
    assert body["total_count"] == 12
    body = search(sim, criteria([("ext_order_id", "5760001_", "like")]))
    assert ids(body) == [10, 11, 12]


def test_null_and_notnull_and_null_never_matches_comparisons(
    sim: MagentoSimulator,
) -> None:
    """NULL columns match only ``null``; ``neq`` does not return NULL rows (SQL)."""
    sim.create_credit_memo(4)
    assert ids(search(sim, criteria([("total_refunded", None, "null")]))) == [
        n for n in range(1, 13) if n != 4
    ]
    assert ids(search(sim, criteria([("total_refunded", None, "notnull")]))) == [4]
    assert ids(search(sim, criteria([("total_refunded", "0", "neq")]))) == [4]


def test_filters_in_a_group_are_ored_and_groups_are_anded(
    sim: MagentoSimulator,
) -> None:
    """OR inside a filter group, AND across groups."""
    query = criteria(
        [("entity_id", "2", "eq"), ("entity_id", "3", "eq"), ("entity_id", "6", "eq")],
        [("store_id", "2", "eq")],
    )
    assert ids(search(sim, query)) == [3, 6]


def test_camel_case_spelling_is_accepted(sim: MagentoSimulator) -> None:
    """``filterGroups``/``conditionType`` work like the documented snake_case."""
    query = [
        ("searchCriteria[filterGroups][0][filters][0][field]", "grand_total"),
        ("searchCriteria[filterGroups][0][filters][0][value]", "20"),
        ("searchCriteria[filterGroups][0][filters][0][conditionType]", "gteq"),
    ]
    assert ids(search(sim, query)) == [10, 11, 12]


def test_timestamps_compare_as_utc_strings(sim: MagentoSimulator) -> None:
    """created_at filters compare against the UTC ``YYYY-MM-DD HH:MM:SS`` values."""
    query = criteria(
        [("created_at", "2026-11-01 12:09:00", "gteq")],
        [("created_at", "2026-11-01 12:10:00", "lt")],
    )
    body = search(sim, query)
    assert ids(body) == [10]
    assert body["items"][0]["created_at"] == "2026-11-01 12:09:00"


def test_sort_orders_and_missing_direction_sorts_desc(sim: MagentoSimulator) -> None:
    """Sort orders apply in order; a sort order without direction sorts descending."""
    body = search(sim, criteria(sort=[("store_id", "ASC"), ("entity_id", "DESC")]))
    assert ids(body) == [11, 10, 8, 7, 5, 4, 2, 1, 12, 9, 6, 3]
    assert ids(search(sim, criteria(sort=[("grand_total", None)])))[:2] == [12, 11]


def test_paging_clamps_past_the_end_to_the_last_page(sim: MagentoSimulator) -> None:
    """currentPage past the end repeats the last page; total_count ignores paging."""
    sort = [("entity_id", "ASC")]
    page2 = search(sim, criteria(sort=sort, page_size=5, current_page=2))
    page3 = search(sim, criteria(sort=sort, page_size=5, current_page=3))
    page9 = search(sim, criteria(sort=sort, page_size=5, current_page=9))
    page0 = search(sim, criteria(sort=sort, page_size=5, current_page=0))
    assert ids(page2) == [6, 7, 8, 9, 10]
    assert ids(page3) == ids(page9) == [11, 12]
    assert ids(page0) == [1, 2, 3, 4, 5]
    assert page9["total_count"] == 12
    assert page9["search_criteria"]["current_page"] == 9


def test_keyset_paging_on_entity_id(sim: MagentoSimulator) -> None:
    """entity_id gt cursor + ASC + currentPage 1 walks every row exactly once."""
    seen: list[int] = []
    cursor = 0
    while True:
        query = criteria(
            [("entity_id", str(cursor), "gt")],
            sort=[("entity_id", "ASC")],
            page_size=5,
            current_page=1,
        )
        page = ids(search(sim, query))
        seen += page
        if len(page) < 5:
            break
        cursor = page[-1]
    assert seen == list(range(1, 13))


def test_reply_echoes_search_criteria(sim: MagentoSimulator) -> None:
    """The reply carries items, the parsed search_criteria and total_count."""
    body = search(
        sim,
        criteria([("entity_id", "3", "gt")], sort=[("entity_id", "asc")], page_size=2),
    )
    assert set(body) == {"items", "search_criteria", "total_count"}
    assert body["search_criteria"] == {
        "filter_groups": [
            {"filters": [{"field": "entity_id", "value": "3", "condition_type": "gt"}]}
        ],
        "sort_orders": [{"field": "entity_id", "direction": "ASC"}],
        "page_size": 2,
    }


def test_no_page_size_returns_every_row_without_input_limits(
    sim: MagentoSimulator,
) -> None:
    """Without pageSize all rows come back when input limits are off."""
    for n in range(20):
        sim.import_tiktok_order(f"x{n}", [{"sku": "X", "qty": 1, "price": 1}])
    assert len(search(sim, criteria(sort=[("entity_id", "ASC")]))["items"]) == 32


def test_input_limits_default_and_maximum(sim: MagentoSimulator) -> None:
    """With input limits on, the default page is 20 and pageSize > 300 is a 400."""
    sim.input_limit_enabled = True
    for n in range(20):
        sim.import_tiktok_order(f"x{n}", [{"sku": "X", "qty": 1, "price": 1}])
    body = search(sim, criteria(sort=[("entity_id", "ASC")]))
    assert len(body["items"]) == 20
    assert body["search_criteria"]["page_size"] == 20
    assert len(search(sim, criteria(page_size=300))["items"]) == 32
    status, error = call(sim, "GET", ORDERS, query=criteria(page_size=301))
    assert status == 400
    assert error == {
        "message": "Maximum SearchCriteria pageSize is %max",
        "parameters": {"max": 300},
    }


def test_missing_search_criteria_is_required(sim: MagentoSimulator) -> None:
    """Leaving searchCriteria out altogether is a 400 naming the field."""
    status, body = call(sim, "GET", ORDERS)
    assert status == 400
    assert body == {
        "message": "%fieldName is a required field.",
        "parameters": {"fieldName": "searchCriteria"},
    }


def test_empty_search_criteria_idiom_returns_everything(sim: MagentoSimulator) -> None:
    """``?searchCriteria=`` means no criteria: every row."""
    assert search(sim, [("searchCriteria", "")])["total_count"] == 12


def test_non_column_filter_is_a_masked_500(sim: MagentoSimulator) -> None:
    """Only top-level columns filter; anything else is an SQL error masked as a 500."""
    status, body = call(sim, "GET", ORDERS, query=criteria([("items", "1", "eq")]))
    assert status == 500
    assert body["message"] == (
        "Internal Error. Details are available in Magento log file. Report ID: %1"
    )
    assert body["parameters"][0].startswith("webapi-")


def test_custom_tiktok_id_column_is_filterable() -> None:
    """A scenario may keep the TikTok id in another top-level column."""
    sim = new_sim()
    sim.import_tiktok_order("A-1", [{"sku": "A", "qty": 1, "price": 1}])
    sim.import_tiktok_order(
        "T-2", [{"sku": "A", "qty": 1, "price": 1}], order_id_field="tiktok_order_id"
    )
    body = search(sim, criteria([("tiktok_order_id", "t-2", "eq")]))
    assert ids(body) == [2]
    assert "ext_order_id" not in body["items"][0]
    assert body["items"][0]["tiktok_order_id"] == "T-2"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            [("searchCriteria[pageSize]", "ten")],
            {"value": "ten", "type": "int"},
        ),
        (
            [("searchCriteria[sortOrders][0][field]", "entity_id"),
             ("searchCriteria[sortOrders][0][direction]", "UP")],
            ["UP"],
        ),
    ],
)  # fmt: skip
def test_bad_criteria_values_are_400s(
    sim: MagentoSimulator, query: list[tuple[str, str]], expected: Any
) -> None:
    """A non-integer pageSize or an unknown sort direction is refused with a 400."""
    status, body = call(sim, "GET", ORDERS, query=query)
    assert status == 400
    assert body["parameters"] == expected


def test_fields_parameter_trims_the_reply(sim: MagentoSimulator) -> None:
    """``fields=items[entity_id,created_at],total_count`` keeps only those keys."""
    query = [
        *criteria(page_size=2),
        ("fields", "items[entity_id,created_at],total_count"),
    ]
    body = search(sim, query)
    assert body == {
        "items": [
            {"entity_id": 1, "created_at": "2026-11-01 12:00:00"},
            {"entity_id": 2, "created_at": "2026-11-01 12:01:00"},
        ],
        "total_count": 12,
    }


def test_credit_memo_search_filters_by_order_and_state(sim: MagentoSimulator) -> None:
    """GET creditmemos filters sales_creditmemo columns such as order_id and state."""
    sim.create_credit_memo(2)
    sim.create_credit_memo(5)
    status, body = call(
        sim,
        "GET",
        "/rest/default/V1/creditmemos",
        query=criteria([("order_id", "5", "eq")], [("state", "2", "eq")]),
    )
    assert status == 200
    assert [m["order_id"] for m in body["items"]] == [5]
    assert body["items"][0]["entity_id"] == 2
