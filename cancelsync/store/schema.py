"""The database schema, only as sqlite-utils ``Migrations`` applied at start-up.

Never edit an applied migration: add a new one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("cancelsync")


@migrations()
def m001_initial(db: Database) -> None:
    # Stored state is keyed by *scope*: "shop:<tiktok shop id>" where the shop is known, so
    # renaming a store in the config cannot make the worker act twice.
    db.execute(
        """
        CREATE TABLE shops (
            store_name TEXT PRIMARY KEY,
            tiktok_shop_id TEXT NOT NULL,
            shop_cipher TEXT,
            market TEXT,
            shop_name TEXT,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE cursors (
            scope TEXT NOT NULL,
            stream TEXT NOT NULL,
            position INTEGER NOT NULL,
            tie TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (scope, stream)
        )"""
    )
    db.execute(
        """
        CREATE TABLE links (
            tiktok_order_id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            magento_entity_id INTEGER NOT NULL UNIQUE,
            magento_increment_id TEXT,
            magento_store_id INTEGER,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE ledger (
            action_id INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            scope TEXT NOT NULL,
            store_name TEXT NOT NULL,
            direction TEXT NOT NULL,
            action TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('pending', 'done', 'skipped', 'failed', 'needs_attention')),
            tiktok_order_id TEXT,
            tiktok_cancel_id TEXT,
            magento_entity_id INTEGER,
            magento_increment_id TEXT,
            magento_creditmemo_id INTEGER,
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT,
            remote_id TEXT,
            payload TEXT,
            reported_run TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX ledger_scope_state ON ledger (scope, state)")
    db.execute("CREATE INDEX ledger_tiktok_order ON ledger (tiktok_order_id)")
    db.execute("CREATE INDEX ledger_magento_order ON ledger (magento_entity_id)")
    db.execute("CREATE INDEX ledger_magento_increment ON ledger (magento_increment_id)")
    db.execute(
        """
        CREATE TABLE timeline (
            event_id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            scope TEXT NOT NULL,
            run_id TEXT,
            action_id INTEGER,
            tiktok_order_id TEXT,
            magento_entity_id INTEGER,
            magento_increment_id TEXT,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            details TEXT
        )"""
    )
    db.execute("CREATE INDEX timeline_tiktok_order ON timeline (tiktok_order_id)")
    db.execute(
        "CREATE INDEX timeline_magento_increment ON timeline (magento_increment_id)"
    )
    db.execute(
        """
        CREATE TABLE tokens (
            token_scope TEXT PRIMARY KEY,
            access_token TEXT NOT NULL,
            access_token_expire_at INTEGER,
            refresh_token TEXT NOT NULL,
            refresh_token_expire_at INTEGER,
            seed_fingerprint TEXT,
            auth_status TEXT NOT NULL DEFAULT 'ok',
            auth_error TEXT,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE cycles (
            cycle_id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            store_name TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL,
            counts TEXT,
            error TEXT
        )"""
    )
    db.execute("CREATE INDEX cycles_scope ON cycles (scope, cycle_id)")
