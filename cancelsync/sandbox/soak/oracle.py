"""The soak's invariants, checked against the simulators' final state and journals.

"Should" comes from the world (``Expect`` per order, written when the driver played each
step); "did" comes from Magento's credit memos and stock, TikTok's cancellation records and
the requests both servers received. The worker's ledger is only read for ``status --json``
(nothing pending, every attention item has a reason) and quoted as evidence.

Invariants, per order:

- **duplicate**: more refunded (units, shipping) or more TikTok lines cancelled by our API
  than its events call for, or two memos carrying one cancellation's marker;
- **lost**: an effect missing and no needs-attention item for the order (an event silently
  dropped); a required attention item missing counts too;
- **echo**: a refund on an order whose events started in Magento, or a TikTok cancel on one
  whose events started on TikTok (our own write mirrored back);
- **forbidden write**: any write request at all touching an order that must see none
  (shipped before the refund, never imported, direction off, another channel's order,
  a seller cancellation not mirrored, a withdrawn request);
- **wrong refund**: the refunds differ in what they refund (not only in how much);
- **unexpected write**: a credit memo nobody explains (neither the merchant's nor carrying
  our marker), a Magento order cancelled that should not be, a request approved that
  should not be.

Holds (``hold_on_request``, store us-main; expectations from the world's steps, applied
or refused from what Magento itself answered, see ``outcomes``):

- **hold left on**: an order on hold at the end that neither the merchant held nor has a
  buyer's request still pending (cancelsync's hold outlived its request);
- **hold missing**: a request pending at the end on an order cancelsync must hold
  (unshipped, not the merchant's hold) that is not on hold;
- **merchant hold released**: an order the merchant held that got any unhold request, or
  is no longer on hold;
- **hold applied twice**: more than one hold request that Magento applied for an order's
  request (a refused or faulted one does not count);
- **shipped order held**: a hold request on an order shipped in Magento (which must be a
  needs-attention item instead, see *lost*);
- **unexpected hold**: a hold or unhold request on an order that must never be held
  (another store, the merchant's hold, no request), or more releases than holds;
- **request refund**: an accepted request without exactly one credit memo carrying its
  marker, or a rejected, withdrawn or pending one with any.

And globally: every SKU's stock equals its start - ordered + returned (restock settings), no
action is left pending or failed, every attention item has a reason, and SQLite's
``PRAGMA integrity_check`` says ok.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cancelsync.sandbox.soak.faults import WRITES
from cancelsync.sandbox.soak.model import CENT, SoakOrder
from cancelsync.sandbox.soak.outcomes import HOLD, UNHOLD
from cancelsync.sandbox.soak.world import World

ZERO_FIGURES = (
    "duplicates", "lost", "echoes", "forbidden writes", "wrong refunds",
    "unexpected writes", "stock mismatches", "pending at end", "attention without reason",
    "holds left on", "holds missing", "merchant holds released", "holds applied twice",
    "shipped orders held", "unexpected holds", "request refunds wrong",
)  # fmt: skip
HOLD_MARKERS = ("[cancelsync:hold:", "[cancelsync:release:")
ANSWERED = {"approved", "auto_approved"}  # accepted on TikTok: refunded by cancelsync
MARKER = re.compile(r"\[cancelsync:([^\]]+)\]")
MAGENTO_ORDER = re.compile(r"/V1/orders?/(\d+)/")
TIKTOK_CANCEL_ID = re.compile(r"/cancellations/([^/]+)/(?:approve|reject)$")
ACCEPTED = ("CANCELLATION_REQUEST_SUCCESS", "CANCELLATION_REQUEST_COMPLETE")
LOG_LINES_PER_ORDER = 40


@dataclass
class Violation:
    """One broken invariant: which, why, on which order, and what shows it."""

    invariant: str
    detail: str
    order: int | None = None
    tiktok_order_id: str | None = None
    magento_entity_id: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """What the checks found: figures, violations (with evidence), surfaced effects."""

    figures: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    # Effects missing but reported as needs attention (allowed, listed for review).
    surfaced: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, invariant: str, figure: str, amount: int, detail: str,
            order: SoakOrder | None = None) -> None:  # fmt: skip
        self.figures[figure] += amount
        self.violations.append(
            Violation(
                invariant, detail,
                order.index if order else None,
                order.tiktok_order_id or None if order else None,
                order.magento_entity_id if order else None,
            )
        )  # fmt: skip


def check(world: World, status: dict[str, Any], database: Path, logs: Path) -> Verdict:
    """Every invariant; violations carry evidence from the ledger, journals and logs."""
    verdict = Verdict()
    for name in ZERO_FIGURES:
        verdict.figures[name] = 0
    attention = _attention_by_order(status)
    writes = _write_attempts(world)
    for order in world.orders:
        _check_order(world, order, attention, writes, verdict)
    _check_stock(world, verdict)
    _check_status(status, verdict)
    integrity = integrity_check(database)
    verdict.figures["integrity_check ok"] = int(integrity == "ok")
    if integrity != "ok":
        verdict.add(
            "integrity", "integrity failures", 1, f"PRAGMA integrity_check: {integrity}"
        )
    for violation in verdict.violations:
        if violation.order is not None:
            violation.evidence = evidence(
                world, world.orders[violation.order], database, logs, writes
            )
    return verdict


def integrity_check(database: Path) -> str:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows)


# --------------------------------------------------------------------------- per order


def _check_order(
    world: World,
    order: SoakOrder,
    attention: dict[str, list[dict[str, Any]]],
    writes: dict[int, list[dict[str, Any]]],
    verdict: Verdict,
) -> None:
    expect = order.expect
    flagged = attention.get(order.tiktok_order_id, []) + attention.get(
        order.magento_increment_id, []
    )
    # A hold and its release are the only writes an order cancelsync must hold may see
    # while its request is pending or after it was rejected (checked in _check_holds).
    forbidden = [w for w in writes.get(order.index, [])
                 if not (w["hold"] and order.holdable)]  # fmt: skip
    if expect.quiet is not None and forbidden:
        n = len(forbidden)
        verdict.add("forbidden write", "forbidden writes", n,
                    f"{n} write request(s) on an order that must see none ({expect.quiet})",
                    order)  # fmt: skip
    missing: list[str] = []
    if order.magento_entity_id is not None:
        missing += _check_magento(world, order, verdict)
        _check_holds(world, order, writes.get(order.index, []), verdict)
    if order.tiktok_order_id:
        missing += _check_tiktok(world, order, verdict)
    if expect.attention is not None and not flagged:
        missing.append(f"no needs-attention item ({expect.attention})")
    if missing:
        if flagged and expect.attention is None:
            verdict.figures["surfaced as attention"] += 1
            verdict.surfaced.append({
                "order": order.index, "fate": order.fate,
                "tiktok_order_id": order.tiktok_order_id, "missing": missing,
                "attention": [item.get("reason") for item in flagged],
            })  # fmt: skip
        else:
            verdict.add("lost", "lost", 1, "; ".join(missing), order)
    elif flagged:
        allowed = expect.attention is not None or expect.attention_allowed
        verdict.figures[
            "attention (expected)" if allowed else "attention (unexpected)"
        ] += 1


def _check_magento(world: World, order: SoakOrder, verdict: Verdict) -> list[str]:
    assert order.magento_entity_id is not None  # noqa: S101 - checked by the caller
    expect = order.expect
    sb = world.sb
    magento_order = sb.magento.order(order.magento_entity_id)
    children = {
        int(i["item_id"]) for i in magento_order["items"] if i.get("parent_item_id")
    }
    marked: dict[str, list[dict[str, Any]]] = defaultdict(list)
    got: Counter[str] = Counter()
    shipping = 0.0
    for memo in sb.magento.credit_memos(order.magento_entity_id):
        ids = {
            m
            for c in memo.get("comments", [])
            for m in MARKER.findall(c.get("comment") or "")
        }
        if not ids:
            if int(memo["entity_id"]) not in order.merchant_memo_ids:
                verdict.add("unexpected write", "unexpected writes", 1,
                            f"credit memo {memo['entity_id']} is neither the merchant's nor "
                            "marked as cancelsync's", order)  # fmt: skip
            continue
        for marker_id in ids:
            marked[marker_id].append(memo)
        for item in memo.get("items", []):
            if int(item["order_item_id"]) not in children and float(item["qty"]) > 0:
                got[str(item["sku"])] += round(float(item["qty"]))
        shipping += float(memo.get("shipping_amount") or 0)
    if marked and expect.origin == "magento":
        verdict.add("echo", "echoes", len(marked),
                    f"refund(s) {sorted(marked)} on an order whose events started in "
                    "Magento (a TikTok cancel of ours mirrored back)", order)  # fmt: skip
        return []
    for marker_id, memos in marked.items():
        if len(memos) > 1:
            verdict.add("duplicate", "duplicates", len(memos) - 1,
                        f"{len(memos)} credit memos carry the marker of cancellation "
                        f"{marker_id}: {[m['entity_id'] for m in memos]}", order)  # fmt: skip
    wanted: Counter[str] = Counter()
    for refund in expect.refunds:
        wanted.update(refund.units)
    wanted_shipping = sum(r.shipping for r in expect.refunds)
    over, under = got - wanted, wanted - got
    missing: list[str] = []
    if over and under:
        verdict.add("wrong refund", "wrong refunds", 1,
                    f"refunded {dict(got)} but the cancellations call for {dict(wanted)}",
                    order)  # fmt: skip
    elif over or shipping > wanted_shipping + CENT:
        if not any(len(m) > 1 for m in marked.values()):
            verdict.add("duplicate", "duplicates", 1,
                        f"refunded {dict(got)} + shipping {shipping:.2f}, more than the "
                        f"cancellations call for ({dict(wanted)} + {wanted_shipping:.2f})",
                        order)  # fmt: skip
    elif under or shipping < wanted_shipping - CENT:
        missing.append(
            f"Magento refunded {dict(got)} + shipping {shipping:.2f} of "
            f"{dict(wanted)} + {wanted_shipping:.2f}"
        )
    canceled = magento_order["state"] == "canceled"
    if expect.magento_cancel and not canceled:
        missing.append("the Magento order (nothing invoiced) is not cancelled")
    if canceled and not expect.magento_cancel:
        verdict.add("unexpected write", "unexpected writes", 1,
                    "the Magento order was cancelled", order)  # fmt: skip
    return missing


def _check_tiktok(world: World, order: SoakOrder, verdict: Verdict) -> list[str]:
    expect = order.expect
    records = world.sb.tiktok.cancellations(order.tiktok_order_id)
    ours = [
        r for r in records
        if r["role"] == "SELLER" and r["cancel_status"] in ACCEPTED
        and r["cancel_id"] not in order.seller_center_ids
    ]  # fmt: skip
    got = Counter(
        str(line["seller_sku"]) for r in ours for line in r.get("cancel_line_items", [])
    )
    missing: list[str] = []
    if got and expect.origin == "tiktok":
        verdict.add("echo", "echoes", len(ours),
                    f"TikTok seller cancel(s) {[r['cancel_id'] for r in ours]} on an order "
                    "whose events started on TikTok (a refund of ours mirrored back)",
                    order)  # fmt: skip
    else:
        over, under = got - expect.tiktok_units, expect.tiktok_units - got
        if over:
            verdict.add("duplicate", "duplicates", sum(over.values()),
                        f"our TikTok cancels took {dict(got)}, the credit memos call for "
                        f"{dict(expect.tiktok_units)}", order)  # fmt: skip
        elif under:
            missing.append(
                f"TikTok lines cancelled {dict(got)} of {dict(expect.tiktok_units)}"
            )
    request = next((r for r in records if r["cancel_id"] == order.request_id), None)
    approved = request is not None and request["cancel_status"] in ACCEPTED
    if expect.approve is not None and not approved:
        missing.append(f"buyer request {expect.approve} not approved")
    if approved and expect.approve is None and order.request_outcome not in ANSWERED:
        verdict.add("unexpected write", "unexpected writes", 1,
                    f"buyer request {order.request_id} was approved", order)  # fmt: skip
    return missing


def _check_holds(
    world: World, order: SoakOrder, writes: list[dict[str, Any]], verdict: Verdict
) -> None:
    """The hold invariants of one imported order (see the module docstring)."""
    assert order.magento_entity_id is not None  # noqa: S101 - checked by the caller
    posts = Counter(w["endpoint"] for w in writes)
    outcomes = world.holds.of(order.magento_entity_id)
    holds = [o for o in outcomes if o.endpoint == HOLD and o.applied]
    releases = [o for o in outcomes if o.endpoint == UNHOLD and o.applied]
    state = world.sb.magento.order(order.magento_entity_id)["state"]
    name = (
        f"Magento order #{order.magento_increment_id} (TikTok {order.tiktok_order_id}, "
        f"fate {order.fate}, request {order.request_id}: {order.request_outcome})"
    )
    if order.merchant_held:
        if posts[UNHOLD]:
            verdict.add("merchant hold released", "merchant holds released",
                        posts[UNHOLD], f"{name}: {posts[UNHOLD]} unhold request(s) on "
                        "an order the merchant held", order)  # fmt: skip
        if state != "holded":
            verdict.add("merchant hold released", "merchant holds released", 1,
                        f"{name}: the merchant held it, but it is {state} at the end",
                        order)  # fmt: skip
    elif state == "holded" and not (
        order.holdable and order.request_outcome == "pending"
    ):
        verdict.add("hold left on", "holds left on", 1,
                    f"{name}: on hold at the end, yet no pending request keeps it held "
                    f"and the merchant did not hold it ({len(holds)} hold(s) and "
                    f"{len(releases)} release(s) applied)", order)  # fmt: skip
    if order.holdable and order.request_outcome == "pending" and state != "holded":
        verdict.add("hold missing", "holds missing", 1,
                    f"{name}: the buyer's request is still pending but the order is "
                    f"{state}, not on hold ({posts[HOLD]} hold request(s) sent)", order)  # fmt: skip
    if len(holds) > 1:
        verdict.add("hold applied twice", "holds applied twice", len(holds) - 1,
                    f"{name}: Magento applied {len(holds)} hold requests for one buyer "
                    f"request (at {[round(o.at, 3) for o in holds]})", order)  # fmt: skip
    if order.magento_shipped and posts[HOLD]:
        verdict.add("shipped order held", "shipped orders held", posts[HOLD],
                    f"{name}: {posts[HOLD]} hold request(s) on an order shipped in "
                    "Magento (it needs attention instead)", order)  # fmt: skip
    elif not order.holdable and (posts[HOLD] or posts[UNHOLD]):
        verdict.add("unexpected hold", "unexpected holds", posts[HOLD] + posts[UNHOLD],
                    f"{name}: {posts[HOLD]} hold and {posts[UNHOLD]} unhold request(s) "
                    "on an order cancelsync must never hold", order)  # fmt: skip
    elif len(releases) > len(holds):
        verdict.add("unexpected hold", "unexpected holds", len(releases) - len(holds),
                    f"{name}: {len(releases)} release(s) applied for {len(holds)} "
                    "hold(s): a hold cancelsync did not make was taken off", order)  # fmt: skip
    _check_request_refund(world, order, name, verdict)


def _check_request_refund(
    world: World, order: SoakOrder, name: str, verdict: Verdict
) -> None:
    """Accepted (on TikTok) means one memo with the request's marker; else none."""
    if order.request_id is None or order.magento_entity_id is None:
        return
    tag = f"[cancelsync:{order.request_id}]"
    memos = [
        m["entity_id"] for m in world.sb.magento.credit_memos(order.magento_entity_id)
        if any(tag in (c.get("comment") or "") for c in m.get("comments", []))
    ]  # fmt: skip
    refunded = (
        order.request_outcome in ANSWERED
        and order.store.cancel_to_refund
        and order.invoiced
        and not order.merchant_held
    )
    if refunded and len(memos) != 1:
        verdict.add("request refund", "request refunds wrong", 1,
                    f"{name}: the request was accepted on TikTok; {len(memos)} credit "
                    f"memos carry its marker {memos} (exactly one expected)", order)  # fmt: skip
    elif not refunded and memos:
        verdict.add("request refund", "request refunds wrong", len(memos),
                    f"{name}: credit memo(s) {memos} carry the marker of a request "
                    "that must not be refunded by cancelsync", order)  # fmt: skip


