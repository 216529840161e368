"""Config loading: ${VAR} expansion, every validation rule, defaults and path resolution."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cancelsync.config import (
    CancelToRefundConfig,
    Config,
    MagentoConfig,
    RefundToCancelConfig,
    StoreConfig,
    TikTokConfig,
    WorkerConfig,
    default_config_path,
    load_config,
)
from cancelsync.errors import ConfigError
from cancelsync.log import Redactor, configure_logging, get_logger

WriteConfig = Callable[..., Path]

REPO_ROOT = Path(__file__).resolve().parents[1]

MAGENTO = """\
[magento]
base_url = "https://magento.test"
consumer_key = "ck"
consumer_secret = "cs-secret"
access_token = "at-token"
access_token_secret = "ats-secret"
"""

STORE = """\
[[stores]]
name = "us-main"
app_key = "key"
app_secret = "app-secret"
"""

# The files config.example.toml reads through ${file:secrets/NAME}.
EXAMPLE_SECRETS = {
    "magento_consumer_key": "example-ck",
    "magento_consumer_secret": "example-cs",
    "magento_access_token": "example-at",
    "magento_access_token_secret": "example-ats",
    "tiktok_app_key": "example-app-key",
    "tiktok_app_secret": "example-app-secret",
}


def example_config_in(folder: Path, secrets: dict[str, str]) -> Path:
    """Copy config.example.toml into ``folder`` with ``secrets`` as its secret files."""
    path = folder / "cancelsync.toml"
    path.write_text((REPO_ROOT / "config.example.toml").read_text(encoding="utf-8"))
    (folder / "secrets").mkdir()
    for name, value in secrets.items():
        (folder / "secrets" / name).write_text(value + "\n", encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    """Load ``path`` expecting a ConfigError and return its list of problems."""
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    return info.value.errors


def config_with(tmp_path: Path, write_config: WriteConfig, text: str) -> Path:
    """Write ``text`` as the config file in ``tmp_path``."""
    return write_config(tmp_path, text)


# --------------------------------------------------------------------------- valid configs


def test_minimal_config_gets_every_default(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A config with only URLs and credentials gets the documented default for every key."""
    config = load_config(write_config(tmp_path), environ={})
    assert config.path == tmp_path / "cancelsync.toml"
    assert config.worker == WorkerConfig(database=tmp_path / "cancelsync.db")
    assert config.worker.poll_interval_seconds == 60
    assert config.worker.overlap_seconds == 300
    assert config.worker.first_run_lookback_hours == 24
    assert config.worker.log_format == "auto"
    assert config.worker.stores_dir is None
    assert config.worker.max_attempts == 5
    assert config.worker.retry_backoff_seconds == 60
    assert config.magento == MagentoConfig(
        base_url="https://magento.test",
        consumer_key="ck-minimal",
        consumer_secret="cs-minimal-secret",
        access_token="at-minimal-token",
        access_token_secret="ats-minimal-secret",
    )
    assert config.magento.store_code == "all"
    assert config.magento.auth == "oauth1"
    assert config.magento.token == ""
    assert config.magento.tiktok_order_id_field == "ext_order_id"
    assert config.magento.timeout_seconds == 30.0
    assert config.magento.verify_tls is True
    assert config.magento.requests_per_second == 40.0
    assert config.tiktok == TikTokConfig()
    assert config.tiktok.api_base_url == "https://open-api.tiktokglobalshop.com"
    assert config.tiktok.auth_base_url == "https://auth.tiktok-shops.com"
    (store,) = config.stores
    assert store == StoreConfig(
        name="us-main",
        app_key="app-key-minimal",
        app_secret="app-secret-minimal",
        source="stores[us-main]",
    )
    assert store.shop_id is None
    assert store.shop_cipher is None
    assert store.market is None
    assert store.access_token is None
    assert store.refresh_token is None
    assert store.magento_store_ids == ()
    assert store.enabled is True
    assert store.magento_refund_to_tiktok_cancel == RefundToCancelConfig(
        enabled=False,
        cancel_reason="seller_cancel_paid_reason_address_not_deliver",
        partial_refunds="report",
        approve_buyer_requests=True,
    )
    assert store.tiktok_cancel_to_magento_refund == CancelToRefundConfig(
        enabled=True, restock=True, include_seller_cancellations=False
    )


