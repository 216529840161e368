"""Which authorized TikTok shop a configured store means: one rule, one set of messages.

``run``, ``connect``, ``reasons --order`` and ``check`` all pick through ``pick_shop``, so
they never disagree about a store's shop or explain the same problem in different words.
"""

from __future__ import annotations

from collections.abc import Sequence

from cancelsync.config import StoreConfig
from cancelsync.errors import ConfigError
from cancelsync.models import TikTokShop


def describe_shop(shop: TikTokShop) -> str:
    """``"<shop id> (<name>, <region>)"``, as every shop message names a shop."""
    return f"{shop.tiktok_shop_id} ({shop.name}, {shop.region})"


def pick_shop(shops: Sequence[TikTokShop], cfg: StoreConfig) -> TikTokShop:
    """The shop the store's ``shop_id`` names, or the only authorized one when it is unset.

    Raises:
        ConfigError: the app is authorized for no shop, ``shop_id`` is not among the
            authorized shops, or it is unset while the app is authorized for several.
    """
    connect = f"cancelsync connect --store {cfg.name} --auth-code CODE"
    if not shops:
        raise ConfigError(
            [f"stores[{cfg.name}]: the app is not authorized for any shop; have the "
             f"seller authorize it, then run `{connect}`"]
        )  # fmt: skip
    listing = ", ".join(describe_shop(s) for s in shops)
    if cfg.shop_id:
        for shop in shops:
            if shop.tiktok_shop_id == cfg.shop_id:
                return shop
        raise ConfigError(
            [f"stores[{cfg.name}].shop_id: shop {cfg.shop_id} is not among the shops "
             f"this app is authorized for ({listing}); fix shop_id, or have the seller "
             f"authorize that shop and run `{connect}`"]
        )  # fmt: skip
    if len(shops) > 1:
        raise ConfigError(
            [f"stores[{cfg.name}].shop_id: the app is authorized for {len(shops)} "
             f"shops; set shop_id to one of: {listing}"]
        )  # fmt: skip
    return shops[0]
