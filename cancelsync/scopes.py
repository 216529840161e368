"""Which key a store's stored state and tokens live under (shared by the CLI and the
service, so ``status`` reads exactly what ``run`` wrote)."""

from __future__ import annotations

from cancelsync.config import StoreConfig
from cancelsync.store import Store, seed_fingerprint


def shop_scope(tiktok_shop_id: str) -> str:
    """The scope of a known TikTok shop: ``shop:<id>``."""
    return f"shop:{tiktok_shop_id}"


def store_scope(store: Store, cfg: StoreConfig) -> str:
    """Stored state lives under the TikTok shop id once known, else the store name."""
    shop_id = cfg.shop_id
    if shop_id is None:
        binding = store.shops.get(cfg.name)
        shop_id = binding.tiktok_shop_id if binding else None
    return shop_scope(shop_id) if shop_id else f"store:{cfg.name}"


def token_scope(store: Store, cfg: StoreConfig) -> str:
    """Where a store's rotated TikTok tokens live.

    Stores seeded with the same app and token pair share one row: TikTok authorizes a
    seller (possibly with several shops) and every refresh kills the previous refresh
    token, so two copies of one authorization would break each other. A new seed in the
    config (re-authorization) is a new row, so it wins over the old rotated pair.
    """
    seed = seed_fingerprint(cfg.access_token, cfg.refresh_token)
    if seed is not None:
        return f"seed:{cfg.app_key}:{seed}"
    return store_scope(store, cfg)
