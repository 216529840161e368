"""The soak's world: stores, orders, what happens to each order, and what must follow.

Everything here is decided by the seed: the stores' settings, the orders (lines, shipping,
imported or not), each order's *fate* (a buyer cancel, a partial cancel and later the rest,
a pending request approved later, a merchant's credit memo, a shipment before a refund, a
buyer's request left pending across worker runs and then rejected, withdrawn, approved or
auto-approved by TikTok, on an order the merchant held or shipped in Magento first, ...)
and the waves its steps happen in. Applying a step acts on the simulators the way a buyer,
TikTok or the merchant would, and records what the worker *should* do about it in the
order's ``Expect``, computed from the world itself (the oracle never reads the worker's
ledger). Fates are exclusive per order so that "should" has one answer.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

from cancelsync.sandbox.harness import Sandbox, StoreSpec
from cancelsync.sandbox.magento import MagentoError
from cancelsync.sandbox.soak.model import (
    DISABLED_FATES,
    FATES,
    FOREIGN_SHARE,
    HOLD_FATES,
    LATE_COMMIT_SECONDS,
    LATE_SECONDS,
    MULTI_UNIT_FATES,
    NOT_IMPORTED_SHARE,
    STORE_WEIGHTS,
    STORES,
    Line,
    RefundExpect,
    SoakOrder,
    Step,
    Tally,
)
from cancelsync.sandbox.soak.outcomes import HoldOutcomes
from cancelsync.sandbox.tiktok.state import PENDING


class World:
    """The generated world on a ``Sandbox``; ``apply_wave`` plays one wave of steps."""

    def __init__(
        self,
        sb: Sandbox,
        seed: int,
        orders: int,
        waves: int,
        *,
        late_share: float,
        hold_fate_scale: float = 1.0,
    ) -> None:
        self.sb = sb
        # The hold fates' weights x this (the short variant thins them: time).
        self.hold_fate_scale = hold_fate_scale
        self.rng = random.Random(seed)
        self.waves = waves
        self.late_share = late_share
        self.specs: dict[str, StoreSpec] = {}
        self.orders: list[SoakOrder] = []
        self.steps: list[Step] = []
        self.tally = Tally()
        self._timers: list[threading.Timer] = []
        self.prices: dict[str, float] = {}
        self.ordered: Counter[str] = Counter()  # units imported into Magento, per SKU
        self.restocked: Counter[str] = Counter()  # units that must be back in stock
        # Magento's own answer to every hold and unhold (the oracle's "applied").
        self.holds = HoldOutcomes(sb.magento)
        sb.magento_server.simulator = self.holds
        for plan in STORES:
            self.specs[plan.key] = sb.add_store(plan.name, **plan.spec_options())
            for n in range(12):
                self.prices[f"{plan.key}-{n:02d}"] = round(self.rng.uniform(3, 60), 2)
        for index in range(orders):
            self._place(index)
        self.steps.sort(key=lambda s: (s.wave, s.order))

    # ------------------------------------------------------------------ generation

    def _place(self, index: int) -> None:
        rng = self.rng
        plan = rng.choices(STORES, weights=STORE_WEIGHTS)[0]
        roll = rng.random()
        imported = roll >= NOT_IMPORTED_SHARE
        foreign = imported and roll < NOT_IMPORTED_SHARE + FOREIGN_SHARE
        if foreign:
            fate = "foreign_memo"
        elif not imported:
            fate = rng.choice(["unlinked_cancel", "quiet"])
        elif plan.key == "C":
            fate = rng.choice(DISABLED_FATES)
        else:
            names = list(FATES)
            weights = [
                FATES[n][0] * (self.hold_fate_scale if n in HOLD_FATES else 1.0)
                for n in names
            ]
            fate = rng.choices(names, weights=weights)[0]
        skus = rng.sample(range(12), rng.choice([1, 1, 2, 2, 3]))
        lines = []
        for n in skus:
            sku = f"{plan.key}-{n:02d}"
            # Store A sells three of its SKUs as configurable products.
            kind = "configurable" if plan.key == "A" and n >= 9 else "simple"
            lines.append(
                Line(sku, rng.choice([1, 1, 1, 2, 2, 3]), self.prices[sku], kind)
            )
        if fate in MULTI_UNIT_FATES and sum(ln.qty for ln in lines) < 2:
            lines[0].qty = 2
        order = SoakOrder(
            index, plan, fate, lines, rng.choice([0.0, 4.99, 7.5]),
            invoiced=fate != "uninvoiced_cancel",
        )  # fmt: skip
        self.orders.append(order)
        if foreign:
            self._import(
                order,
                f"{rng.randint(100, 999)}-{index:07d}-{rng.randint(10**6, 10**7 - 1)}",
            )
        else:
            self._create_tiktok(order)
            if imported:
                self._import(order, order.tiktok_order_id)
        steps = (("memo_full", 0),) if foreign else FATES.get(fate, (0, ()))[1]
        if fate == "unlinked_cancel":
            steps = (("cancel_full:BUYER", 0),)
        if not steps:
            return
        span = sum(gap for _, gap in steps)
        wave = rng.randrange(max(1, self.waves - span))
        for name, gap in steps:
            wave = min(wave + gap, self.waves - 1)
            self.steps.append(Step(wave, index, name))

    def _create_tiktok(self, order: SoakOrder) -> None:
        shop_id = self.specs[order.store.key].setup.shop_id
        order.tiktok_order_id = self.sb.tiktok.create_order(
            shop_id,
            [
                {"sku_id": f"17{order.store.magento_store_id}{int(ln.sku[2:]):016d}",
                 "seller_sku": ln.sku, "price": f"{ln.price:.2f}", "quantity": ln.qty}
                for ln in order.lines
            ],
            shipping_fee=f"{order.shipping:.2f}",
        )  # fmt: skip
        detail = self.sb.tiktok.order(order.tiktok_order_id)
        for item in detail["line_items"]:
            order.units.setdefault(item["seller_sku"], []).append(item["id"])
        order.live = {sku: list(ids) for sku, ids in order.units.items()}

    def _import(self, order: SoakOrder, external_id: str) -> None:
        entity_id = self.sb.magento.import_tiktok_order(
            external_id,
            [{"sku": ln.sku, "qty": ln.qty, "price": ln.price,
              "product_type": ln.product_type} for ln in order.lines],
            shipping_amount=order.shipping,
            store_id=order.store.magento_store_id,
            invoiced=order.invoiced,
        )  # fmt: skip
        order.magento_entity_id = entity_id
        order.magento_increment_id = str(
            self.sb.magento.order(entity_id)["increment_id"]
        )
        for ln in order.lines:
            self.ordered[ln.sku] += ln.qty

    # ------------------------------------------------------------------ playing

    def apply_wave(self, wave: int) -> int:
        """Play every step of ``wave``; returns how many were played."""
        played = 0
        for step in self.steps:
            if step.wave != wave:
                continue
            order = self.orders[step.order]
            action, _, role = step.name.partition(":")
            try:
                handler: Callable[[SoakOrder, str], None] = getattr(self, f"_{action}")
                handler(order, role)
            except (ValueError, KeyError, MagentoError) as exc:
                # The world moved on without the driver (e.g. the worker already acted):
                # the step is not played, and the figures say so.
                self.tally.skipped.append(
                    f"{step.name} on order {order.index} (TikTok {order.tiktok_order_id}, "
                    f"Magento {order.magento_entity_id}): {exc}"
                )
                continue
            self.tally.counts[action] += 1
            played += 1
        return played

    def stock_expected(self, sku: str, default: float) -> float:
        return default - self.ordered[sku] + self.restocked[sku]

    def _ship(self, order: SoakOrder, role: str) -> None:
        self.sb.tiktok.ship(order.tiktok_order_id)
        order.shipped = True
        if order.expect.quiet is None and order.fate == "shipped":
            order.expect.quiet = "shipped on TikTok"

    def _cancel_full(self, order: SoakOrder, role: str) -> None:
        tt = self.sb.tiktok
        if role == "BUYER":
            cancel_id = tt.buyer_cancel(order.tiktok_order_id)
        elif role == "SYSTEM":
            cancel_id = tt.system_cancel(order.tiktok_order_id)
        else:
            cancel_id = tt.operator_cancel(order.tiktok_order_id)
        self._cancelled(order, cancel_id, order.live_units(), whole=True, role=role)

    def _cancel_part(self, order: SoakOrder, role: str) -> None:
        live = [(sku, lid) for sku, ids in order.live.items() for lid in ids]
        chosen = self.rng.sample(live, self.rng.randint(1, len(live) - 1))
        cancel_id = self.sb.tiktok.partial_cancel(
            order.tiktok_order_id, [lid for _, lid in chosen], role=role
        )
        units = Counter(sku for sku, _ in chosen)
        self._cancelled(order, cancel_id, units, whole=False, role=role)

    def _cancel_rest(self, order: SoakOrder, role: str) -> None:
        self._cancel_full(order, role)

    def _request(self, order: SoakOrder, role: str) -> None:
        order.request_id = self.sb.tiktok.buyer_cancel(
            order.tiktok_order_id, pending=True
        )
        order.request_outcome = "pending"
        order.tiktok_events.append(order.request_id)
        if order.magento_shipped and order.store.holds:
            order.expect.attention = "buyer's request on an order shipped in Magento"

    def _approve(self, order: SoakOrder, role: str) -> None:
        assert order.request_id is not None  # noqa: S101 - the fate's first step set it
        self.sb.tiktok.seller_center_approve(order.request_id)
        order.request_outcome = "approved"
        self._cancelled(
            order, order.request_id, order.live_units(), whole=True, role="BUYER"
        )

    def _auto_approve(self, order: SoakOrder, role: str) -> None:
        """Nobody answers the request: TikTok approves it once its deadline passed.

        The simulator runs on the wall clock with a day's window, so the deadline is
        moved to within the next 3 s (no public control for one record): the approval
        then lands lazily, at TikTok's next request after it, during a worker run."""
        assert order.request_id is not None  # noqa: S101 - the fate's first step set it
        tiktok = self.sb.tiktok
        with tiktok._lock:  # the simulator's own lock, as its scenario methods take it
            world = tiktok._world
            record = world.cancellations[order.request_id]
            if record.status != PENDING:
                raise ValueError(f"request {order.request_id} is {record.status}")
            record.deadline = world.now() + self.rng.randint(0, 3)
        order.request_outcome = "auto_approved"
        self.tally.counts["auto_approve"] += 1
        self._cancelled(
            order, order.request_id, order.live_units(), whole=True, role="BUYER"
        )

    def _withdraw(self, order: SoakOrder, role: str) -> None:
        assert order.request_id is not None  # noqa: S101 - the fate's first step set it
        self.sb.tiktok.buyer_withdraw(order.request_id)
        order.request_outcome = "withdrawn"
        order.expect.quiet = order.expect.quiet or "buyer withdrew the request"

    def _reject(self, order: SoakOrder, role: str) -> None:
        assert order.request_id is not None  # noqa: S101 - the fate's first step set it
        self.sb.tiktok.seller_center_reject(order.request_id)
        order.request_outcome = "rejected"
        order.expect.quiet = order.expect.quiet or "seller rejected the request"

    def _merchant_hold(self, order: SoakOrder, role: str) -> None:
        """The merchant holds the order in Magento (before any request): cancelsync
        must leave that hold alone, whatever becomes of the request."""
        assert order.magento_entity_id is not None  # noqa: S101 - imported fates only
        self.sb.magento.hold_order(order.magento_entity_id)
        order.merchant_held = True
        order.expect.quiet = "the merchant held the order in Magento"

    def _magento_ship(self, order: SoakOrder, role: str) -> None:
        """The warehouse ships in Magento; TikTok does not know yet (still unshipped
        there, so the buyer can still ask to cancel)."""
        assert order.magento_entity_id is not None  # noqa: S101 - imported fates only
        self.sb.magento.ship_order(order.magento_entity_id)
        order.magento_shipped = True
        order.expect.quiet = "shipped in Magento before the buyer's request"

    def _seller_center(self, order: SoakOrder, role: str) -> None:
        cancel_id = self.sb.tiktok.seller_center_cancel(
            order.tiktok_order_id, order.store.seller_center_reason
        )
        order.seller_center_ids.add(cancel_id)
        self._cancelled(order, cancel_id, order.live_units(), whole=True, role="SELLER")

    def _cancelled(
        self, order: SoakOrder, cancel_id: str, units: Counter[str], *, whole: bool,
        role: str,
    ) -> None:  # fmt: skip
        """A TikTok cancellation happened: note what Magento must show for it."""
        for sku, qty in units.items():
            order.live[sku] = order.live[sku][qty:]
        order.tiktok_events.append(cancel_id)
        if self.rng.random() < self.late_share:
            # A late event: TikTok stamps it earlier than it shows up (reference: items
            # may fall outside the window); within LATE_SECONDS < the worker's overlap.
            self.sb.tiktok.backdate(cancel_id, self.rng.randint(*LATE_SECONDS))
            self.tally.counts["late_cancellation"] += 1
        expect = order.expect
        expect.origin = expect.origin or "tiktok"
        plan = order.store
        if order.magento_entity_id is None:
            expect.quiet = "never imported into Magento"
        elif not plan.cancel_to_refund:
            expect.quiet = "direction TikTok→Magento is off"
        elif role == "SELLER" and not plan.include_seller:
            expect.quiet = "seller cancellation, not mirrored in this store"
        elif order.merchant_held:
            # Magento refuses a credit memo on a held order; the hold is the
            # merchant's, so it stays and a person must look.
            expect.attention = "refund blocked by the merchant's hold"
        elif not order.invoiced:
            expect.magento_cancel = True
            for (
                ln
            ) in order.lines:  # orders/{id}/cancel gives back what was not invoiced
                self.restocked[ln.sku] += ln.qty
        else:
            shipping = order.shipping - order.shipping_expected if whole else 0.0
            order.shipping_expected += shipping
            expect.refunds.append(
                RefundExpect(cancel_id, units, shipping, plan.restock)
            )
            if plan.restock:
                self.restocked.update(units)

    def _memo(
        self,
        order: SoakOrder,
        qtys: dict[int | str, float] | None,
        *,
        visible: bool = True,
        shipping: float | None = 0.0,
    ) -> None:
        """The merchant refunds in Magento (everything left when ``qtys`` is None);
        ``shipping`` None refunds what is left of it."""
        assert order.magento_entity_id is not None  # noqa: S101 - memo fates are imported
        left = Counter({ln.sku: ln.qty for ln in order.lines}) - order.refunded
        units = (
            Counter({str(k): int(v) for k, v in qtys.items()})
            if qtys is not None
            else left
        )
        magento = self.sb.magento
        # One transaction (the simulator's lock): a hold of cancelsync's may land
        # between a look and the memo otherwise.
        with magento._lock:
            if (
                order.request_id is not None
                and not order.merchant_held
                and magento.order(order.magento_entity_id)["state"] == "holded"
            ):
                # Magento refuses a credit memo on a held order: the merchant takes
                # cancelsync's hold off first (README: approving from Magento).
                magento.unhold_order(order.magento_entity_id)
                self.tally.counts["merchant_unhold"] += 1
            memo_id = magento.create_credit_memo(
                order.magento_entity_id, qtys,
                shipping_amount=None if qtys is None else shipping,
                return_to_stock=[], visible=visible,
            )  # fmt: skip
        order.merchant_memo_ids.append(memo_id)
        order.refunded.update(units)
        full = not (left - units)
        expect = order.expect
        expect.origin = expect.origin or "magento"
        plan = order.store
        if order.fate == "foreign_memo":
            expect.quiet = "not a TikTok order (another channel's importer)"
        elif not plan.refund_to_cancel:
            expect.quiet = "direction Magento→TikTok is off"
        elif order.shipped:
            expect.quiet = "shipped on TikTok before the refund"
            expect.attention = "credit memo on a shipped TikTok order"
        elif full and order.request_id is not None:
            expect.approve = order.request_id
            order.request_outcome = "merchant_memo"
        elif full:
            expect.tiktok_units = Counter(
                {sku: len(ids) for sku, ids in order.units.items()}
            )
        elif plan.partial_refunds == "cancel_items":
            expect.tiktok_units.update(units)
        elif order.fate == "memo_twice":
            expect.attention_allowed = (
                True  # judged partial only if seen before the rest
            )
        else:
            expect.attention = "partial credit memo, partial_refunds = report"

    def _memo_full(self, order: SoakOrder, role: str) -> None:
        self._memo(order, None)

    def _memo_part(self, order: SoakOrder, role: str) -> None:
        pool = [ln.sku for ln in order.lines for _ in range(ln.qty)]
        chosen = self.rng.sample(pool, self.rng.randint(1, len(pool) - 1))
        self._memo(order, {sku: float(n) for sku, n in Counter(chosen).items()})

    def _memo_rest(self, order: SoakOrder, role: str) -> None:
        # What is left, by SKU: the simulator's "everything left" (no items) wrongly
        # counts a configurable whose units were all refunded by an earlier memo.
        left = Counter({ln.sku: ln.qty for ln in order.lines}) - order.refunded
        self._memo(order, {sku: float(n) for sku, n in left.items()}, shipping=None)

    def _memo_any(self, order: SoakOrder, role: str) -> None:
        if order.total_units > 1 and self.rng.random() < 0.5:
            self._memo_part(order, role)
        else:
            self._memo(order, None)

    def _memo_late(self, order: SoakOrder, role: str) -> None:
        """A slow transaction: the memo's id is taken now, it commits seconds later
        (while the worker runs), behind memos with higher ids."""
        self._memo(order, None, visible=False)
        self.tally.counts["late_memo"] += 1
        timer = threading.Timer(
            self.rng.uniform(*LATE_COMMIT_SECONDS), self.commit_late
        )
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def operator_retried(self) -> None:
        """An operator ran ``retry --all``: every needs-attention row is re-driven. A
        shipped order's request already answered then needs nobody any more (the row
        ends skipped); one still pending needs attention again."""
        for order in self.orders:
            if order.magento_shipped and order.request_outcome not in (None, "pending"):
                order.expect.attention = None
                order.expect.attention_allowed = True

    def commit_late(self) -> None:
        """Commit every late memo now (their timers, or the end of the fault phase)."""
        self.sb.magento.commit_pending()

    def stop_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.commit_late()
