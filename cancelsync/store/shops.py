"""Which TikTok shop (id, cipher, market) a configured store name is bound to.

Filled by ``connect`` or the first successful shop lookup, so later runs need no lookup and
stored state can be keyed by the shop id rather than the editable store name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from cancelsync.store.db import iso


@dataclass(frozen=True)
class ShopBinding:
    store_name: str
    tiktok_shop_id: str
    shop_cipher: str | None
    market: str | None
    shop_name: str | None


class Shops:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, store_name: str) -> ShopBinding | None:
        rows = list(
            self._db.query(
                "SELECT store_name, tiktok_shop_id, shop_cipher, market, shop_name "
                "FROM shops WHERE store_name = ?",
                [store_name],
            )
        )
        return ShopBinding(**rows[0]) if rows else None

    def bind(self, binding: ShopBinding, now: datetime) -> None:
        self._db.execute(
            """INSERT INTO shops (store_name, tiktok_shop_id, shop_cipher, market, shop_name,
                 updated_at) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (store_name) DO UPDATE SET
                 tiktok_shop_id = excluded.tiktok_shop_id,
                 shop_cipher = excluded.shop_cipher, market = excluded.market,
                 shop_name = excluded.shop_name, updated_at = excluded.updated_at""",
            [binding.store_name, binding.tiktok_shop_id, binding.shop_cipher, binding.market,
             binding.shop_name, iso(now)],
        )  # fmt: skip
