"""Tests for the pure searchCriteria builder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from cancelsync.clients.magento.search import (
    Filter,
    SearchCriteria,
    magento_datetime,
)


def test_where_groups_are_anded_and_any_of_is_ored() -> None:
    """Each where() opens a new group; any_of() puts its filters in one group."""
    params = (
        SearchCriteria()
        .where("entity_id", 5, "gt")
        .any_of(Filter("store_id", 1), Filter("store_id", 2))
        .page(50)
        .params()
    )
    assert params == [
        ("searchCriteria[filter_groups][0][filters][0][field]", "entity_id"),
        ("searchCriteria[filter_groups][0][filters][0][value]", "5"),
        ("searchCriteria[filter_groups][0][filters][0][condition_type]", "gt"),
        ("searchCriteria[filter_groups][1][filters][0][field]", "store_id"),
        ("searchCriteria[filter_groups][1][filters][0][value]", "1"),
        ("searchCriteria[filter_groups][1][filters][0][condition_type]", "eq"),
        ("searchCriteria[filter_groups][1][filters][1][field]", "store_id"),
        ("searchCriteria[filter_groups][1][filters][1][value]", "2"),
        ("searchCriteria[filter_groups][1][filters][1][condition_type]", "eq"),
        ("searchCriteria[pageSize]", "50"),
        ("searchCriteria[currentPage]", "1"),
    ]


def test_sort_orders_are_upper_case_and_page_size_is_always_sent() -> None:
    """Directions go out as ASC/DESC and pageSize/currentPage are always present."""
    params = dict(SearchCriteria().sort("entity_id", "asc").params())
    assert params["searchCriteria[sortOrders][0][field]"] == "entity_id"
    assert params["searchCriteria[sortOrders][0][direction]"] == "ASC"
    assert params["searchCriteria[pageSize]"] == "100"
    assert params["searchCriteria[currentPage]"] == "1"


def test_in_values_are_comma_joined_and_commas_refused() -> None:
    """An 'in' list becomes a comma list; a value holding a comma is refused."""
    params = dict(
        SearchCriteria().where("ext_order_id", ["a1", "b2", 3], "in").params()
    )
    assert params["searchCriteria[filter_groups][0][filters][0][value]"] == "a1,b2,3"
    with pytest.raises(ValueError, match="comma"):
        SearchCriteria().where("ext_order_id", ["a,b"], "in").params()


def test_datetimes_render_as_magento_utc() -> None:
    """Aware datetimes become UTC 'YYYY-MM-DD HH:MM:SS'; naive ones are refused."""
    plus2 = timezone(timedelta(hours=2))
    when = datetime(2026, 11, 1, 14, 30, 5, tzinfo=plus2)
    params = dict(SearchCriteria().where("created_at", when, "gteq").params())
    assert params["searchCriteria[filter_groups][0][filters][0][value]"] == (
        "2026-11-01 12:30:05"
    )
    assert magento_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2026-01-02 03:04:05"
    )
    with pytest.raises(ValueError, match="aware"):
        magento_datetime(datetime(2026, 1, 2))  # noqa: DTZ001 - the naive case under test


def test_page_size_is_capped_at_300() -> None:
    """pageSize outside 1..300 and currentPage below 1 are refused."""
    assert (
        dict(SearchCriteria().page(300).params())["searchCriteria[pageSize]"] == "300"
    )
    for size in (0, 301):
        with pytest.raises(ValueError, match="pageSize"):
            SearchCriteria().page(size)
    with pytest.raises(ValueError, match="currentPage"):
        SearchCriteria().page(10, 0)


def test_indexes_stay_below_ten() -> None:
    """A tenth group, filter or sort order is refused instead of producing [10]."""
    crit = SearchCriteria()
    for i in range(10):
        crit = crit.where(f"f{i}", i)
    assert "[9]" in crit.params()[-3][0]
    with pytest.raises(ValueError, match="below 10"):
        crit.where("f10", 10)
    with pytest.raises(ValueError, match="below 10"):
        SearchCriteria().any_of(*(Filter("store_id", i) for i in range(11)))
    sorted_crit = SearchCriteria()
    for i in range(10):
        sorted_crit = sorted_crit.sort(f"f{i}")
    with pytest.raises(ValueError, match="below 10"):
        sorted_crit.sort("f10")


def test_unknown_condition_and_direction_are_refused() -> None:
    """Typos in condition types or sort directions fail loudly."""
    with pytest.raises(ValueError, match="condition_type"):
        Filter("entity_id", 1, "greater")
    with pytest.raises(ValueError, match="ASC or DESC"):
        SearchCriteria().sort("entity_id", "up")


def test_query_is_percent_encoded_and_sent_unchanged() -> None:
    """query() encodes brackets, wildcards and a space as %20; requests keeps it as is."""
    when = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)
    crit = (
        SearchCriteria()
        .where("increment_id", "0001%", "like")
        .where("created_at", when, "gteq")
        .page(20)
    )
    query = crit.query()
    assert "[" not in query
    assert "]" not in query
    assert "+" not in query
    assert "searchCriteria%5Bfilter_groups%5D%5B0%5D" in query
    assert "0001%25" in query
    assert "2026-11-30%2001%3A02%3A03" in query
    prepared = requests.Request(
        "GET", "https://m.test/rest/all/V1/orders", params=query
    ).prepare()
    assert urlsplit(prepared.url or "").query == query
    decoded = dict(parse_qsl(query))
    assert decoded["searchCriteria[filter_groups][0][filters][0][value]"] == "0001%"
    assert decoded["searchCriteria[filter_groups][1][filters][0][value]"] == (
        "2026-11-30 01:02:03"
    )


def test_builder_is_immutable() -> None:
    """Methods return new criteria and leave the original untouched."""
    base = SearchCriteria().where("order_id", 7)
    base.where("store_id", 1).sort("entity_id").page(5, 2)
    assert len(base.filter_groups) == 1
    assert base.sort_orders == ()
    assert (base.page_size, base.current_page) == (100, 1)
