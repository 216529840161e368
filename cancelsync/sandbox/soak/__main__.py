"""``python -m cancelsync.sandbox.soak``: run a soak, print its figures, exit 1 on a failure.

python -m cancelsync.sandbox.soak --orders 1000 --kills 12 --seed 7 --json soak.json
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cancelsync.sandbox.soak.report import problems, table, write_json
from cancelsync.sandbox.soak.run import SoakSettings, run_soak


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cancelsync.sandbox.soak",
        description="Chaos soak: the real worker against faulty simulators; checks "
        "exactly-once invariants.",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs (>= 2)")
    parser.add_argument(
        "--short", action="store_true", help="the short variant (as in make test)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write figures here")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="config, database and worker logs (default: a temp dir)",
    )
    args = parser.parse_args(argv)
    settings = (
        SoakSettings.short(args.seed) if args.short else SoakSettings(seed=args.seed)
    )
    if args.orders is not None:
        settings = replace(settings, orders=args.orders)
    if args.kills is not None:
        if args.kills < 2:
            parser.error("--kills must be at least 2 (one per mode of running)")
        service = max(1, min(settings.service_kills, args.kills // 2))
        settings = replace(settings, kills=args.kills, service_kills=service)
    if args.workdir is not None:
        settings = replace(settings, workdir=args.workdir)
    # A SIGTERM unwinds like Ctrl-C, so the worker processes are killed and reaped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    result = run_soak(settings)
    print(table(result))
    if not result.ok:
        print(problems(result))
    print(f"workdir (config, database, worker logs): {result.workdir}")
    if args.json is not None:
        write_json(result, args.json)
        print(f"figures written to {args.json}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
