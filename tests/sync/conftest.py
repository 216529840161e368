"""Fixtures for end-to-end sync tests: both simulators on loopback, driven through the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cancelsync.cli import main
from cancelsync.sandbox.harness import Sandbox
from cancelsync.store import Store


@dataclass
class Harness:
    """A sandbox plus a config folder; ``run`` calls the real CLI."""

    sb: Sandbox
    folder: Path

    @property
    def config_path(self) -> Path:
        return self.folder / "cancelsync.toml"

    def run(self, *args: str, **worker: Any) -> tuple[int, str]:
        self.sb.write_config(self.config_path, **worker)
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

    def memos(self, magento_entity_id: int) -> list[dict[str, Any]]:
        return self.sb.magento.credit_memos(magento_entity_id)

    def refund_posts(self) -> int:
        return self.sb.magento_server.journal.count(r"POST order/\{id\}/refund")

    def cancel_posts(self) -> int:
        return self.sb.tiktok_server.journal.count(
            r"POST /return_refund/[^/]+/cancellations"
        )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with Sandbox() as sb:
        yield Harness(sb, tmp_path)


@pytest.fixture
def uk_harness(tmp_path: Path) -> Iterator[Harness]:
    with Sandbox(region="UK") as sb:
        yield Harness(sb, tmp_path)
