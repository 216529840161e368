"""What TikTok told us about a store's authorization (webhook types 6 and 7).

Type 6 (``SELLER_DEAUTHORIZATION``) fires when the seller revokes the app; type 7
(``UPCOMING_AUTHORIZATION_EXPIRATION``) daily from 30 days before the authorization ends
(reference §7). The latest notice of each type is kept per store so that ``status`` shows
it until the store is connected again (``cancelsync connect`` clears them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from cancelsync.store.db import iso

REVOKED, EXPIRING = 6, 7


@dataclass(frozen=True)
class Notice:
    store_name: str
    kind: int  # REVOKED | EXPIRING
    message: str
    received_at: str  # ISO UTC
    times: int  # deliveries of this type since the store was last connected


class Notices:
    def __init__(self, db: Database) -> None:
        self._db = db

    def note(self, store_name: str, kind: int, message: str, now: datetime) -> None:
        """Keep the latest notice of this type (counting how many came)."""
        self._db.execute(
            """INSERT INTO tiktok_notices (store_name, kind, message, received_at, times)
               VALUES (?, ?, ?, ?, 1)
               ON CONFLICT (store_name, kind) DO UPDATE SET
                 message = excluded.message, received_at = excluded.received_at,
                 times = times + 1""",
            [store_name, kind, message, iso(now)],
        )

    def for_store(self, store_name: str) -> list[Notice]:
        return [
            Notice(**row)
            for row in self._db.query(
                "SELECT store_name, kind, message, received_at, times FROM tiktok_notices "
                "WHERE store_name = ? ORDER BY kind",
                [store_name],
            )
        ]

    def clear(self, store_name: str) -> None:
        """The store was connected again: what TikTok said before no longer holds."""
        self._db.execute(
            "DELETE FROM tiktok_notices WHERE store_name = ?", [store_name]
        )
