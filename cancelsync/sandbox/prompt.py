"""``cancelsync sandbox``: both simulators on loopback with the demo orders, until Ctrl-C.

``serve_sandbox`` prints a ready config and the commands to try and, on a terminal, offers
a small prompt that plays buyer and merchant (``help`` lists its commands).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from cancelsync.sandbox.harness import Sandbox
from cancelsync.sandbox.magento.errors import MagentoError
from cancelsync.sandbox.seed import DemoOrder, Line, seed_orders, snapshot

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
