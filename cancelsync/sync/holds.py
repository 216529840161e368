"""Direction B's holds: the I/O side of ``cancelsync.rules.holds``.

A buyer's cancellation request comes from the same cancellation search the cycle already
makes (a record still ``CANCELLATION_REQUEST_PENDING``): no extra polling. Each hold and
each release is one ledger action with its own key, so the exactly-once protocol of the
engine applies to them like to any refund:

- ``hold:<shop id>:<cancel id>`` (``magento_hold``): ``done`` means cancelsync holds the
  order for that request; ``skipped`` (someone else's hold, nothing to hold) and
  ``needs_attention`` (shipped) mean it does not.
- ``release:<shop id>:<cancel id>`` (``magento_unhold``): the hold of that request taken
  off, once the request was rejected, withdrawn or accepted (the refund then follows, as
  Magento refuses a credit memo on a held order).

The hold's order comment is posted before the hold and carries ``hold_marker``; the
re-read after an unknown outcome (a lost reply, a crash between the hold and its ledger
update, a lost database) counts an order as held by cancelsync only when it is on hold
*and* carries that marker. Just before holding, the order is read again, so a hold the
merchant placed after the page was read is never taken for ours. One window is left: a
merchant who holds the order in the milliseconds between that read and our hold. Our hold
is then refused, and the marker already posted makes the re-read count the hold as ours:
on reject it would be released.

A request answered while its hold is unconfirmed (a send whose outcome is not known yet,
still inside its settle time) waits: the hold row stays open, and the retry pass re-drives
the cancellation once the row is due (re-read first, then release, then refund). A release
that failed belongs to the retry pass too (its backoff, its settle time), like a refund.

A new request while cancelsync still holds the order for an earlier one of the same TikTok
order (that release not done yet) takes the hold over: its own marker comment is posted
(no second hold) and the earlier release is dropped. A pending request whose order is not
imported yet waits like a never-imported refund (``import_wait_hours``) and is held when
the order arrives; one whose order cannot be held (two orders, a conflicting link, gone)
needs attention. An error while handling a request that is not an accepted cancellation
is recorded on its release or hold row (``failure_event``), never as a refund.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cancelsync.errors import FatalApiError
from cancelsync.models import MagentoOrder, TikTokCancellation
from cancelsync.rules import holds as rules
from cancelsync.rules.decisions import (
    Code,
    Done,
    HoldPlan,
    Plan,
    ReleasePlan,
    Skip,
    hold_marker,
)
from cancelsync.rules.tiktok_to_magento import LinkFacts, LinkStatus
from cancelsync.store import LedgerEntry
from cancelsync.store.db import iso
from cancelsync.store.ledger import RESOLVED_CODE
from cancelsync.sync.engine import FINAL_STATES, Engine, Event
from cancelsync.sync.ports import MagentoPort

HOLD_ACTION = HoldPlan.kind
RELEASE_ACTION = ReleasePlan.kind


def hold_key(shop_id: str, cancel_id: str) -> str:
    return f"hold:{shop_id}:{cancel_id}"


def release_key(shop_id: str, cancel_id: str) -> str:
    return f"release:{shop_id}:{cancel_id}"


def _ours(hold: LedgerEntry) -> bool:
    """cancelsync put this hold on: done by the worker, not closed by a person's
    ``resolve`` (a shipped order's item resolved by hand is done too, never held)."""
    return hold.state == "done" and hold.reason_code != RESOLVED_CODE


class Holds:
    """Holds and releases of one store's Magento orders, for direction B."""

    def __init__(
        self,
        engine: Engine,
        *,
        shop_id: str,
        magento: MagentoPort,
        read_order: Callable[[int], MagentoOrder | None],
        forget_order: Callable[[int], None],
    ) -> None:
        self.engine = engine
        self.shop_id = shop_id
        self.magento = magento
        self.enabled = engine.cfg.tiktok_cancel_to_magento_refund.hold_on_request
        self._read_order = read_order  # the page's batched reads
        self._forget_order = forget_order
        # Orders a dry run planned to release: planned as if released.
        self.planned_releases: set[int] = set()
        # Whether this shop has any hold row: when none (most stores, most of the
        # time) an accepted cancellation needs no hold look-up of its own. Hold rows
        # are only written through this object during the cycle (``_wrote``).
        self._any = engine.store.ledger.has_keys(hold_key(shop_id, ""))

    # ------------------------------------------------------------------ which records

    def needs_work(self, c: TikTokCancellation) -> bool:
        """Whether a record that is not an accepted cancellation has hold work: a pending
        buyer request not yet held, or a closed one whose hold is still on."""
        if rules.is_buyer_request(c):
            return self.enabled and self.engine.entry(self._hold(c.cancel_id)) is None
        if c.pending:
            return False  # a seller's own request: nothing to hold
        holds = self._holds_of(c.tiktok_order_id, c.cancel_id)
        if not holds:
            # A closed buyer request this database has no hold row for: a lost
            # database may have forgotten our hold (the order's comments tell).
            return self.enabled and c.cancel_type == rules.BUYER_REQUEST
        release = self.engine.entry(self._release(c.cancel_id))
        if release is not None and release.state not in FINAL_STATES:
            return False  # tried and failed: the retry pass owns it (backoff, settle)
        return any(self._release_open(e) for e in holds)

    def failure_event(self, c: TikTokCancellation, event: Event) -> Event:
        """The row an error while handling ``c`` (not an accepted cancellation) is
        recorded on: the release of its hold when cancelsync holds the order for it,
        else its hold row. Each is re-driven by the retry pass until it is final (a
        refund row of a request nobody accepted would stay open)."""
        hold = self.engine.entry(self._hold(c.cancel_id))
        if hold is not None and _ours(hold):
            return self._event(event, self._release(c.cancel_id))
        return self._event(event, self._hold(c.cancel_id))

    def _hold(self, cancel_id: str) -> str:
        self._any = True  # a hold row is about to be read or written
        return hold_key(self.shop_id, cancel_id)

    def _release(self, cancel_id: str) -> str:
        return release_key(self.shop_id, cancel_id)

    def _holds_of(
        self, tiktok_order_id: str, cancel_id: str | None = None
    ) -> list[LedgerEntry]:
        """The hold rows of a TikTok order (or of one of its requests)."""
        if not self._any:
            return []
        prefix = self._hold("")
        return [
            e for e in self.engine.store.ledger.for_tiktok_order(tiktok_order_id)
            if e.idempotency_key.startswith(prefix)
            and (cancel_id is None or e.tiktok_cancel_id == cancel_id)
        ]  # fmt: skip

    def _release_open(self, hold: LedgerEntry) -> bool:
        """The hold is (or may be) on and its release is not finished."""
        if hold.state not in FINAL_STATES:
            return True  # unconfirmed: settled first
        if not _ours(hold):
            return False  # never held by cancelsync
        release = self.engine.entry(self._release(hold.tiktok_cancel_id or ""))
        return release is None or release.state not in FINAL_STATES

    # ------------------------------------------------------------------ decisions

    def on_request(
        self,
        c: TikTokCancellation,
        event: Event,
        order_id: int | None,
        link: LinkFacts,
    ) -> None:
        """A record that is not an accepted cancellation: hold the order while a buyer's
        request is pending; release cancelsync's hold once it was rejected or withdrawn.
        ``order_id``: the linked Magento order (``None``: not linked, nothing to hold
        now); ``link``: why there is none (not imported yet, ambiguous, ...)."""
        if order_id is None:
            not_imported = link.status == LinkStatus.NOT_IMPORTED
            if not (not_imported and self.enabled and rules.is_buyer_request(c)):
                self._unheld(c, event, _why(link), _code(link))
            else:
                # The importer may bring the order over while the request is still
                # pending: the row waits for it like a refund does (``import_wait_hours``,
                # ``TikTokToMagento.recheck_not_imported``), and the order is held then.
                self.engine.record(self._event(event, self._hold(c.cancel_id)), Skip(
                    f"no Magento order carries TikTok order {c.tiktok_order_id} yet; "
                    "it is held if it is imported while the request is pending",
                    Code.NOT_IMPORTED,
                ))  # fmt: skip
            return
        if rules.is_buyer_request(c):
            if not self.enabled:
                self._switched_off(c, event, order_id)
                return
            order = self._order(order_id)
            if order is None:
                gone = LinkFacts(LinkStatus.GONE, str(order_id))
                self._unheld(c, event, _why(gone), _code(gone))
                return
            hold_event = self._event(event, self._hold(c.cancel_id))
            earlier = self._earlier_hold(c, order)
            if earlier is not None:
                self._carry_over(c, event, order, earlier)
                return
            self.engine.apply(hold_event, rules.decide_hold(c, order), self.execute,
                              self.reconcile)  # fmt: skip
            return
        self.released(c, event, order_id)

    def _carry_over(
        self, c: TikTokCancellation, event: Event, order: MagentoOrder, earlier: str
    ) -> None:
        """The hold carries over to ``c`` (its own marker comment, exactly once like a
        hold), then the earlier request's release is dropped (skipped), so that the retry
        pass never unholds an order whose buyer still asks to cancel. Should the comment
        fail, the earlier release stays open: released, then held again for ``c``."""
        hold_event = self._event(event, self._hold(c.cancel_id))
        decision = rules.decide_carry_over(c, order, earlier=earlier)
        self.engine.apply(hold_event, decision, self.execute, self.reconcile)
        if not self.engine.dry_run:
            self.engine.wait_for(event.ids)
            hold = self.engine.entry(self._hold(c.cancel_id))
            if hold is None or hold.state != "done":
                return
        self.engine.record(self._event(event, self._release(earlier)), Skip(
            f"the hold carries over to the buyer's next request {c.cancel_id}, "
            "still pending: released with that one",
            Code.HELD,
        ))  # fmt: skip

    def _earlier_hold(self, c: TikTokCancellation, order: MagentoOrder) -> str | None:
        """An earlier request of the same TikTok order that cancelsync still holds the
        order for (its release not done yet, e.g. it failed), else ``None``."""
        if order.state != "holded":
            return None
        for hold in self._holds_of(c.tiktok_order_id):
            earlier = hold.tiktok_cancel_id or ""
            if (
                earlier != c.cancel_id
                and _ours(hold)
                and self._release_open(hold)
                and rules.carries_our_hold(order, earlier)
            ):
                return earlier
        return None

    def released(self, c: TikTokCancellation, event: Event, order_id: int) -> bool:
        """Take off every hold cancelsync put on the order for this TikTok order's
        requests (for an accepted cancellation: before its refund). True when none of
        ours is left on; False when one is unconfirmed or its release did not complete
        (its open row is re-driven by the retry pass, and the refund with it)."""
        mine = None if c.accepted else c.cancel_id
        holds = [e for e in self._holds_of(c.tiktok_order_id, mine)
                 if self._release_open(e)]  # fmt: skip
        if any(self._settling(e) for e in holds):
            return False  # a send may still be in flight: looked at again when due
        if holds:
            self._forget_order(order_id)  # read afresh before releasing
        order = self._order(order_id)
        if order is None:
            return True  # gone: the refund's own read reports it
        # The requests cancelsync holds the order for (a dry run records nothing, so
        # this is said by the decisions, not read back from the ledger).
        ours = [
            e.tiktok_cancel_id or "" for e in holds
            if e.state in FINAL_STATES or self._settle(e, event, order)
        ]  # fmt: skip
        if not holds:
            ours = self._lost_holds(event, order, mine)
        if not ours:
            return True  # nothing to release: the order read stays good
        for held_for in ours:
            key = self._release(held_for)
            decision = rules.decide_release(c, order, held_for=held_for)
            self.engine.apply(self._event(event, key), decision, self.execute,
                              self.reconcile)  # fmt: skip
            if self.engine.dry_run:
                self.planned_releases.add(order_id)
                continue
            self.engine.wait_for(event.ids)
            release = self.engine.entry(key)
            if release is None or release.state != "done":
                return False
        self._forget_order(order_id)
        return True

    def _lost_holds(
        self, event: Event, order: MagentoOrder, cancel_id: str | None
    ) -> list[str]:
        """Holds of ours this database has no row for (it was lost or replaced): the
        order is on hold and a comment carries our hold marker with no release marker
        after it. Each is recorded done (ours) so that it is released like any other."""
        if order.state != "holded":
            return []
        found = []
        for held_for in rules.marked_holds(order):
            if cancel_id is not None and held_for != cancel_id:
                continue
            if self.engine.entry(self._hold(held_for)) is not None:
                continue
            self.engine.report.counts["found_on_remote"] += 1
            self.engine.log.warning(
                "hold.found_on_magento", tiktok_cancel_id=held_for,
                magento_increment_id=order.magento_increment_id,
                hint="this database has no record of that hold: it was replaced or "
                "lost, or another cancelsync worker syncs this store",
            )  # fmt: skip
            hold_event = self._event(event, self._hold(held_for))
            self.engine.record(hold_event, Done(
                f"Magento order #{order.magento_increment_id} carries cancelsync's "
                f"hold ({hold_marker(held_for)}) that this database had no record of",
                Code.HELD,
            ))  # fmt: skip
            found.append(held_for)
        return found

    def _settling(self, hold: LedgerEntry) -> bool:
        """The hold's outcome is not known and a send may still be in flight (inside
        its settle time)."""
        now = iso(self.engine.clock.now())
        return hold.state not in FINAL_STATES and (
            hold.next_attempt_at is not None and hold.next_attempt_at > now
        )

    def _unheld(
        self, c: TikTokCancellation, event: Event, why: str, code: Code
    ) -> None:
        """No order to hold for ``c`` (``why``): its hold row, when one is left open
        (re-opened after a late import, or failed), is decided so that it closes. Such
        a row never had a hold sent (a send needs the link this order lacks)."""
        hold = self.engine.entry(self._hold(c.cancel_id))
        if hold is None or hold.state in FINAL_STATES:
            return  # nothing asked of cancelsync: the refund, if any, reports it
        self.engine.record(self._event(event, hold.idempotency_key),
                           rules.decide_unheld(c, why, code))  # fmt: skip

    def _switched_off(self, c: TikTokCancellation, event: Event, order_id: int) -> None:
        """hold_on_request was turned off while this request's hold row is open (a
        failed or unconfirmed hold): settle it from the order once no send can still be
        in flight, so the retry pass stops re-driving it. A hold of ours found on the
        order stays ours (released when the request is answered)."""
        hold = self.engine.entry(self._hold(c.cancel_id))
        if hold is None or hold.state in FINAL_STATES or self._settling(hold):
            return
        order = self._order(order_id)
        if order is not None:
            self._settle(hold, event, order,
                         why="hold_on_request is off: the order is not held for it")  # fmt: skip

    def _settle(
        self,
        hold: LedgerEntry,
        event: Event,
        order: MagentoOrder,
        *,
        why: str = "the request was answered before cancelsync had the order on hold",
    ) -> bool:
        """A hold whose outcome is not known yet, for a request no longer pending, past
        its settle time: decide from the order (on hold with our marker, or not). True
        when cancelsync holds it."""
        held_for = hold.tiktok_cancel_id or ""
        hold_event = self._event(event, self._hold(held_for))
        if rules.carries_our_hold(order, held_for):
            decision: Done | Skip = Done(
                "the order carries cancelsync's hold (found on re-read)", Code.HELD
            )
        else:
            # Said so it is true whether a hold was sent or not (a re-queued shipped
            # order's item, a hold waiting for the import, an unconfirmed send).
            decision = Skip(f"{why}; it is not on hold by cancelsync", Code.OTHER)
        self.engine.record(hold_event, decision)
        return isinstance(decision, Done)

    def _order(self, order_id: int) -> MagentoOrder | None:
        return self._read_order(order_id)

    def _event(self, event: Event, key: str) -> Event:
        action = HOLD_ACTION if key.startswith("hold:") else RELEASE_ACTION
        return replace(event, key=key, default_action=action)

    def for_planning(self, order: MagentoOrder) -> MagentoOrder:
        """A dry run plans the refund as if its planned release had happened."""
        if order.magento_entity_id in self.planned_releases:
            return replace(order, state="processing", status="processing")
        return order

    # ------------------------------------------------------------------ I/O for plans

    def execute(self, plan: Plan) -> str:
        if isinstance(plan, HoldPlan):
            entity_id = plan.magento_entity_id
            # Read again just before: a hold placed since the page was read is the
            # merchant's, never taken for ours.
            order = self.magento.get_order(entity_id)
            if rules.carries_our_hold(order, plan.tiktok_cancel_id):
                return "held"
            if plan.carry_over_from and rules.carries_our_hold(
                order, plan.carry_over_from
            ):
                self.magento.add_order_comment(entity_id, plan.comment)
                return "held"  # already on hold: the marker says for whom now
            if order.state == "holded":
                raise FatalApiError(
                    f"Magento order #{order.magento_increment_id} was put on hold by "
                    "someone else meanwhile; cancelsync leaves that hold alone",
                    platform="magento",
                )
            if hold_marker(plan.tiktok_cancel_id) not in " ".join(order.comments):
                self.magento.add_order_comment(entity_id, plan.comment)
            self.magento.hold_order(entity_id)
            return "held"
        if isinstance(plan, ReleasePlan):
            self.magento.unhold_order(plan.magento_entity_id)
            self.magento.add_order_comment(plan.magento_entity_id, plan.comment)
            return "released"
        raise TypeError(f"holds cannot execute {plan.kind}")

    def reconcile(self, plan: Plan) -> str | None:
        """Is the effect there? Held with our marker; or no longer on hold."""
        if isinstance(plan, HoldPlan):
            order = self.magento.get_order(plan.magento_entity_id)
            return (
                "held" if rules.carries_our_hold(order, plan.tiktok_cancel_id) else None
            )
        if isinstance(plan, ReleasePlan):
            order = self.magento.get_order(plan.magento_entity_id)
            return "released" if order.state != "holded" else None
        return None


def _why(link: LinkFacts) -> str:
    """Why a TikTok order has no single Magento order to hold, in words."""
    if link.status == LinkStatus.AMBIGUOUS:
        return f"several Magento orders carry it ({link.detail})"
    if link.status == LinkStatus.GONE:
        return f"its linked Magento order {link.detail} no longer exists"
    if link.status == LinkStatus.NOT_IMPORTED:
        return "no Magento order carries it yet"
    return link.detail or str(link.status)


def _code(link: LinkFacts) -> Code:
    return {
        LinkStatus.AMBIGUOUS: Code.AMBIGUOUS_LINK,
        LinkStatus.CONFLICT: Code.LINK_CONFLICT,
        LinkStatus.GONE: Code.ORDER_GONE,
    }.get(link.status, Code.OTHER)
