"""The SQLite store: migrations, cursors, ledger, links, tokens, history, file safety."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Database

from cancelsync.clock import FakeClock
from cancelsync.store import (
    UNSET,
    CursorRegressionError,
    DirectionSwitch,
    LedgerEntry,
    Link,
    LinkConflictError,
    ShopBinding,
    Store,
    TokenPair,
    seed_fingerprint,
)
from cancelsync.store.db import iso
from cancelsync.store.ledger import RESOLVED_CODE
from cancelsync.store.schema import migrations

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SCOPE = "shop:7495"


def begin(store: Store, key: str, now: datetime = T0, **kw: Any) -> LedgerEntry:
    """Begin a ledger row with the boilerplate columns filled in."""
    fields: dict[str, Any] = {
        "scope": SCOPE, "store_name": "us-main", "direction": "tiktok_cancel_to_magento_refund",
        "action": "magento_refund", "now": now,
    }  # fmt: skip
    fields.update(kw)
    return store.ledger.begin(key, **fields)


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[Store]:
    """A store backed by a file in tmp_path, closed after the test."""
    s = Store.open(tmp_path / "cancelsync.db")
    yield s
    s.close()


# --------------------------------------------------------------------------- database file


def test_migrations_applied_twice_are_a_no_op(tmp_path: Path, clock: FakeClock) -> None:
    """Opening the same file again applies nothing new and keeps the data."""
    path = tmp_path / "cancelsync.db"
    first = Store.open(path)
    first.cursors.advance(SCOPE, "cancellations", 100, clock.now())
    first.close()
    second = Store.open(path)
    try:
        applied = [m.name for m in migrations.applied(second.db)]
        assert applied == [
            "m001_initial", "m002_ledger_reason_code", "m003_direction_switches",
            "m004_alert_state", "m005_housekeeping", "m006_ledger_creditmemo_index",
            "m007_ledger_waiting_for_import", "m008_tiktok_notices",
        ]  # fmt: skip
        assert migrations.pending(second.db) == []
        cursor = second.cursors.get(SCOPE, "cancellations")
        assert cursor is not None
        assert cursor.position == 100
    finally:
        second.close()


def test_memory_store_has_every_table(store: Store) -> None:
    """Store.memory() is migrated like a file store."""
    assert {
        "shops",
        "cursors",
        "links",
        "ledger",
        "timeline",
        "tokens",
        "cycles",
        "direction_switches",
    } <= set(store.db.table_names())


def test_pseudo_cursors_migrate_into_direction_switches() -> None:
    """m003 carries ``<stream>.disabled`` / ``.resumed`` cursors over as switches in time
    order (a tie counts as "on", as the old check did) and deletes them from cursors."""
    db = Database(sqlite3.connect(":memory:", isolation_level=None))
    migrations.apply(db, stop_before="m003_direction_switches")
    t = int(T0.timestamp())
    rows = [
        (SCOPE, "tiktok.cancellations", t - 100), (SCOPE, "tiktok.cancellations.disabled", t),
        (SCOPE, "tiktok.cancellations.resumed", t - 50),
        (SCOPE, "magento.creditmemos.disabled", t), (SCOPE, "magento.creditmemos.resumed", t),
        ("shop:2", "magento.creditmemos.resumed", t),
    ]  # fmt: skip
    for scope, stream, position in rows:
        db.execute(
            "INSERT INTO cursors (scope, stream, position, updated_at) VALUES (?, ?, ?, ?)",
            [scope, stream, position, iso(T0)],
        )
    migrations.apply(db)
    store = Store(db)
    assert [(c.stream, c.position) for c in store.cursors.all(SCOPE)] == [
        ("tiktok.cancellations", t - 100)
    ]
    assert store.cursors.all("shop:2") == []
    earlier = iso(T0 - timedelta(seconds=50))
    assert store.switches.history(SCOPE) == [
        DirectionSwitch(SCOPE, "magento_to_tiktok", False, iso(T0)),
        DirectionSwitch(SCOPE, "magento_to_tiktok", True, iso(T0)),
        DirectionSwitch(SCOPE, "tiktok_to_magento", True, earlier),
        DirectionSwitch(SCOPE, "tiktok_to_magento", False, iso(T0)),
    ]
    assert store.switches.history("shop:2") == [
        DirectionSwitch("shop:2", "magento_to_tiktok", True, iso(T0))
    ]


def test_database_files_are_private_even_with_a_permissive_umask(
    tmp_path: Path,
) -> None:
    """The database and its -wal/-shm files are created with mode 0600 under umask 000."""
    old = os.umask(0)
    try:
        s = Store.open(tmp_path / "data" / "cancelsync.db")
        s.cursors.advance(SCOPE, "cancellations", 1, T0)
        try:
            for suffix in ("", "-wal", "-shm"):
                path = tmp_path / "data" / f"cancelsync.db{suffix}"
                assert path.exists(), suffix
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, suffix
        finally:
            s.close()
    finally:
        os.umask(old)


def test_existing_database_file_is_made_private(tmp_path: Path) -> None:
    """A database file left world-readable is tightened to 0600 when opened."""
    path = tmp_path / "cancelsync.db"
    path.touch()
    path.chmod(0o644)
    Store.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_store_uses_wal(file_store: Store) -> None:
    """A file database runs in WAL mode with a busy timeout."""
    assert file_store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert file_store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    assert file_store.path is not None


def test_iso_stores_utc_with_seconds() -> None:
    """Timestamps are stored as ISO 8601 in UTC, whatever offset they came with."""
    paris = timezone(timedelta(hours=2))
    assert (
        iso(datetime(2026, 11, 1, 14, 0, 0, 999, tzinfo=paris))
        == "2026-11-01T12:00:00+00:00"
    )
    assert iso(T0) == "2026-11-01T12:00:00+00:00"


# --------------------------------------------------------------------------- cursors


def test_cursor_starts_empty_and_advances(store: Store, clock: FakeClock) -> None:
    """A new scope has no cursor; advance stores it and get returns it."""
    assert store.cursors.get(SCOPE, "cancellations") is None
    cursor = store.cursors.advance(SCOPE, "cancellations", 1000, clock.now(), tie="576")
    assert store.cursors.get(SCOPE, "cancellations") == cursor
    assert (cursor.position, cursor.tie) == (1000, "576")
    assert store.cursors.all(SCOPE) == [cursor]
    assert store.cursors.all("shop:other") == []


def test_cursor_equal_advance_is_a_no_op(store: Store, clock: FakeClock) -> None:
    """Advancing to the current value changes nothing."""
    first = store.cursors.advance(SCOPE, "memos", 10, clock.now())
    assert store.cursors.advance(SCOPE, "memos", 10, clock.now()) == first


@pytest.mark.parametrize(
    ("start", "back"),
    [((100, ""), (99, "")), ((100, "5"), (100, "4")), ((100, "5"), (100, "")),
     ((100, "abc"), (100, "abb")), ((100, "abc"), (99, "zzz"))],
)  # fmt: skip
def test_cursor_refuses_to_move_backwards(
    store: Store, start: tuple[int, str], back: tuple[int, str]
) -> None:
    """A backwards move raises CursorRegressionError and leaves the cursor where it was."""
    store.cursors.advance(SCOPE, "s", start[0], T0, tie=start[1])
    with pytest.raises(CursorRegressionError, match="would move back"):
        store.cursors.advance(SCOPE, "s", back[0], T0, tie=back[1])
    cursor = store.cursors.get(SCOPE, "s")
    assert cursor is not None
    assert (cursor.position, cursor.tie) == start


def test_numeric_ties_compare_as_numbers(store: Store) -> None:
    """Tie-breaker ids are compared as numbers: id 10 comes after id 9."""
    store.cursors.advance(SCOPE, "s", 100, T0, tie="9")
    assert store.cursors.advance(SCOPE, "s", 100, T0, tie="10").tie == "10"
    with pytest.raises(CursorRegressionError):
        store.cursors.advance(SCOPE, "s", 100, T0, tie="9")


def test_cursors_are_separate_per_scope_and_stream(store: Store) -> None:
    """Each (scope, stream) pair has its own cursor."""
    store.cursors.advance(SCOPE, "a", 50, T0)
    store.cursors.advance(SCOPE, "b", 5, T0)
    store.cursors.advance("shop:2", "a", 1, T0)
    assert [(c.stream, c.position) for c in store.cursors.all(SCOPE)] == [
        ("a", 50),
        ("b", 5),
    ]


_ties = st.one_of(
    st.just(""),
    st.integers(0, 10**19).map(str),
    st.text("abcxyz_", min_size=1, max_size=4),
)


@given(st.lists(st.tuples(st.integers(0, 2**40), _ties), max_size=30))
def test_cursor_never_decreases(moves: list[tuple[int, str]]) -> None:
    """Whatever sequence of advances is attempted, the stored position never goes down."""
    s = Store.memory()
    try:
        highest = -1
        for position, tie in moves:
            before = s.cursors.get(SCOPE, "s")
            try:
                s.cursors.advance(SCOPE, "s", position, T0, tie=tie)
            except CursorRegressionError:
                assert before is not None
                assert position <= before.position
                assert s.cursors.get(SCOPE, "s") == before
            cursor = s.cursors.get(SCOPE, "s")
            assert cursor is not None
            assert cursor.position >= highest
            if before is not None and position > before.position:
                assert cursor.position == position
            highest = cursor.position
    finally:
        s.close()


def test_direction_switches_store_only_changes(store: Store, clock: FakeClock) -> None:
    """A direction noted off every cycle is stored once; the last row tells its state."""
    assert store.switches.last(SCOPE, "tiktok_to_magento") is None
    assert store.switches.note(SCOPE, "tiktok_to_magento", enabled=False, now=T0)
    assert not store.switches.note(
        SCOPE, "tiktok_to_magento", enabled=False, now=clock.advance(60)
    )
    assert store.switches.last(SCOPE, "tiktok_to_magento") == DirectionSwitch(
        SCOPE, "tiktok_to_magento", False, iso(T0)
    )
    assert store.switches.note(
        SCOPE, "tiktok_to_magento", enabled=True, now=clock.advance(60)
    )
    assert store.switches.note(SCOPE, "magento_to_tiktok", enabled=True, now=T0)
    assert store.switches.note("shop:2", "tiktok_to_magento", enabled=False, now=T0)
    assert [(s.direction, s.enabled) for s in store.switches.history(SCOPE)] == [
        ("tiktok_to_magento", False), ("tiktok_to_magento", True),
        ("magento_to_tiktok", True),
    ]  # fmt: skip
    last = store.switches.last(SCOPE, "tiktok_to_magento")
    assert last is not None
    assert (last.enabled, last.at) == (True, iso(clock.now()))


# --------------------------------------------------------------------------- ledger


def test_ledger_begin_twice_returns_the_same_row(
    store: Store, clock: FakeClock
) -> None:
    """The idempotency key is unique: a second begin returns the stored row, unchanged."""
    first = store.ledger.begin(
        "refund:7495:c1", scope=SCOPE, store_name="us-main", direction="d",
        action="magento_refund", now=clock.now(), tiktok_order_id="576", payload={"n": 1},
    )  # fmt: skip
    clock.advance(60)
    second = store.ledger.begin(
        "refund:7495:c1", scope=SCOPE, store_name="us-main", direction="d",
        action="magento_refund", now=clock.now(), state="done", tiktok_order_id="other",
    )  # fmt: skip
    assert second == first
    assert second.state == "pending"
    assert second.payload_dict() == {"n": 1}
    assert store.db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 1


def test_ledger_begin_rejects_bad_state_and_fields(store: Store) -> None:
    """An unknown state or id column is refused before anything is written."""
    with pytest.raises(ValueError, match="unknown ledger state"):
        begin(store, "k1", state="maybe")
    with pytest.raises(TypeError, match="unknown ledger fields"):
        begin(store, "k2", tiktok_id="1")
    assert store.ledger.get("k1") is None


def test_ledger_update_changes_columns(store: Store, clock: FakeClock) -> None:
    """update() sets the given columns, stamps updated_at and returns the new row."""
    begin(store, "k", tiktok_order_id="576", magento_increment_id="000000042")
    clock.advance(30)
    retry_at = clock.now() + timedelta(minutes=5)
    entry = store.ledger.update(
        "k", clock.now(), state="failed", attempts=1, last_error="HTTP 503",
        next_attempt_at=retry_at, payload={"qty": 2},
    )  # fmt: skip
    assert entry.state == "failed"
    assert entry.attempts == 1
    assert entry.last_error == "HTTP 503"
    assert entry.next_attempt_at == iso(retry_at)
    assert entry.payload_dict() == {"qty": 2}
    assert entry.updated_at == iso(clock.now())
    assert entry.created_at == iso(T0)


def test_ledger_update_keeps_unset_columns_and_clears_none(
    store: Store, clock: FakeClock
) -> None:
    """A column left UNSET keeps its value; None stores NULL; reason_code is updatable."""
    begin(
        store, "k", reason="first", reason_code="not_imported", magento_creditmemo_id=7
    )
    store.ledger.update("k", T0, state="failed", next_attempt_at=clock.now(),
                        last_error="HTTP 503", remote_id="r-1")  # fmt: skip
    entry = store.ledger.update(
        "k", clock.advance(5), next_attempt_at=None, last_error=None,
        reason_code="shipped", magento_creditmemo_id=UNSET,
    )  # fmt: skip
    assert (entry.state, entry.reason, entry.reason_code) == (
        "failed", "first", "shipped",
    )  # fmt: skip
    assert (entry.next_attempt_at, entry.last_error, entry.remote_id) == (
        None, None, "r-1",
    )  # fmt: skip
    assert entry.magento_creditmemo_id == 7
    assert entry.updated_at == iso(clock.now())


def test_ledger_update_refuses_bad_input(store: Store) -> None:
    """update() rejects unknown states, unknown or key columns, and unknown rows."""
    begin(store, "k")
    with pytest.raises(ValueError, match="unknown ledger state"):
        store.ledger.update("k", T0, state="gone")
    with pytest.raises(TypeError):
        store.ledger.update("k", T0, colour="red")
    with pytest.raises(TypeError):
        store.ledger.update("k", T0, idempotency_key="other")
    with pytest.raises(KeyError):
        store.ledger.update("missing", T0, state="done")


def test_ledger_due_returns_open_rows_whose_time_has_come(
    store: Store, clock: FakeClock
) -> None:
    """Pending rows and failed rows past next_attempt_at are due; others are not."""
    now = clock.now()
    begin(store, "pending")
    begin(store, "failed-now", state="failed")
    store.ledger.update("failed-now", now, next_attempt_at=now - timedelta(seconds=1))
    begin(store, "failed-later", state="failed")
    store.ledger.update("failed-later", now, next_attempt_at=now + timedelta(hours=1))
    begin(store, "done", state="done")
    begin(store, "attention", state="needs_attention")
    begin(store, "other-scope", scope="shop:other")
    assert [e.idempotency_key for e in store.ledger.due(SCOPE, now)] == [
        "pending",
        "failed-now",
    ]
    later = now + timedelta(hours=1)
    assert [e.idempotency_key for e in store.ledger.due(SCOPE, later)] == [
        "pending", "failed-now", "failed-later",
    ]  # fmt: skip


def test_ledger_requeue_one_or_all(store: Store, clock: FakeClock) -> None:
    """requeue() puts failed / needs-attention rows back to pending, one or all."""
    a = begin(store, "a", state="failed")
    begin(store, "b", state="needs_attention")
    done = begin(store, "c", state="done")
    store.ledger.update("a", clock.now(), attempts=4, reported_run="run-1",
                        next_attempt_at=clock.now() + timedelta(days=1))  # fmt: skip
    assert store.ledger.requeue(clock.now(), done.action_id) == 0
    assert store.ledger.requeue(clock.now(), a.action_id) == 1
    entry = store.ledger.get("a")
    assert entry is not None
    assert (entry.state, entry.attempts, entry.next_attempt_at, entry.reported_run) == (
        "pending", 0, None, None,
    )  # fmt: skip
    assert store.ledger.requeue(clock.now()) == 1
    assert store.ledger.counts(SCOPE) == {
        "pending": 2, "done": 1, "skipped": 0, "failed": 0, "needs_attention": 0,
    }  # fmt: skip


def test_ledger_counts_and_lookups(store: Store) -> None:
    """counts() covers every state; lookups find rows by id, state and order."""
    assert store.ledger.counts(SCOPE) == dict.fromkeys(
        ("pending", "done", "skipped", "failed", "needs_attention"), 0
    )
    first = begin(store, "a", tiktok_order_id="576", magento_entity_id=42)
    begin(store, "b", state="skipped", magento_increment_id="000000042")
    begin(store, "c", state="needs_attention", tiktok_order_id="577")
    assert store.ledger.counts(SCOPE)["skipped"] == 1
    assert store.ledger.get_by_id(first.action_id) == first
    assert store.ledger.get_by_id(999) is None
    assert [
        e.idempotency_key for e in store.ledger.in_state(SCOPE, "needs_attention")
    ] == ["c"]
    assert [e.idempotency_key for e in store.ledger.for_order("576")] == ["a"]
    assert [e.idempotency_key for e in store.ledger.for_order("000000042")] == ["b"]
    assert [e.idempotency_key for e in store.ledger.for_tiktok_order("577")] == ["c"]
    assert [e.idempotency_key for e in store.ledger.for_magento_order(42)] == ["a"]


def test_reason_code_counts_by_scope_and_state(store: Store) -> None:
    """reason_code_counts() counts coded rows of a scope, in one state or in any."""
    assert store.ledger.reason_code_counts(SCOPE) == {}
    begin(store, "a", state="skipped", reason_code="not_imported")
    begin(store, "b", state="skipped", reason_code="not_imported")
    begin(store, "c", state="needs_attention", reason_code="shipped")
    begin(store, "d", state="skipped", reason="no code")
    begin(store, "e", state="skipped", reason_code="echo", scope="shop:other")
    assert store.ledger.reason_code_counts(SCOPE) == {"not_imported": 2, "shipped": 1}
    assert store.ledger.reason_code_counts(SCOPE, "skipped") == {"not_imported": 2}
    assert store.ledger.reason_code_counts(SCOPE, "done") == {}
    assert store.ledger.get("a").reason_code == "not_imported"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- links


def test_links_are_found_by_either_id(store: Store) -> None:
    """A saved link is found by TikTok order id, Magento entity id or increment id."""
    link = Link("576", SCOPE, 42, "000000042", 1)
    store.links.save(link, T0)
    assert store.links.find_link("576") == link
    assert store.links.find_by_magento(42) == link
    assert store.links.find_by_increment("000000042") == link
    assert store.links.find_link("nope") is None


def test_saving_the_same_link_twice_is_fine(store: Store) -> None:
    """Saving an identical link again is a no-op."""
    link = Link("576", SCOPE, 42, "000000042", None)
    store.links.save(link, T0)
    store.links.save(link, T0)
    assert store.db.execute("SELECT COUNT(*) FROM links").fetchone()[0] == 1


def test_links_are_unique_on_the_tiktok_id(store: Store) -> None:
    """A TikTok order already linked to another Magento order cannot be re-linked."""
    store.links.save(Link("576", SCOPE, 42, "000000042", None), T0)
    with pytest.raises(LinkConflictError, match="TikTok order 576 is already linked"):
        store.links.save(Link("576", SCOPE, 43, "000000043", None), T0)
    assert store.links.find_by_magento(43) is None


def test_links_are_unique_on_the_magento_id(store: Store) -> None:
    """A Magento order already linked to another TikTok order cannot be re-linked."""
    store.links.save(Link("576", SCOPE, 42, "000000042", None), T0)
    with pytest.raises(LinkConflictError, match="Magento order 42 is already linked"):
        store.links.save(Link("999", SCOPE, 42, "000000042", None), T0)
    assert store.links.find_link("999") is None


# --------------------------------------------------------------------------- tokens / shops


def test_tokens_save_get_and_overwrite(store: Store, clock: FakeClock) -> None:
    """Both tokens and the seed fingerprint are stored together and replaced together."""
    assert store.tokens.get(SCOPE) is None
    seed = seed_fingerprint("seed-at", "seed-rt")
    pair = TokenPair("at-1", "rt-1", access_token_expire_at=1_800_000_000)
    store.tokens.save(SCOPE, pair, seed, clock.now())
    assert store.tokens.get(SCOPE) == (pair, seed)
    rotated = TokenPair("at-2", "rt-2", 1_800_100_000, 1_900_000_000)
    store.tokens.save(SCOPE, rotated, seed, clock.now())
    assert store.tokens.get(SCOPE) == (rotated, seed)


def test_tokens_mark_auth_failed_and_rename(store: Store) -> None:
    """A failed auth is remembered; a provisional row can be re-keyed once."""
    store.tokens.save("store:us-main", TokenPair("at", "rt"), None, T0)
    store.tokens.mark_auth_failed("store:us-main", "refresh token expired", T0)
    stored = store.tokens.get("store:us-main")
    assert stored is not None
    assert (stored[0].auth_status, stored[0].auth_error) == (
        "reauthorize",
        "refresh token expired",
    )
    store.tokens.rename("store:us-main", SCOPE)
    assert store.tokens.get("store:us-main") is None
    assert store.tokens.get(SCOPE) is not None
    store.tokens.save("store:us-main", TokenPair("new", "new-rt"), None, T0)
    store.tokens.rename("store:us-main", SCOPE)  # target exists: left alone
    kept = store.tokens.get(SCOPE)
    assert kept is not None
    assert kept[0].access_token == "at"


def test_seed_fingerprint() -> None:
    """The fingerprint is stable, changes with either token, hides them, and is None unset."""
    fp = seed_fingerprint("access-secret", "refresh-secret")
    assert fp == seed_fingerprint("access-secret", "refresh-secret")
    assert fp is not None
    assert len(fp) == 32
    assert "access-secret" not in fp
    assert fp != seed_fingerprint("access-secret", "refresh-other")
    assert fp != seed_fingerprint("access-other", "refresh-secret")
    assert seed_fingerprint("ab", "c") != seed_fingerprint("a", "bc")
    assert seed_fingerprint(None, None) is None
    assert seed_fingerprint("", "") is None
    assert seed_fingerprint(None, "rt") is not None


def test_shops_bind_and_rebind(store: Store) -> None:
    """A store name binds to one shop; binding again replaces it."""
    assert store.shops.get("us-main") is None
    store.shops.bind(ShopBinding("us-main", "7495", "ROW_x", "US", "My Shop"), T0)
    store.shops.bind(ShopBinding("us-main", "7495", "ROW_y", "US", None), T0)
    assert store.shops.get("us-main") == ShopBinding(
        "us-main", "7495", "ROW_y", "US", None
    )


# --------------------------------------------------------------------------- history


def test_cycles_last_returns_the_latest(store: Store, clock: FakeClock) -> None:
    """cycles.last() returns the most recent cycle of a scope with its counts."""
    assert store.cycles.last(SCOPE) is None
    for outcome in ("ok", "failed"):
        store.cycles.record(
            run_id=f"run-{outcome}", scope=SCOPE, store_name="us-main",
            started_at=clock.now(), finished_at=clock.advance(5), outcome=outcome,
            counts={"seen": 3}, error="boom" if outcome == "failed" else None,
        )  # fmt: skip
    last = store.cycles.last(SCOPE)
    assert last is not None
    assert (last.run_id, last.outcome, last.counts, last.error) == (
        "run-failed", "failed", {"seen": 3}, "boom",
    )  # fmt: skip


def test_timeline_for_order_matches_any_id(store: Store) -> None:
    """Timeline events are found by TikTok id, Magento increment id or entity id; datetimes
    in details are stored like every other timestamp."""
    store.timeline.add(at=T0, scope=SCOPE, kind="seen", message="cancel seen",
                       tiktok_order_id="576", details={"reason": "buyer"})  # fmt: skip
    store.timeline.add(at=T0, scope=SCOPE, kind="done", message="refunded",
                       magento_entity_id=42, action_id=1)  # fmt: skip
    store.timeline.add(
        at=T0, scope=SCOPE, kind="other", message="x", tiktok_order_id="999"
    )
    store.timeline.add(at=T0, scope=SCOPE, kind="failed", message="later",
                       magento_entity_id=42, details={"next_attempt_at": T0})  # fmt: skip
    events = store.timeline.for_order("576", 42, "576")
    assert [(e.kind, e.action_id) for e in events] == [
        ("seen", None), ("done", 1), ("failed", None),
    ]  # fmt: skip
    assert events[0].details == {"reason": "buyer"}
    assert events[2].details == {"next_attempt_at": iso(T0)}
    assert store.timeline.for_order(None, None, "nothing") == []


# --------------------------------------------------------------------------- unit of work


def test_unit_of_work_commits_together(store: Store) -> None:
    """Everything written inside a successful unit of work is kept."""
    with store.unit_of_work() as uow:
        begin(uow, "k")
        uow.cursors.advance(SCOPE, "s", 10, T0)
    assert store.ledger.get("k") is not None
    assert store.cursors.get(SCOPE, "s") is not None


def failing_page(store: Store, key: str = "k") -> None:
    """Write a ledger row, a link and a cursor move in one unit, then fail."""
    with store.unit_of_work():
        begin(store, key)
        store.links.save(Link("576", SCOPE, 42, None, None), T0)
        store.cursors.advance(SCOPE, "s", 10, T0)
        raise RuntimeError("page failed")


def test_unit_of_work_rolls_back_ledger_cursor_and_links_together(store: Store) -> None:
    """An exception inside a unit of work leaves no ledger row, cursor move or link behind."""
    store.cursors.advance(SCOPE, "s", 5, T0)
    with pytest.raises(RuntimeError, match="page failed"):
        failing_page(store)
    assert store.ledger.get("k") is None
    assert store.links.find_link("576") is None
    cursor = store.cursors.get(SCOPE, "s")
    assert cursor is not None
    assert cursor.position == 5


def test_nested_unit_of_work_rolls_back_only_itself(store: Store) -> None:
    """A failed inner unit (a savepoint) undoes its own writes, not the outer unit's."""

    def inner() -> None:
        with store.unit_of_work():
            begin(store, "inner")
            store.cursors.advance(SCOPE, "s", 10, T0)
            store.cursors.advance(SCOPE, "s", 9, T0)

    with store.unit_of_work():
        begin(store, "outer")
        with pytest.raises(CursorRegressionError):
            inner()
    assert store.ledger.get("outer") is not None
    assert store.ledger.get("inner") is None
    assert store.cursors.get(SCOPE, "s") is None


