"""The chaos soak's short variant (the full one is `make soak`): the real worker, run as
child processes through the CLI against faulty simulators and SIGKILLed four times (once in
service mode), still refunds and cancels exactly once, and holds an order only while its
buyer's request is pending (us-main runs with ``hold_on_request``; never the merchant's
holds, never a shipped order).

Left out of the short variant, on purpose (the full soak keeps them all):

- kills that cut a send short: here kills land only while the worker lists orders, between
  events. A send cut short is held for the client timeout + 60 s before the worker looks at
  it again (by design: the write may still complete), longer than this test;
- drops, 502/504 and timeouts on writes, for the same reason, and lost replies to
  Magento order comments (a hold's comment is its first call: a lost reply to it parks
  the hold just as long);
- slow writes, a kill during a slow partial refund, and ``retry --all`` while a timed-out
  partial refund is still being committed: the full soak's targeted scenarios for the two
  known worker bugs (double refund after a restart, re-send after ``retry --all``).

Fault rates are lower than the full soak's (writes x0.8, reads x0.35): every fault costs
the worker a real backoff sleep. ``CANCELSYNC_SOAK_SEED`` picks another seed.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from cancelsync.sandbox.soak import SoakResult, SoakSettings, oracle, run_soak
from cancelsync.sandbox.soak.model import SoakOrder

SEED = int(os.environ.get("CANCELSYNC_SOAK_SEED", "11"))


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[SoakResult, float]:
    """One short soak for the module, with its wall time."""
    started = time.monotonic()
    result = run_soak(SoakSettings.short(SEED, workdir=tmp_path_factory.mktemp("soak")))
    return result, time.monotonic() - started


def test_short_soak_keeps_exactly_once(soak: tuple[SoakResult, float]) -> None:
    """Under faults, late and duplicated data, a token expiry and four SIGKILLs, every
    refund and cancel happens exactly once, nothing is lost or echoed, nothing stays
    pending, and the database is intact."""
    result, seconds = soak

    figures = result.figures
    problems = [v.detail for v in result.verdict.violations] + result.anomalies
    assert result.ok, problems
    for name in oracle.ZERO_FIGURES:
        assert figures[name] == 0, name
    assert figures["kills (SIGKILL)"] == 4
    assert sum(n for mode, n in figures["kills by mode"].items()
               if mode.startswith("service/")) == 1  # fmt: skip
    assert figures["service stop (SIGTERM) exit code"] == 0
    assert figures["token expiries"] == 1
    assert figures["integrity_check ok"] == 1
    assert isinstance(figures["cycles to convergence"], int)
    assert sum(figures["faults injected"].values()) > 20
    assert figures["writes attempted"] > 40
    assert figures["events"]["TikTok cancellations"] > 20
    assert figures["events"]["merchant credit memos"] > 20
    assert figures["holds applied (Magento answered 200)"] > 0
    assert figures["releases applied (Magento answered 200)"] > 0
    assert figures["orders on hold at the end"].get("other (must be 0)", 0) == 0
    assert seconds < 60


def test_oracle_catches_a_second_refund_and_an_echo(
    soak: tuple[SoakResult, float],
) -> None:
    """The checks are not vacuous: a second refund carrying one cancellation's marker is a
    duplicate, and a refund on an order whose events started in Magento is an echo."""
    result, _ = soak
    world = result.world
    refunded = next(
        o for o in world.orders if o.fate in ("partial", "partial_system")
        and o.expect.refunds
    )  # fmt: skip
    merchant = next(
        o for o in world.orders if o.fate == "memo_partial" and o.store.key == "A"
    )
    for order, marker in ((refunded, refunded.expect.refunds[0].cancel_id),
                          (merchant, "4000000000000000001")):  # fmt: skip
        assert order.magento_entity_id is not None
        done = order.refunded + sum((r.units for r in order.expect.refunds), Counter())
        left = next(ln.sku for ln in order.lines if ln.qty > done[ln.sku])
        world.sb.magento.create_credit_memo(
            order.magento_entity_id, {left: 1.0}, shipping_amount=0.0,
            comment=f"cancelsync: by hand [cancelsync:{marker}]", return_to_stock=[],
        )  # fmt: skip

    verdict = oracle.check(
        world, result.status, result.database, result.workdir / "logs"
    )

    kinds = {(v.invariant, v.order) for v in verdict.violations}
    assert ("duplicate", refunded.index) in kinds
    assert ("echo", merchant.index) in kinds


def test_oracle_catches_a_hold_left_on_a_missing_one_and_a_released_merchant_hold(
    soak: tuple[SoakResult, float],
) -> None:
    """The hold checks are not vacuous: an order held after its request was rejected, a
    pending request's order no longer held, and a merchant's hold taken off are each
    reported, naming the order."""
    result, _ = soak
    world = result.world
    magento = world.sb.magento

    def state(o: SoakOrder) -> str:
        assert o.magento_entity_id is not None
        return str(magento.order(o.magento_entity_id)["state"])

    def first(outcome: str, *, merchant: bool = False) -> SoakOrder | None:
        return next(
            (o for o in world.orders if o.request_outcome == outcome
             and o.merchant_held == merchant and (merchant or o.holdable)
             and state(o) == ("holded" if merchant or outcome == "pending"
                              else "processing")),
            None,
        )  # fmt: skip

    wanted: set[tuple[str, int]] = set()
    rejected, pending, merchant = (
        first("rejected"), first("pending"), first("pending", merchant=True)
    )  # fmt: skip
    if rejected is not None and rejected.magento_entity_id is not None:
        magento.hold_order(rejected.magento_entity_id)
        wanted.add(("hold left on", rejected.index))
    for order in (pending, merchant):
        if order is not None and order.magento_entity_id is not None:
            magento.unhold_order(order.magento_entity_id)
    if pending is not None:
        wanted.add(("hold missing", pending.index))
    if merchant is not None:
        wanted.add(("merchant hold released", merchant.index))
    assert wanted, "the short world has no hold fates to tamper with"

    verdict = oracle.check(
        world, result.status, result.database, result.workdir / "logs"
    )

    found = {(v.invariant, v.order): v.detail for v in verdict.violations}
    assert wanted <= set(found), found
    for _, index in wanted:
        number = world.orders[index].magento_increment_id
        assert any(f"#{number}" in d for (_, i), d in found.items() if i == index)
