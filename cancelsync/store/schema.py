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


@migrations()
def m002_ledger_reason_code(db: Database) -> None:
    # Why a decision was taken, as data (e.g. "not_imported"); ``reason`` is for people.
    db.execute("ALTER TABLE ledger ADD COLUMN reason_code TEXT")


# The cursor streams the pseudo-cursors were named after, and their directions, frozen as
# they were when m003 was written: a migration must never change meaning with the code.
_STREAM_DIRECTIONS = {
    "tiktok.cancellations": "tiktok_to_magento",
    "magento.creditmemos": "magento_to_tiktok",
}
_PSEUDO_CURSORS = "stream LIKE '%.disabled' OR stream LIKE '%.resumed'"


@migrations()
def m003_direction_switches(db: Database) -> None:
    # A direction switched back on starts fresh instead of resuming a stale cursor. Only
    # changes are appended, so the last row of a direction tells its state.
    db.execute(
        """
        CREATE TABLE direction_switches (
            switch_id INTEGER PRIMARY KEY AUTOINCREMENT,
            scope TEXT NOT NULL,
            direction TEXT NOT NULL,
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            at TEXT NOT NULL
        )"""
    )
    db.execute(
        "CREATE INDEX direction_switches_last"
        " ON direction_switches (scope, direction, switch_id)"
    )
    # Carry over the "<stream>.disabled" (last cycle seen off) and "<stream>.resumed" (last
    # fresh run) pseudo-cursors, whose position is Unix seconds. In time order, and on a
    # tie "off" first: the old test was "fresh when disabled > resumed".
    rows = db.execute(
        f"SELECT scope, stream, position FROM cursors WHERE {_PSEUDO_CURSORS}"  # noqa: S608 - a fixed condition
    ).fetchall()
    switches = sorted(
        (scope, _STREAM_DIRECTIONS.get(stream, stream), position, kind == "resumed")
        for scope, pseudo, position in rows
        for stream, _, kind in [pseudo.rpartition(".")]
    )
    for scope, direction, position, enabled in switches:
        db.execute(
            """INSERT INTO direction_switches (scope, direction, enabled, at)
               VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%S+00:00', ?, 'unixepoch'))""",
            [scope, direction, int(enabled), position],
        )
    db.execute(f"DELETE FROM cursors WHERE {_PSEUDO_CURSORS}")  # noqa: S608 - a fixed condition


@migrations()
def m004_alert_state(db: Database) -> None:
    # The webhook's outbox (a message is queued once per key, survives restarts, and
    # waits out a webhook that is down) and each store's run of failed cycles.
    db.execute(
        """
        CREATE TABLE alert_outbox (
            alert_id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_key TEXT NOT NULL UNIQUE,
            store_name TEXT NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dropped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX alert_outbox_state ON alert_outbox (state, alert_id)")
    db.execute(
        """
        CREATE TABLE store_health (
            store_name TEXT PRIMARY KEY,
            failed_in_a_row INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            failing_alerted INTEGER NOT NULL DEFAULT 0 CHECK (failing_alerted IN (0, 1)),
            last_ok_at TEXT,
            updated_at TEXT NOT NULL
        )"""
    )


@migrations()
def m005_housekeeping(db: Database) -> None:
    # When each housekeeping job last ran (``Store.prune_history``: once a day at most),
    # and an index so the daily prune of old timeline rows does not scan the table.
    db.execute(
        """
        CREATE TABLE housekeeping (
            job TEXT PRIMARY KEY,
            done_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX timeline_at ON timeline (at)")
    db.execute("CREATE INDEX cycles_started ON cycles (started_at)")


@migrations()
def m006_ledger_creditmemo_index(db: Database) -> None:
    # Direction A asks, for every new credit memo, whether one of our refunds created it
    # (``Ledger.find_by_creditmemo``): without an index that is a scan of the whole ledger
    # per memo, which grows with every action ever taken.
    db.execute("CREATE INDEX ledger_creditmemo ON ledger (magento_creditmemo_id)")


@migrations()
def m007_ledger_waiting_for_import(db: Database) -> None:
    # Every cycle asks for the cancellations still waiting for their order to be
    # imported (``Ledger.waiting_for_import``): a partial index keeps that to the few
    # such rows however large the ledger grows.
    db.execute(
        "CREATE INDEX ledger_waiting_for_import ON ledger (scope, created_at) "
        "WHERE state = 'skipped' AND reason_code = 'not_imported'"
    )


@migrations()
def m008_tiktok_notices(db: Database) -> None:
    # Webhook types 6/7 (authorization revoked / expiring): the latest of each per
    # store, shown by ``status`` until the store is connected again.
    db.execute(
        "CREATE TABLE tiktok_notices (store_name TEXT NOT NULL, kind INTEGER NOT NULL, "
        "message TEXT NOT NULL, received_at TEXT NOT NULL, times INTEGER NOT NULL, "
        "PRIMARY KEY (store_name, kind))"
    )
