"""The simulators for ``make bench``, served from their own process.

``python benchmarks/sim.py --config PATH [--refunds] [--cancels]`` starts both simulators on
loopback, writes a cancelsync config pointing at them (direction B with ``--refunds``, A
with ``--cancels``) and then answers one JSON command per stdin line with one JSON line:

- ``{"cmd": "seed_refunds", "n": N}``: N TikTok orders imported into Magento, each
  cancelled by its buyer (direction B's events);
- ``{"cmd": "seed_cancels", "n": N}``: N imported orders, each fully refunded in Magento
  by a credit memo (direction A's events);
- ``{"cmd": "latency", "seconds": S}``: every request to either simulator waits S seconds
  before it is handled (the latency knob; 0 turns it off);
- ``{"cmd": "stats"}``: requests per side and endpoint since the last ``clear``, each
  request's arrival time, credit memos and seller cancels so far;
- ``{"cmd": "clear"}``: empty both journals;
- ``{"cmd": "quit"}``.

Serving from a separate process keeps the simulators' CPU, memory and GIL out of the
worker's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cancelsync.sandbox.common import Fault, Journal
from cancelsync.sandbox.harness import Sandbox


def _seed_orders(sb: Sandbox, n: int, start: int) -> list[Any]:
    placed = []
    for i in range(start, start + n):
        lines: list[dict[str, Any]] = [
            {"sku": f"TEE-{i % 40:02d}", "qty": 1 + i % 3, "price": 19.99}
        ]
        if i % 4 == 0:
            lines.append(
                {"sku": f"HOODIE-{i % 7}", "qty": 1, "price": 45.0,
                 "product_type": "configurable"}
            )  # fmt: skip
        placed.append(sb.place_order(lines))
    return placed


def _journal(journal: Journal) -> dict[str, Any]:
    entries = journal.entries()
    return {
        "requests": len(entries),
        "by_endpoint": dict(Counter(e.endpoint for e in entries)),
        "at": [round(e.at, 4) for e in entries],
    }


def _latency(sb: Sandbox, seconds: float) -> None:
    for plan in (sb.magento_faults, sb.tiktok_faults):
        plan.clear()
        if seconds > 0:
            plan.at_rate(".*", Fault("delay", seconds=seconds), 1.0)


def serve(config: Path, *, refunds: bool, cancels: bool) -> int:
    with Sandbox() as sb:
        sb.add_store("us-main", cancel_to_refund=refunds, refund_to_cancel=cancels)
        sb.write_config(config)
        seeded = 0
        _reply({"ready": True})
        for line in sys.stdin:
            command = json.loads(line)
            cmd = command["cmd"]
            started = time.perf_counter()
            if cmd == "seed_refunds":
                for placed in _seed_orders(sb, command["n"], seeded):
                    sb.tiktok.buyer_cancel(placed.tiktok_order_id)
                seeded += command["n"]
                _reply({"seconds": time.perf_counter() - started})
            elif cmd == "seed_cancels":
                for placed in _seed_orders(sb, command["n"], seeded):
                    sb.magento.create_credit_memo(placed.magento_entity_id, None)
                seeded += command["n"]
                _reply({"seconds": time.perf_counter() - started})
            elif cmd == "latency":
                _latency(sb, float(command["seconds"]))
                _reply({})
            elif cmd == "stats":
                tiktok = _journal(sb.tiktok_server.journal)
                _reply({
                    "magento": _journal(sb.magento_server.journal),
                    "tiktok": tiktok,
                    "memos": len(sb.magento.credit_memos()),
                })  # fmt: skip
            elif cmd == "clear":
                sb.magento_server.journal.clear()
                sb.tiktok_server.journal.clear()
                _reply({})
            elif cmd == "quit":
                _reply({})
                break
    return 0


def _reply(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--refunds", action="store_true", help="direction B on")
    parser.add_argument("--cancels", action="store_true", help="direction A on")
    args = parser.parse_args()
    return serve(args.config, refunds=args.refunds, cancels=args.cancels)


if __name__ == "__main__":
    sys.exit(main())
