"""Command line: parse → load config → call the service; errors → exit codes.

Exit codes (contract): 0 done and nothing new needs attention; 1 done, but this run hit a
failure, found a new item needing attention, or could not sync a store; 2 bad config or usage;
75 another instance holds the lock. Logs go to stderr; stdout carries a command's own output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from cancelsync import __version__
from cancelsync.config import Config, default_config_path, load_config
from cancelsync.errors import CancelSyncError, ConfigError, LockHeldError
from cancelsync.log import Redactor, configure_logging

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a message (its default) but never prints a traceback."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cancelsync",
        description=(
            "Keep order cancellations and refunds in step between Magento 2 and TikTok Shop."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"cancelsync {__version__}"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default: $CANCELSYNC_CONFIG, then ./cancelsync.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", help="sync: as a service, or one cycle with --once")
    run.add_argument(
        "--once", action="store_true", help="one cycle over every store, then exit"
    )
    run.add_argument("--store", metavar="NAME", help="only this store (with --once)")
    run.add_argument(
        "--dry-run", action="store_true", help="decide and report; no remote writes"
    )

    check = sub.add_parser("check", help="validate the config and reach both APIs")
    check.add_argument("--offline", action="store_true", help="config validation only")

    status = sub.add_parser(
        "status", help="cursors, last cycle, action counts, attention"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")

    explain = sub.add_parser("explain", help="timeline of one order")
    explain.add_argument(
        "order_id", metavar="ORDER_ID", help="TikTok order id or Magento increment id"
    )

    retry = sub.add_parser("retry", help="re-queue failed / needs-attention actions")
    group = retry.add_mutually_exclusive_group(required=True)
    group.add_argument("action_id", metavar="ACTION_ID", nargs="?", type=int)
    group.add_argument(
        "--all", action="store_true", help="every failed / attention action"
    )

    reasons = sub.add_parser(
        "reasons", help="TikTok cancel reason keys valid for a shop"
    )
    reasons.add_argument("--store", metavar="NAME", required=True)
    reasons.add_argument(
        "--order",
        metavar="TIKTOK_ORDER_ID",
        help="ask TikTok which reasons fit this order",
    )

    connect = sub.add_parser("connect", help="exchange a TikTok auth code for tokens")
    connect.add_argument("--store", metavar="NAME", required=True)
    connect.add_argument("--auth-code", metavar="CODE", required=True)

    sandbox = sub.add_parser(
        "sandbox", help="run simulated Magento + TikTok Shop on loopback"
    )
    sandbox.add_argument(
        "--magento-port",
        type=int,
        default=0,
        help="Magento simulator port (default: any free)",
    )
    sandbox.add_argument(
        "--tiktok-port",
        type=int,
        default=0,
        help="TikTok simulator port (default: any free)",
    )
    sandbox.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        help="also write the config to PATH",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Entry point of the ``cancelsync`` console script."""
    out = stdout or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args, out)
    except ConfigError as exc:
        print(f"cancelsync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LockHeldError as exc:
        print(f"cancelsync: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except CancelSyncError as exc:
        print(f"cancelsync: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _load(args: argparse.Namespace) -> Config:
    path = args.config or default_config_path()
    return load_config(path)


def _dispatch(args: argparse.Namespace, out: TextIO) -> int:
    # Imported lazily so `cancelsync --help` stays fast and a broken optional piece cannot
    # stop config validation from running.
    from cancelsync import commands

    if args.command == "sandbox":
        configure_logging("auto")
        return commands.sandbox(args, out)
    config = _load(args)
    redactor = Redactor(config.secrets())
    configure_logging(config.worker.log_format, redactor)
    if args.command == "check":
        return commands.check(config, out, redactor=redactor, offline=args.offline)
    if args.command == "status":
        return commands.status(config, out, as_json=args.json)
    if args.command == "explain":
        return commands.explain(config, out, args.order_id)
    if args.command == "retry":
        return commands.retry(config, out, action_id=args.action_id, all_=args.all)
    if args.command == "reasons":
        return commands.reasons(config, out, redactor=redactor, store_name=args.store,
                                order_id=args.order)  # fmt: skip
    if args.command == "connect":
        return commands.connect(config, out, redactor=redactor, store_name=args.store,
                                auth_code=args.auth_code)  # fmt: skip
    if args.command == "run":
        if args.store and not args.once:
            raise ConfigError(["--store only works with --once"])
        if args.dry_run and not args.once:
            raise ConfigError(["--dry-run only works with --once"])
        return commands.run(config, out, redactor=redactor, once=args.once,
                            store_name=args.store, dry_run=args.dry_run)  # fmt: skip
    raise ConfigError([f"unknown command {args.command!r}"])  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