# --------------------------------------------------------------------------- global


def _check_stock(world: World, verdict: Verdict) -> None:
    magento = world.sb.magento
    default = magento.state.default_stock
    for sku in sorted(set(world.ordered) | set(world.restocked)):
        want, have = world.stock_expected(sku, default), magento.stock(sku)
        if abs(want - have) > CENT:
            verdict.add("stock", "stock mismatches", 1,
                        f"SKU {sku}: stock {have:g}, expected {want:g} (ordered "
                        f"{world.ordered[sku]}, to be restocked {world.restocked[sku]})")  # fmt: skip


def _check_status(status: dict[str, Any], verdict: Verdict) -> None:
    for store in status["stores"]:
        actions = store["actions"]
        open_rows = actions.get("pending", 0) + actions.get("failed", 0)
        if open_rows:
            verdict.add("pending", "pending at end", open_rows,
                        f"store {store['name']}: {actions} after convergence; failed: "
                        f"{json.dumps(store['failed'])[:2000]}")  # fmt: skip
        for item in store["needs_attention"]:
            if not (item.get("reason") or "").strip():
                verdict.add("attention reason", "attention without reason", 1,
                            f"store {store['name']}: attention item {item} has no reason")  # fmt: skip
        verdict.figures["needs attention (status)"] += len(store["needs_attention"])


