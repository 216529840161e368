"""Command line: parse → load config → call the service; errors → exit codes.

Exit codes (contract): 0 done and nothing new needs attention; 1 done, but this run hit a
failure, found a new item needing attention, or could not sync a store; 2 bad config or
usage, or a file or folder the user must fix; 75 another instance holds the lock. Logs go to
stderr; stdout carries a command's own output.

Never a traceback: known errors print one message; anything else is caught last and printed
as one line (``--debug`` adds the traceback). The global options (``--config``,
``--log-level``, ``--debug``) work before or after the command.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import textwrap
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO

from cancelsync import __version__
from cancelsync.config import LOG_LEVELS, Config, default_config_path, load_config
from cancelsync.errors import CancelSyncError, ConfigError, LockHeldError, SetupError
from cancelsync.log import LEVELS, Redactor, configure_logging
from cancelsync.since import MAX_SINCE_DAYS, parse_since

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75

EXIT_CODES = """\
exit codes:
  0   done, and nothing new needs attention
  1   done, but this run hit a failure, found a new item needing attention, or could
      not sync a store (items reported by an earlier run do not count again)
  2   bad config or usage, or a file or folder to fix (a message, never a traceback)
  75  another instance holds the lock (<database>.lock)
"""


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a message (its default) but never prints a traceback."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def since_time(text: str) -> datetime:
    """``--since``: an ISO date / date-time or ``2h`` / ``3d`` back (``parse_since``)."""
    try:
        return parse_since(text, datetime.now(UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _global_options(parser: argparse.ArgumentParser, *, on_command: bool) -> None:
    """``--config``, ``--log-level`` and ``--debug``; a command's copy only overrides the
    top-level value when given (``SUPPRESS``), so either place works."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if on_command else value

    group: argparse._ActionsContainer = parser
    if on_command:
        group = parser.add_argument_group(
            "global options (before or after the command)"
        )
    group.add_argument(
        "--config", type=Path, metavar="PATH", default=default(None),
        help="config file (default: $CANCELSYNC_CONFIG, then ./cancelsync.toml)",
    )  # fmt: skip
    group.add_argument(
        "--log-level", choices=LOG_LEVELS, metavar="LEVEL", default=default(None),
        help="debug, info, warning or error; overrides worker.log_level (default info; "
        "`check` logs at warning). At warning a run with nothing to do prints nothing",
    )  # fmt: skip
    group.add_argument(
        "--debug", action="store_true", default=default(False),
        help="print the traceback of an error too (for a bug report)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cancelsync",
        description=(
            "Keep order cancellations and refunds in step between Magento 2 and TikTok Shop."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"cancelsync {__version__}",
        help="print the version and exit",
    )  # fmt: skip
    _global_options(parser, on_command=False)
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser,
        title="commands", help="`cancelsync COMMAND --help` for its options",
    )  # fmt: skip
    sub.required = True

    commands: list[argparse.ArgumentParser] = []

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=text, description=textwrap.fill(text, 88), epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        commands.append(p)
        return p

    run = command(
        "run",
        "sync: as a service (APScheduler, every worker.poll_interval_seconds), or one "
        "cycle with --once (cron); SIGTERM/SIGINT finish the action in flight and exit 0",
    )
    run.add_argument(
        "--once", action="store_true", help="one cycle over every store, then exit"
    )
    run.add_argument("--store", metavar="NAME", help="only this store (with --once)")
    run.add_argument(
        "--dry-run", action="store_true",
        help="decide and print what would be done; no remote writes (with --once)",
    )  # fmt: skip
    run.add_argument(
        "--since", metavar="TIME", type=since_time,
        help="re-read from TIME (with --once; backfill after an outage): an ISO date or "
        f"date-time (UTC unless it has an offset) or a relative 2h / 3d; at most "
        f"{MAX_SINCE_DAYS} days back. Decisions already made are skipped",
    )  # fmt: skip

    check = command(
        "check",
        "validate the config, reach both APIs and verify credentials and settings",
    )
    check.add_argument(
        "--offline", action="store_true",
        help="config validation only; secrets that cannot be read are listed, not "
        "errors (for a config repository's CI)",
    )  # fmt: skip

    status = command(
        "status",
        "per store: cursors, last cycle, action counts, items needing attention",
    )
    status.add_argument(
        "--json", action="store_true", help="machine-readable output (for jq)"
    )

    explain = command("explain", "timeline of one order: what was seen, decided, done")
    explain.add_argument(
        "order_id", metavar="ORDER_ID", help="TikTok order id or Magento increment id"
    )

    retry = command(
        "retry",
        "re-queue failed / needs-attention actions (after you fixed the cause); works "
        "while the service runs: its next cycle picks them up",
    )
    group = retry.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "action_id", metavar="ACTION_ID", nargs="?", type=int,
        help="the action's number (#N in `cancelsync status`)",
    )  # fmt: skip
    group.add_argument(
        "--all", action="store_true", help="every failed / attention action"
    )

    resolve = command(
        "resolve",
        "close a needs-attention action you handled by hand (it is never retried); "
        "works while the service runs",
    )
    resolve.add_argument(
        "action_id", metavar="ACTION_ID", type=int,
        help="the action's number (#N in `cancelsync status`)",
    )  # fmt: skip
    resolve.add_argument(
        "--note", metavar="TEXT",
        help="what you did, kept in the order's timeline (`cancelsync explain`)",
    )  # fmt: skip

    resync = command(
        "resync",
        "re-evaluate one order against both platforms now (its TikTok cancellations and "
        "its Magento credit memos); decisions already made are not repeated",
    )
    resync.add_argument(
        "order_id", metavar="ORDER_ID", help="TikTok order id or Magento increment id"
    )

    backup = command(
        "backup",
        "write a consistent copy of the database (cursors, links, the ledger, rotated "
        "TikTok tokens) to PATH; safe while the service runs",
    )
    backup.add_argument(
        "path", metavar="PATH", type=Path, help="the copy to write (created 0600)"
    )
    backup.add_argument(
        "--force", action="store_true", help="overwrite PATH if it exists"
    )

    webhooks = command(
        "webhooks",
        "TikTok webhooks: `webhooks subscribe` points a shop's order and cancellation "
        "events at this worker's public URL (served by worker.webhook_listen)",
    )
    webhooks_sub = webhooks.add_subparsers(
        dest="webhooks_command", metavar="ACTION", parser_class=_Parser
    )
    webhooks_sub.required = True
    subscribe = webhooks_sub.add_parser(
        "subscribe", help="subscribe a store's shop to the URL (calls TikTok)",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    subscribe.add_argument(
        "--store", metavar="NAME", required=True, help="the store ([[stores]] name)"
    )
    subscribe.add_argument(
        "--url", metavar="URL", required=True,
        help="the public https URL your proxy forwards to /tiktok/webhook",
    )  # fmt: skip
    commands.append(subscribe)

    reasons = command("reasons", "TikTok cancel reason keys valid for a shop")
    reasons.add_argument(
        "--store", metavar="NAME", required=True, help="the store ([[stores]] name)"
    )
    reasons.add_argument(
        "--order", metavar="TIKTOK_ORDER_ID",
        help="ask TikTok which reasons fit this order now (calls the API)",
    )  # fmt: skip

    connect = command(
        "connect",
        "exchange a TikTok authorization code for tokens and bind the store to its shop",
    )
    connect.add_argument(
        "--store", metavar="NAME", required=True, help="the store ([[stores]] name)"
    )
    connect.add_argument(
        "--auth-code", metavar="CODE", required=True,
        help="the code from the seller's authorization redirect",
    )  # fmt: skip

    sandbox = command(
        "sandbox",
        "run simulated Magento + TikTok Shop on loopback with demo data; print a config",
    )
    sandbox.add_argument(
        "--magento-port", type=int, default=0, metavar="N",
        help="Magento simulator port (default: any free)",
    )  # fmt: skip
    sandbox.add_argument(
        "--tiktok-port", type=int, default=0, metavar="N",
        help="TikTok simulator port (default: any free)",
    )  # fmt: skip
    sandbox.add_argument(
        "--write-config", type=Path, metavar="PATH",
        help="also write the config to PATH (mode 0600; a fresh database each start)",
    )  # fmt: skip
    sandbox.add_argument(
        "--scenario", metavar="NAME",
        help="what has already happened when it starts: buyer-cancel (the default in "
        "the background), partial-refund, shipped, backlog or none (the default at the "
        "prompt); `--scenario list` says what each one is",
    )  # fmt: skip
    for p in commands:
        _global_options(p, on_command=True)
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Entry point of the ``cancelsync`` console script."""
    out = stdout or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = _dispatch(parser, args, out)
        out.flush()  # here, not at exit: a closed pipe is then caught below
    except ConfigError as exc:
        return _fail(args, EXIT_USAGE, str(exc))
    except SetupError as exc:
        return _fail(args, EXIT_USAGE, str(exc))
    except LockHeldError as exc:
        return _fail(args, EXIT_LOCKED, str(exc))
    except CancelSyncError as exc:
        return _fail(args, EXIT_FAILURE, str(exc))
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`status --json | head`): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        text = " ".join(str(exc).split()) or "(no message)"
        hint = "" if args.debug else "; run it again with --debug for the traceback"
        return _fail(
            args, EXIT_FAILURE,
            f"unexpected error: {type(exc).__name__}: {text}{hint} (a bug: please "
            "report it)",
        )  # fmt: skip
    return code


def _fail(args: argparse.Namespace, code: int, message: str) -> int:
    """Print ``message`` (and with ``--debug`` the traceback first); return ``code``."""
    if args.debug:
        traceback.print_exc(file=sys.stderr)
    print(f"cancelsync: {message}", file=sys.stderr)
    return code


def _usage_error(
    parser: argparse.ArgumentParser, command: str, message: str
) -> NoReturn:
    """A mistake on the command line, reported by the command's parser (exit 2)."""
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            action.choices[command].error(message)
    parser.error(message)  # pragma: no cover - every command has a parser


def _needs_secrets(args: argparse.Namespace) -> bool:
    """Commands that call an API need every ``${…}`` reference resolved."""
    if args.command in ("run", "connect", "resync", "webhooks"):
        return True
    if args.command == "check":
        return not args.offline
    return args.command == "reasons" and args.order is not None


def _load(args: argparse.Namespace) -> Config:
    path = args.config or default_config_path()
    return load_config(path, require_secrets=_needs_secrets(args))


def _log_level(args: argparse.Namespace, config: Config) -> str:
    if args.log_level:
        return str(args.log_level)
    configured = config.worker.log_level
    if args.command == "check":
        # Its report goes to stdout: log lines in between would only break it up.
        return max(configured, "warning", key=LEVELS.__getitem__)
    return configured


def _dispatch(
    parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO
) -> int:
    # Imported lazily so `cancelsync --help` stays fast and a broken optional piece cannot
    # stop config validation from running.
    from cancelsync import commands

    if args.command == "run" and not args.once:
        for option, given in (("--store", args.store), ("--dry-run", args.dry_run),
                              ("--since", args.since)):  # fmt: skip
            if given:
                _usage_error(parser, "run", f"{option} only works with --once")
    if args.command == "sandbox":
        configure_logging("auto", level=args.log_level or "info")
        return commands.sandbox(args, out)
    config = _load(args)
    store_name = getattr(args, "store", None)
    if store_name is not None and store_name not in {s.name for s in config.stores}:
        known = ", ".join(s.name for s in config.stores)
        _usage_error(parser, args.command,
                     f"--store {store_name}: no such store (configured: {known})")  # fmt: skip
    redactor = Redactor(config.secrets())
    configure_logging(
        config.worker.log_format, redactor, level=_log_level(args, config)
    )
    try:
        return _command(args, config, redactor, out)
    except sqlite3.Error as exc:
        from cancelsync.store.db import database_error

        raise database_error(config.worker.database, exc) from exc


def _command(
    args: argparse.Namespace, config: Config, redactor: Redactor, out: TextIO
) -> int:
    from cancelsync import commands

    if args.command == "check":
        return commands.check(config, out, redactor=redactor, offline=args.offline)
    if args.command == "status":
        return commands.status(config, out, as_json=args.json)
    if args.command == "explain":
        return commands.explain(config, out, args.order_id)
    if args.command == "retry":
        return commands.retry(config, out, action_id=args.action_id, all_=args.all)
    if args.command == "resolve":
        return commands.resolve(config, out, action_id=args.action_id, note=args.note)
    if args.command == "resync":
        return commands.resync(config, out, redactor=redactor, order_ref=args.order_id)
    if args.command == "backup":
        return commands.backup(config, out, target=args.path, force=args.force)
    if args.command == "webhooks":
        from cancelsync.webhook_setup import subscribe

        return subscribe(config, out, redactor=redactor, store_name=args.store,
                         url=args.url)  # fmt: skip
    if args.command == "reasons":
        return commands.reasons(config, out, redactor=redactor, store_name=args.store,
                                order_id=args.order)  # fmt: skip
    if args.command == "connect":
        return commands.connect(config, out, redactor=redactor, store_name=args.store,
                                auth_code=args.auth_code)  # fmt: skip
    if args.command == "run":
        return commands.run(config, out, redactor=redactor, once=args.once,
                            store_name=args.store, dry_run=args.dry_run,
                            since=args.since)  # fmt: skip
    raise ConfigError([f"unknown command {args.command!r}"])  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
