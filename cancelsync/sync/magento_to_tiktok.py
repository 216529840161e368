"""Direction A: Magento credit memos → TikTok cancellations (default off).

Discovery: credit memos after the store's keyset cursor (``entity_id``), plus a re-scan of the
memos created in the last ``overlap_seconds`` (a slow transaction can make a lower id visible
after a higher one), both in one query (one filter group ORs the two conditions, keyset paged
by ``entity_id``), so an idle cycle costs one call. A brand-new store or a newly enabled direction looks
``first_run_lookback_hours`` back by ``created_at``. Memos the worker created itself (ledger,
then the comment marker) are skipped. Keys: ``cancel:<shop id>:<credit memo entity id>``.

Each memo is handled in its own ``event_scope``: a failed read of its Magento or TikTok order
is that memo's failure (kept in the ledger for the retry pass), never the page's. When TikTok
refuses the cancel reason (25001014/15/20/21), the order's aftersale eligibility is asked once
and the cancel is sent again only with a listed key of the *configured* family; otherwise the
memo needs attention listing the keys TikTok offers (``out_of_stock`` zeroes the SKU's stock,
so a family is never switched silently).

The keyset scan stops after ``MAX_SCAN_PAGES`` pages and goes on from its cursor next cycle;
a memo whose id cannot be read holds the cursor just before it (``cancelsync.sync.scan``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cancelsync.directions import Direction
from cancelsync.errors import ConfigApiError, DataError, NotFoundError
from cancelsync.models import (
    MagentoCreditMemo,
    MagentoOrder,
    TikTokCancellation,
    TikTokOrder,
    Unreadable,
)
from cancelsync.rules import magento_to_tiktok as rules
from cancelsync.rules.decisions import (
    Apply,
    ApproveRequestPlan,
    Attention,
    Code,
    Plan,
    Skip,
    TikTokCancelPlan,
    has_marker,
)
from cancelsync.store import LedgerEntry, Link, LinkConflictError
from cancelsync.sync import seen
from cancelsync.sync.engine import Engine, Event, EventScope
from cancelsync.sync.ports import MagentoPort, TikTokPort
from cancelsync.sync.reads import BatchedReads
from cancelsync.sync.scan import CursorScan, unkeyed

DIRECTION = Direction.MAGENTO_TO_TIKTOK
REQUEST_BATCH = 50  # orders per cancellation search (its page holds 50 records)


def _whole_cancel_done(entry: LedgerEntry) -> bool:
    """A done whole-order TikTok cancel of direction A (its plan named no lines)."""
    plan = entry.payload_dict().get("plan") or {}
    return (
        entry.direction == DIRECTION
        and entry.action == TikTokCancelPlan.kind
        and entry.state == "done"
        and not plan.get("order_line_item_ids")
    )


def cancel_key(shop_id: str, magento_creditmemo_id: int) -> str:
    return f"cancel:{shop_id}:{magento_creditmemo_id}"


class MagentoToTikTok:
    def __init__(
        self,
        engine: Engine,
        *,
        shop_id: str,
        market: str,
        magento: MagentoPort,
        tiktok: TikTokPort,
        other_stores_claim: bool,
    ) -> None:
        self.engine = engine
        self.shop_id = shop_id
        self.market = market
        self.magento = magento
        self.tiktok = tiktok
        self.settings = engine.cfg.magento_refund_to_tiktok_cancel
        self.store = engine.store
        # Another enabled store could own memos of the same Magento store views: then a
        # memo is ours only if our shop knows the TikTok order.
        self.other_stores_claim = other_stores_claim
        # One batched read per page and kind (``cancelsync.sync.reads``): the memos'
        # Magento orders, their TikTok orders, pending buyer requests (only of orders
        # whose detail shows one) and, for line cancels, the orders' credit memos.
        self._orders: BatchedReads[int, MagentoOrder] = BatchedReads(
            engine, "magento orders",
            lambda ids: self.magento.orders_by_entity_ids(ids), self._magento_order,
        )  # fmt: skip
        self._tiktok_orders: BatchedReads[str, TikTokOrder] = BatchedReads(
            engine, "tiktok orders",
            lambda ids: {o.tiktok_order_id: o for o in self.tiktok.get_orders(ids)},
            self._tiktok_order,
        )  # fmt: skip
        self._requests: BatchedReads[str, TikTokCancellation] = BatchedReads(
            engine, "pending buyer requests", self._pending_requests,
            lambda oid: self._pending_requests([oid]).get(oid),
        )  # fmt: skip
        self._order_memos: BatchedReads[int, list[MagentoCreditMemo]] = BatchedReads(
            engine, "magento credit memos",
            lambda ids: self.magento.credit_memos_for_orders(ids),
            lambda i: self.magento.credit_memos_for_order(i),
        )  # fmt: skip

    # ------------------------------------------------------------------ discovery

    def note_disabled(self) -> None:
        self.engine.note_direction(DIRECTION, enabled=False)

    def run(self, backfill_since: datetime | None = None) -> None:
        """``backfill_since`` (``run --once --since``): memos created since then are
        re-scanned too; the cursor still only moves forward and the ledger skips memos
        decided already."""
        now = self.engine.report.started_at
        store_ids = tuple(self.engine.cfg.magento_store_ids)
        position, fresh = self.engine.cursor(DIRECTION)
        if fresh or position is None:
            since = now - timedelta(hours=self.engine.worker.first_run_lookback_hours)
            since = min(since, backfill_since or since)
            memos = self.magento.credit_memos_created_since(since, store_ids=store_ids)
            self.engine.log.info(
                "magento.scan", mode="lookback", since=since.isoformat()
            )
            self.process_page(memos)
            scan = CursorScan(self.engine, DIRECTION, start=0, stored=None)
            scan.read([m.magento_creditmemo_id for m in memos], unkeyed(memos))
            latest = max([m.magento_creditmemo_id for m in memos], default=None)
            if latest is None:
                # Nothing in the lookback: start the keyset after today's newest memo,
                # not after an old cursor (which would re-read history).
                latest = self.magento.latest_credit_memo_id(store_ids=store_ids)
            # A memo without a readable id holds the new cursor before it; held at 0,
            # no cursor is made and the next run looks back again. A store without any
            # memo starts its keyset at 0 (so the next run is one query, not a lookback).
            target = scan.finish(latest or 0)
            if target > 0 or (latest is None and not getattr(memos, "unreadable", ())):
                self._advance(target)
            self.engine.note_direction(DIRECTION, enabled=True)
            return
        # One query: the memos after the keyset cursor, and (late commits) those created
        # within the overlap whatever their id, in entity_id order.
        since = now - timedelta(seconds=self.engine.worker.overlap_seconds)
        since = min(since, backfill_since or since)
        self.engine.log.info("magento.scan", mode="keyset", after_entity_id=position,
                             created_since=since.isoformat())  # fmt: skip
        scan = CursorScan(self.engine, DIRECTION, start=position, stored=position)
        pages = self.magento.iter_credit_memos(
            position, store_ids=store_ids, created_since=since
        )
        for page in scan.pages(pages, "credit memos"):
            self.process_page(page)
            scan.read([m.magento_creditmemo_id for m in page], unkeyed(page))
            self._advance(scan.target(scan.reached))
        self._advance(scan.finish(scan.reached))

    def _advance(self, position: int) -> None:
        self.engine.advance_cursor(DIRECTION, position)

    def close_superseded(self) -> None:
        """Partial credit memos reported as needing attention whose TikTok order
        cancelsync has since cancelled whole (a later memo completed the refund): their
        advice ("TikTok still expects these units shipped") no longer holds, so they are
        closed as done (``superseded``), said in the order's timeline. Ledger only."""
        engine = self.engine
        if engine.dry_run:
            return
        for item in engine.store.ledger.in_state(engine.scope, "needs_attention"):
            if item.reason_code != Code.PARTIAL or not item.tiktok_order_id:
                continue
            cancel = next(
                (e for e in engine.store.ledger.for_tiktok_order(item.tiktok_order_id)
                 if e.action_id > item.action_id and _whole_cancel_done(e)),
                None,
            )  # fmt: skip
            if cancel is None:
                continue
            reason = (
                f"superseded by action #{cancel.action_id}: a later credit memo "
                "completed the refund and cancelsync cancelled the whole TikTok order"
            )
            now = engine.clock.now()
            with engine.store.unit_of_work():
                closed = engine.store.ledger.close_attention(
                    item.action_id, reason, Code.SUPERSEDED, now
                )
                if closed is not None:
                    engine.timeline(Event.of(closed), "done", reason, entry=closed)
            engine.log.info("attention.superseded", action_id=item.action_id,
                            by_action_id=cancel.action_id)  # fmt: skip

    # ------------------------------------------------------------------ one page

    def process_page(self, memos: list[MagentoCreditMemo]) -> None:
        # Orders are read per page only: read after the page's memos were listed, an
        # order's refunded quantities include every memo on the page.
        self._new_page()
        for bad in getattr(memos, "unreadable", ()):
            self._unreadable(bad)
        todo = [
            memo for memo in memos
            if self.engine.entry(cancel_key(self.shop_id, memo.magento_creditmemo_id))
            is None  # else seen before (final) or owned by the retry pass
        ]  # fmt: skip
        self._prefetch(todo)
        for memo in todo:
            self.engine.check_stop()
            self.engine.report.counts["seen"] += 1
            self.process(memo)
        # The page's actions are recorded before the keyset cursor moves past them.
        self.engine.drain()

    def _new_page(self) -> None:
        for reads in (self._orders, self._tiktok_orders, self._requests,
                      self._order_memos):  # fmt: skip
            reads.clear()

    def _prefetch(self, memos: list[MagentoCreditMemo]) -> None:
        """Read what the page's memos need, one batch per kind, in the order the rules
        need it: Magento orders, then the TikTok orders of those that are TikTok's and
        not our echo, then pending requests and order memos where a rule can use them.
        A failed batch leaves each memo to read its own (``BatchedReads``)."""
        self._orders.prefetch(m.magento_entity_id for m in memos)
        wanted: dict[str, tuple[MagentoCreditMemo, MagentoOrder]] = {}
        for memo in memos:
            order = self._orders.cached(memo.magento_entity_id)
            if order is not None and self._needs_tiktok(memo, order):
                wanted[str(order.tiktok_order_id)] = (memo, order)
        self._tiktok_orders.prefetch(wanted)
        requests, memo_orders = [], []
        for tiktok_id, (_memo, order) in wanted.items():
            tiktok_order = self._tiktok_orders.cached(tiktok_id)
            if tiktok_order is None:
                continue
            if self._may_have_request(tiktok_order, order):
                requests.append(tiktok_id)
            if self._needs_order_memos(order):
                memo_orders.append(order.magento_entity_id)
        self._requests.prefetch(requests)
        self._order_memos.prefetch(memo_orders)

    def _needs_tiktok(self, memo: MagentoCreditMemo, order: MagentoOrder) -> bool:
        """The memo's TikTok order is read: a TikTok order of this store, not an echo."""
        if not rules.looks_like_tiktok_order_id(order.tiktok_order_id):
            return False
        link = self.store.links.find_by_magento(order.magento_entity_id)
        if link is not None and link.scope != self.engine.scope:
            return False
        return not self._echo(memo)

    def _echo(self, memo: MagentoCreditMemo) -> bool:
        """A memo this worker created (ledger first, the comment marker as a backup)."""
        return self.store.ledger.find_by_creditmemo(
            memo.magento_creditmemo_id
        ) is not None or has_marker(memo.comments)

    def _may_have_request(self, tiktok_order: TikTokOrder, order: MagentoOrder) -> bool:
        """A pending buyer request can decide this memo: a full refund, approvals on, and
        the order detail shows a request (or does not say)."""
        return (
            self.settings.approve_buyer_requests
            and tiktok_order.is_buyer_request_cancel is not False
            and rules.is_full_refund(order)
        )

    def _needs_order_memos(self, order: MagentoOrder) -> bool:
        """Line cancels are judged on every memo of the order (see the rule)."""
        return (
            not rules.is_full_refund(order)
            and self.settings.partial_refunds == "cancel_items"
        )

    def _unreadable(self, bad: Unreadable, *, retrying: bool = False) -> None:
        """A credit memo the mapper could not read: reported once, never dropped."""
        engine = self.engine
        engine.report.counts["unreadable"] += 1
        if bad.item_id is None:
            engine.report.failures += 1
            engine.log.error("magento.creditmemo.unreadable", error=bad.error)
            return
        key = cancel_key(self.shop_id, int(bad.item_id))
        if engine.entry(key) is not None and not retrying:
            return  # reported before, or the retry pass owns it
        event = Event(
            key, DIRECTION, DIRECTION.default_action,
            {"magento_creditmemo_id": int(bad.item_id)},
            {"magento_creditmemo_id": int(bad.item_id)},
        )  # fmt: skip
        engine.record(
            event,
            Attention(
                f"Magento credit memo {bad.item_id} cannot be read ({bad.error}); "
                "check it in Magento, then `cancelsync retry`"
            ),
        )

    def _order(self, magento_entity_id: int) -> MagentoOrder:
        order = self._orders.get(magento_entity_id)
        if order is None:
            raise NotFoundError(
                f"Magento order {magento_entity_id} of the credit memo was not found",
                platform="magento",
            )
        return order

    def _magento_order(self, magento_entity_id: int) -> MagentoOrder | None:
        try:
            return self.magento.get_order(magento_entity_id)
        except NotFoundError:
            return None

    def _tiktok_order(self, tiktok_order_id: str) -> TikTokOrder | None:
        found = self.tiktok.get_orders([tiktok_order_id])
        return found[0] if found else None

    def _memo_event(self, magento_creditmemo_id: int) -> Event:
        """The event of a memo whose order is not read yet (what a failure is kept as)."""
        ids = {"magento_creditmemo_id": magento_creditmemo_id}
        return Event(cancel_key(self.shop_id, magento_creditmemo_id), DIRECTION,
                     DIRECTION.default_action, ids, dict(ids))  # fmt: skip

    def _nothing_to_do(self, event: Event, reason: str) -> None:
        """Not ours after all: nothing is recorded, unless a row (an earlier failure)
        waits for this memo; that row is closed as skipped."""
        if self.engine.entry(event.key) is not None:
            self.engine.record(event, Skip(reason))

    def process(self, memo: MagentoCreditMemo) -> None:
        """Decide and act on one memo; any read or data error is this memo's failure.

        Decided once no action of its order is in flight (it sees what that one did)."""
        self.engine.wait_for({"magento_entity_id": memo.magento_entity_id})
        with self.engine.event_scope(
            self._memo_event(memo.magento_creditmemo_id)
        ) as scope:
            self._process(memo, scope)

    def _process(self, memo: MagentoCreditMemo, scope: EventScope) -> None:
        engine = self.engine
        order = self._order(memo.magento_entity_id)
        tiktok_id = order.tiktok_order_id
        if tiktok_id is None or not rules.looks_like_tiktok_order_id(tiktok_id):
            # Not a TikTok order: nothing to do (only an earlier failure's row to close).
            self._nothing_to_do(scope.event, "the Magento order is not a TikTok order")
            return
        link = self.store.links.find_by_magento(order.magento_entity_id)
        if link is not None and link.scope != engine.scope:
            self._nothing_to_do(scope.event, "another store's order")
            return
        event = self._event(memo, order, tiktok_id)
        scope.event = event
        created_by_us = (
            self.store.ledger.find_by_creditmemo(memo.magento_creditmemo_id) is not None
        )
        # An echo needs no TikTok read: the rule decides on what is known already.
        tiktok_order = None
        if not (created_by_us or has_marker(memo.comments)):
            tiktok_order = self._tiktok_orders.get(tiktok_id)
            if link is None and tiktok_order is None and self.other_stores_claim:
                # Not this shop's order; another store will take it.
                self._nothing_to_do(event, "not this shop's TikTok order")
                return
            if link is None and tiktok_order is not None:
                conflict = self._save_link(tiktok_id, order)
                if conflict is not None:
                    engine.record(event, rules.linked_elsewhere(conflict))
                    return
        event = seen.add(event, seen.tiktok_order(tiktok_order))
        facts = self._facts(memo, order, created_by_us, tiktok_order)
        decision = rules.decide_cancel(facts, self.settings, self.market)
        if isinstance(decision, Apply) and not engine.dry_run:
            # Written to (or about to be): the next memo of this order reads it again.
            self._tiktok_orders.forget(tiktok_id)
            self._requests.forget(tiktok_id)
        engine.apply(event, decision, self.execute, self.reconcile, self.other_reason)

    def _facts(
        self,
        memo: MagentoCreditMemo,
        order: MagentoOrder,
        created_by_us: bool,
        tiktok_order: TikTokOrder | None,
    ) -> rules.CreditMemoFacts:
        """The rest of what the rules need, read only where a rule can use it."""
        # The order was read this cycle, after its memos were listed, so its refunded
        # quantities are cumulative: they decide full vs partial.
        pending = None
        if tiktok_order is not None and self._may_have_request(tiktok_order, order):
            pending = self._requests.get(tiktok_order.tiktok_order_id)
        memos = None
        if tiktok_order is not None and self._needs_order_memos(order):
            # Line cancels are judged by their effect on TikTok (see the rule).
            memos = tuple(self._order_memos.get(order.magento_entity_id) or [])
        return rules.CreditMemoFacts(
            memo, order, created_by_us, tiktok_order, pending, memos
        )

    def _event(
        self, memo: MagentoCreditMemo, order: MagentoOrder, tiktok_order_id: str
    ) -> Event:
        return Event(
            key=cancel_key(self.shop_id, memo.magento_creditmemo_id),
            direction=DIRECTION,
            default_action=DIRECTION.default_action,
            ids={
                "tiktok_order_id": tiktok_order_id,
                "magento_entity_id": order.magento_entity_id,
                "magento_increment_id": order.magento_increment_id,
                "magento_creditmemo_id": memo.magento_creditmemo_id,
            },
            payload={
                "magento_creditmemo_id": memo.magento_creditmemo_id,
                "seen": seen.credit_memo(memo, order),
            },
        )

    def _save_link(self, tiktok_order_id: str, order: MagentoOrder) -> str | None:
        """Remember the pair; the conflict in words when either side is taken."""
        if self.engine.dry_run:
            return None
        try:
            with self.store.unit_of_work():
                self.store.links.save(
                    Link(tiktok_order_id, self.engine.scope, order.magento_entity_id,
                         order.magento_increment_id, order.store_id),
                    self.engine.clock.now(),
                )  # fmt: skip
        except LinkConflictError as exc:
            return str(exc)
        return None

    def other_reason(self, plan: Plan, exc: ConfigApiError) -> Apply | Attention | None:
        """TikTok refused the reason key: ask this order's eligibility (once per event and
        run, the engine sees to that); the rules pick the key or tell a person."""
        if (
            not isinstance(plan, TikTokCancelPlan)
            or str(exc.code) not in rules.REASON_REFUSED_CODES
        ):
            return None
        refusal = (
            f"TikTok refused cancel reason {plan.cancel_reason} "
            f"(code {exc.code}: {exc.message})"
        )
        return rules.reason_after_refusal(
            plan,
            refusal,
            self.tiktok.eligible_cancel_reasons(plan.tiktok_order_id),
            self.settings.cancel_reason,
            self.market,
        )

    def _pending_requests(
        self, tiktok_order_ids: list[str]
    ) -> dict[str, TikTokCancellation]:
        """Each order's buyer request awaiting the seller, in one search per 50 orders."""
        found: dict[str, TikTokCancellation] = {}
        for start in range(0, len(tiktok_order_ids), REQUEST_BATCH):
            batch = tiktok_order_ids[start : start + REQUEST_BATCH]
            for page in self.tiktok.search_cancellations(order_ids=batch):
                for c in page:
                    if c.pending and c.cancel_type == "BUYER_CANCEL":
                        found.setdefault(c.tiktok_order_id, c)
        return found

    # ------------------------------------------------------------------ I/O for plans

    def execute(self, plan: Plan) -> str:
        if isinstance(plan, TikTokCancelPlan):
            cancel_id, _status = self.tiktok.cancel_order(
                plan.tiktok_order_id,
                plan.cancel_reason,
                order_line_item_ids=list(plan.order_line_item_ids) or None,
            )
            return str(cancel_id)
        if isinstance(plan, ApproveRequestPlan):
            self.tiktok.approve_cancellation(
                plan.tiktok_cancel_id,
                idempotency_key=f"cancelsync-{plan.tiktok_cancel_id}",
            )
            return plan.tiktok_cancel_id
        raise TypeError(f"direction A cannot execute {plan.kind}")

    def reconcile(self, plan: Plan) -> str | None:
        """Re-read TikTok: is the order (or are the lines) cancelled, the request approved?"""
        if isinstance(plan, ApproveRequestPlan):
            for page in self.tiktok.search_cancellations(
                order_ids=[plan.tiktok_order_id]
            ):
                for c in page:
                    if c.cancel_id == plan.tiktok_cancel_id and c.accepted:
                        return c.cancel_id
            return None
        if isinstance(plan, TikTokCancelPlan):
            found = self.tiktok.get_orders([plan.tiktok_order_id])
            if not found:
                return None
            order = found[0]
            if plan.whole_order:
                done = order.status == "CANCELLED"
            else:
                cancelled = {line.line_id for line in order.lines if line.cancelled}
                done = set(plan.order_line_item_ids) <= cancelled
            if not done:
                return None
            for page in self.tiktok.search_cancellations(
                order_ids=[plan.tiktok_order_id]
            ):
                for c in page:
                    if c.role == "SELLER" and c.accepted:
                        return c.cancel_id
            return "cancelled"
        return None

    # ------------------------------------------------------------------ retries

    def retry(self, payload: dict[str, Any]) -> None:
        """Re-drive one open ledger row; a failed memo read is that row's failure again
        (the cycle's ``event_scope``), a deleted memo needs attention."""
        memo_id = payload.get("magento_creditmemo_id")
        if memo_id is None:
            return
        try:
            memo = self.magento.get_credit_memo(int(memo_id))
        except DataError as exc:
            self._unreadable(Unreadable(str(memo_id), str(exc)), retrying=True)
            return
        self._new_page()
        self.process(memo)
