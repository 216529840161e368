"""The binder: TikTok order id ↔ Magento order, unique on each platform's id.

A link is written once the Magento order carrying a TikTok id has been found unambiguously,
so later cycles skip the lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from cancelsync.store.db import iso


@dataclass(frozen=True)
class Link:
    tiktok_order_id: str
    scope: str
    magento_entity_id: int
    magento_increment_id: str | None
    magento_store_id: int | None


class LinkConflictError(ValueError):
    """Either order is already linked to a different order on the other platform."""


class Links:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _one(self, where: str, args: list[object]) -> Link | None:
        rows = list(
            self._db.query(
                "SELECT tiktok_order_id, scope, magento_entity_id, magento_increment_id, "  # noqa: S608 - column names from fixed lists
                f"magento_store_id FROM links WHERE {where}",
                args,
            )
        )
        return Link(**rows[0]) if rows else None

    def find_link(self, tiktok_order_id: str) -> Link | None:
        return self._one("tiktok_order_id = ?", [tiktok_order_id])

    def find_by_magento(self, magento_entity_id: int) -> Link | None:
        return self._one("magento_entity_id = ?", [magento_entity_id])

    def find_by_increment(self, magento_increment_id: str) -> Link | None:
        return self._one("magento_increment_id = ?", [magento_increment_id])

    def save(self, link: Link, now: datetime) -> None:
        """Insert the link; an identical existing one is fine, a conflicting one raises.

        Raises:
            LinkConflictError: the TikTok order, or the Magento order, is already linked
                to a different order.
        """
        existing = self.find_link(link.tiktok_order_id)
        if existing is not None:
            if existing.magento_entity_id != link.magento_entity_id:
                raise LinkConflictError(
                    f"TikTok order {link.tiktok_order_id} is already linked to Magento "
                    f"order {existing.magento_entity_id}, not {link.magento_entity_id}"
                )
            return
        taken = self.find_by_magento(link.magento_entity_id)
        if taken is not None:
            raise LinkConflictError(
                f"Magento order {link.magento_entity_id} is already linked to TikTok "
                f"order {taken.tiktok_order_id}, not {link.tiktok_order_id}"
            )
        self._db.execute(
            """INSERT INTO links (tiktok_order_id, scope, magento_entity_id,
                 magento_increment_id, magento_store_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [link.tiktok_order_id, link.scope, link.magento_entity_id,
             link.magento_increment_id, link.magento_store_id, iso(now)],
        )  # fmt: skip
