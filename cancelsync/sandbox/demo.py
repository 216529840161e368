"""``make demo``: the sync on simulated stores, scripted, no credentials.

``python -m cancelsync.sandbox.demo`` (``main``) starts both simulators on 127.0.0.1, seeds
a few TikTok orders imported into Magento, makes cancellations and refunds happen on either
side, runs ``cancelsync run --once`` through the real CLI, prints what changed on both sides
per order plus ``cancelsync status``, then runs once more to show that nothing is done twice.
The work folder (config, SQLite database, JSON logs) is kept so ``explain`` can be tried.
The interactive ``cancelsync sandbox`` lives in ``sandbox.prompt``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import structlog

from cancelsync.cli import main as cli_main
from cancelsync.config import load_config
from cancelsync.sandbox.demo_live import (
    LATENCY_GOAL_SECONDS,
    LiveFigures,
    react_in_seconds,
)
from cancelsync.sandbox.harness import Sandbox
from cancelsync.sandbox.seed import DemoOrder, Snapshot, seed_orders, snapshot
from cancelsync.store import Store

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
    live: LiveFigures
    problems: list[str]


class _Cli:
    """The real CLI on the demo's config; its logs go to the work folder's log file."""

    def __init__(self, sb: Sandbox, config_path: Path, log_file: TextIO) -> None:
        self.sb = sb
        self.config_path = config_path
        self.log_file = log_file

    def __call__(self, *args: str) -> tuple[int, str]:
        buf = io.StringIO()
        with _stderr_to(self.log_file):
            rc = cli_main(["--config", str(self.config_path), *args], stdout=buf)
        self.log_file.flush()
        return rc, buf.getvalue()

    def run_once(self) -> RunFigures:
        """``cancelsync run --once``, with the requests it sent to both simulators."""
        magento, tiktok = self.sb.magento_server.journal, self.sb.tiktok_server.journal
        m_before, t_before = len(magento.entries()), len(tiktok.entries())
        rc, text = self("run", "--once")
        m_new, t_new = magento.entries()[m_before:], tiktok.entries()[t_before:]
        return RunFigures(
            exit_code=rc,
            magento_writes=sum(1 for e in m_new if e.method != "GET"),
            tiktok_writes=sum(1 for e in t_new if _TIKTOK_WRITES.fullmatch(e.endpoint)),
            requests=len(m_new) + len(t_new),
            output=text,
        )


def run_demo(out: TextIO, workdir: Path) -> DemoResult:
    """Run the whole demo, printing for people on ``out``; logs go to a file in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "cancelsync.toml"
    log_path = workdir / "cancelsync.log"
    with Sandbox() as sb, log_path.open("a", encoding="utf-8") as log_file:
        sb.add_store("us-main", refund_to_cancel=True, hold_on_request=True)
        sb.write_config(config_path, **_order_center(workdir))
        database = load_config(config_path).worker.database
        cli = _Cli(sb, config_path, log_file)
        p = _Printer(out)
        p.title("cancelsync demo: simulated Magento 2.4 + TikTok Shop on 127.0.0.1")
        p.line(f"Magento simulator {sb.magento_server.url}, "
               f"TikTok Shop simulator {sb.tiktok_server.url}")  # fmt: skip
        p.line(f"work folder {workdir}: config {config_path.name}, database "
               f"{database.name}, JSON logs {log_path.name}")  # fmt: skip
        p.line("store us-main: TikTok cancel → Magento refund ON (restock, "
               "hold_on_request), Magento refund → TikTok cancel ON")  # fmt: skip
        orders = seed_orders(sb)
        before = _set_the_scene(p, sb, orders)

        p.title("3. cancelsync run --once")
        first = cli.run_once()
        after = {o.key: snapshot(sb, o) for o in orders}
        status: dict[str, Any] = json.loads(cli("status", "--json")[1])
        status_text = cli("status")[1]
        p.line(f"exit code {first.exit_code}"
               + (" (done, and a new item needs attention)" if first.exit_code == 1 else "")
               + f"; {first.requests} HTTP requests, {first.magento_writes} Magento "
               f"write(s), {first.tiktok_writes} TikTok write(s)")  # fmt: skip
        with contextlib.closing(Store.open(database)) as store:
            outcomes = {
                o.key: _outcome(store, o, before[o.key], after[o.key]) for o in orders
            }
        p.title("4. Per order: before → after the run")
        for n, o in enumerate(orders, 1):
            _print_outcome(p, n, outcomes[o.key])
        p.title("5. cancelsync status")
        for text_line in status_text.rstrip().splitlines():
            p.line(text_line)

        p.title("6. cancelsync run --once again (idempotency)")
        second = cli.run_once()
        unchanged = all(snapshot(sb, o) == after[o.key] for o in orders)
        p.line(f"exit code {second.exit_code}; {second.requests} HTTP requests (reads), "
               f"{second.writes} write(s); both stores "
               + ("unchanged: nothing new, nothing done twice"
                  if unchanged and second.writes == 0 else "CHANGED"))  # fmt: skip
        p.title("7. React in seconds: the service, TikTok webhooks and a held order")
        live = react_in_seconds(sb, workdir, log_file, say=p.line)
        problems = _check(outcomes, first, second, unchanged) + _check_live(live)
        _print_try(p, config_path, log_path, outcomes["shipped"].order, problems)
        p.title("Order center for this data (the page for people; Ctrl-C stops it)")
        p.line(f".venv/bin/python -m cancelsync.web --config {config_path}")
        p.line(f"then open {ORDER_CENTER_URL} and sign in with the token in "
               f"{workdir / 'web-token'}")  # fmt: skip
    return DemoResult(
        workdir=workdir,
        config_path=config_path,
        log_path=log_path,
        orders=outcomes,
        first=first,
        second=second,
        status_text=status_text,
        status=status,
        live=live,
        problems=problems,
    )


