"""Both simulators on loopback, seeded, plus a matching cancelsync config.

Used by the end-to-end tests, the benchmarks, ``make demo`` and ``cancelsync sandbox``.
A scenario helper places one order on TikTok and imports it into Magento the way a merchant's
importer would (invoiced, the TikTok id in ``ext_order_id``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cancelsync.clock import Clock, SystemClock
from cancelsync.sandbox.common import FaultPlan, SimulatorServer
from cancelsync.sandbox.magento import MagentoCredentials, MagentoSimulator
from cancelsync.sandbox.tiktok import DemoSetup, TikTokSimulator

BUNDLE_KEYS = ("bundle_price_type", "bundle_items")


@dataclass(frozen=True)
class PlacedOrder:
    tiktok_order_id: str
    magento_entity_id: int
    magento_increment_id: str


@dataclass(frozen=True)
class StoreSpec:
    """One ``[[stores]]`` entry of the generated config."""

    name: str
    setup: DemoSetup
    market: str | None = None
    magento_store_ids: tuple[int, ...] = ()
    refund_to_cancel: bool = False
    cancel_reason: str | None = None
    partial_refunds: str | None = None
    cancel_to_refund: bool = True
    restock: bool = True
    include_seller_cancellations: bool = False
    hold_on_request: bool = False
    with_shop_id: bool = True


class Sandbox:
    """Simulated Magento + TikTok Shop served on 127.0.0.1 (ephemeral ports by default)."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        seed: int = 0,
        region: str = "US",
        magento_port: int = 0,
        tiktok_port: int = 0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.credentials = MagentoCredentials()
        self.magento = MagentoSimulator(clock=self.clock, credentials=self.credentials)
        self.tiktok = TikTokSimulator(self.clock, seed=seed)
        self.demo = self.tiktok.seed_demo(region)
        self.magento_faults = FaultPlan(seed)
        self.tiktok_faults = FaultPlan(seed + 1)
        self.magento_server = SimulatorServer(
            self.magento, faults=self.magento_faults, port=magento_port
        )
        try:
            self.tiktok_server = SimulatorServer(
                self.tiktok, faults=self.tiktok_faults, port=tiktok_port
            )
        except OSError:
            self.magento_server.stop()  # do not leak the first socket (port in use)
            raise
        self.magento_server.start()
        self.tiktok_server.start()
        self.stores: list[StoreSpec] = []
        self._sku_counter = 0

    def close(self) -> None:
        self.magento_server.stop()
        self.tiktok_server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ shops

    def add_store(self, name: str = "us-main", **options: Any) -> StoreSpec:
        """Register a store for the config; the first uses the seeded demo shop."""
        if not self.stores:
            setup = self.demo
        else:
            region = options.get("market") or "US"
            shop_id = self.tiktok.add_shop(name=f"{name} shop", region=region)
            access, refresh = self.tiktok.seed_tokens(self.demo.app_key, [shop_id])
            setup = DemoSetup(
                app_key=self.demo.app_key,
                app_secret=self.demo.app_secret,
                shop_id=shop_id,
                shop_cipher=self.tiktok.shop(shop_id)["cipher"],
                access_token=access,
                refresh_token=refresh,
            )
        spec = StoreSpec(name=name, setup=setup, **options)
        self.stores.append(spec)
        return spec

    # ------------------------------------------------------------------ authorization

    def auth_code(self, store: StoreSpec | None = None) -> str:
        """A fresh auth code for the store's shop, as the seller's consent would send
        back (single use, valid 30 minutes): ``cancelsync connect --auth-code`` takes it."""
        spec = store or (self.stores[0] if self.stores else None)
        setup = spec.setup if spec else self.demo
        return self.tiktok.issue_auth_code(setup.app_key, [setup.shop_id])

    def consent_url(self, store: StoreSpec | None = None) -> str:
        """The simulator's seller consent page for the store's app (a new code a visit)."""
        spec = store or (self.stores[0] if self.stores else None)
        setup = spec.setup if spec else self.demo
        return f"{self.tiktok_server.url}/open/authorize?app_key={setup.app_key}"

    # ------------------------------------------------------------------ orders

    def place_order(
        self,
        lines: Sequence[Mapping[str, Any]],
        *,
        store: StoreSpec | None = None,
        shipping_fee: float = 5.0,
        shipping_tax: float = 0.0,
        magento_store_id: int = 1,
        invoiced: bool = True,
        status: str = "AWAITING_SHIPMENT",
    ) -> PlacedOrder:
        """A TikTok order, imported into Magento as an invoiced order.

        ``lines``: ``{"sku", "qty", "price", "product_type"?}``, a bundle also with
        ``bundle_price_type`` and ``bundle_items`` (see ``OrderLine``).
        ``shipping_tax`` is Magento's tax on the shipping (TikTok's fee is
        ``shipping_fee``).
        """
        spec = store or (self.stores[0] if self.stores else None)
        shop_id = spec.setup.shop_id if spec else self.demo.shop_id
        tiktok_lines = [
            {
                "sku_id": f"17{abs(hash(line['sku'])) % 10**14:014d}",
                "seller_sku": line["sku"],
                "price": f"{float(line['price']):.2f}",
                "quantity": int(line["qty"]),
                "product_name": line.get("name") or line["sku"],
            }
            for line in lines
        ]
        tiktok_order_id = self.tiktok.create_order(
            shop_id, tiktok_lines, status=status, shipping_fee=f"{shipping_fee:.2f}"
        )
        entity_id = self.magento.import_tiktok_order(
            tiktok_order_id,
            [
                {
                    "sku": line["sku"],
                    "qty": float(line["qty"]),
                    "price": float(line["price"]),
                    "product_type": line.get("product_type", "simple"),
                    **{k: line[k] for k in BUNDLE_KEYS if k in line},
                }
                for line in lines
            ],
            shipping_amount=shipping_fee,
            shipping_tax_amount=shipping_tax,
            store_id=magento_store_id,
            invoiced=invoiced,
        )
        order = self.magento.order(entity_id)
        return PlacedOrder(tiktok_order_id, entity_id, str(order["increment_id"]))

    # ------------------------------------------------------------------ config

    def config_text(
        self,
        *,
        database: str = "cancelsync.db",
        timeout_seconds: float = 5,
        **worker: Any,
    ) -> str:
        """A complete cancelsync config pointing at the simulators.

        ``timeout_seconds`` is both clients' per-request timeout (the soak uses a short
        one so that its slow-call faults become timeouts); ``worker`` keys go to
        ``[worker]``.
        """
        creds = self.credentials
        settings: dict[str, Any] = {
            "database": database,
            "poll_interval_seconds": 5,
            "log_format": "json",
            **worker,
        }
        lines = ["[worker]", *(f"{k} = {_toml(v)}" for k, v in settings.items())]
        lines += [
            "",
            "[magento]",
            f'base_url = "{self.magento_server.url}"',
            'store_code = "all"',
            'auth = "oauth1"',
            f'consumer_key = "{creds.consumer_key}"',
            f'consumer_secret = "{creds.consumer_secret}"',
            f'access_token = "{creds.access_token}"',
            f'access_token_secret = "{creds.access_token_secret}"',
            f"timeout_seconds = {_toml(timeout_seconds)}",
            "requests_per_second = 1000",
            "",
            "[tiktok]",
            f'api_base_url = "{self.tiktok_server.url}"',
            f'auth_base_url = "{self.tiktok_server.url}"',
            f"timeout_seconds = {_toml(timeout_seconds)}",
            "requests_per_second = 1000",
        ]
        for spec in self.stores or [StoreSpec("us-main", self.demo)]:
            s = spec.setup
            lines += [
                "",
                "[[stores]]",
                f'name = "{spec.name}"',
                f'app_key = "{s.app_key}"',
                f'app_secret = "{s.app_secret}"',
                f'access_token = "{s.access_token}"',
                f'refresh_token = "{s.refresh_token}"',
            ]
            if spec.with_shop_id:
                lines.append(f'shop_id = "{s.shop_id}"')
            if spec.market:
                lines.append(f'market = "{spec.market}"')
            if spec.magento_store_ids:
                lines.append(f"magento_store_ids = {list(spec.magento_store_ids)}")
            lines += [
                "",
                "[stores.magento_refund_to_tiktok_cancel]",
                f"enabled = {_toml(spec.refund_to_cancel)}",
            ]
            if spec.cancel_reason:
                lines.append(f'cancel_reason = "{spec.cancel_reason}"')
            if spec.partial_refunds:
                lines.append(f'partial_refunds = "{spec.partial_refunds}"')
            lines += [
                "",
                "[stores.tiktok_cancel_to_magento_refund]",
                f"enabled = {_toml(spec.cancel_to_refund)}",
                f"restock = {_toml(spec.restock)}",
                f"include_seller_cancellations = {_toml(spec.include_seller_cancellations)}",
                f"hold_on_request = {_toml(spec.hold_on_request)}",
            ]
        return "\n".join(lines) + "\n"

    def write_config(self, path: Path, **worker: Any) -> Path:
        write_private(path, self.config_text(**worker))
        return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 whatever the umask (a config holds
    secrets), atomically: a reader sees the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
