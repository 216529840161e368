"""Direction B: TikTok cancellations → Magento refunds (default on).

Discovery: search cancellations updated in ``[cursor - overlap, run start)`` ascending by update
time (a brand-new store or a newly enabled direction starts ``first_run_lookback_hours``
back). Each page: find the linked Magento orders (links first, then one batched lookup by the
configured field), read the TikTok orders' detail (is the whole order cancelled now?), gather
the facts, let the pure rules decide, let the engine apply (each event commits its own ledger
row, before any write), and only then move the cursor past the page. Why that order is safe
is said once, in ``cancelsync.store``. Keys: ``refund:<shop id>:<cancel id>``.

Each cancellation is handled in its own ``event_scope``: an error while handling it is its
failure (kept in the ledger for the retry pass), never the page's. When a page's batched
reads fail (one bad order can fail a whole batch), each event reads its own order and link,
so the failure lands on the event that causes it and the cursor still moves on.

The cursor moves once, after the search (``cancelsync.sync.scan``): to the window's end, or
only as far as a search capped at ``MAX_SCAN_PAGES`` got, and never past a record that no
ledger row remembers: such a record holds it. The order-search cross-check runs every
``cross_check_interval_seconds`` (and on every fresh window) with a cursor of its own, over
everything since its last run, so an idle cycle costs one call.

A page's reads are batched (``cancelsync.sync.reads``): one Magento order search (link
resolution's search results are whole orders and are kept), one TikTok detail call, and the
credit memos of the orders that show a refund (the marker check) in one more search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from cancelsync.clock import to_epoch
from cancelsync.directions import Direction
from cancelsync.errors import (
    ApiError,
    AuthError,
    DataError,
    FatalApiError,
    NotFoundError,
)
from cancelsync.models import (
    MagentoCreditMemo,
    MagentoOrder,
    TikTokCancellation,
    TikTokOrder,
    Unreadable,
)
from cancelsync.rules import tiktok_to_magento as rules
from cancelsync.rules.decisions import (
    Apply,
    Attention,
    MagentoCancelPlan,
    Plan,
    RefundPlan,
    has_marker,
)
from cancelsync.store import LedgerEntry, Link, LinkConflictError
from cancelsync.sync import seen
from cancelsync.sync.engine import Engine, Event
from cancelsync.sync.holds import Holds
from cancelsync.sync.ports import MagentoPort, TikTokPort
from cancelsync.sync.reads import BatchedReads
from cancelsync.sync.scan import CursorScan, unkeyed

DIRECTION = Direction.TIKTOK_TO_MAGENTO
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How far the order-search cross-check got (update_time, Unix seconds), and so when.
CROSS_CHECK_STREAM = "tiktok.cancelled_orders"
_T = TypeVar("_T")


def refund_key(shop_id: str, cancel_id: str) -> str:
    return f"refund:{shop_id}:{cancel_id}"


class TikTokToMagento:
    def __init__(
        self, engine: Engine, *, shop_id: str, magento: MagentoPort, tiktok: TikTokPort
    ) -> None:
        self.engine = engine
        self.shop_id = shop_id
        self.magento = magento
        self.tiktok = tiktok
        self.settings = engine.cfg.tiktok_cancel_to_magento_refund
        self.store = engine.store
        # Orders whose cancellation was decided this cycle (a dry run records nothing).
        self._decided_orders: set[str] = set()
        # The page's Magento orders and (for orders showing a refund) their credit memos,
        # each read in one batch per page (``cancelsync.sync.reads``).
        self._orders: BatchedReads[int, MagentoOrder] = BatchedReads(
            engine, "magento orders",
            lambda ids: self.magento.orders_by_entity_ids(ids), self._order_or_none,
        )  # fmt: skip
        self._memos: BatchedReads[int, list[MagentoCreditMemo]] = BatchedReads(
            engine, "magento credit memos",
            lambda ids: self.magento.credit_memos_for_orders(ids),
            lambda i: self.magento.credit_memos_for_order(i),
        )  # fmt: skip
        # hold_on_request: pending buyer requests hold the Magento order.
        self.holds = Holds(engine, shop_id=shop_id, magento=magento,
                           read_order=self._orders.get, forget_order=self._orders.forget)  # fmt: skip

    # ------------------------------------------------------------------ discovery

    def window(self) -> tuple[int, int, bool]:
        """``(update_time_ge, update_time_lt, fresh)`` for this cycle."""
        now = self.engine.report.started_at
        # update_time has 1-second resolution: include the run's own second; anything
        # stamped in it later is re-read next cycle through the overlap.
        end = to_epoch(now) + 1
        worker = self.engine.worker
        lookback = to_epoch(now - timedelta(hours=worker.first_run_lookback_hours))
        position, fresh = self.engine.cursor(DIRECTION)
        if position is None:
            return lookback, end, True
        if fresh:
            return max(lookback, position), end, True
        return max(0, position - worker.overlap_seconds), end, False

    def note_disabled(self) -> None:
        """Remember the direction was off, so turning it on starts at the lookback."""
        self.engine.note_direction(DIRECTION, enabled=False)

    def run(self, backfill_since: int | None = None) -> None:
        """``backfill_since`` (``run --once --since``): the search starts there when that
        is earlier; the cursor still only moves forward and the ledger skips what was
        decided already."""
        ge, lt, fresh = self.window()
        if backfill_since is not None:
            ge = min(ge, backfill_since)
        self.engine.log.info(
            "tiktok.scan", update_time_ge=ge, update_time_lt=lt, fresh=fresh
        )
        stored, _ = self.engine.cursor(DIRECTION)
        scan = CursorScan(self.engine, DIRECTION, start=ge, stored=stored)
        pages = self.tiktok.search_cancellations(
            update_time_ge=ge,
            update_time_lt=lt,
            sort_field="update_time",
            sort_order="ASC",
        )
        for page in scan.pages(pages, "cancellations"):
            self.process_page(page)
            scan.read([to_epoch(c.update_time) for c in page], unkeyed(page))
        # A capped search read up to where it stopped: the orders are checked up to there.
        end = scan.end(lt)
        # The window's actions (still in flight across pages) are recorded first; then
        # the cursor moves to where the window was read (or as far as the cap and holds
        # allow): the next cycle starts there, minus the overlap.
        self.engine.drain()
        self._advance_to(scan.finish(lt))
        self.recheck_not_imported()
        since = self._cross_check_since(ge, end, fresh)
        if since is not None:
            self.cross_check_orders(since, end)
        if fresh:
            self.engine.note_direction(DIRECTION, enabled=True)

    def _cross_check_since(self, ge: int, end: int, fresh: bool) -> int | None:
        """Where a cross-check due now starts (``None``: not due this cycle).

        It runs every ``cross_check_interval_seconds``, always on a fresh window, and
        covers everything since the last one (less the overlap): its own cursor stream
        remembers how far it got.
        """
        position = self.engine.stream_position(CROSS_CHECK_STREAM)
        if fresh or position is None:
            return ge
        worker = self.engine.worker
        if end - position < worker.cross_check_interval_seconds:
            return None
        return max(0, position - worker.overlap_seconds)

    def cross_check_orders(self, ge: int, lt: int) -> None:
        """Orders TikTok shows CANCELLED whose cancellation record was never seen.

        The reference names order search as the fallback behind cancellation search;
        it runs on its own, slower cadence (``_cross_check_since``), so an idle cycle
        costs one call. Such an order is decided as a whole-order cancellation under the
        key ``refund:<shop>:order-<order id>``; if its record turns up later, Magento
        already shows the refund and that decision is Done, so nothing is refunded
        twice. An order it cannot read, of which no cancellation was decided, holds the
        cross-check's cursor (so it is read again at the next cross-check).
        """
        stored = self.engine.stream_position(CROSS_CHECK_STREAM)
        scan = CursorScan(self.engine, DIRECTION, start=ge, stored=stored,
                          stream=CROSS_CHECK_STREAM)  # fmt: skip
        self.engine.log.info("tiktok.cross_check", update_time_ge=ge, update_time_lt=lt)
        pages = self.tiktok.search_orders(
            update_time_ge=ge, update_time_lt=lt, order_status="CANCELLED"
        )
        for page in scan.pages(pages, "cancelled orders"):
            scan.read(
                [to_epoch(o.update_time) for o in page],
                [bad for bad in getattr(page, "unreadable", ())
                 if self._unreadable_order(bad)],
            )  # fmt: skip
            todo = [
                o for o in page
                if o.status == "CANCELLED" and not self._order_known(o.tiktok_order_id)
            ]  # fmt: skip
            if not todo:
                continue
            self._new_page()
            links = self._batched(
                lambda ids: self.resolve_links(ids),
                sorted({o.tiktok_order_id for o in todo}),
            )
            self._prefetch_magento(links)
            for order in todo:
                self.engine.check_stop()
                self.engine.report.counts["seen_without_record"] += 1
                self.engine.log.warning(
                    "tiktok.order.cancelled_without_record",
                    tiktok_order_id=order.tiktok_order_id,
                )
                self._handle(
                    _whole_order_cancellation(order),
                    links,
                    {order.tiktok_order_id: order},
                )
        self.engine.drain()
        self.engine.advance_cursor(
            DIRECTION, scan.finish(lt), stream=CROSS_CHECK_STREAM
        )

    def recheck_not_imported(self, tiktok_order_id: str | None = None) -> None:
        """Cancellations recorded "never imported" in the last ``import_wait_hours``,
        looked up in Magento again (one batched search): an importer that ran late
        may have brought the order over since, still live, and it must not ship.

        A found one is re-opened and decided afresh like a retry (its TikTok record is
        read again; the engine re-reads Magento before writing). Past the wait a row
        stays skipped and costs nothing; ``resync`` (``tiktok_order_id``) looks that one
        order up whatever its age.
        """
        hours = self.engine.worker.import_wait_hours
        if tiktok_order_id is None and not hours:
            return
        since = self.engine.clock.now() - timedelta(hours=hours)
        waiting = [
            e for e in self.store.ledger.waiting_for_import(
                self.engine.scope, since if tiktok_order_id is None else EPOCH
            )
            if e.tiktok_order_id and e.direction == DIRECTION
            and tiktok_order_id in (None, e.tiktok_order_id)
        ]  # fmt: skip
        if not waiting:
            return
        order_ids = sorted({e.tiktok_order_id for e in waiting if e.tiktok_order_id})
        found = self._batched(self.magento.orders_by_tiktok_ids, order_ids)
        if found is None:
            return  # logged; looked up again next cycle
        self._new_page()
        store_ids = set(self.engine.cfg.magento_store_ids)
        for entry in waiting:
            orders = found.get(entry.tiktok_order_id or "", [])
            if store_ids:  # another store view's order is not this store's to refund
                orders = [o for o in orders if o.store_id in store_ids]
            if orders:
                self._imported_late(entry, orders)
        self.engine.drain()

    def _imported_late(self, entry: LedgerEntry, orders: list[MagentoOrder]) -> None:
        """Re-open a row that waited for its order's import and decide it again; its
        failure is that row's (its own key, also for a hold row)."""
        one = orders[0] if len(orders) == 1 else None  # several: the rules say so
        self.engine.report.counts["imported_late"] += 1
        self.engine.log.info(
            "cancellation.imported_late", key=entry.idempotency_key,
            tiktok_order_id=entry.tiktok_order_id,
        )  # fmt: skip
        event = Event.of(entry)
        self.engine.wait_for(event.ids)
        with self.engine.event_scope(event):
            if not self.engine.dry_run:
                with self.store.unit_of_work():
                    self.store.ledger.reopen(
                        entry.idempotency_key, self.engine.clock.now(),
                        magento_entity_id=one.magento_entity_id if one else None,
                        magento_increment_id=one.magento_increment_id if one else None,
                    )  # fmt: skip
            self.retry(entry.payload_dict())

    def _order_known(self, tiktok_order_id: str) -> bool:
        """A cancellation of this order was decided (now or in an earlier cycle)."""
        if tiktok_order_id in self._decided_orders:
            return True
        return any(
            entry.direction == DIRECTION
            for entry in self.store.ledger.for_tiktok_order(tiktok_order_id)
        )

    def _advance_to(self, position: int) -> None:
        self.engine.advance_cursor(DIRECTION, position)

    # ------------------------------------------------------------------ one page

    def process_page(self, page: list[TikTokCancellation]) -> None:
        for bad in getattr(page, "unreadable", ()):
            self._unreadable(bad)
        todo: list[TikTokCancellation] = []
        seen: set[str] = set()
        for c in page:
            if c.cancel_id in seen:
                continue  # duplicated across pages
            seen.add(c.cancel_id)
            self.engine.report.counts["seen"] += 1
            if not c.accepted:
                # Pending and withdrawn requests: work only for holds (``sync.holds``).
                if self.holds.needs_work(c):
                    todo.append(c)
                continue
            if self.engine.entry(refund_key(self.shop_id, c.cancel_id)) is not None:
                continue  # decided before (final) or owned by the retry pass
            todo.append(c)
        if not todo:
            return
        self._new_page()
        order_ids = sorted({c.tiktok_order_id for c in todo})
        links, details = self._page_reads(order_ids)
        self._prefetch_magento(links)
        for c in todo:
            self.engine.check_stop()
            self._handle(c, links, details)

    def _page_reads(
        self, order_ids: list[str]
    ) -> tuple[dict[str, Link | rules.LinkFacts] | None, dict[str, TikTokOrder] | None]:
        """The page's links and TikTok order details, the two searches at once (with
        actions in flight); a failed one is ``None`` (each event reads its own)."""
        links, missing = self._stored_links(order_ids)
        (found, found_error), (orders, orders_error) = self.engine.flights.together(
            partial(self.magento.orders_by_tiktok_ids, missing) if missing else dict,
            partial(self._details, order_ids),
        )
        if not self._page_read_failed(found_error, len(missing)):
            links.update(self._found_links(missing, found))
        details = None
        if not self._page_read_failed(orders_error, len(order_ids)):
            details = {o.tiktok_order_id: o for o in orders}
        return (None if found_error else links), details

    def _page_read_failed(self, error: BaseException | None, orders: int) -> bool:
        """Whether a page's batched read failed (logged; each event then reads its
        own); an authorization error stops the store, a bug propagates."""
        if error is None:
            return False
        if isinstance(error, AuthError) or not isinstance(error, ApiError | DataError):
            raise error
        self.engine.log.warning(
            "page.batch_read_failed", orders=orders, error=str(error),
            error_type=type(error).__name__,
        )  # fmt: skip
        return True

    def _details(self, order_ids: list[str]) -> list[TikTokOrder]:
        return self.tiktok.get_orders(order_ids) if order_ids else []

    def _new_page(self) -> None:
        """Forget the last page's reads: each page reads its orders afresh."""
        self._orders.clear()
        self._memos.clear()

    def _prefetch_magento(
        self, links: dict[str, Link | rules.LinkFacts] | None
    ) -> None:
        """Read the page's linked Magento orders in one search (those link resolution
        just found are kept as they are), then the credit memos of the ones that show a
        refund (the marker check, ``_with_marker``) in one more. A failed batch leaves
        each event to read its own."""
        if links is None:
            return
        entity_ids = [
            link.magento_entity_id for link in links.values() if isinstance(link, Link)
        ]
        self._orders.prefetch(entity_ids)
        refunded = [
            i for i in entity_ids
            if (order := self._orders.cached(i)) is not None and _shows_refund(order)
        ]  # fmt: skip
        self._memos.prefetch(refunded)

    def _order_or_none(self, magento_entity_id: int) -> MagentoOrder | None:
        try:
            return self.magento.get_order(magento_entity_id)
        except NotFoundError:
            return None

    def _batched(
        self, read: Callable[[list[str]], dict[str, _T]], order_ids: list[str]
    ) -> dict[str, _T] | None:
        """One batched read for a page; ``None`` when it fails, so that each event then
        reads its own (one bad order must not stall the stream)."""
        try:
            return read(order_ids)
        except AuthError:
            raise
        except (ApiError, DataError) as exc:
            self.engine.log.warning(
                "page.batch_read_failed", orders=len(order_ids), error=str(exc),
                error_type=type(exc).__name__,
            )  # fmt: skip
            return None

    def _handle(
        self,
        c: TikTokCancellation,
        links: dict[str, Link | rules.LinkFacts] | None,
        details: dict[str, TikTokOrder] | None,
    ) -> None:
        """One cancellation in its own event scope, reading its order alone when the
        page's batched read failed (``None``), once no action of its order is in flight
        (so it decides on what that action did)."""
        oid = c.tiktok_order_id
        self.engine.wait_for({"tiktok_order_id": oid})
        event = self.event_for(c, None)
        if not c.accepted:  # an error is its hold's or its release's (``sync.holds``)
            event = self.holds.failure_event(c, event)
        with self.engine.event_scope(event):
            if links is None:
                links = self.resolve_links([oid])
            if details is None:
                details = {o.tiktok_order_id: o for o in self._details([oid])}
            self.process(c, links.get(oid), details.get(oid))

    def resolve_links(self, order_ids: list[str]) -> dict[str, Link | rules.LinkFacts]:
        """Each TikTok order id → its Link, or the facts of why there is none."""
        result, missing = self._stored_links(order_ids)
        if missing:
            result.update(
                self._found_links(missing, self.magento.orders_by_tiktok_ids(missing))
            )
        return result

    def _stored_links(
        self, order_ids: list[str]
    ) -> tuple[dict[str, Link | rules.LinkFacts], list[str]]:
        """The links this database has, and the order ids it has none for."""
        result: dict[str, Link | rules.LinkFacts] = {}
        missing = []
        for oid in order_ids:
            link = self.store.links.find_link(oid)
            if link is not None:
                result[oid] = link
            else:
                missing.append(oid)
        return result, missing

    def _found_links(
        self, missing: list[str], found: dict[str, list[MagentoOrder]]
    ) -> dict[str, Link | rules.LinkFacts]:
        """Link (and remember, in one commit) the orders Magento's search found for
        ``missing``."""
        result: dict[str, Link | rules.LinkFacts] = {}
        store_ids = set(self.engine.cfg.magento_store_ids)
        with self.store.unit_of_work():
            for oid in missing:
                orders = found.get(oid, [])
                if store_ids:
                    orders = [o for o in orders if o.store_id in store_ids]
                result[oid] = made = self._link_for(oid, orders)
                if isinstance(made, Link):
                    # A search result is the whole order (items included): no re-read.
                    self._orders.put(made.magento_entity_id, orders[0])
        return result

    def _link_for(
        self, tiktok_order_id: str, orders: list[MagentoOrder]
    ) -> Link | rules.LinkFacts:
        if not orders:
            return rules.LinkFacts(rules.LinkStatus.NOT_IMPORTED)
        if len(orders) > 1:
            numbers = ", ".join(f"#{o.magento_increment_id}" for o in orders)
            return rules.LinkFacts(rules.LinkStatus.AMBIGUOUS, numbers)
        o = orders[0]
        link = Link(tiktok_order_id, self.engine.scope, o.magento_entity_id,
                    o.magento_increment_id, o.store_id)  # fmt: skip
        if not self.engine.dry_run:
            try:
                with self.store.unit_of_work():
                    self.store.links.save(link, self.engine.clock.now())
            except LinkConflictError as exc:
                return rules.LinkFacts(rules.LinkStatus.CONFLICT, str(exc))
        return link

    def _bare_event(self, cancel_id: str, order_id: str | None) -> Event:
        ids = {"tiktok_cancel_id": cancel_id, "tiktok_order_id": order_id}
        return Event(refund_key(self.shop_id, cancel_id), DIRECTION, DIRECTION.default_action,
                     ids, {"tiktok_cancel_id": cancel_id})  # fmt: skip

    def _unreadable(self, bad: Unreadable) -> None:
        """A cancellation the mapper could not read: reported once, never dropped."""
        self.engine.report.counts["unreadable"] += 1
        if bad.item_id is None:
            # Without an id there is no key to remember it by: the log line and the
            # cycle's failure count make it visible, and it holds the cursor (``run``),
            # so it is re-read and reported every cycle until it is fixed.
            self.engine.report.failures += 1
            self.engine.log.error("tiktok.cancellation.unreadable", error=bad.error,
                                  update_time=bad.position)  # fmt: skip
            return
        key = refund_key(self.shop_id, bad.item_id)
        if self.engine.entry(key) is not None:
            return
        self.engine.record(
            self._bare_event(bad.item_id, None),
            Attention(f"TikTok sent a cancellation cancelsync cannot read ({bad.error}); "
                      "check it in Seller Center, then `cancelsync retry`"),
        )  # fmt: skip

    def _unreadable_order(self, bad: Unreadable) -> bool:
        """An order the cross-check cannot read: True (a failure, logged) unless a
        cancellation of it was decided already; it then holds the cursor (``run``)."""
        if bad.item_id is not None and self._order_known(bad.item_id):
            return False
        self.engine.report.counts["unreadable"] += 1
        self.engine.report.failures += 1
        self.engine.log.error("tiktok.order.unreadable", tiktok_order_id=bad.item_id,
                              error=bad.error, update_time=bad.position)  # fmt: skip
        return True

    # ------------------------------------------------------------------ one event

    def event_for(self, c: TikTokCancellation, link: Link | None) -> Event:
        ids: dict[str, Any] = {
            "tiktok_order_id": c.tiktok_order_id,
            "tiktok_cancel_id": c.cancel_id,
            "magento_entity_id": link.magento_entity_id if link else None,
            "magento_increment_id": link.magento_increment_id if link else None,
        }
        return Event(
            key=refund_key(self.shop_id, c.cancel_id),
            direction=DIRECTION,
            default_action=DIRECTION.default_action,
            ids=ids,
            payload={"tiktok_cancel_id": c.cancel_id, "tiktok_order_id": c.tiktok_order_id,
                     "role": c.role, "cancel_status": c.cancel_status,
                     "seen": seen.cancellation(c)},
        )  # fmt: skip

    def caused_by_us(self, c: TikTokCancellation) -> bool:
        """Our own seller cancel or a buyer request we approved: never echoed back."""
        for entry in self.store.ledger.for_tiktok_order(c.tiktok_order_id):
            if entry.direction != Direction.MAGENTO_TO_TIKTOK:
                continue
            if c.cancel_id in (entry.remote_id, entry.tiktok_cancel_id):
                return True
            if (
                c.role == "SELLER"
                and entry.action == "tiktok_cancel"
                and entry.state in ("pending", "failed", "done")
            ):
                return True  # our cancel whose id we never learned (crash / lost reply)
        return False

    def process(
        self,
        c: TikTokCancellation,
        link: Link | rules.LinkFacts | None,
        tiktok_order: TikTokOrder | None,
    ) -> None:
        """Gather the facts of one cancellation; the rules decide, the engine applies."""
        engine = self.engine
        resolved = link if isinstance(link, Link) else None
        event = seen.add(self.event_for(c, resolved), seen.tiktok_order(tiktok_order))
        entity_id = resolved.magento_entity_id if resolved else None
        link_facts = _link_facts(link)
        if not c.accepted:
            self.holds.on_request(c, event, entity_id, link_facts)
            return
        self._decided_orders.add(c.tiktok_order_id)
        # cancelsync's own hold comes off first, whatever is decided next (an echo of
        # our approval included): Magento refuses a credit memo on a held order.
        if entity_id is not None and not self.holds.released(c, event, entity_id):
            return
        facts = rules.CancellationFacts(c, self.caused_by_us(c), tiktok_order)
        early = rules.before_magento(facts, link_facts, self.settings)
        if early is not None or resolved is None:
            # Only a LINKED order gets this far without a decision.
            engine.record(event, early or rules.unlinked(link_facts))
            return
        order = self._orders.get(resolved.magento_entity_id)
        if order is None:
            gone = rules.LinkFacts(
                rules.LinkStatus.GONE, str(resolved.magento_entity_id)
            )
            engine.record(event, rules.unlinked(gone))
            return
        facts = self._with_marker(facts, order)
        event = seen.add(event, seen.magento_order(order))
        order = self.holds.for_planning(order)
        decision = rules.decide_refund(facts, order, self.settings)
        plan = decision.plan if isinstance(decision, Apply) else None
        if isinstance(plan, RefundPlan) and rules.amount_mismatch(
            plan.expected_amount, c.refund_total
        ):
            engine.log.warning(
                "refund.amount_mismatch", tiktok_order_id=c.tiktok_order_id,
                tiktok_cancel_id=c.cancel_id, magento_amount=str(plan.expected_amount),
                tiktok_refund_total=str(c.refund_total),
            )  # fmt: skip
        if isinstance(decision, Apply) and not engine.dry_run:
            # Written to (or about to be): the next event of this order reads it again.
            self._orders.forget(order.magento_entity_id)
            self._memos.forget(order.magento_entity_id)
        engine.apply(event, decision, self.execute, self.reconcile)

    def _with_marker(
        self, facts: rules.CancellationFacts, order: MagentoOrder
    ) -> rules.CancellationFacts:
        """Look for this cancellation's marker on the order's credit memos.

        Only an order that shows a refund can carry one, so an untouched order costs no
        read. Reached only for an event this database has no finished row for, so a
        marker found means the database was lost or replaced, or another worker syncs
        the store: said loudly, and recorded done instead of refunding again.
        """
        if not _shows_refund(order):
            return facts
        memo_id = _marked(
            self._memos.get(order.magento_entity_id) or [],
            facts.cancellation.cancel_id,
        )
        if memo_id is None:
            return facts
        self.engine.report.counts["found_on_remote"] += 1
        self.engine.log.warning(
            "refund.found_on_magento", tiktok_cancel_id=facts.cancellation.cancel_id,
            magento_creditmemo_id=memo_id,
            hint="this database has no record of that credit memo: it was replaced or "
            "lost, or another cancelsync worker syncs this store",
        )  # fmt: skip
        return replace(facts, recorded_by_memo=memo_id)

    def _marked_memo(self, magento_entity_id: int, cancel_id: str) -> int | None:
        """Read the order's memos now (never from the page's reads): a re-read."""
        return _marked(
            self.magento.credit_memos_for_order(magento_entity_id), cancel_id
        )

    # ------------------------------------------------------------------ I/O for plans

    def execute(self, plan: Plan) -> str:
        if isinstance(plan, RefundPlan):
            memo_id = self.magento.refund_order(
                plan.magento_entity_id,
                items=list(plan.items),
                shipping_amount=plan.shipping_amount,
                return_to_stock_items=list(plan.return_to_stock_items),
                comment=plan.comment,
                notify=False,
            )
            return str(memo_id)
        if isinstance(plan, MagentoCancelPlan):
            if not self.magento.cancel_order(plan.magento_entity_id):
                order = self.magento.get_order(plan.magento_entity_id)
                if order.state == "canceled":
                    return "canceled"
                raise FatalApiError(
                    f"Magento refused to cancel order #{order.magento_increment_id} "
                    f"(state {order.state}); cancel or refund it by hand",
                    platform="magento",
                )
            self.magento.add_order_comment(plan.magento_entity_id, plan.comment)
            return "canceled"
        raise TypeError(f"direction B cannot execute {plan.kind}")

    def reconcile(self, plan: Plan) -> str | None:
        """Is the effect already there? Our marker on a credit memo, or a canceled order."""
        if isinstance(plan, RefundPlan):
            if not plan.tiktok_cancel_id:
                return None
            memo_id = self._marked_memo(plan.magento_entity_id, plan.tiktok_cancel_id)
            return None if memo_id is None else str(memo_id)
        if isinstance(plan, MagentoCancelPlan):
            order = self.magento.get_order(plan.magento_entity_id)
            return "canceled" if order.state == "canceled" else None
        return None

    # ------------------------------------------------------------------ retries

    def retry(self, entry_payload: dict[str, Any]) -> None:
        """Re-drive one open ledger row (failed with backoff due, or pending after a crash)."""
        order_id = entry_payload.get("tiktok_order_id")
        cancel_id = entry_payload.get("tiktok_cancel_id")
        if not cancel_id:
            return
        if cancel_id.startswith("order-") and order_id:
            self._retry_stand_in(cancel_id, order_id)
            return
        match = None
        pages = (
            self.tiktok.search_cancellations(order_ids=[order_id])
            if order_id
            else self.tiktok.search_cancellations(cancel_ids=[cancel_id])
        )
        for page in pages:
            for bad in getattr(page, "unreadable", ()):
                if bad.item_id == cancel_id:
                    self.engine.record(
                        self._bare_event(cancel_id, order_id),
                        Attention(f"still unreadable: {bad.error}"),
                    )
                    return
            for c in page:
                if c.cancel_id == cancel_id:
                    match = c
                    order_id = c.tiktok_order_id
        if match is None or not order_id:
            self.engine.record(
                self._bare_event(cancel_id, order_id),
                Attention("the TikTok cancellation can no longer be found"),
            )
            return
        self._new_page()
        links = self.resolve_links([order_id])
        details = {o.tiktok_order_id: o for o in self._details([order_id])}
        self.process(match, links.get(order_id), details.get(order_id))

    def _retry_stand_in(self, cancel_id: str, order_id: str) -> None:
        """The cross-check's stand-in (``order-<id>``) has no TikTok record to find
        again: the order itself says whether it is still cancelled."""
        match = next(
            (_whole_order_cancellation(o) for o in self._details([order_id])
             if o.status == "CANCELLED"),
            None,
        )  # fmt: skip
        if match is None:
            self.engine.record(
                self._bare_event(cancel_id, order_id),
                Attention("the TikTok order no longer shows as cancelled"),
            )
            return
        self._new_page()
        links = self.resolve_links([order_id])
        self.process(match, links.get(order_id), None)