def test_unit_of_work_is_atomic_on_disk(tmp_path: Path) -> None:
    """A rolled-back unit is invisible to another connection to the same file."""
    path = tmp_path / "cancelsync.db"
    writer = Store.open(path)
    reader = Store.open(path)
    try:
        with pytest.raises(RuntimeError):
            failing_page(writer)
        with writer.unit_of_work():
            begin(writer, "kept")
        assert reader.ledger.get("k") is None
        assert reader.cursors.get(SCOPE, "s") is None
        assert reader.links.find_link("576") is None
        assert reader.ledger.get("kept") is not None
    finally:
        reader.close()
        writer.close()


# --------------------------------------------------------------------------- resolve, page


def test_ledger_resolve_closes_only_a_needs_attention_row(
    store: Store, clock: FakeClock
) -> None:
    """resolve() makes a needs-attention row done with the note; other rows are untouched."""
    open_item = begin(store, "open", state="needs_attention", reason="order on hold")
    failed = begin(store, "failed", state="failed")
    later = clock.advance(60)
    resolved = store.ledger.resolve(open_item.action_id, "refunded by hand", later)
    assert resolved is not None
    assert (resolved.state, resolved.reason_code, resolved.reason) == (
        "done", RESOLVED_CODE, "refunded by hand",
    )  # fmt: skip
    assert resolved.updated_at == iso(later)
    assert store.ledger.resolve(open_item.action_id, "again", later) is None
    assert store.ledger.resolve(failed.action_id, "no", later) is None
    assert store.ledger.resolve(999, "no", later) is None
    assert store.ledger.get("failed") == failed


