"""The client factory: the one way ``run``, ``check``, ``connect`` and ``reasons`` build
their API clients and bind a store to its TikTok shop.

``ClientFactory`` makes the Magento client (one per process) and, per store, a TikTok
session: the token host client, the token manager and the API client, sharing one session.
Tokens are read by ``load_tokens`` and written by ``save_tokens`` only, so a rotation in a
run and ``connect``'s code exchange land in the same row, and every pair reaches the log
redactor before it is used. A TikTok call sent from one of the engine's worker threads
(``worker.max_in_flight``) reads and rotates tokens through a SQLite connection of that
thread's own (``_tokens_store``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import requests
from sqlite_utils import Database

from cancelsync import reasons
from cancelsync.clients.http import RetryPolicy
from cancelsync.clients.magento.client import MagentoClient
from cancelsync.clients.tiktok.client import TikTokClient
from cancelsync.clients.tiktok.tokens import (
    TikTokAuthClient,
    TokenManager,
    pair_from_grant,
)
from cancelsync.clock import Clock, SystemClock
from cancelsync.config import Config, StoreConfig
from cancelsync.errors import ConfigError
from cancelsync.lock import refresh_lock
from cancelsync.log import Redactor
from cancelsync.models import TikTokShop, TokenPair
from cancelsync.scopes import shop_scope, store_scope, token_scope
from cancelsync.shops import pick_shop
from cancelsync.store import ShopBinding, Store, seed_fingerprint
from cancelsync.store.db import BUSY_TIMEOUT_MS
from cancelsync.sync.cycle import ShopContext


@dataclass
class TikTokClients:
    """One store's TikTok session: the API client, its token manager and the token host."""

    api: TikTokClient
    tokens: TokenManager
    auth: TikTokAuthClient
    session: requests.Session


