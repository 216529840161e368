"""``python -m cancelsync.web [--config PATH] [--listen HOST:PORT]``: the order center alone.

For a database no service runs on (``make demo``'s, a copy from ``cancelsync backup``):
the same pages and API as in service mode. Retry re-queues as ``cancelsync retry`` does;
the next ``run`` picks the action up. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from cancelsync.clock import SystemClock
from cancelsync.config import default_config_path, load_config
from cancelsync.config.model import listen_address
from cancelsync.errors import ConfigError
from cancelsync.log import Redactor, configure_logging
from cancelsync.web.server import start_order_center


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cancelsync.web", description="Serve the order center alone."
    )
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="default: worker.web_listen"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config or default_config_path())
    except ConfigError as exc:
        print(f"cancelsync: {exc}", file=sys.stderr)
        return 2
    listen = args.listen or config.worker.web_listen
    problem = listen_address(listen) if listen else "set worker.web_listen or --listen"
    if not problem and not config.worker.web_token:
        problem = "set worker.web_token (the sign-in secret)"
    if problem:
        print(f"cancelsync: order center: {problem}", file=sys.stderr)
        return 2
    assert listen is not None  # noqa: S101 - checked just above
    redactor = Redactor(config.secrets())
    configure_logging(config.worker.log_format, redactor)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = start_order_center(
            config, clock=SystemClock(), redactor=redactor, listen=listen
        )
    except OSError as exc:
        print(f"cancelsync: cannot listen on {listen}: {exc}", file=sys.stderr)
        return 1
    print(f"order center: {server.url} (Ctrl-C stops it)", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
        server.app.store.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