def test_resolved_row_is_never_due_nor_requeued(store: Store, clock: FakeClock) -> None:
    """A resolved row is neither due for the retry pass nor put back by retry --all."""
    item = begin(store, "open", state="needs_attention")
    store.ledger.resolve(item.action_id, "done by hand", clock.now())
    assert store.ledger.requeue(clock.now()) == 0
    assert store.ledger.requeue(clock.now(), item.action_id) == 0
    assert store.ledger.due(SCOPE, clock.now() + timedelta(days=365)) == []
    entry = store.ledger.get_by_id(item.action_id)
    assert entry is not None
    assert entry.state == "done"


def test_ledger_page_is_newest_first_with_filters_and_a_total(
    store: Store, clock: FakeClock
) -> None:
    """page() lists rows by last change, newest first, filtered, with the full count."""
    for n in range(5):
        begin(store, f"k{n}", now=T0 + timedelta(minutes=n),
              state="done" if n % 2 == 0 else "skipped")  # fmt: skip
    begin(store, "elsewhere", now=T0 + timedelta(hours=1), scope="shop:other")
    rows, total = store.ledger.page(scopes=[SCOPE], limit=2)
    assert ([e.idempotency_key for e in rows], total) == (["k4", "k3"], 5)
    rows, total = store.ledger.page(scopes=[SCOPE], limit=2, offset=4)
    assert ([e.idempotency_key for e in rows], total) == (["k0"], 5)
    rows, total = store.ledger.page(states=["skipped"])
    assert ([e.idempotency_key for e in rows], total) == (["k3", "k1"], 2)
    rows, total = store.ledger.page()
    assert (rows[0].idempotency_key, total) == ("elsewhere", 6)
    assert store.ledger.page(scopes=[]) == ([], 0)