def _attention_by_order(status: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for store in status["stores"]:
        for item in store["needs_attention"]:
            for key in ("tiktok_order_id", "magento_increment_id"):
                if item.get(key):
                    found[str(item[key])].append(item)
    return found


def _write_attempts(world: World) -> dict[int, list[dict[str, Any]]]:
    """Write requests the servers received, by the world order they touch."""
    by_entity = {
        o.magento_entity_id: o.index for o in world.orders if o.magento_entity_id
    }
    by_tiktok = {o.tiktok_order_id: o.index for o in world.orders if o.tiktok_order_id}
    by_cancel = {c: o.index for o in world.orders for c in o.tiktok_events}
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for server in (world.sb.magento_server, world.sb.tiktok_server):
        for entry in server.journal.entries():
            if not WRITES.fullmatch(entry.endpoint):
                continue
            index: int | None = None
            if m := MAGENTO_ORDER.search(entry.path):
                index = by_entity.get(int(m.group(1)))
            elif m := TIKTOK_CANCEL_ID.search(entry.path):
                index = by_cancel.get(m.group(1))
            else:
                try:
                    index = by_tiktok.get(str((entry.json() or {}).get("order_id")))
                except ValueError:
                    index = None
            if index is not None:
                text = entry.body.decode("utf-8", "replace")
                hold = entry.endpoint in (HOLD, UNHOLD) or (
                    entry.endpoint.endswith("/comments")
                    and any(m in text for m in HOLD_MARKERS)
                )
                found[index].append({
                    "endpoint": entry.endpoint, "path": entry.path, "status": entry.status,
                    "hold": hold,
                    "fault": entry.fault, "at": round(entry.at, 3),
                    "body": entry.body.decode("utf-8", "replace")[:300],
                })  # fmt: skip
    return found


# --------------------------------------------------------------------------- evidence


def evidence(
    world: World,
    order: SoakOrder,
    database: Path,
    logs: Path,
    writes: dict[int, list[dict[str, Any]]],
) -> dict[str, Any]:
    """What shows a violation: the order's ledger rows and timeline, the write requests
    the servers saw, both platforms' records and the worker's log lines about it."""
    data: dict[str, Any] = {"fate": order.fate, "store": order.store.name,
                            "expect": _expect_json(order), "writes": writes.get(order.index, [])}  # fmt: skip
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        data["ledger"] = [dict(r) for r in conn.execute(
            "SELECT * FROM ledger WHERE tiktok_order_id = ? OR magento_entity_id = ? "
            "ORDER BY action_id", [order.tiktok_order_id, order.magento_entity_id])]  # fmt: skip
        data["timeline"] = [dict(r) for r in conn.execute(
            "SELECT at, run_id, action_id, kind, message FROM timeline WHERE "
            "tiktok_order_id = ? OR magento_entity_id = ? ORDER BY event_id",
            [order.tiktok_order_id, order.magento_entity_id])]  # fmt: skip
    finally:
        conn.close()
    if order.magento_entity_id is not None:
        data["magento_holds"] = [
            {"endpoint": o.endpoint, "status": o.status, "at": round(o.at, 3)}
            for o in world.holds.of(order.magento_entity_id)
        ]  # fmt: skip
        magento_order = world.sb.magento.order(order.magento_entity_id)
        data["magento_state"] = magento_order["state"]
        data["magento_comments"] = [
            h.get("comment") for h in magento_order.get("status_histories", [])
        ]
        data["magento_memos"] = [
            {"entity_id": m["entity_id"], "created_at": m.get("created_at"),
             "shipping_amount": m.get("shipping_amount"),
             "items": [(i["sku"], i["qty"]) for i in m.get("items", [])],
             "comments": [c.get("comment") for c in m.get("comments", [])]}
            for m in world.sb.magento.credit_memos(order.magento_entity_id)
        ]  # fmt: skip
    if order.tiktok_order_id:
        data["tiktok_cancellations"] = [
            {"cancel_id": r["cancel_id"], "role": r["role"], "status": r["cancel_status"],
             "skus": [line["seller_sku"] for line in r.get("cancel_line_items", [])]}
            for r in world.sb.tiktok.cancellations(order.tiktok_order_id)
        ]  # fmt: skip
    data["log_lines"] = _log_lines(logs, order)
    return data


def _expect_json(order: SoakOrder) -> dict[str, Any]:
    e = order.expect
    return {
        "origin": e.origin, "quiet": e.quiet, "attention": e.attention,
        "refunds": [{"cancel_id": r.cancel_id, "units": dict(r.units),
                     "shipping": r.shipping, "restock": r.restock} for r in e.refunds],
        "magento_cancel": e.magento_cancel, "tiktok_units": dict(e.tiktok_units),
        "approve": e.approve, "merchant_memos": order.merchant_memo_ids,
        "request": order.request_id, "request_outcome": order.request_outcome,
        "merchant_held": order.merchant_held, "magento_shipped": order.magento_shipped,
        "holdable": order.holdable,
    }  # fmt: skip


def _log_lines(logs: Path, order: SoakOrder) -> list[str]:
    needles = [n for n in (order.tiktok_order_id, order.magento_increment_id) if n]
    found: list[str] = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text("utf-8", "replace").splitlines():
            if any(n in line for n in needles):
                found.append(f"{path.name}: {line}")
                if len(found) >= LOG_LINES_PER_ORDER:
                    return found
    return found