def _link_facts(link: Link | rules.LinkFacts | None) -> rules.LinkFacts:
    """What the rules are told of an event's link (no link found: not imported)."""
    if isinstance(link, rules.LinkFacts):
        return link
    if link is not None:
        return rules.LinkFacts.linked()
    return rules.LinkFacts(rules.LinkStatus.NOT_IMPORTED)


def _marked(memos: list[MagentoCreditMemo], cancel_id: str) -> int | None:
    """The id of the memo carrying this cancellation's marker, if any."""
    for memo in memos:
        if has_marker(memo.comments, cancel_id):
            return memo.magento_creditmemo_id
    return None


def _shows_refund(order: MagentoOrder) -> bool:
    """Any money or unit of the order refunded (only then can a memo of ours exist)."""
    return order.total_refunded > 0 or any(it.qty_refunded > 0 for it in order.items)


def _whole_order_cancellation(order: TikTokOrder) -> TikTokCancellation:
    """A stand-in record for an order TikTok shows CANCELLED with no record seen."""
    return TikTokCancellation(
        cancel_id=f"order-{order.tiktok_order_id}",
        tiktok_order_id=order.tiktok_order_id,
        cancel_type="CANCEL",
        cancel_status="CANCELLATION_REQUEST_COMPLETE",
        role=order.cancellation_initiator or "SYSTEM",
        create_time=order.cancel_time or order.update_time,
        update_time=order.update_time,
    )
