"""`cancelsync status` reads as text for people: ISO times with "ago", Magento orders as
#increment, the auth state and the market in words, before and after the first run."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import MINIMAL_CONFIG

from cancelsync.config import load_config
from cancelsync.readable import relative, when
from cancelsync.status import render_status, status_data
from cancelsync.store import Store, TokenPair

pytestmark = pytest.mark.usefixtures("reset_logging", "clean_env")

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SCOPE = "store:us-main"
MINIMAL = MINIMAL_CONFIG
TOKENS = 'access_token = "at-seed"\nrefresh_token = "rt-seed"\n'


def _text(config_path: Path, now: datetime) -> str:
    """``status`` as printed, with its times told relative to ``now``."""
    config = load_config(config_path, require_secrets=False)
    store = Store.open(config.worker.database)
    try:
        data = status_data(config, store)
    finally:
        store.close()
    out = io.StringIO()
    render_status(data, out, now=now)
    return out.getvalue()


@pytest.fixture
def config_with(
    tmp_path: Path, write_config: Callable[..., Path]
) -> Callable[[str], Path]:
    """``config_with(extra_store_lines)``: the minimal config plus lines for us-main."""
    return lambda extra: write_config(tmp_path, MINIMAL + extra)


# --------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "just now"), (1, "1 second ago"), (59, "59 seconds ago"),
     (60, "1 minute ago"), (3 * 3600 + 5, "3 hours ago"), (2 * 86_400, "2 days ago"),
     (-90, "in 1 minute"), (-5 * 3600, "in 5 hours")],
)  # fmt: skip
def test_relative_times_in_whole_units(seconds: int, expected: str) -> None:
    """Relative times count whole seconds, minutes, hours or days, past or future."""
    assert relative(T0 - timedelta(seconds=seconds), T0) == expected


def test_when_reads_iso_text_and_epochs_alike() -> None:
    """A stored ISO time and Unix seconds print the same ISO UTC date with "ago"."""
    expected = "2026-11-01 11:50:00 UTC (10 minutes ago)"
    assert when("2026-11-01T11:50:00+00:00", T0) == expected
    assert when(int((T0 - timedelta(minutes=10)).timestamp()), T0) == expected
    assert when(None, T0) == "never"


def test_auth_not_connected_says_to_run_connect(
    config_with: Callable[[str], Path],
) -> None:
    """No token anywhere: status names the connect command for this store."""
    text = _text(config_with(""), T0)
    assert (
        "auth: not connected — run `cancelsync connect --store us-main --auth-code CODE`"
        in text
    )


def test_auth_seed_is_explained_before_the_first_run(
    config_with: Callable[[str], Path],
) -> None:
    """A refresh token in the config, never used: status says what the first run does
    with it, not "seed"."""
    text = _text(config_with('refresh_token = "rt-seed"\n'), T0)
    assert (
        "auth: not yet used — the refresh token from the config will be exchanged for "
        "an access token on the first run" in text
    )
    assert "auth: seed" not in text
    text = _text(config_with(TOKENS), T0)
    assert (
        "auth: not yet used — the tokens from the config are used on the first run"
        in text
    )


def test_auth_expiry_is_an_iso_time_in_the_future(
    config_with: Callable[[str], Path],
) -> None:
    """A stored token's expiry prints as an ISO date "in 3 hours", never as an epoch;
    the JSON keeps the epoch and adds the ISO text."""
    path = config_with("")
    expire = int((T0 + timedelta(hours=3)).timestamp())
    store = Store.open(path.parent / "cancelsync.db")
    try:
        store.tokens.save(SCOPE, TokenPair("at", "rt", expire), None, T0)
    finally:
        store.close()
    text = _text(path, T0)
    assert (
        "auth: ok — access token valid until 2026-11-01 15:00:00 UTC (in 3 hours)"
        in text
    )
    assert str(expire) not in text
    text = _text(path, T0 + timedelta(hours=5))
    assert "access token expired 2026-11-01 15:00:00 UTC (2 hours ago)" in text


def test_reauthorize_says_what_the_seller_must_do(
    config_with: Callable[[str], Path],
) -> None:
    """A refused refresh: status gives the error and the way back (connect)."""
    path = config_with("")
    store = Store.open(path.parent / "cancelsync.db")
    try:
        pair = TokenPair("at", "rt", None, auth_status="reauthorize",
                         auth_error="refresh token expired (code 105003)")  # fmt: skip
        store.tokens.save(SCOPE, pair, None, T0)
    finally:
        store.close()
    text = _text(path, T0)
    assert "auth: reauthorize (refresh token expired (code 105003)) — " in text
    assert (
        "authorize the app again in TikTok Shop, then run `cancelsync connect" in text
    )


def test_attention_items_show_the_magento_order_as_increment(
    config_with: Callable[[str], Path],
) -> None:
    """An item needing attention names the Magento order #increment and since when; a
    failed one its last try."""
    path = config_with("")
    store = Store.open(path.parent / "cancelsync.db")
    try:
        for key, state in (("a", "needs_attention"), ("b", "failed")):
            store.ledger.begin(
                key, scope=SCOPE, store_name="us-main", direction="tiktok_to_magento",
                action="magento_refund", now=T0, state=state, tiktok_order_id="576",
                magento_increment_id="000000042", reason="already shipped",
            )  # fmt: skip
        store.ledger.update("b", T0, last_error="magento: HTTP 503")
    finally:
        store.close()
    text = _text(path, T0 + timedelta(hours=2))
    assert (
        "! #1 magento_refund tiktok 576 magento #000000042: already shipped "
        "(since 2026-11-01 12:00:00 UTC (2 hours ago))" in text
    )
    assert (
        "failed #2 magento_refund tiktok 576 magento #000000042: magento: HTTP 503 "
        "(last try 2026-11-01 12:00:00 UTC (2 hours ago)" in text
    )


def test_market_from_the_config_is_known_before_the_first_run(
    config_with: Callable[[str], Path],
) -> None:
    """market set in the config: status shows it (and where it comes from) at once."""
    text = _text(config_with('market = "UK"\n'), T0)
    assert "market: UK (set in the config)" in text
