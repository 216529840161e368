"""The order center's config keys: web_listen, web_token and the two link templates."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from cancelsync.cli import main
from cancelsync.config import load_config
from cancelsync.errors import ConfigError

SECRET = "s3cret-web-token-value-0123456789"
WriteConfig = Callable[..., Path]


def with_worker(write_config: WriteConfig, folder: Path, worker: str) -> Path:
    """The minimal config with a ``[worker]`` table holding ``worker``."""
    path = write_config(folder)
    path.write_text(f"[worker]\n{worker}\n" + path.read_text(), encoding="utf-8")
    return path


def errors_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    return info.value.errors


def test_web_keys_load_and_the_token_is_a_secret(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """Set, the keys load as given; the token comes from the environment and is redacted."""
    path = with_worker(write_config, tmp_path, 'web_listen = "[::1]:8788"\n'
                        'web_token = "${CANCELSYNC_WEB_TOKEN}"\n'
                        'tiktok_order_url = "https://seller.example.com/o/{tiktok_order_id}"')  # fmt: skip
    config = load_config(path, environ={"CANCELSYNC_WEB_TOKEN": SECRET})
    assert (config.worker.web_listen, config.worker.web_token) == ("[::1]:8788", SECRET)
    assert (
        config.worker.tiktok_order_url
        == "https://seller.example.com/o/{tiktok_order_id}"
    )
    assert config.worker.magento_admin_order_url is None
    assert SECRET in config.secrets()
    unset = load_config(write_config(tmp_path), environ={})
    assert (unset.worker.web_listen, unset.worker.web_token) == (None, None)


@pytest.mark.parametrize(
    ("listen", "exposed"),
    [("127.0.0.1:8788", False), ("localhost:8788", False), ("0.0.0.0:8788", True),
     ("192.0.2.10:8788", True), ("shop.example.com:8788", True)],
)  # fmt: skip
def test_web_listen_without_a_token_is_refused(
    tmp_path: Path, write_config: WriteConfig, listen: str, exposed: bool
) -> None:
    """web_listen needs web_token; on a non-loopback address the problem says why."""
    path = with_worker(write_config, tmp_path, f'web_listen = "{listen}"')
    (problem,) = errors_of(path)
    assert problem.startswith("worker.web_token: required with web_listen (")
    assert ("is not a loopback address" in problem) is exposed
    assert "${CANCELSYNC_WEB_TOKEN}" in problem


def test_check_offline_refuses_an_exposed_order_center_without_token(
    tmp_path: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --offline` exits 2 for web_listen = 0.0.0.0:8788 without web_token."""
    path = with_worker(write_config, tmp_path, 'web_listen = "0.0.0.0:8788"')
    assert (
        main(["--config", str(path), "check", "--offline"], stdout=io.StringIO()) == 2
    )
    assert "0.0.0.0:8788 is not a loopback address" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('web_listen = "8788"', "worker.web_listen: '8788' is not HOST:PORT"),
        ('web_listen = "127.0.0.1:0"', "is not HOST:PORT"),
        ('web_listen = "127.0.0.1:99999"', "is not HOST:PORT"),
        ('web_token = "short-one"', "worker.web_token: must be at least 16 characters"),
        ('web_token = "has spaces in it but long"', "without spaces (not shown"),
        ('magento_admin_order_url = "https://m.example.com/{order_id}/"',
         "worker.magento_admin_order_url: unknown placeholder {order_id}; use "
         "{magento_entity_id} or {magento_increment_id}"),
        ('tiktok_order_url = "https://x.example.com/{tiktok_order_id.__class__}"',
         "unknown placeholder {tiktok_order_id.__class__}"),
        ('tiktok_order_url = "javascript:alert({tiktok_order_id})"', "is not an http(s) URL"),
        ('tiktok_order_url = "https://x.example.com/{"', "unbalanced { } in the template"),
    ],
)  # fmt: skip
def test_bad_web_values_are_named(
    tmp_path: Path, write_config: WriteConfig, line: str, expected: str
) -> None:
    """Each bad value is reported with its key; a token is never quoted back."""
    path = with_worker(write_config, tmp_path, line)
    errors = errors_of(path)
    assert any(expected in e for e in errors), errors
    assert "short-one" not in "\n".join(errors)
    assert "has spaces" not in "\n".join(errors)


def test_an_unreadable_token_is_reported_once(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A token from a missing file is that problem alone, not also "required"."""
    path = with_worker(write_config, tmp_path, 'web_listen = "127.0.0.1:8788"\n'
                        'web_token = "${file:web-token}"')  # fmt: skip
    (problem,) = errors_of(path)
    assert problem.startswith("worker.web_token: cannot read secret file")


def test_example_config_web_lines_load_when_uncommented(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """The commented order-center keys of config.example.toml are valid as written."""
    example = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
    keys = ("web_listen", "web_token", "magento_admin_order_url", "tiktok_order_url")
    lines = [
        line.removeprefix("# ").split("  #")[0].strip()
        for line in example.splitlines()
        if line.startswith("# ") and line[2:].split(" = ")[0] in keys
    ]
    assert [line.split(" = ")[0] for line in lines] == list(keys)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "web_token").write_text(SECRET + "\n")
    config = load_config(
        with_worker(write_config, tmp_path, "\n".join(lines)), environ={}
    )
    assert config.worker.web_token == SECRET
    assert config.worker.web_listen == "127.0.0.1:8788"
