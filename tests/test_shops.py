"""The one shop picker: which authorized TikTok shop a store means, and its messages."""

from __future__ import annotations

import pytest

from cancelsync.config import StoreConfig
from cancelsync.errors import ConfigError
from cancelsync.models import TikTokShop
from cancelsync.shops import describe_shop, pick_shop

US = TikTokShop("7495000000000000001", "US Shop", "US", "ROW_US")
GB = TikTokShop("7495000000000000002", "UK Shop", "GB", "ROW_GB")


def _store(shop_id: str | None = None) -> StoreConfig:
    return StoreConfig(name="us-main", app_key="k", app_secret="s", shop_id=shop_id)


def test_pick_shop_by_id_or_only_shop() -> None:
    """shop_id picks its shop; without it the only shop is used."""
    assert pick_shop([US, GB], _store(GB.tiktok_shop_id)) is GB
    assert pick_shop([US], _store()) is US


@pytest.mark.parametrize(
    ("shops", "shop_id", "message"),
    [
        ([], None, "not authorized for any shop"),
        ([US], "999", "not among the shops"),
        ([US, GB], None, "set shop_id to one of"),
    ],
)
def test_pick_shop_explains_what_to_fix(
    shops: list[TikTokShop], shop_id: str | None, message: str
) -> None:
    """No shop, an unknown shop_id or several shops raise ConfigError with the fix."""
    with pytest.raises(ConfigError, match=message):
        pick_shop(shops, _store(shop_id))


def test_pick_shop_messages_name_the_store_key_shops_and_command() -> None:
    """Each message names the store's key, the authorized shops and the command to run."""
    connect = "`cancelsync connect --store us-main --auth-code CODE`"
    with pytest.raises(ConfigError) as none:
        pick_shop([], _store())
    with pytest.raises(ConfigError) as unknown:
        pick_shop([US], _store("999"))
    with pytest.raises(ConfigError) as several:
        pick_shop([US, GB], _store())

    assert none.value.errors == [
        "stores[us-main]: the app is not authorized for any shop; have the seller "
        f"authorize it, then run {connect}"
    ]
    assert unknown.value.errors == [
        "stores[us-main].shop_id: shop 999 is not among the shops this app is "
        "authorized for (7495000000000000001 (US Shop, US)); fix shop_id, or have the "
        f"seller authorize that shop and run {connect}"
    ]
    assert several.value.errors == [
        "stores[us-main].shop_id: the app is authorized for 2 shops; set shop_id to "
        "one of: 7495000000000000001 (US Shop, US), 7495000000000000002 (UK Shop, GB)"
    ]


def test_describe_shop() -> None:
    """A shop is named by its id, name and region."""
    assert describe_shop(GB) == "7495000000000000002 (UK Shop, GB)"