class ClientFactory:
    """Builds every API client from the config; the one path tokens are stored through.

    Args:
        redactor: the redactor logging was configured with; stored and rotated tokens
            are added to it before they are used.
        session_factory, retry: injected so tests re-point the clients and never sleep.
        sleep: the default retry policy's wait (``run`` passes its stop-aware one, so a
            stop request ends a backoff at once); ignored when ``retry`` is given.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        redactor: Redactor,
        clock: Clock | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.redactor = redactor
        self.clock = clock or SystemClock()
        self._session_factory = session_factory
        if retry is None and sleep is not None:
            retry = RetryPolicy(sleep=sleep)
        self._retry = retry
        self._magento: MagentoClient | None = None
        self._owner = threading.get_ident()
        self._threads = threading.local()
        self._opened: list[tuple[threading.Thread, Store]] = []
        self._opened_lock = threading.Lock()

    @property
    def magento(self) -> MagentoClient:
        """The Magento client, built on first use and shared by every store."""
        if self._magento is None:
            self._magento = MagentoClient.from_config(
                self.config.magento, self._session_factory(), retry=self._retry
            )
        return self._magento

    def close(self) -> None:
        if self._magento is not None:
            self._magento.close()
            self._magento = None
        with self._opened_lock:
            for _thread, store in self._opened:
                store.close()
            self._opened.clear()

    @contextmanager
    def tiktok(self, cfg: StoreConfig) -> Iterator[TikTokClients]:
        """A TikTok session for one store, closed on exit."""
        tt = self.config.tiktok
        session = self._session_factory()
        try:
            auth = TikTokAuthClient(
                session, auth_base_url=tt.auth_base_url, app_key=cfg.app_key,
                app_secret=cfg.app_secret, timeout=tt.timeout_seconds,
                verify=tt.verify_tls, retry=self._retry,
            )  # fmt: skip
            tokens = TokenManager(
                auth, load=lambda: self.load_tokens(cfg),
                persist=lambda pair: self.save_tokens(cfg, pair),
                clock=self.clock, store_name=cfg.name,
                interprocess=self._refresh_lock,
            )  # fmt: skip
            api = TikTokClient.from_config(
                session, tt, cfg, tokens=tokens, clock=self.clock, retry=self._retry
            )
            yield TikTokClients(api, tokens, auth, session)
        finally:
            session.close()

    # ------------------------------------------------------------------ tokens

    def _refresh_lock(self) -> AbstractContextManager[object]:
        """The cross-process token lock beside a file database (none in memory)."""
        path = self.store.path
        return refresh_lock(path) if path is not None else nullcontext()

    def load_tokens(self, cfg: StoreConfig) -> TokenPair | None:
        """The pair to use: the stored one, unless the config holds a newer seed."""
        seed = seed_fingerprint(cfg.access_token, cfg.refresh_token)
        store = self._tokens_store()
        stored = store.tokens.get(token_scope(store, cfg))
        if stored is not None:
            pair, stored_seed = stored
            # A changed seed in the config (re-authorization) wins over the stored pair.
            if seed is None or stored_seed == seed:
                self.redactor.add(pair.access_token, pair.refresh_token)
                return pair
        if cfg.refresh_token:
            return TokenPair(cfg.access_token or "", cfg.refresh_token)
        return stored[0] if stored else None

    def save_tokens(self, cfg: StoreConfig, pair: TokenPair) -> None:
        """Store ``pair`` as the store's tokens (one statement: durable on return)."""
        self.redactor.add(pair.access_token, pair.refresh_token)
        seed = seed_fingerprint(cfg.access_token, cfg.refresh_token)
        # Saved even in --dry-run: a rotated refresh token must never be lost.
        store = self._tokens_store()
        store.tokens.save(token_scope(store, cfg), pair, seed, self.clock.now())

    def _tokens_store(self) -> Store:
        """The store tokens are read and rotated through, on this thread.

        The engine's connection stays on the engine's thread, so no engine transaction
        is ever interleaved with another thread's statements; a worker thread (a TikTok
        call in flight) opens a connection of its own on first use, closed with the
        thread (or with the factory). A pair rotated there commits on its own (WAL and
        the busy timeout let the two connections take turns writing). An in-memory
        store has one connection.
        """
        if threading.get_ident() == self._owner or self.store.path is None:
            return self.store
        store: Store | None = getattr(self._threads, "store", None)
        if store is None:
            conn = sqlite3.connect(
                str(self.store.path), timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False, isolation_level=None,
            )  # fmt: skip
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            store = Store(Database(conn), self.store.path)
            self._threads.store = store
            with self._opened_lock:
                for thread, old in [o for o in self._opened if not o[0].is_alive()]:
                    old.close()
                    self._opened.remove((thread, old))
                self._opened.append((threading.current_thread(), store))
        return store

    def connect(
        self, cfg: StoreConfig, auth_code: str
    ) -> tuple[TikTokShop, ShopBinding]:
        """Exchange a seller's auth code for tokens, then bind the store to its shop."""
        with self.tiktok(cfg) as tt:
            self.save_tokens(cfg, pair_from_grant(tt.auth.exchange_code(auth_code)))
            shop = pick_shop(tt.api.get_authorized_shops(), cfg)
        return shop, self.bind_shop(cfg, shop)

    # ------------------------------------------------------------------ shops

    def bind_shop(self, cfg: StoreConfig, shop: TikTokShop) -> ShopBinding:
        """Remember the store's shop; its provisional state moves to ``shop:<id>``."""
        old_scope = store_scope(self.store, cfg)
        binding = ShopBinding(
            cfg.name, shop.tiktok_shop_id, shop.cipher,
            reasons.normalize_market(shop.region) if shop.region else None, shop.name,
        )  # fmt: skip
        with self.store.unit_of_work():
            self.store.shops.bind(binding, self.clock.now())
            self.store.tokens.rename(old_scope, shop_scope(shop.tiktok_shop_id))
        return binding

    def resolve_shop(self, cfg: StoreConfig, tt: TikTokClients) -> ShopContext:
        """The store's shop, cipher and market: from the config and the binding, or
        looked up (and bound) when one is missing; points ``tt.api`` at the shop."""
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
            shop = pick_shop(tt.api.get_authorized_shops(), cfg)
            binding = self.bind_shop(cfg, shop)
            cipher = cfg.shop_cipher or shop.cipher
            market = cfg.market or binding.market
            shop_id = shop.tiktok_shop_id
        tt.api.shop_cipher = cipher
        if not market:
            raise ConfigError([f"stores[{cfg.name}].market: unknown; set market"])
        return ShopContext(
            tiktok_shop_id=shop_id, market=market, scope=shop_scope(shop_id)
        )