ORDER_CENTER_LISTEN = "127.0.0.1:8788"
ORDER_CENTER_URL = f"http://{ORDER_CENTER_LISTEN}/"


def _order_center(workdir: Path) -> dict[str, str]:
    """The order center's keys for the demo config; its token in a private file."""
    token = workdir / "web-token"
    if not token.exists():
        fd = os.open(token, os.O_CREAT | os.O_WRONLY, 0o600)
        os.write(fd, secrets.token_urlsafe(24).encode())
        os.close(fd)
    return {"web_listen": ORDER_CENTER_LISTEN, "web_token": "${file:web-token}"}


def _set_the_scene(
    p: _Printer, sb: Sandbox, orders: list[DemoOrder]
) -> dict[str, Snapshot]:
    """Sections 1 and 2: the seeded orders, then the events; both sides before the run."""
    p.title(f"1. {len(orders)} TikTok orders, imported into Magento as invoiced orders")
    for n, o in enumerate(orders, 1):
        p.line(f"[{n}] TikTok {o.placed.tiktok_order_id} ↔ Magento "
               f"#{o.placed.magento_increment_id}: {o.title}")  # fmt: skip
    make_things_happen(sb, {o.key: o for o in orders})
    p.title("2. Then, before cancelsync runs")
    for n, o in enumerate(orders, 1):
        p.line(f"[{n}] {SCENARIOS[o.key]}")
    return {o.key: snapshot(sb, o) for o in orders}


def _print_try(
    p: _Printer,
    config_path: Path,
    log_path: Path,
    shipped: DemoOrder,
    problems: list[str],
) -> None:
    p.title("Try")
    p.line(f".venv/bin/cancelsync --config {config_path} explain "
           f"{shipped.placed.tiktok_order_id}")  # fmt: skip
    p.line(f"(the sync's JSON logs are in {log_path})")
    p.line(".venv/bin/cancelsync sandbox   # live simulators to play with by hand")
    if problems:
        p.title("DEMO CHECK FAILED")
        for problem in problems:
            p.line(problem)
    else:
        p.line("")
        p.line("demo check: every order ended where it should.")


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


def _check_live(live: LiveFigures) -> list[str]:
    """The webhook act's promises: hold and refund each within the goal, once."""
    problems = []
    for what, seconds in (("hold", live.hold_seconds), ("refund", live.refund_seconds)):
        if seconds is None or seconds > LATENCY_GOAL_SECONDS:
            problems.append(f"webhooks: the {what} should follow within "
                            f"{LATENCY_GOAL_SECONDS:g} s (took {seconds})")  # fmt: skip
    if live.memos != 1 or live.final_state != "closed":
        problems.append(f"webhooks: the requested order should be closed with one credit "
                        f"memo (state {live.final_state}, {live.memos} memos)")  # fmt: skip
    if live.service_exit != 0:
        problems.append(f"webhooks: the service exited {live.service_exit} on SIGTERM")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