def _defaults_toml(cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    """``key = default`` for every field of ``cls`` that has a writable default."""
    lines = []
    for f in dataclasses.fields(cls):
        value = f.default
        if f.name in skip or value in (None, dataclasses.MISSING):
            continue
        if isinstance(value, bool):
            lines.append(f"{f.name} = {str(value).lower()}")
        elif isinstance(value, str | Path):
            lines.append(f'{f.name} = "{value}"')
        elif isinstance(value, tuple):
            lines.append(f"{f.name} = {list(value)}")
        else:
            lines.append(f"{f.name} = {value!r}")
    return lines


# Set by the minimal config, or (token) not allowed with its oauth1 default.
CREDENTIALS = (
    "consumer_key", "consumer_secret", "access_token", "access_token_secret", "token",
)  # fmt: skip


def test_every_field_is_a_key_and_its_default_loads(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Each table accepts every field of its dataclass; writing the defaults changes nothing."""
    path = write_config(tmp_path)
    minimal = load_config(path, environ={})
    magento, store = path.read_text().split("[[stores]]")
    text = "\n".join([
        "[worker]", *_defaults_toml(WorkerConfig),
        "[tiktok]", *_defaults_toml(TikTokConfig),
        magento.strip(), *_defaults_toml(MagentoConfig, skip=CREDENTIALS),
        "[[stores]]", store.strip(), *_defaults_toml(StoreConfig, skip=("source",)),
        "[stores.magento_refund_to_tiktok_cancel]", *_defaults_toml(RefundToCancelConfig),
        "[stores.tiktok_cancel_to_magento_refund]", *_defaults_toml(CancelToRefundConfig),
    ])  # fmt: skip
    assert "poll_interval_seconds = 60" in text  # the helper wrote the defaults

    config = load_config(write_config(tmp_path, text + "\n"), environ={})

    assert config == minimal


def test_example_config_is_valid_with_its_secret_files(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """The shipped config.example.toml loads once the secret files it names exist."""
    config = load_config(example_config_in(tmp_path, EXAMPLE_SECRETS))
    assert config.worker.database == Path("/var/lib/cancelsync/cancelsync.db")
    assert config.magento.consumer_secret == "example-cs"
    (store,) = config.stores
    assert store.name == "us-main"
    assert store.app_key == "example-app-key"
    assert store.app_secret == "example-app-secret"
    assert store.shop_id == "7495000000000000001"
    assert store.market == "US"
    assert store.magento_store_ids == (1,)
    assert store.refresh_token is None
    assert set(EXAMPLE_SECRETS.values()) - set(config.secrets()) == {
        "example-ck",
        "example-app-key",
    }


def test_example_config_names_every_missing_secret_file(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """Without its secret files the example config reports each one by key and path."""
    with pytest.raises(ConfigError) as info:
        load_config(example_config_in(tmp_path, {}))
    text = "\n".join(info.value.errors)
    for name in EXAMPLE_SECRETS:
        assert f"{tmp_path / 'secrets' / name}: file not found" in text
    assert (
        "magento.consumer_secret: cannot read secret file "
        f"{tmp_path / 'secrets' / 'magento_consumer_secret'}: file not found" in text
    )
    assert "stores[us-main].app_secret: cannot read secret file" in text
    assert len(info.value.errors) == len(EXAMPLE_SECRETS)


def test_env_vars_expand_inside_strings_and_nested_tables(
    tmp_path: Path, write_config: WriteConfig, clean_env: pytest.MonkeyPatch
) -> None:
    """${VAR} expands anywhere in a string value, including direction tables."""
    clean_env.setenv("MAGENTO_HOST", "shop.example.com")
    clean_env.setenv("REASON", "out_of_stock")
    clean_env.setenv("TTS_APP_SECRET", "from-env-secret")
    text = (
        MAGENTO.replace('"https://magento.test"', '"https://${MAGENTO_HOST}/"')
        + STORE.replace('"app-secret"', '"${TTS_APP_SECRET}"')
        + '[stores.magento_refund_to_tiktok_cancel]\ncancel_reason = "${REASON}"\n'
    )
    config = load_config(write_config(tmp_path, text))
    assert config.magento.base_url == "https://shop.example.com"
    assert config.stores[0].app_secret == "from-env-secret"
    assert (
        config.stores[0].magento_refund_to_tiktok_cancel.cancel_reason == "out_of_stock"
    )


def test_unset_env_var_is_named_once_with_its_location(
    tmp_path: Path, write_config: WriteConfig, clean_env: pytest.MonkeyPatch
) -> None:
    """An unset variable is one error naming it and where it is used, with no follow-ups."""
    text = MAGENTO.replace(
        '"https://magento.test"', '"${MAGENTO_URL}"'
    ) + STORE.replace('"app-secret"', '"${TTS_APP_SECRET}"')
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [
        "magento.base_url: environment variable MAGENTO_URL is not set",
        "stores[us-main].app_secret: environment variable TTS_APP_SECRET is not set",
    ]


def test_explicit_environ_is_used_instead_of_the_process_env(
    tmp_path: Path, write_config: WriteConfig, clean_env: pytest.MonkeyPatch
) -> None:
    """load_config(environ=...) reads only the mapping it is given."""
    clean_env.setenv("TTS_APP_SECRET", "process-value")
    path = write_config(
        tmp_path, MAGENTO + STORE.replace('"app-secret"', '"${TTS_APP_SECRET}"')
    )
    config = load_config(path, environ={"TTS_APP_SECRET": "given-value"})
    assert config.stores[0].app_secret == "given-value"


def test_bearer_auth_needs_only_the_token(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """auth = "bearer" requires `token` and no OAuth 1.0a credentials."""
    text = (
        '[magento]\nbase_url = "https://m.test"\nauth = "bearer"\ntoken = "tok-1234"\n'
        + STORE
    )
    config = load_config(write_config(tmp_path, text), environ={})
    assert config.magento.auth == "bearer"
    assert config.magento.token == "tok-1234"
    assert "tok-1234" in config.secrets()


def test_optional_store_keys_are_read(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Optional store keys and both direction tables are parsed into the store config."""
    text = (
        MAGENTO
        + STORE
        + (
            'shop_id = 7495\nshop_cipher = "ROW_abc"\nmarket = "gb"\naccess_token = "seed-at"\n'
            'refresh_token = "seed-rt"\nmagento_store_ids = [1, 2]\nenabled = false\n'
            "[stores.magento_refund_to_tiktok_cancel]\nenabled = true\n"
            'cancel_reason = "seller_cancel_reason_out_of_stock"\npartial_refunds = "cancel_items"\n'
            "approve_buyer_requests = false\n"
            "[stores.tiktok_cancel_to_magento_refund]\nenabled = false\nrestock = false\n"
            "include_seller_cancellations = true\n"
        )
    )
    (store,) = load_config(write_config(tmp_path, text), environ={}).stores
    assert store.shop_id == "7495"
    assert store.shop_cipher == "ROW_abc"
    assert store.market == "UK"
    assert (store.access_token, store.refresh_token) == ("seed-at", "seed-rt")
    assert store.magento_store_ids == (1, 2)
    assert store.enabled is False
    assert store.magento_refund_to_tiktok_cancel == RefundToCancelConfig(
        True, "seller_cancel_reason_out_of_stock", "cancel_items", False
    )
    assert store.tiktok_cancel_to_magento_refund == CancelToRefundConfig(
        False, False, True
    )
    assert {"seed-at", "seed-rt", "app-secret"} <= set(store.secrets())


def test_trailing_slashes_are_stripped_from_urls(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Base URLs lose a trailing slash so clients can append paths."""
    text = (
        MAGENTO.replace('"https://magento.test"', '"https://magento.test/"')
        + '[tiktok]\napi_base_url = "http://127.0.0.1:8080/"\n'
        + STORE
    )
    config = load_config(write_config(tmp_path, text), environ={})
    assert config.magento.base_url == "https://magento.test"
    assert config.tiktok.api_base_url == "http://127.0.0.1:8080"


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = 1\n" + MAGENTO + STORE, "cancelsync.toml: unknown key 'colour'"),
        ("[worker]\npoll_interval = 5\n" + MAGENTO + STORE,
         "worker: unknown key 'poll_interval' (did you mean 'poll_interval_seconds'?)"),
        (MAGENTO + "verify_ssl = true\n" + STORE, "magento: unknown key 'verify_ssl' (did you mean 'verify_tls'?)"),
        ("[tiktok]\napi_url = 'https://x.test'\n" + MAGENTO + STORE,
         "tiktok: unknown key 'api_url'"),
        (MAGENTO + STORE + "shopid = '1'\n",
         "stores[us-main]: unknown key 'shopid' (did you mean 'shop_id'?)"),
        (MAGENTO + STORE + "[stores.magento_refund_to_tiktok_cancel]\nreason = 'x'\n",
         "stores[us-main].magento_refund_to_tiktok_cancel: unknown key 'reason'"),
        (MAGENTO + STORE + "[stores.tiktok_cancel_to_magento_refund]\nrestok = true\n",
         "stores[us-main].tiktok_cancel_to_magento_refund: unknown key 'restok' "
         "(did you mean 'restock'?)"),
    ],
    ids=["top", "worker", "magento", "tiktok", "store", "refund-to-cancel", "cancel-to-refund"],
)  # fmt: skip
def test_unknown_keys_are_errors_at_every_level(
    tmp_path: Path, write_config: WriteConfig, text: str, expected: str
) -> None:
    """A key the config does not define is an error naming where it is."""
    (error,) = errors_of(write_config(tmp_path, text))
    assert error.endswith(expected)


def test_unknown_key_in_a_stores_d_file_names_the_file(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A typo in stores.d/eu.toml is reported as `stores.d/eu.toml: unknown key ...`."""
    path = write_config(tmp_path, '[worker]\nstores_dir = "stores.d"\n' + MAGENTO)
    write_config(
        tmp_path, 'name = "eu"\napp_key = "k"\napp_secret = "s-eu"\nrestok = true\n',
        name="stores.d/eu.toml",
    )  # fmt: skip
    assert errors_of(path) == ["stores.d/eu.toml: unknown key 'restok'"]


# --------------------------------------------------------------------------- missing / types


def test_missing_magento_section_and_store_keys(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Required sections and keys are reported as missing, each with its location."""
    errors = errors_of(write_config(tmp_path, "[[stores]]\nname = 'us-main'\n"))
    assert "[magento]: missing section" in errors
    assert "magento.base_url: missing" in errors
    for key in (
        "consumer_key",
        "consumer_secret",
        "access_token",
        "access_token_secret",
    ):
        assert f"magento.{key}: missing" in errors
    assert "stores[us-main].app_key: missing" in errors
    assert "stores[us-main].app_secret: missing" in errors


def test_missing_store_name_and_empty_required_value(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A store without a name and an empty required string are both reported."""
    errors = errors_of(write_config(tmp_path, MAGENTO + "[[stores]]\napp_key = ''\n"))
    assert "stores[0].name: missing" in errors
    assert "stores[0].app_key: missing (empty)" in errors
    assert "stores[0].app_secret: missing" in errors
    assert not any("duplicate" in e for e in errors)


def test_bearer_auth_without_token_and_token_with_oauth1(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Bearer needs `token`; `token` under oauth1 is flagged as unused."""
    bearer = '[magento]\nbase_url = "https://m.test"\nauth = "bearer"\n' + STORE
    assert errors_of(write_config(tmp_path, bearer)) == ["magento.token: missing"]
    oauth = MAGENTO + 'token = "tok-1234"\n' + STORE
    assert errors_of(write_config(tmp_path, oauth)) == [
        'magento.token: only used with auth = "bearer"'
    ]


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("worker", "poll_interval_seconds = '60'", "worker.poll_interval_seconds: expected an integer, got '60'"),
        ("worker", "poll_interval_seconds = true", "worker.poll_interval_seconds: expected an integer, got True"),
        ("worker", "overlap_seconds = 1.5", "worker.overlap_seconds: expected an integer, got 1.5"),
        ("worker", "max_attempts = false", "worker.max_attempts: expected an integer, got False"),
        ("worker", "database = 3", "worker.database: expected a string, got 3"),
        ("magento", "verify_tls = 1", "magento.verify_tls: expected true/false, got 1"),
        ("magento", "timeout_seconds = true", "magento.timeout_seconds: expected an integer or a number, got True"),
        ("magento", "base_url = 5", "magento.base_url: expected a string, got 5"),
        ("tiktok", "requests_per_second = '5'", "tiktok.requests_per_second: expected an integer or a number, got '5'"),
        ("store", "enabled = 'yes'", "stores[us-main].enabled: expected true/false, got 'yes'"),
        ("store", "shop_id = true", "stores[us-main].shop_id: expected a string or an integer, got True"),
        ("store", "magento_store_ids = 1", "stores[us-main].magento_store_ids: expected list, got 1"),
        ("store", "market = 1", "stores[us-main].market: expected a string, got 1"),
    ],
)  # fmt: skip
def test_wrong_types_are_errors(
    tmp_path: Path, write_config: WriteConfig, section: str, line: str, expected: str
) -> None:
    """A value of the wrong type (including true/false for a number) is an error."""
    assert expected in errors_of(write_config(tmp_path, with_line(section, line)))


def with_line(section: str, line: str) -> str:
    """A valid config with ``line`` set in ``section`` (replacing the key if present)."""
    key = line.split("=")[0].strip()

    def put(table: str) -> str:
        kept = [row for row in table.splitlines() if row.split("=")[0].strip() != key]
        return "\n".join([*kept, line]) + "\n"

    if section == "magento":
        return put(MAGENTO) + STORE
    if section == "store":
        return MAGENTO + put(STORE)
    return f"[{section}]\n{line}\n" + MAGENTO + STORE


def test_sections_of_the_wrong_shape(tmp_path: Path, write_config: WriteConfig) -> None:
    """A section that is not a table, or stores that is not an array, is an error."""
    text = 'worker = 5\ntiktok = "x"\n' + MAGENTO + "[stores]\nname = 'x'\n"
    errors = errors_of(write_config(tmp_path, text))
    assert "worker: must be a table ([worker])" in errors
    assert "tiktok: must be a table ([tiktok])" in errors
    assert "stores: must be an array of tables ([[stores]])" in errors


def test_direction_table_of_the_wrong_shape_names_its_store(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A direction key that is not a table is reported under its store."""
    text = MAGENTO + STORE + "tiktok_cancel_to_magento_refund = true\n"
    assert errors_of(write_config(tmp_path, text)) == [
        "stores[us-main].tiktok_cancel_to_magento_refund: must be a table "
        "([stores[us-main].tiktok_cancel_to_magento_refund])"
    ]


OVERLAP_FLOOR = (
    "worker.overlap_seconds: must be at least 30: shorter windows lose events stamped in "
    "the cycle's own last second and rows committed late (Magento stamps them when their "
    "transaction starts)"
)


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("worker", "poll_interval_seconds = 0", "worker.poll_interval_seconds: must be between 1 and 86400"),
        ("worker", "poll_interval_seconds = 99999999999999999999", "worker.poll_interval_seconds: must be between 1 and 86400"),
        ("worker", "overlap_seconds = 0", OVERLAP_FLOOR),
        ("worker", "overlap_seconds = 29", OVERLAP_FLOOR),
        ("worker", "overlap_seconds = 86401", "worker.overlap_seconds: must be between 30 and 86400"),
        ("worker", "first_run_lookback_hours = -2", "worker.first_run_lookback_hours: must be between 0 and 8760"),
        ("worker", "first_run_lookback_hours = 8761", "worker.first_run_lookback_hours: must be between 0 and 8760"),
        ("worker", "max_attempts = 0", "worker.max_attempts: must be between 1 and 100"),
        ("worker", "max_attempts = 101", "worker.max_attempts: must be between 1 and 100"),
        ("worker", "retry_backoff_seconds = -5", "worker.retry_backoff_seconds: must be between 0 and 3600"),
        ("worker", "retry_backoff_seconds = 3601", "worker.retry_backoff_seconds: must be between 0 and 3600"),
        ("magento", "timeout_seconds = 0.5", "magento.timeout_seconds: must be between 1 and 300"),
        ("magento", "timeout_seconds = inf", "magento.timeout_seconds: must be between 1 and 300"),
        ("magento", "timeout_seconds = nan", "magento.timeout_seconds: must be between 1 and 300"),
        ("magento", "requests_per_second = 0.1", "magento.requests_per_second: must be between 0.5 and 1000"),
        ("magento", "requests_per_second = 1e400", "magento.requests_per_second: must be between 0.5 and 1000"),
        ("tiktok", "timeout_seconds = 301", "tiktok.timeout_seconds: must be between 1 and 300"),
        ("tiktok", "requests_per_second = -inf", "tiktok.requests_per_second: must be between 0.5 and 1000"),
        ("tiktok", "requests_per_second = nan", "tiktok.requests_per_second: must be between 0.5 and 1000"),
    ],
)  # fmt: skip
def test_numbers_out_of_range(
    tmp_path: Path, write_config: WriteConfig, section: str, line: str, expected: str
) -> None:
    """Every number has bounds (NaN and infinities are out); the overlap says why it has a
    floor."""
    tables = {"worker": "[worker]\n", "magento": MAGENTO, "tiktok": "[tiktok]\n"}
    tables[section] += f"{line}\n"
    text = "".join(tables.values()) + STORE
    assert errors_of(write_config(tmp_path, text)) == [expected]


@pytest.mark.parametrize(
    "line",
    ["poll_interval_seconds = 1", "poll_interval_seconds = 86400", "overlap_seconds = 30",
     "first_run_lookback_hours = 0", "max_attempts = 1", "retry_backoff_seconds = 0"],
)  # fmt: skip
def test_numbers_at_their_bounds_are_accepted(
    tmp_path: Path, write_config: WriteConfig, line: str
) -> None:
    """The bounds themselves are valid values."""
    load_config(
        write_config(tmp_path, f"[worker]\n{line}\n" + MAGENTO + STORE), environ={}
    )


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MAGENTO.replace("https://magento.test", "magento.test") + STORE,
         "magento.base_url: 'magento.test' is not an http(s) URL"),
        (MAGENTO.replace("https://magento.test", "ftp://magento.test") + STORE,
         "magento.base_url: 'ftp://magento.test' is not an http(s) URL"),
        ("[tiktok]\napi_base_url = 'https://'\n" + MAGENTO + STORE,
         "tiktok.api_base_url: 'https://' is not an http(s) URL"),
        ("[tiktok]\nauth_base_url = 'auth.tiktok-shops.com'\n" + MAGENTO + STORE,
         "tiktok.auth_base_url: 'auth.tiktok-shops.com' is not an http(s) URL"),
    ],
    ids=["no-scheme", "ftp", "no-host", "auth-url"],
)  # fmt: skip
def test_bad_urls(
    tmp_path: Path, write_config: WriteConfig, text: str, expected: str
) -> None:
    """Base URLs must be http(s) URLs with a host."""
    assert errors_of(write_config(tmp_path, text)) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[worker]\nlog_format = 'xml'\n" + MAGENTO + STORE,
         "worker.log_format: must be one of auto, json, console"),
        (MAGENTO + "auth = 'basic'\n" + STORE, "magento.auth: must be one of oauth1, bearer"),
        (MAGENTO + STORE + "[stores.magento_refund_to_tiktok_cancel]\npartial_refunds = 'all'\n",
         "stores[us-main].magento_refund_to_tiktok_cancel.partial_refunds: "
         "must be one of report, cancel_items"),
    ],
    ids=["log_format", "auth", "partial_refunds"],
)  # fmt: skip
def test_bad_enum_values(
    tmp_path: Path, write_config: WriteConfig, text: str, expected: str
) -> None:
    """Enumerated keys accept only their documented values."""
    assert expected in errors_of(write_config(tmp_path, text))


