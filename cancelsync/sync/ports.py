"""The engine's ports: what the sync needs from each platform, and nothing more.

``MagentoClient`` and ``TikTokClient`` satisfy these structurally; mypy (strict, no ``Any``
ports) checks it where the service hands the real clients to ``run_store_cycle``. Tests may
pass any object with the same methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from cancelsync.models import (
    MagentoCreditMemo,
    MagentoOrder,
    Page,
    TikTokCancellation,
    TikTokOrder,
)

Timestamp = datetime | int


class MagentoPort(Protocol):
    """Magento reads and writes used by both directions."""

    # direction A: credit memos in
    def iter_credit_memos(
        self,
        after_entity_id: int,
        *,
        store_ids: Sequence[int] = (),
        page_size: int = 100,
        created_since: datetime | None = None,
    ) -> Iterator[Page[MagentoCreditMemo]]: ...

    def credit_memos_created_since(
        self, since: datetime, *, store_ids: Sequence[int] = (), page_size: int = 100
    ) -> Page[MagentoCreditMemo]: ...

    def latest_credit_memo_id(self, *, store_ids: Sequence[int] = ()) -> int | None: ...

    def get_credit_memo(self, creditmemo_id: int) -> MagentoCreditMemo: ...

    # both directions: orders
    def get_order(self, magento_entity_id: int) -> MagentoOrder: ...

    def orders_by_tiktok_ids(
        self, ids: Sequence[str]
    ) -> dict[str, list[MagentoOrder]]: ...

    def orders_by_entity_ids(self, ids: Iterable[int]) -> dict[int, MagentoOrder]: ...

    def credit_memos_for_order(
        self, magento_entity_id: int
    ) -> list[MagentoCreditMemo]: ...

    def credit_memos_for_orders(
        self, magento_entity_ids: Iterable[int]
    ) -> dict[int, list[MagentoCreditMemo]]: ...

    # direction B: writes
    def refund_order(
        self,
        magento_entity_id: int,
        *,
        items: Sequence[tuple[int, Decimal]],
        shipping_amount: Decimal | None,
        return_to_stock_items: Sequence[int],
        comment: str,
        notify: bool = False,
    ) -> int: ...

    def cancel_order(self, magento_entity_id: int) -> bool: ...

    def add_order_comment(self, magento_entity_id: int, comment: str) -> None: ...

    def hold_order(self, magento_entity_id: int) -> None: ...

    def unhold_order(self, magento_entity_id: int) -> None: ...


class TikTokPort(Protocol):
    """TikTok Shop reads and writes used by both directions."""

    def search_cancellations(
        self,
        *,
        update_time_ge: Timestamp | None = None,
        update_time_lt: Timestamp | None = None,
        cancel_status: str | Sequence[str] | None = None,
        cancel_types: str | Sequence[str] | None = None,
        order_ids: Sequence[str] | None = None,
        cancel_ids: Sequence[str] | None = None,
        sort_field: str = "update_time",
        sort_order: str = "ASC",
        page_size: int = 50,
    ) -> Iterator[list[TikTokCancellation]]: ...

    def search_orders(
        self,
        *,
        update_time_ge: Timestamp | None = None,
        update_time_lt: Timestamp | None = None,
        order_status: str | None = None,
        sort_field: str = "update_time",
        sort_order: str = "ASC",
        page_size: int = 50,
    ) -> Iterator[list[TikTokOrder]]: ...

    def get_orders(self, tiktok_order_ids: Sequence[str]) -> list[TikTokOrder]: ...

    def cancel_order(
        self,
        tiktok_order_id: str,
        cancel_reason: str,
        *,
        order_line_item_ids: Sequence[str] | None = None,
        skus: Sequence[Mapping[str, Any]] | None = None,
    ) -> tuple[str, str]: ...

    def approve_cancellation(self, cancel_id: str, *, idempotency_key: str) -> None: ...

    def eligible_cancel_reasons(self, tiktok_order_id: str) -> list[str] | None: ...
