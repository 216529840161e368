"""Service wiring: clients per store, shop resolution, token persistence, one run over every
store (cron), and the APScheduler loop (systemd) with a warm shutdown on SIGTERM/SIGINT.
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import requests
import structlog

from cancelsync import reasons
from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.magento.client import MagentoClient
from cancelsync.clients.tiktok.client import TikTokClient
from cancelsync.clients.tiktok.tokens import TikTokAuthClient, TokenManager
from cancelsync.clock import Clock, SystemClock
from cancelsync.config import Config, StoreConfig
from cancelsync.errors import ConfigError
from cancelsync.log import REDACTOR
from cancelsync.models import TikTokShop, TokenPair
from cancelsync.scopes import shop_scope, store_scope, token_scope
from cancelsync.shops import pick_shop
from cancelsync.store import ShopBinding, Store, seed_fingerprint
from cancelsync.sync.cycle import ShopContext, run_store_cycle
from cancelsync.sync.engine import CycleReport

log = structlog.get_logger("cancelsync.service")


@dataclass
class StoreClients:
    tiktok: TikTokClient
    tokens: TokenManager
    session: requests.Session


class Worker:
    """Everything a run needs, built once from the config."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()
        self.session_factory = session_factory
        self.retry = retry
        self._magento: MagentoClient | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ clients

    @property
    def magento(self) -> MagentoClient:
        if self._magento is None:
            self._magento = MagentoClient.from_config(
                self.config.magento, self.session_factory(), retry=self.retry
            )
        return self._magento

    def close(self) -> None:
        if self._magento is not None:
            self._magento.close()
            self._magento = None

    def token_manager(
        self, cfg: StoreConfig, session: requests.Session
    ) -> TokenManager:
        tt = self.config.tiktok
        auth = TikTokAuthClient(
            session, auth_base_url=tt.auth_base_url, app_key=cfg.app_key,
            app_secret=cfg.app_secret, timeout=tt.timeout_seconds, verify=tt.verify_tls,
        )  # fmt: skip
        seed = seed_fingerprint(cfg.access_token, cfg.refresh_token)

        def load() -> TokenPair | None:
            stored = self.store.tokens.get(token_scope(self.store, cfg))
            if stored is not None:
                pair, stored_seed = stored
                # A changed seed in the config (re-authorization) wins over the stored pair.
                if seed is None or stored_seed == seed:
                    REDACTOR.add(pair.access_token, pair.refresh_token)
                    return pair
            if cfg.refresh_token:
                return TokenPair(cfg.access_token or "", cfg.refresh_token)
            return stored[0] if stored else None

        def persist(pair: TokenPair) -> None:
            REDACTOR.add(pair.access_token, pair.refresh_token)
            # Saved even in --dry-run: a rotated refresh token must never be lost.
            self.store.tokens.save(
                token_scope(self.store, cfg), pair, seed, self.clock.now()
            )

        return TokenManager(auth, load=load, persist=persist, clock=self.clock,
                            store_name=cfg.name)  # fmt: skip

    def tiktok_for(
        self, cfg: StoreConfig, shop_cipher: str | None = None
    ) -> StoreClients:
        session = self.session_factory()
        tokens = self.token_manager(cfg, session)
        client = TikTokClient.from_config(
            session, self.config.tiktok, cfg, tokens=tokens, clock=self.clock,
            shop_cipher=shop_cipher, retry=self.retry,
        )  # fmt: skip
        return StoreClients(client, tokens, session)

    # ------------------------------------------------------------------ shops

    def bind_shop(self, cfg: StoreConfig, shop: TikTokShop) -> ShopBinding:
        old_scope = store_scope(self.store, cfg)
        binding = ShopBinding(
            cfg.name, shop.tiktok_shop_id, shop.cipher,
            reasons.normalize_market(shop.region) if shop.region else None, shop.name,
        )  # fmt: skip
        with self.store.unit_of_work():
            self.store.shops.bind(binding, self.clock.now())
            self.store.tokens.rename(old_scope, shop_scope(shop.tiktok_shop_id))
        return binding

    def resolve_shop(self, cfg: StoreConfig, clients: StoreClients) -> ShopContext:
        binding = self.store.shops.get(cfg.name)
        if (
            binding is not None
            and cfg.shop_id
            and binding.tiktok_shop_id != cfg.shop_id
        ):
            binding = None  # the config now names another shop: look it up again
        cipher = cfg.shop_cipher or (binding.shop_cipher if binding else None)
        market = cfg.market or (binding.market if binding else None)
        shop_id = cfg.shop_id or (binding.tiktok_shop_id if binding else None)
        if not (cipher and market and shop_id):
            shop = pick_shop(clients.tiktok.get_authorized_shops(), cfg)
            binding = self.bind_shop(cfg, shop)
            cipher = cfg.shop_cipher or shop.cipher
            market = cfg.market or binding.market
            shop_id = shop.tiktok_shop_id
        clients.tiktok.shop_cipher = cipher
        if not market:
            raise ConfigError([f"stores[{cfg.name}].market: unknown; set market"])
        return ShopContext(
            tiktok_shop_id=shop_id, market=market, scope=shop_scope(shop_id)
        )

    # ------------------------------------------------------------------ runs

    def run_once(
        self, *, store_name: str | None = None, dry_run: bool = False
    ) -> list[CycleReport]:
        """One cycle over every enabled store (or one), each isolated from the others."""
        run_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(run_id=run_id)
        targets = [self.config.store(store_name)] if store_name else [
            s for s in self.config.stores if s.enabled
        ]  # fmt: skip
        reports = []
        for cfg in targets:
            if self._stop.is_set():
                break
            reports.append(self._run_store(cfg, run_id, dry_run))
        structlog.contextvars.unbind_contextvars("run_id")
        return reports

    def _run_store(self, cfg: StoreConfig, run_id: str, dry_run: bool) -> CycleReport:
        clients = self.tiktok_for(cfg)
        try:
            try:
                shop = self.resolve_shop(cfg, clients)
            except Exception as exc:  # noqa: BLE001 - one store's trouble must not stop others
                report = CycleReport(cfg.name, store_scope(self.store, cfg), run_id,
                                     self.clock.now(), dry_run=dry_run)  # fmt: skip
                report.error = str(exc)
                report.finished_at = self.clock.now()
                log.error("cycle.store_failed", store=cfg.name, error=str(exc))  # noqa: TRY400 - expected trouble, no traceback
                if not dry_run:
                    self.store.cycles.record(
                        run_id=run_id, scope=report.scope, store_name=cfg.name,
                        started_at=report.started_at, finished_at=report.finished_at,
                        outcome="error", counts={}, error=report.error,
                    )  # fmt: skip
                return report
            return run_store_cycle(
                store=self.store, cfg=cfg, worker=self.config.worker, shop=shop,
                magento=self.magento, tiktok=clients.tiktok, clock=self.clock,
                run_id=run_id, dry_run=dry_run,
                other_stores_claim=self._others_claim(cfg),
                should_stop=self._stop.is_set,
            )  # fmt: skip
        finally:
            clients.session.close()

    def _others_claim(self, cfg: StoreConfig) -> bool:
        """Could another enabled direction-A store own this store's credit memos?"""
        mine = set(cfg.magento_store_ids)
        for other in self.config.stores:
            if other.name == cfg.name or not other.enabled:
                continue
            theirs = set(other.magento_store_ids)
            if not mine or not theirs or mine & theirs:
                return True
        return False

    # ------------------------------------------------------------------ service mode

    def request_stop(self) -> None:
        self._stop.set()

    def serve(self) -> int:
        """APScheduler loop: one job, every poll interval; SIGTERM/SIGINT finish and exit 0."""
        from apscheduler.schedulers.background import BackgroundScheduler

        interval = self.config.worker.poll_interval_seconds
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            self._scheduled_run, "interval", seconds=interval, id="cancelsync-cycle",
            max_instances=1, coalesce=True, misfire_grace_time=interval,
            next_run_time=self.clock.now(),
        )  # fmt: skip
        with _signals(self.request_stop):
            scheduler.start()
            log.info("service.started", poll_interval_seconds=interval,
                     stores=[s.name for s in self.config.stores if s.enabled])  # fmt: skip
            self._stop.wait()
            # wait=True lets the cycle in flight finish its current action.
            scheduler.shutdown(wait=True)
        log.info("service.stopped")
        return 0

    def _scheduled_run(self) -> None:
        try:
            self.run_once()
        except Exception:
            log.exception("cycle.crashed")


@contextmanager
def _signals(on_stop: Callable[[], None]) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        on_stop()

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
