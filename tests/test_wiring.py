"""The client factory against the TikTok simulator: one token path, shop binding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cancelsync.clients.http import RetryPolicy
from cancelsync.config import Config, load_config
from cancelsync.log import REDACTED, Redactor
from cancelsync.sandbox.harness import Sandbox, StoreSpec
from cancelsync.scopes import shop_scope, token_scope
from cancelsync.store import Store
from cancelsync.wiring import ClientFactory

REFRESH = r"GET /api/v2/token/refresh"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """Both simulators on loopback (each test registers its store)."""
    with Sandbox() as sandbox:
        yield sandbox


def _config(sb: Sandbox, folder: Path) -> Config:
    return load_config(sb.write_config(folder / "cancelsync.toml"), environ={})


def _factory(config: Config, store: Store) -> ClientFactory:
    return ClientFactory(
        config, store, redactor=Redactor(), retry=RetryPolicy(sleep=lambda s: None)
    )


def _token_rows(store: Store) -> int:
    return int(store.db.execute("SELECT count(*) FROM tokens").fetchone()[0])


def test_a_rotated_pair_is_saved_once_and_redacted(
    sb: Sandbox, tmp_path: Path, store: Store
) -> None:
    """A refresh stores the new pair in one row, the redactor learns it, the next session reuses it."""
    sb.add_store("us-main")
    config = _config(sb, tmp_path)
    cfg = config.stores[0]
    clients = _factory(config, store)
    sb.tiktok.expire_access_tokens()

    with clients.tiktok(cfg) as tt:
        tt.api.get_authorized_shops()
    with clients.tiktok(cfg) as tt:
        tt.api.get_authorized_shops()

    stored = store.tokens.get(token_scope(store, cfg))
    assert stored is not None
    pair = stored[0]
    assert pair.refresh_token != sb.demo.refresh_token
    assert sb.tiktok_server.journal.count(REFRESH) == 1
    assert _token_rows(store) == 1
    assert clients.load_tokens(cfg) == pair
    text = f"{pair.access_token} {pair.refresh_token}"
    assert clients.redactor.scrub_text(text) == f"{REDACTED} {REDACTED}"


def test_connect_stores_the_pair_where_runs_read_it(
    sb: Sandbox, tmp_path: Path, store: Store
) -> None:
    """`connect` saves the exchanged pair through the same path, under the bound shop."""
    unseeded = replace(sb.demo, access_token="", refresh_token="")
    sb.stores.append(StoreSpec("us-main", unseeded, with_shop_id=False))
    config = _config(sb, tmp_path)
    cfg = config.stores[0]
    assert cfg.refresh_token is None  # no seed: connect is the only source
    clients = _factory(config, store)
    code = sb.tiktok.issue_auth_code(sb.demo.app_key, [sb.demo.shop_id])

    shop, binding = clients.connect(cfg, code)

    assert (shop.tiktok_shop_id, binding.market) == (sb.demo.shop_id, "US")
    stored = store.tokens.get(shop_scope(sb.demo.shop_id))
    assert stored is not None
    assert _token_rows(store) == 1
    assert clients.load_tokens(cfg) == stored[0]
    assert clients.redactor.scrub_text(stored[0].refresh_token) == REDACTED


def test_resolve_shop_looks_up_binds_and_points_the_client(
    sb: Sandbox, tmp_path: Path, store: Store
) -> None:
    """Without shop_id the only shop is looked up, bound and its cipher used."""
    sb.add_store("us-main", with_shop_id=False)
    config = _config(sb, tmp_path)
    cfg = config.stores[0]
    clients = _factory(config, store)

    with clients.tiktok(cfg) as tt:
        shop = clients.resolve_shop(cfg, tt)
        cipher = tt.api.shop_cipher

    assert shop.scope == shop_scope(sb.demo.shop_id) == f"shop:{sb.demo.shop_id}"
    assert (shop.tiktok_shop_id, shop.market) == (sb.demo.shop_id, "US")
    assert cipher == sb.demo.shop_cipher
    binding = store.shops.get("us-main")
    assert binding is not None
    assert binding.shop_cipher == sb.demo.shop_cipher
