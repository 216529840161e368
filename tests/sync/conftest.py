"""Fixtures for end-to-end sync tests: both simulators on loopback, driven through the CLI.

Retry waits are recorded in ``Harness.sleeps``, never slept: the CLI's ``ClientFactory`` is
given a ``RetryPolicy`` with an injected sleep (the same policy the clients and the engine use).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cancelsync import wiring
from cancelsync.cli import main
from cancelsync.clients.http import RetryPolicy
from cancelsync.sandbox.harness import Sandbox
from cancelsync.store import LedgerEntry, Store


@dataclass
class Harness:
    """A sandbox plus a config folder; ``run`` calls the real CLI."""

    sb: Sandbox
    folder: Path
    sleeps: list[float] = field(default_factory=list)
    # ``[worker]`` keys every run gets unless it names them (e.g. max_in_flight).
    worker: dict[str, Any] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.folder / "cancelsync.toml"

    def run(self, *args: str, **worker: Any) -> tuple[int, str]:
        self.sb.write_config(self.config_path, **{**self.worker, **worker})
        out = io.StringIO()
        rc = main(["--config", str(self.config_path), *args], stdout=out)
        return rc, out.getvalue()

    def status(self) -> dict[str, Any]:
        rc, out = self.run("status", "--json")
        assert rc == 0
        data: dict[str, Any] = json.loads(out)
        return data

    def store(self) -> Store:
        return Store.open(self.folder / "cancelsync.db")

    def ledger(self) -> list[LedgerEntry]:
        """Every ledger row, oldest first."""
        store = self.store()
        try:
            keys = [r["idempotency_key"] for r in store.db.query(
                "SELECT idempotency_key FROM ledger ORDER BY action_id"
            )]  # fmt: skip
            return [e for k in keys if (e := store.ledger.get(k)) is not None]
        finally:
            store.close()

    def memos(self, magento_entity_id: int) -> list[dict[str, Any]]:
        return self.sb.magento.credit_memos(magento_entity_id)

    def refund_posts(self) -> int:
        return self.sb.magento_server.journal.count(r"POST order/\{id\}/refund")

    def cancel_posts(self) -> int:
        return self.sb.tiktok_server.journal.count(
            r"POST /return_refund/[^/]+/cancellations"
        )


def _record_waits(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    """The CLI builds a ``ClientFactory``: give it a policy whose sleep records."""
    real = wiring.ClientFactory

    def factory(*args: Any, **kw: Any) -> wiring.ClientFactory:
        kw.setdefault("retry", RetryPolicy(sleep=sleeps.append))
        return real(*args, **kw)

    monkeypatch.setattr(wiring, "ClientFactory", factory)


@pytest.fixture
def harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Harness]:
    """Both simulators and a config folder; parametrized indirectly with an int, every
    run gets that ``worker.max_in_flight`` (else the default, 4)."""
    worker = {"max_in_flight": request.param} if hasattr(request, "param") else {}
    with Sandbox() as sb:
        h = Harness(sb, tmp_path, worker=worker)
        _record_waits(monkeypatch, h.sleeps)
        yield h


# For a module whose every test runs one action at a time and with four in flight.
BOTH_CONCURRENCIES = pytest.mark.parametrize(
    "harness", [1, 4], indirect=True, ids=["sequential", "4-in-flight"]
)


@pytest.fixture
def uk_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with Sandbox(region="UK") as sb:
        h = Harness(sb, tmp_path)
        _record_waits(monkeypatch, h.sleeps)
        yield h
