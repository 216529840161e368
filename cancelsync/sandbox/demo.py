"""``make demo`` and ``cancelsync sandbox``: the sync on simulated stores, no credentials.

``python -m cancelsync.sandbox.demo`` (``main``) starts both simulators on 127.0.0.1, seeds
a few TikTok orders imported into Magento, makes cancellations and refunds happen on either
side, runs ``cancelsync run --once`` through the real CLI, prints what changed on both sides
per order plus ``cancelsync status``, then runs once more to show that nothing is done twice.
The work folder (config, SQLite database, JSON logs) is kept so ``explain`` can be tried.

``serve_sandbox`` (``cancelsync sandbox``) serves the same seeded stores until Ctrl-C, prints
a ready config and, on a terminal, offers a small prompt to make things happen.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import structlog

from cancelsync.sandbox.harness import PlacedOrder, Sandbox
from cancelsync.sandbox.magento.errors import MagentoError

# --------------------------------------------------------------------------- seed data

Line = Mapping[str, Any]

# (key, what the order is, its lines). The keys name the scenarios below.
SEED_ORDERS: tuple[tuple[str, str, tuple[Line, ...]], ...] = (
    ("buyer", "1 x tee (simple product)",
     ({"sku": "TEE-RED-M", "qty": 1, "price": 19.99, "name": "Classic Tee Red M"},)),
    ("system", "2 x hoodie (configurable product)",
     ({"sku": "HOODIE-BLK-L", "qty": 2, "price": 45.00, "product_type": "configurable",
       "name": "Zip Hoodie Black L"},)),
    ("line", "2 x mug + 1 x cap (configurable), two lines",
     ({"sku": "MUG-WHT", "qty": 2, "price": 8.50, "name": "Ceramic Mug White"},
      {"sku": "CAP-NVY", "qty": 1, "price": 12.00, "product_type": "configurable",
       "name": "Baseball Cap Navy"})),
    ("memo", "3 x socks (multi-qty line)",
     ({"sku": "SOCKS-3PK", "qty": 3, "price": 5.00, "name": "Socks 3-pack"},)),
    ("shipped", "1 x tote bag",
     ({"sku": "TOTE-CNV", "qty": 1, "price": 25.00, "name": "Canvas Tote"},)),
    ("quiet", "1 x beanie + 1 x mug",
     ({"sku": "BEANIE-GRY", "qty": 1, "price": 15.00, "name": "Beanie Grey"},
      {"sku": "MUG-WHT", "qty": 1, "price": 8.50, "name": "Ceramic Mug White"})),
)  # fmt: skip

# What happens to each seeded order before cancelsync runs (``make demo``).
SCENARIOS: dict[str, str] = {
    "buyer": "the buyer cancels the whole order on TikTok",
    "system": "TikTok's system auto-cancels the order",
    "line": "the buyer cancels the cap line on TikTok (the mugs stay)",
    "memo": "the merchant creates a full credit memo in Magento",
    "shipped": "the order ships on both sides, then the merchant refunds it in Magento",
    "quiet": "nothing: it must be left alone",
}

# Remote writes, by journal endpoint label (reads, searches and token calls excluded).
_TIKTOK_WRITES = re.compile(
    r"POST /return_refund/[^/]+/cancellations(/[^/]+/(approve|reject))?"
)


@dataclass
class DemoOrder:
    """One seeded order: a TikTok order imported into Magento."""

    key: str
    title: str
    lines: tuple[Line, ...]
    placed: PlacedOrder

    @property
    def skus(self) -> list[str]:
        return list(dict.fromkeys(str(line["sku"]) for line in self.lines))


def seed_orders(sb: Sandbox) -> list[DemoOrder]:
    """Place the demo orders on TikTok and import them into Magento (invoiced)."""
    return [
        DemoOrder(key, title, lines, sb.place_order(lines))
        for key, title, lines in SEED_ORDERS
    ]


def make_things_happen(sb: Sandbox, orders: Mapping[str, DemoOrder]) -> None:
    """The events of ``SCENARIOS``, on the side where they start."""
    sb.tiktok.buyer_cancel(orders["buyer"].placed.tiktok_order_id)
    sb.tiktok.system_cancel(orders["system"].placed.tiktok_order_id)
    line = orders["line"].placed
    cap_lines = [
        item["id"]
        for item in sb.tiktok.order(line.tiktok_order_id)["line_items"]
        if item["seller_sku"] == "CAP-NVY"
    ]
    sb.tiktok.partial_cancel(line.tiktok_order_id, cap_lines, role="BUYER")
    sb.magento.create_credit_memo(
        orders["memo"].placed.magento_entity_id, None, comment="refunded by merchant"
    )
    shipped = orders["shipped"].placed
    sb.tiktok.ship(shipped.tiktok_order_id)
    sb.magento.ship_order(shipped.magento_entity_id)
    sb.magento.create_credit_memo(
        shipped.magento_entity_id, None, comment="refunded by merchant after shipping"
    )


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Memo:
    increment_id: str
    grand_total: float
    subtotal: float
    shipping: float
    by_cancelsync: bool
    skus: tuple[tuple[str, float], ...]

    def describe(self, currency: str) -> str:
        items = ", ".join(f"{qty:g} x {sku}" for sku, qty in self.skus)
        who = "by cancelsync" if self.by_cancelsync else "by the merchant"
        return (
            f"#{self.increment_id} {_money(self.grand_total, currency)} "
            f"({items}; shipping {_money(self.shipping, currency)}) {who}"
        )


@dataclass(frozen=True)
class Snapshot:
    """Both sides of one order at one moment."""

    tiktok_status: str
    tiktok_cancels: tuple[str, ...]
    magento_state: str
    currency: str
    memos: tuple[Memo, ...]
    stock: dict[str, float]


def snapshot(sb: Sandbox, order: DemoOrder) -> Snapshot:
    tiktok = sb.tiktok.order(order.placed.tiktok_order_id)
    cancels = tuple(
        _describe_cancel(c)
        for c in sb.tiktok.cancellations(order.placed.tiktok_order_id)
    )
    magento = sb.magento.order(order.placed.magento_entity_id)
    memos = tuple(
        Memo(
            increment_id=str(m["increment_id"]),
            grand_total=float(m["grand_total"]),
            subtotal=float(m.get("subtotal", 0.0)),
            shipping=float(m.get("shipping_amount", 0.0)),
            by_cancelsync=any(
                "[cancelsync:" in str(c.get("comment", "")) for c in m["comments"]
            ),
            # Configurable children repeat their parent's row without a total.
            skus=tuple(
                (str(i["sku"]), float(i["qty"]))
                for i in m["items"]
                if i.get("row_total") is not None and float(i["qty"]) > 0
            ),
        )
        for m in sb.magento.credit_memos(order.placed.magento_entity_id)
    )
    return Snapshot(
        tiktok_status=str(tiktok["status"]),
        tiktok_cancels=cancels,
        magento_state=str(magento["state"]),
        currency=str(magento.get("order_currency_code") or "USD"),
        memos=memos,
        stock={sku: sb.magento.stock(sku) for sku in order.skus},
    )


def _describe_cancel(record: Mapping[str, Any]) -> str:
    role = str(record.get("role", "?")).lower()
    status = str(record.get("cancel_status", "")).removeprefix("CANCELLATION_REQUEST_")
    amount = record.get("refund_amount") or {}
    lines = record.get("cancel_line_items") or []
    skus = ", ".join(sorted({str(li.get("seller_sku")) for li in lines}))
    return (
        f"{role} cancel {status.lower()}: {len(lines)} unit(s) of {skus}, "
        f"{amount.get('refund_total', '?')} {amount.get('currency', '')} to the buyer"
    ).rstrip()


def _money(value: float, currency: str) -> str:
    return f"{value:.2f} {currency}"


# --------------------------------------------------------------------------- the demo


@dataclass
class RunFigures:
    """One ``cancelsync run --once``: its exit code and what it sent."""

    exit_code: int
    magento_writes: int
    tiktok_writes: int
    requests: int
    output: str = ""

    @property
    def writes(self) -> int:
        return self.magento_writes + self.tiktok_writes


@dataclass
class OrderOutcome:
    order: DemoOrder
    before: Snapshot
    after: Snapshot
    actions: list[str] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    workdir: Path
    config_path: Path
    log_path: Path
    orders: dict[str, OrderOutcome]
    first: RunFigures
    second: RunFigures
    status_text: str
    status: dict[str, Any]
    problems: list[str]


def run_demo(out: TextIO, workdir: Path) -> DemoResult:
    """Run the whole demo, printing for people on ``out``; logs go to a file in ``workdir``."""
    from cancelsync.cli import main as cli_main
    from cancelsync.config import load_config
    from cancelsync.store import Store

    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "cancelsync.toml"
    log_path = workdir / "cancelsync.log"
    with Sandbox() as sb, log_path.open("a", encoding="utf-8") as log_file:
        sb.add_store("us-main", refund_to_cancel=True)
        sb.write_config(config_path)
        database = load_config(config_path).worker.database

        def cli(*args: str) -> tuple[int, str]:
            buf = io.StringIO()
            with _stderr_to(log_file):
                rc = cli_main(["--config", str(config_path), *args], stdout=buf)
            log_file.flush()
            return rc, buf.getvalue()

        def run_once() -> RunFigures:
            m_before = len(sb.magento_server.journal.entries())
            t_before = len(sb.tiktok_server.journal.entries())
            rc, text = cli("run", "--once")
            m_new = sb.magento_server.journal.entries()[m_before:]
            t_new = sb.tiktok_server.journal.entries()[t_before:]
            return RunFigures(
                exit_code=rc,
                magento_writes=sum(1 for e in m_new if e.method != "GET"),
                tiktok_writes=sum(
                    1 for e in t_new if _TIKTOK_WRITES.fullmatch(e.endpoint)
                ),
                requests=len(m_new) + len(t_new),
                output=text,
            )

        p = _Printer(out)
        p.title("cancelsync demo: simulated Magento 2.4 + TikTok Shop on 127.0.0.1")
        p.line(f"Magento simulator {sb.magento_server.url}, "
               f"TikTok Shop simulator {sb.tiktok_server.url}")  # fmt: skip
        p.line(f"work folder {workdir}: config {config_path.name}, database "
               f"{database.name}, JSON logs {log_path.name}")  # fmt: skip
        p.line("store us-main: TikTok cancel → Magento refund ON (restock), "
               "Magento refund → TikTok cancel ON")  # fmt: skip

        orders = seed_orders(sb)
        by_key = {o.key: o for o in orders}
        p.title(
            f"1. {len(orders)} TikTok orders, imported into Magento as invoiced orders"
        )
        for n, o in enumerate(orders, 1):
            p.line(f"[{n}] TikTok {o.placed.tiktok_order_id} ↔ Magento "
                   f"#{o.placed.magento_increment_id}: {o.title}")  # fmt: skip

        make_things_happen(sb, by_key)
        p.title("2. Then, before cancelsync runs")
        for n, o in enumerate(orders, 1):
            p.line(f"[{n}] {SCENARIOS[o.key]}")
        before = {o.key: snapshot(sb, o) for o in orders}

        p.title("3. cancelsync run --once")
        first = run_once()
        after = {o.key: snapshot(sb, o) for o in orders}
        _, status_json = cli("status", "--json")
        status: dict[str, Any] = json.loads(status_json)
        _, status_text = cli("status")
        p.line(f"exit code {first.exit_code}"
               + (" (done, and a new item needs attention)" if first.exit_code == 1 else "")
               + f"; {first.requests} HTTP requests, {first.magento_writes} Magento "
               f"write(s), {first.tiktok_writes} TikTok write(s)")  # fmt: skip

        store = Store.open(database)
        try:
            outcomes = {
                o.key: _outcome(store, o, before[o.key], after[o.key]) for o in orders
            }
        finally:
            store.close()

        p.title("4. Per order: before → after the run")
        for n, o in enumerate(orders, 1):
            _print_outcome(p, n, outcomes[o.key])

        p.title("5. cancelsync status")
        for text_line in status_text.rstrip().splitlines():
            p.line(text_line)

        p.title("6. cancelsync run --once again (idempotency)")
        second = run_once()
        again = {o.key: snapshot(sb, o) for o in orders}
        unchanged = all(again[k] == after[k] for k in after)
        p.line(f"exit code {second.exit_code}; {second.requests} HTTP requests (reads), "
               f"{second.writes} write(s); both stores "
               + ("unchanged: nothing new, nothing done twice"
                  if unchanged and second.writes == 0 else "CHANGED"))  # fmt: skip

        problems = _check(outcomes, first, second, unchanged)
        p.title("Try")
        shipped = by_key["shipped"].placed.tiktok_order_id
        p.line(f".venv/bin/cancelsync --config {config_path} explain {shipped}")
        p.line(f"(the sync's JSON logs are in {log_path})")
        p.line(".venv/bin/cancelsync sandbox   # live simulators to play with by hand")
        if problems:
            p.title("DEMO CHECK FAILED")
            for problem in problems:
                p.line(problem)
        else:
            p.line("")
            p.line("demo check: every order ended where it should.")
    return DemoResult(
        workdir=workdir,
        config_path=config_path,
        log_path=log_path,
        orders=outcomes,
        first=first,
        second=second,
        status_text=status_text,
        status=status,
        problems=problems,
    )


def _outcome(
    store: Any, order: DemoOrder, before: Snapshot, after: Snapshot
) -> OrderOutcome:
    seen: set[int] = set()
    actions: list[str] = []
    attention: list[str] = []
    entries = store.ledger.for_tiktok_order(order.placed.tiktok_order_id)
    entries += store.ledger.for_magento_order(order.placed.magento_entity_id)
    for e in entries:
        if e.action_id in seen:
            continue
        seen.add(e.action_id)
        text = f"{e.action} ({e.direction}): {e.state}"
        if e.reason:
            text += f" — {e.reason}"
        actions.append(text)
        if e.state == "needs_attention":
            attention.append(e.reason or e.last_error or "needs attention")
    return OrderOutcome(order, before, after, actions, attention)


def _print_outcome(p: _Printer, n: int, oc: OrderOutcome) -> None:
    o, b, a = oc.order, oc.before, oc.after
    p.line(f"[{n}] {SCENARIOS[o.key]}")
    p.line(f"    TikTok {o.placed.tiktok_order_id}: {_change(b.tiktok_status, a.tiktok_status)}")  # fmt: skip
    for c in a.tiktok_cancels:
        mark = "" if c in b.tiktok_cancels else "  (new: made by cancelsync)"
        p.line(f"      {c}{mark}")
    p.line(f"    Magento #{o.placed.magento_increment_id}: state "
           f"{_change(b.magento_state, a.magento_state)}")  # fmt: skip
    if not a.memos:
        p.line("      credit memos: none")
    for memo in a.memos:
        mark = "" if memo in b.memos else "  (new)"
        p.line(f"      credit memo {memo.describe(a.currency)}{mark}")
    moved = [sku for sku in o.skus if b.stock[sku] != a.stock[sku]]
    if moved:
        stock = ", ".join(f"{sku} {b.stock[sku]:g} → {a.stock[sku]:g}" for sku in moved)
        p.line(f"      stock: {stock} (returned to stock)")
    for action in oc.actions:
        p.line(f"    cancelsync: {action}")
    if not oc.actions:
        p.line("    cancelsync: nothing to do")
    for item in oc.attention:
        p.line(f"    ! NEEDS ATTENTION: {item}")


def _change(before: str, after: str) -> str:
    return f"{before} → {after}" if before != after else f"{after} (unchanged)"


def _check(
    outcomes: Mapping[str, OrderOutcome],
    first: RunFigures,
    second: RunFigures,
    unchanged: bool,
) -> list[str]:
    """What the demo promises; a non-empty list makes ``make demo`` fail."""
    problems = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    for key in ("buyer", "system"):
        a = outcomes[key].after
        expect(a.magento_state == "closed" and len(a.memos) == 1,
               f"{key}: Magento order should be closed with one credit memo")  # fmt: skip
    line = outcomes["line"].after
    expect(line.magento_state == "processing" and len(line.memos) == 1
           and line.memos[0].skus == (("CAP-NVY", 1.0),),
           "line: only the cap should be refunded")  # fmt: skip
    expect(outcomes["memo"].after.tiktok_status == "CANCELLED",
           "memo: the TikTok order should be cancelled")  # fmt: skip
    expect(bool(outcomes["shipped"].attention),
           "shipped: should need attention (cannot cancel after shipment)")  # fmt: skip
    expect(outcomes["quiet"].before == outcomes["quiet"].after
           and not outcomes["quiet"].actions, "quiet: should be left alone")  # fmt: skip
    expect(first.exit_code == 1, f"first run: exit code {first.exit_code}, expected 1")
    expect(
        second.exit_code == 0, f"second run: exit code {second.exit_code}, expected 0"
    )
    expect(second.writes == 0 and unchanged, "second run: should change nothing")
    return problems


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def title(self, text: str) -> None:
        print(f"\n{text}", file=self.out)

    def line(self, text: str, indent: int = 2) -> None:
        print(" " * indent + text if text else "", file=self.out)


@contextlib.contextmanager
def _stderr_to(stream: TextIO) -> Iterator[None]:
    """Send stderr (the CLI's logs) to ``stream``; restore the logging setup after."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with contextlib.redirect_stderr(stream):
            yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cancelsync.sandbox.demo [--workdir PATH]``."""
    parser = argparse.ArgumentParser(
        prog="python -m cancelsync.sandbox.demo",
        description="Run cancelsync once against simulated Magento + TikTok Shop.",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the config, database and logs go (default: a new temp folder, kept)",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cancelsync-demo-"))
    result = run_demo(sys.stdout, workdir)
    return 1 if result.problems else 0


# --------------------------------------------------------------------------- sandbox

SANDBOX_HELP = """\
commands (ORDER: the [n] shown by `orders`, a TikTok order id or a Magento increment id):
  orders                 list the orders on both sides
  buyer-cancel ORDER     the buyer cancels the whole order on TikTok
  line-cancel ORDER SKU  the buyer cancels the lines of one SKU on TikTok
  system-cancel ORDER    TikTok's system auto-cancels the order
  refund ORDER           the merchant creates a full credit memo in Magento
  ship ORDER             the order ships on TikTok and in Magento
  new SKU [QTY] [PRICE]  place a new TikTok order and import it into Magento
  help, quit"""


def serve_sandbox(
    out: TextIO,
    *,
    magento_port: int = 0,
    tiktok_port: int = 0,
    write_config: Path | None = None,
    stdin: TextIO | None = None,
    interactive: bool | None = None,
    stop: threading.Event | None = None,
) -> int:
    """``cancelsync sandbox``: serve the seeded simulators until Ctrl-C (or ``quit``).

    ``stdin``/``interactive`` (default: ``sys.stdin``, prompt when it is a TTY) and ``stop``
    (an event that ends the wait) are there for tests and embedding.
    """
    stdin = stdin if stdin is not None else sys.stdin
    if interactive is None:
        interactive = stdin.isatty()
    stop = stop or threading.Event()
    try:
        sb = Sandbox(magento_port=magento_port, tiktok_port=tiktok_port)
    except OSError as exc:
        print(f"cancelsync: cannot serve the sandbox on 127.0.0.1 (magento port "
              f"{magento_port}, tiktok port {tiktok_port}): {exc}", file=sys.stderr)  # fmt: skip
        return 2
    try:
        sb.add_store("us-main", refund_to_cancel=True)
        orders = seed_orders(sb)
        text = sb.config_text()
        if write_config is not None:
            write_config.write_text(text, encoding="utf-8")
        config_ref = str(write_config) if write_config else "sandbox.toml"
        print(f"# cancelsync sandbox: Magento simulator {sb.magento_server.url}, "
              f"TikTok Shop simulator {sb.tiktok_server.url}", file=out)  # fmt: skip
        if write_config is not None:
            print(f"# config written to {write_config}", file=out)
        else:
            print("# save this config as sandbox.toml:", file=out)
        print(text, file=out)
        print(f"# {len(orders)} demo orders are seeded. In another terminal:", file=out)
        for cmd in ("check", "run --once --dry-run", "run --once", "status",
                    f"explain {orders[0].placed.tiktok_order_id}"):  # fmt: skip
            print(f"#   cancelsync --config {config_ref} {cmd}", file=out)
        out.flush()
        with _sigterm_interrupts():
            if interactive:
                print(SANDBOX_HELP, file=out)
                _print_orders(sb, orders, out)
                _prompt(sb, orders, stdin, out, stop)
            else:
                print("# serving until Ctrl-C", file=out)
                out.flush()
                while not stop.wait(0.2):
                    pass
    except KeyboardInterrupt:
        pass
    finally:
        sb.close()
    print("\nsandbox stopped", file=out)
    return 0


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the sandbox like Ctrl-C (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _prompt(
    sb: Sandbox,
    orders: list[DemoOrder],
    stdin: TextIO,
    out: TextIO,
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        print("sandbox> ", end="", file=out)
        out.flush()
        raw = stdin.readline()
        if not raw:  # end of input
            return
        try:
            words = shlex.split(raw)
        except ValueError as exc:
            print(f"  {exc}", file=out)
            continue
        if not words:
            continue
        command, args = words[0].lower(), words[1:]
        if command in ("quit", "exit", "q"):
            return
        try:
            print(f"  {_sandbox_command(sb, orders, command, args, out)}", file=out)
        except (ValueError, KeyError, IndexError, MagentoError) as exc:
            print(f"  error: {exc}", file=out)


def _sandbox_command(
    sb: Sandbox, orders: list[DemoOrder], command: str, args: list[str], out: TextIO
) -> str:
    if command == "help":
        return SANDBOX_HELP
    if command == "orders":
        _print_orders(sb, orders, out)
        return f"{len(orders)} order(s)"
    if command == "new":
        if not args:
            raise ValueError("usage: new SKU [QTY] [PRICE]")
        qty = int(args[1]) if len(args) > 1 else 1
        price = float(args[2]) if len(args) > 2 else 10.0
        lines: tuple[Line, ...] = ({"sku": args[0], "qty": qty, "price": price},)
        order = DemoOrder("new", f"{qty} x {args[0]}", lines, sb.place_order(lines))
        orders.append(order)
        return (f"[{len(orders)}] TikTok {order.placed.tiktok_order_id} ↔ Magento "
                f"#{order.placed.magento_increment_id}")  # fmt: skip
    known = ("buyer-cancel", "line-cancel", "system-cancel", "refund", "ship")
    if command not in known:
        raise ValueError(f"unknown command {command!r} (try help)")
    if not args:
        raise ValueError(f"usage: {command} ORDER")
    placed = _find_order(orders, args[0]).placed
    tid, entity = placed.tiktok_order_id, placed.magento_entity_id
    if command == "buyer-cancel":
        return f"buyer cancellation {sb.tiktok.buyer_cancel(tid)} on TikTok {tid}"
    if command == "system-cancel":
        return f"system cancellation {sb.tiktok.system_cancel(tid)} on TikTok {tid}"
    if command == "line-cancel":
        if len(args) < 2:
            raise ValueError("usage: line-cancel ORDER SKU")
        line_ids = [
            item["id"]
            for item in sb.tiktok.order(tid)["line_items"]
            if item["seller_sku"] == args[1]
            and item.get("display_status") != "CANCELLED"
        ]
        if not line_ids:
            raise ValueError(f"no live {args[1]} line on TikTok {tid}")
        return f"line cancellation {sb.tiktok.partial_cancel(tid, line_ids)} on TikTok {tid}"
    if command == "refund":
        memo = sb.magento.create_credit_memo(entity, None, comment="sandbox refund")
        return f"credit memo {memo} on Magento #{placed.magento_increment_id}"
    sb.tiktok.ship(tid)
    sb.magento.ship_order(entity)
    return f"shipped TikTok {tid} and Magento #{placed.magento_increment_id}"


def _find_order(orders: Sequence[DemoOrder], ref: str) -> DemoOrder:
    for o in orders:
        if ref in (o.placed.tiktok_order_id, o.placed.magento_increment_id):
            return o
    if ref.isdigit() and len(ref) < 9 and 1 <= int(ref) <= len(orders):
        return orders[int(ref) - 1]
    raise ValueError(f"no order {ref!r} (see `orders`)")


def _print_orders(sb: Sandbox, orders: Sequence[DemoOrder], out: TextIO) -> None:
    for n, o in enumerate(orders, 1):
        s = snapshot(sb, o)
        memos = ", ".join(m.describe(s.currency) for m in s.memos) or "no credit memo"
        print(f"  [{n}] TikTok {o.placed.tiktok_order_id} {s.tiktok_status:<18} "
              f"Magento #{o.placed.magento_increment_id} {s.magento_state:<10} "
              f"{o.title}; {memos}", file=out)  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
