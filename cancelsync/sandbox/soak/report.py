"""The soak's figures as a table (printed, and quoted in the README) and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cancelsync.sandbox.soak.oracle import ZERO_FIGURES
from cancelsync.sandbox.soak.run import SoakResult


def table(result: SoakResult) -> str:
    """A two-column Markdown table; nested figures become indented rows."""
    s = result.settings
    rows: list[tuple[str, str]] = [
        ("seed / profile", f"{s.seed} / {s.profile}"),
    ]
    for name, value in result.figures.items():
        if isinstance(value, dict):
            rows.append(
                (
                    name,
                    str(sum(v for v in value.values() if isinstance(v, int)))
                    if name not in ("orders by store", "events")
                    else "",
                )
            )
            rows += [(f"  {key}", str(val)) for key, val in value.items()]
        else:
            mark = " (must be 0)" if name in ZERO_FIGURES else ""
            rows.append((name + mark, str(value)))
    rows.append(("verdict", "PASS" if result.ok else "FAIL"))
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'figure':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
    return "\n".join(lines)


def problems(result: SoakResult, limit: int = 20) -> str:
    """One line per violation and anomaly (the JSON file has the evidence)."""
    lines = [f"ANOMALY: {text}" for text in result.anomalies[:limit]]
    for v in result.verdict.violations[:limit]:
        where = f" order #{v.order} tiktok {v.tiktok_order_id} magento {v.magento_entity_id}"
        lines.append(f"VIOLATION [{v.invariant}]{where if v.order is not None else ''}: "
                     f"{v.detail}")  # fmt: skip
    hidden = len(result.verdict.violations) + len(result.anomalies) - len(lines)
    if hidden > 0:
        lines.append(f"... and {hidden} more (see the JSON)")
    return "\n".join(lines)


def write_json(result: SoakResult, path: Path) -> None:
    data: dict[str, Any] = result.to_json()
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
