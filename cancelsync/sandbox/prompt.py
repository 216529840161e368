"""``cancelsync sandbox``: both simulators on loopback with the demo orders, until Ctrl-C.

``serve_sandbox`` seeds the demo orders, plays a scenario (``seed.SCENARIOS``), writes or
prints a ready config with a fresh database, and prints the commands to try (with the
executable that runs now) and an auth code for ``connect``. On a terminal it offers a
small prompt that plays buyer and merchant (``help`` lists its commands).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
import threading
import tomllib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cancelsync.sandbox.harness import Sandbox, write_private
from cancelsync.sandbox.magento.errors import MagentoError
from cancelsync.sandbox.seed import (
    DEFAULT_SCENARIO,
    INTERACTIVE_SCENARIO,
    SCENARIOS,
    DemoOrder,
    Line,
    Scenario,
    scenario_list,
    seed_orders,
    snapshot,
)

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
    scenario: str | None = None,
    stdin: TextIO | None = None,
    interactive: bool | None = None,
    stop: threading.Event | None = None,
) -> int:
    """``cancelsync sandbox``: serve the seeded simulators until Ctrl-C (or ``quit``).

    ``scenario`` names a story in ``seed.SCENARIOS`` (``"list"`` prints them and
    returns). Unnamed, it is ``buyer-cancel`` in the background and ``none`` at the
    prompt, where the user plays the events. ``stdin``/``interactive`` (default:
    ``sys.stdin``, prompt when it is a TTY) and ``stop`` (an event that ends the wait)
    are there for tests and embedding.
    """
    if scenario == "list":
        print(f"scenarios (cancelsync sandbox --scenario NAME):\n{scenario_list()}",
              file=out)  # fmt: skip
        return 0
    if scenario is not None and scenario not in SCENARIOS:
        print(f"cancelsync: no sandbox scenario {scenario!r}; one of:\n"
              f"{scenario_list()}", file=sys.stderr)  # fmt: skip
        return 2
    stdin = stdin if stdin is not None else sys.stdin
    if interactive is None:
        interactive = stdin.isatty()
    story = SCENARIOS[
        scenario or (INTERACTIVE_SCENARIO if interactive else DEFAULT_SCENARIO)
    ]
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
        featured = story.play(sb, orders)
        folder = write_config.parent if write_config is not None else Path()
        stem = write_config.stem if write_config is not None else "sandbox"
        old_database = _configured_database(write_config)
        database = fresh_database_name(folder, stem)
        text = sb.config_text(database=database, log_format="auto")
        if write_config is not None:
            write_private(write_config, text)
        print(f"# cancelsync sandbox: Magento simulator {sb.magento_server.url}, "
              f"TikTok Shop simulator {sb.tiktok_server.url}", file=out)  # fmt: skip
        if write_config is not None:
            print(f"# config written to {write_config} (mode 0600: it holds the "
                  "sandbox's secrets)", file=out)  # fmt: skip
        else:
            print("# save this config as sandbox.toml:", file=out)
        print(text, file=out)
        print(f"# a fresh database, {database}: these simulators are new, so an "
              "earlier sandbox's cursors and links would hide or confuse their data",
              file=out)  # fmt: skip
        if old_database and old_database != database:
            print(f"# (the previous sandbox's {old_database} is left as it was; "
                  "delete it when you like)", file=out)  # fmt: skip
        print(f"# {len(orders)} demo orders are seeded; scenario {story.name}: "
              f"{story.summary}", file=out)  # fmt: skip
        _print_next_steps(out, sb, write_config, story, featured)
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


def _print_next_steps(
    out: TextIO,
    sb: Sandbox,
    write_config: Path | None,
    story: Scenario,
    featured: DemoOrder | None,
) -> None:
    """The commands to try against this sandbox, spelled for the running executable."""
    config_ref = shlex.quote(str(write_config) if write_config else "sandbox.toml")
    run = f"{cli_command()} --config {config_ref}"
    print(f"# what the first run --once should do: {story.expect}", file=out)
    print("# In another terminal:", file=out)
    for cmd in ("check", "run --once --dry-run", "run --once", "status"):
        print(f"#   {run} {cmd}", file=out)
    if featured is not None:
        print(f"#   {run} explain {featured.placed.tiktok_order_id}", file=out)
    else:
        print(f"#   {run} explain ORDER   (a TikTok order id, once a run synced "
              "something for it)", file=out)  # fmt: skip
    print("# Try TikTok's seller authorization: this auth code is single use and "
          "lasts 30 minutes:", file=out)  # fmt: skip
    print(f"#   {run} connect --store us-main --auth-code {sb.auth_code()}", file=out)
    print(f"# a new code each visit: {sb.consent_url()}", file=out)
    out.flush()


def fresh_database_name(folder: Path, stem: str) -> str:
    """A database file name in ``folder`` that no earlier sandbox used.

    The simulators start empty at every start, with new ids, tokens and timestamps; an
    old database's cursors (Magento credit memo ids restart at 1) and links would hide
    or confuse their data, and its saved tokens would be refused. A new file, rather
    than moving the old one aside, leaves alone a worker still running on the old one.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"{stem}-{stamp}.db"
    n = 1
    while any((folder / f"{name}{suffix}").exists() for suffix in ("", "-wal")):
        n += 1
        name = f"{stem}-{stamp}-{n}.db"
    return name


def _configured_database(config: Path | None) -> str | None:
    """The database an existing sandbox config names (``None``: none or unreadable)."""
    if config is None:
        return None
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    worker = data.get("worker")
    database = worker.get("database") if isinstance(worker, dict) else None
    return database if isinstance(database, str) else None


def cli_command(argv0: str | None = None, executable: str | None = None) -> str:
    """How to run the cancelsync that is running now, as a shell word or two.

    ``sys.argv[0]`` is the console script (``.venv/bin/cancelsync``, or ``cancelsync``
    when that is what ``PATH`` finds) unless it was started as ``python -m cancelsync``
    or from another program (e.g. pytest): then ``PYTHON -m cancelsync`` with the
    interpreter that runs now.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = Path(argv0).name
    if argv0 and name != "__main__.py" and name.startswith("cancelsync"):
        return _shell_path(argv0)
    return f"{_shell_path(executable or sys.executable)} -m cancelsync"


def _shell_path(program: str) -> str:
    """``program`` as the shortest path that runs the same file from here."""
    full = os.path.abspath(program)
    found = shutil.which(Path(program).name)
    if found and os.path.abspath(found) == full:
        return shlex.quote(Path(program).name)
    relative = os.path.relpath(full)
    if os.getcwd() != os.sep and not relative.startswith(".."):
        return shlex.quote(relative if os.sep in relative else f".{os.sep}{relative}")
    return shlex.quote(full)


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