@pytest.mark.parametrize("field", ["ext-order-id", "", "1field"])
def test_bad_tiktok_order_id_field(
    tmp_path: Path, write_config: WriteConfig, field: str
) -> None:
    """The Magento order field holding the TikTok id must be a column name."""
    text = MAGENTO + f'tiktok_order_id_field = "{field}"\n' + STORE
    assert errors_of(write_config(tmp_path, text)) == [
        f"magento.tiktok_order_id_field: {field!r} is not a column name"
    ]


def test_unknown_cancel_reason_lists_the_families(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A cancel_reason that is neither a TikTok key nor a family is rejected with the options."""
    text = (
        MAGENTO
        + STORE
        + "[stores.magento_refund_to_tiktok_cancel]\ncancel_reason = 'oops'\n"
    )
    (error,) = errors_of(write_config(tmp_path, text))
    assert error.startswith(
        "stores[us-main].magento_refund_to_tiktok_cancel.cancel_reason: "
        "unknown cancel reason 'oops'"
    )
    assert "address_not_deliver" in error
    assert "cancelsync reasons" in error


@pytest.mark.parametrize(
    "reason",
    [
        "out_of_stock",
        "buyer_requested",
        "seller_cancel_paid_reason_address_not_deliver_uk",
    ],
)
def test_cancel_reason_accepts_families_and_keys(
    tmp_path: Path, write_config: WriteConfig, reason: str
) -> None:
    """A family name or any known TikTok key is a valid cancel_reason."""
    text = (
        MAGENTO
        + STORE
        + f"[stores.magento_refund_to_tiktok_cancel]\ncancel_reason = '{reason}'\n"
    )
    config = load_config(write_config(tmp_path, text), environ={})
    assert config.stores[0].magento_refund_to_tiktok_cancel.cancel_reason == reason


def test_unknown_market(tmp_path: Path, write_config: WriteConfig) -> None:
    """A market TikTok Shop does not have is rejected, listing the known ones."""
    (error,) = errors_of(write_config(tmp_path, MAGENTO + STORE + "market = 'XX'\n"))
    assert error.startswith("stores[us-main].market: unknown market 'XX'; use one of ")
    assert "UK" in error


@pytest.mark.parametrize(
    ("given", "stored"), [("GB", "UK"), ("gb", "UK"), (" us ", "US")]
)
def test_market_is_normalized(
    tmp_path: Path, write_config: WriteConfig, given: str, stored: str
) -> None:
    """TikTok's region GB becomes market UK; case and spaces do not matter."""
    text = MAGENTO + STORE + f"market = '{given}'\n"
    assert (
        load_config(write_config(tmp_path, text), environ={}).stores[0].market == stored
    )


def test_bad_magento_store_ids_are_each_reported(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Every entry of magento_store_ids that is not a non-negative integer is an error."""
    text = MAGENTO + STORE + "magento_store_ids = [1, '2', -1, true, 65536]\n"
    errors = errors_of(write_config(tmp_path, text))
    bounds = "(an integer from 0 to 65535)"
    assert errors == [
        f"stores[us-main].magento_store_ids: {bad} is not a store id {bounds}"
        for bad in ("'2'", "-1", "True", "65536")
    ]


def test_bad_store_name(tmp_path: Path, write_config: WriteConfig) -> None:
    """Store names are limited to letters, digits, '-', '_' and '.'."""
    text = MAGENTO + STORE.replace('"us-main"', '"us main/1"')
    assert errors_of(write_config(tmp_path, text)) == [
        "stores[us main/1].name: use letters, digits, '-', '_' or '.' ('us main/1')"
    ]


# --------------------------------------------------------------------------- store lists


def test_duplicate_store_names_across_config_and_stores_d(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Two stores with the same name are an error naming both places: the file and line
    of a [[stores]] table, the stores.d file by name."""
    path = write_config(
        tmp_path, '[worker]\nstores_dir = "stores.d"\n' + MAGENTO + STORE
    )
    write_config(
        tmp_path,
        'name = "us-main"\napp_key = "k"\napp_secret = "s-2"\n',
        name="stores.d/us.toml",
    )
    assert errors_of(path) == [
        "stores.d/us.toml: duplicate store name 'us-main', defined in cancelsync.toml "
        "line 9 ([[stores]] #1) and in stores.d/us.toml"
    ]


def test_duplicate_store_names_in_one_file_name_both_lines(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Two [[stores]] tables with one name are each given by line; inline tables by index."""
    assert errors_of(write_config(tmp_path, MAGENTO + STORE + "\n" + STORE)) == [
        "stores[us-main]: duplicate store name 'us-main', defined in cancelsync.toml "
        "line 7 ([[stores]] #1) and in cancelsync.toml line 12 ([[stores]] #2)"
    ]
    table = '{name = "a", app_key = "k", app_secret = "s"}'
    inline = f"stores = [{table}, {table}]\n"
    assert errors_of(write_config(tmp_path, inline + MAGENTO)) == [
        "stores[a]: duplicate store name 'a', defined in [[stores]] #1 and in "
        "[[stores]] #2"
    ]


def test_duplicate_shop_id(tmp_path: Path, write_config: WriteConfig) -> None:
    """Two stores for the same TikTok shop id (string or integer) are an error."""
    text = (
        MAGENTO + STORE + 'shop_id = "7495"\n'
        + STORE.replace("us-main", "us-second") + "shop_id = 7495\n"
    )  # fmt: skip
    assert errors_of(write_config(tmp_path, text)) == [
        "stores[us-second].shop_id: shop 7495 is already configured in cancelsync.toml "
        "line 7 ([[stores]] #1)"
    ]


def test_empty_store_list(tmp_path: Path, write_config: WriteConfig) -> None:
    """A config with no store at all is an error saying how to add one."""
    assert errors_of(write_config(tmp_path, MAGENTO)) == [
        "stores: no store configured; add a [[stores]] table or a stores_dir"
    ]


def test_stores_dir_that_does_not_exist(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A stores_dir pointing nowhere is an error naming the resolved folder."""
    path = write_config(
        tmp_path, '[worker]\nstores_dir = "missing.d"\n' + MAGENTO + STORE
    )
    assert errors_of(path) == [
        f"worker.stores_dir: folder {tmp_path / 'missing.d'} does not exist"
    ]


def test_stores_d_files_are_loaded_in_name_order(
    tmp_path: Path, write_config: WriteConfig, clean_env: pytest.MonkeyPatch
) -> None:
    """Each *.toml in stores_dir is one store, expanded like the main file; others are ignored."""
    clean_env.setenv("EU_SECRET", "eu-secret-value")
    path = write_config(tmp_path, '[worker]\nstores_dir = "stores.d"\n' + MAGENTO)
    write_config(
        tmp_path,
        'name = "uk"\napp_key = "k"\napp_secret = "s-uk"\n',
        name="stores.d/b.toml",
    )
    write_config(
        tmp_path,
        'name = "eu"\napp_key = "k"\napp_secret = "${EU_SECRET}"\n',
        name="stores.d/a.toml",
    )
    write_config(tmp_path, "not toml at all [", name="stores.d/README.md")
    config = load_config(path)
    assert [s.name for s in config.stores] == ["eu", "uk"]
    assert config.stores[0].app_secret == "eu-secret-value"
    assert config.stores[0].source == "stores.d/a.toml"
    assert config.store("uk").app_secret == "s-uk"


def test_invalid_toml_in_a_stores_d_file(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A stores.d file that is not TOML is reported by its name."""
    path = write_config(
        tmp_path, '[worker]\nstores_dir = "stores.d"\n' + MAGENTO + STORE
    )
    write_config(tmp_path, "name = ", name="stores.d/bad.toml")
    (error,) = errors_of(path)
    assert error.startswith("stores.d/bad.toml: invalid TOML: ")


# --------------------------------------------------------------------------- files and paths


def test_missing_and_unreadable_config_files(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A missing file, a folder, or broken TOML each give one clear error."""
    (missing,) = errors_of(tmp_path / "nope.toml")
    assert missing.endswith(
        "nope.toml: file not found (pass --config PATH or set CANCELSYNC_CONFIG)"
    )
    (folder,) = errors_of(tmp_path)
    assert folder.endswith(": is a folder, not a TOML file")
    (broken,) = errors_of(write_config(tmp_path, "[magento\n"))
    assert "invalid TOML" in broken


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`database` and `stores_dir` are relative to the config file, not the working folder."""
    conf_dir = tmp_path / "etc"
    (conf_dir / "shops").mkdir(parents=True)
    write_config(conf_dir, STORE.replace("[[stores]]\n", ""), name="shops/us.toml")
    path = write_config(
        conf_dir,
        '[worker]\ndatabase = "data/sync.db"\nstores_dir = "shops"\n' + MAGENTO,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("..") / "etc" / "cancelsync.toml", environ={})
    assert config.worker.database == conf_dir / "data" / "sync.db"
    assert config.worker.stores_dir == conf_dir / "shops"
    assert [s.name for s in config.stores] == ["us-main"]
    assert path.exists()


def test_absolute_database_path_is_kept(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """An absolute `database` is used as given."""
    db = tmp_path / "var" / "cs.db"
    path = write_config(
        tmp_path / "conf", f'[worker]\ndatabase = "{db}"\n' + MAGENTO + STORE
    )
    assert load_config(path, environ={}).worker.database == db


def test_many_mistakes_are_reported_together(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Every problem in the file is reported in one ConfigError, not only the first."""
    text = (
        "[worker]\npoll_interval_seconds = true\nlog_format = 'loud'\n"
        + MAGENTO.replace("https://magento.test", "magento.test")
        + STORE + "market = 'ZZ'\nrestok = true\n"
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text), environ={})
    assert len(info.value.errors) == 5
    message = str(info.value)
    assert message.startswith("invalid configuration:\n  - ")
    for error in info.value.errors:
        assert f"  - {error}" in message


def test_config_store_lookup_and_secrets(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Config.store() finds a store by name or raises; secrets() lists only secret values."""
    config: Config = load_config(write_config(tmp_path), environ={})
    assert config.store("us-main").name == "us-main"
    with pytest.raises(ConfigError, match="no store named 'eu'"):
        config.store("eu")
    secrets = config.secrets()
    assert {"cs-minimal-secret", "at-minimal-token", "ats-minimal-secret"} <= set(
        secrets
    )
    assert "app-secret-minimal" in secrets
    assert "ck-minimal" not in secrets
    assert "" not in secrets


def test_default_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config path is $CANCELSYNC_CONFIG, else ./cancelsync.toml."""
    assert default_config_path({}) == Path("cancelsync.toml")
    assert default_config_path({"CANCELSYNC_CONFIG": "/etc/cs.toml"}) == Path(
        "/etc/cs.toml"
    )
    monkeypatch.setenv("CANCELSYNC_CONFIG", "/srv/cs.toml")
    assert default_config_path() == Path("/srv/cs.toml")


# --------------------------------------------------------------------------- ${file:} and ${credential:}


def test_file_reference_reads_a_secret_relative_to_the_config_folder(
    tmp_path: Path, write_config: WriteConfig, clean_env: pytest.MonkeyPatch
) -> None:
    """${file:PATH} is the file's text less one trailing newline, PATH relative to the config."""
    conf = tmp_path / "conf"
    (conf / "secrets").mkdir(parents=True)
    (conf / "secrets" / "cs").write_text("cs-from-file\n")
    (conf / "secrets" / "two_newlines").write_text("app-secret-file\n\n")
    (conf / "secrets" / "crlf").write_bytes(b"at-crlf\r\n")
    (conf / "secrets" / "literal").write_text("ats-${HOME}")
    absolute = tmp_path / "elsewhere" / "key"
    absolute.parent.mkdir()
    absolute.write_text("key-from-absolute")
    (conf / "shops").mkdir()
    (conf / "shops" / "eu.toml").write_text(
        'name = "eu"\napp_key = "k"\napp_secret = "${file:secrets/cs}"\n'
    )
    text = (
        '[worker]\nstores_dir = "shops"\n'
        + MAGENTO.replace('"cs-secret"', '"${file:secrets/cs}"')
        .replace('"at-token"', '"${file:secrets/crlf}"')
        .replace('"ats-secret"', '"${file:secrets/literal}"')
        .replace('"ck"', f'"${{file:{absolute}}}"')
        + STORE.replace('"app-secret"', '"${file:secrets/two_newlines}"')
    )
    config = load_config(write_config(conf, text), environ={"HOME": "/root"})
    assert config.magento.consumer_secret == "cs-from-file"
    assert config.magento.access_token == "at-crlf"
    assert (
        config.magento.access_token_secret == "ats-${HOME}"
    )  # file text is not expanded
    assert config.magento.consumer_key == "key-from-absolute"
    assert config.store("us-main").app_secret == "app-secret-file\n"
    assert config.store("eu").app_secret == "cs-from-file"


def test_unreadable_secret_file_is_one_error_naming_key_and_path(
    tmp_path: Path, write_config: WriteConfig, clean_env: pytest.MonkeyPatch
) -> None:
    """A missing file, a folder or non-UTF-8 bytes are ConfigErrors with key and path."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    text = MAGENTO.replace(
        '"https://magento.test"', '"${file:/nonexistent/cancelsync/url}"'
    ).replace('"cs-secret"', '"${file:secrets}"') + STORE.replace(
        '"app-secret"', '"${file:binary}"'
    )
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text), environ={})
    assert info.value.errors == [
        "magento.base_url: cannot read secret file /nonexistent/cancelsync/url: "
        "file not found",
        f"magento.consumer_secret: cannot read secret file {tmp_path / 'secrets'}: "
        "is a folder, not a file",
        f"stores[us-main].app_secret: cannot read secret file {tmp_path / 'binary'}: "
        "not UTF-8 text",
    ]


def test_credential_reference_reads_the_systemd_credentials_directory(
    tmp_path: Path, write_config: WriteConfig, clean_env: pytest.MonkeyPatch
) -> None:
    """${credential:NAME} reads $CREDENTIALS_DIRECTORY/NAME and explains when it is unset."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "tiktok_app_secret").write_text("app-secret-credential\n")
    text = MAGENTO + STORE.replace('"app-secret"', '"${credential:tiktok_app_secret}"')
    path = write_config(tmp_path, text)
    config = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.stores[0].app_secret == "app-secret-credential"

    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (error,) = info.value.errors
    assert error.startswith(
        "stores[us-main].app_secret: ${credential:tiktok_app_secret} needs "
        "$CREDENTIALS_DIRECTORY"
    )
    assert "LoadCredential=tiktok_app_secret:PATH" in error

    (creds / "sub").mkdir()
    path = write_config(tmp_path, text.replace("tiktok_app_secret}", "sub/x}"))
    with pytest.raises(ConfigError, match="must be a plain name"):
        load_config(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})


def test_secrets_from_files_reach_the_log_redactor(
    tmp_path: Path,
    write_config: WriteConfig,
    clean_env: pytest.MonkeyPatch,
    reset_logging: None,
) -> None:
    """A secret read through ${file:} is redacted from logs like a ${VAR} one."""
    (tmp_path / "app_secret").write_text("file-secret-4f9c2e\n")
    text = MAGENTO + STORE.replace('"app-secret"', '"${file:app_secret}"')
    config = load_config(write_config(tmp_path, text), environ={})
    assert "file-secret-4f9c2e" in config.secrets()
    stream = io.StringIO()
    configure_logging("json", Redactor(config.secrets()), stream=stream)
    get_logger().info("request.sent", url="https://x.test/?k=file-secret-4f9c2e")
    assert "file-secret-4f9c2e" not in stream.getvalue()
    assert json.loads(stream.getvalue())["url"] == "https://x.test/?k=***"


# --------------------------------------------------------------------------- without secrets


def test_commands_without_api_load_the_example_without_its_secrets(
    tmp_path: Path,
) -> None:
    """require_secrets=False notes each unreadable secret instead of failing; the default
    still fails on them."""
    path = example_config_in(tmp_path, {})
    config = load_config(path, environ={}, require_secrets=False)
    assert len(config.unresolved) == len(EXAMPLE_SECRETS)
    assert config.unresolved[0].startswith(
        "magento.consumer_key: cannot read secret file "
    )
    assert config.magento.consumer_secret == ""
    assert config.stores[0].app_secret == ""
    assert config.secrets() == []
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert len(info.value.errors) == len(EXAMPLE_SECRETS)


def test_unset_variable_without_secrets_is_unresolved_but_other_errors_remain(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Lax loading forgives only references: a bad value next to one is still an error."""
    text = (
        MAGENTO.replace('"cs-secret"', '"${MAGENTO_SECRET}"')
        + STORE
        + "market = 'XX'\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text), environ={}, require_secrets=False)
    (error,) = info.value.errors
    assert error.startswith("stores[us-main].market: unknown market 'XX'")


# --------------------------------------------------------------------------- hostile values


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "https://shop.test:99999", "https://shop test", "https://",
     "ftp://shop.test", "https://shop.test/\x00"],
)  # fmt: skip
def test_unusable_urls_are_errors_not_crashes(
    tmp_path: Path, write_config: WriteConfig, url: str
) -> None:
    """A URL urllib cannot even split is reported like any other bad URL."""
    text = MAGENTO.replace("https://magento.test", url.replace("\x00", "\\u0000"))
    (error,) = errors_of(write_config(tmp_path, text + STORE))
    assert error.startswith("magento.base_url: ")
    assert error.endswith("is not an http(s) URL")


def test_database_path_problems_are_found_by_validation(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A database path that is a folder, under a file, or holds a NUL is a config error."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "afolder").mkdir()
    for database, problem in [
        ("afile/x.db", f"{tmp_path / 'afile'} is a file, not a folder"),
        ("afolder", f"{tmp_path / 'afolder'} is a folder"),
        ("a\\u0000b.db", "contains a NUL character"),
    ]:
        path = write_config(
            tmp_path, f'[worker]\ndatabase = "{database}"\n' + MAGENTO + STORE
        )
        (error,) = errors_of(path)
        assert error.startswith("worker.database: ")
        assert problem in error


def test_a_secret_file_that_is_not_a_secret(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A ${file:…} pointing at something huge is refused without reading it all."""
    text = MAGENTO.replace('"cs-secret"', '"${file:/dev/zero}"') + STORE
    (error,) = errors_of(write_config(tmp_path, text))
    assert error == (
        "magento.consumer_secret: /dev/zero is larger than 65536 bytes: not a secret file"
    )


def test_a_bom_is_ignored_and_utf16_is_named(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A UTF-8 byte order mark is dropped; a UTF-16 file says how to save it."""
    path = write_config(tmp_path, MAGENTO + STORE)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_config(path, environ={}).stores[0].name == "us-main"
    path.write_bytes((MAGENTO + STORE).encode("utf-16-le"))
    assert errors_of(path) == [f"{path}: saved as UTF-16: save it as UTF-8"]
