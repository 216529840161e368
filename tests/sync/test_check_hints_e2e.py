"""`check` and `run --once` against unreachable hosts and wrong credentials: one hint each.

Loopback only: a closed port, a ``.invalid`` name (refused in-process, see
``tests/clients/test_unreachable.py``) and a plain-HTTP port spoken to with https://.
"""

from __future__ import annotations

import io
import re

import pytest

from cancelsync.cli import main
from cancelsync.sandbox.common import Fault

from .conftest import Harness


def _run(harness: Harness, *args: str, **urls: str) -> tuple[int, str]:
    """The CLI against the sandbox config, with ``magento`` / ``tiktok`` URLs or
    ``[magento]`` values replaced (``magento_access_token="..."``)."""
    text = harness.sb.config_text()
    if "magento" in urls:
        text = re.sub(
            r'(?m)^base_url = ".*"$', f'base_url = "{urls.pop("magento")}"', text
        )
    if "tiktok" in urls:
        text = re.sub(
            r'(?m)^api_base_url = ".*"$', f'api_base_url = "{urls.pop("tiktok")}"', text
        )
    for key, value in urls.items():
        name = key.removeprefix("magento_")
        text = re.sub(rf'(?m)^{name} = ".*"$', f'{name} = "{value}"', text, count=1)
    harness.config_path.write_text(text)
    out = io.StringIO()
    rc = main(["--config", str(harness.config_path), *args], stdout=out)
    return rc, out.getvalue()


def _failed_with_fix(out: str) -> list[tuple[str, list[str]]]:
    """Each [FAIL] line with the hint lines printed under it."""
    found: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if "[FAIL]" in line:
            found.append((line, []))
        elif found and line.startswith("         "):
            found[-1][1].append(line.strip())
    return found


def test_check_refused_magento_prints_one_hint(
    harness: Harness, closed_port: int
) -> None:
    """A closed Magento port: the failure names it, and one fix line follows."""
    harness.sb.add_store("us-main")

    rc, out = _run(harness, "check", magento=f"http://127.0.0.1:{closed_port}")

    assert rc == 1
    ((line, hints),) = _failed_with_fix(out)
    assert "magento.credentials" in line
    assert f"127.0.0.1:{closed_port}: connection refused" in line
    assert len(hints) == 1
    assert hints[0].startswith("fix: check the port in magento.base_url")
    assert "Resolution:" not in out


@pytest.mark.usefixtures("no_dns_for_invalid")
def test_check_unresolvable_tiktok_host_is_a_dns_failure(harness: Harness) -> None:
    """A TikTok host that does not resolve is said to be a DNS failure, one hint."""
    harness.sb.add_store("us-main")

    rc, out = _run(harness, "check", tiktok="https://open-api.shop.invalid")

    assert rc == 1
    ((line, hints),) = _failed_with_fix(out)
    assert "open-api.shop.invalid:443: DNS failure" in line
    assert len(hints) == 1
    assert "tiktok.api_base_url" in hints[0]
    assert "Resolution:" not in out


def test_run_once_says_tls_error_for_https_to_plain_http(harness: Harness) -> None:
    """`run --once` against https:// on a plain-HTTP port reports a TLS error."""
    harness.sb.add_store("us-main")
    plain = harness.sb.tiktok_server.url.replace("http://", "https://")

    rc, out = _run(harness, "run", "--once", "--dry-run", tiktok=plain)

    assert rc == 1
    port = plain.rsplit(":", 1)[1]
    assert f"error: tiktok: TLS error with 127.0.0.1:{port}" in out
    assert "handshake failed" in out
    assert out.count("Resolution:") == 1


def test_short_magento_token_points_at_the_credentials(harness: Harness) -> None:
    """A 31-character access token: the one hint is its length, not the network."""
    harness.sb.add_store("us-main")
    short = harness.sb.credentials.access_token[:-1]

    rc, out = _run(harness, "check", magento_access_token=short)

    assert rc == 1
    ((line, hints),) = _failed_with_fix(out)
    assert "magento.credentials" in line
    assert hints == [
        "fix: magento access token (magento.access_token) is 31 characters; "
        "Magento's are 32 — check you copied the whole value from System > "
        "Extensions > Integrations (Edit > Integration Details)"
    ]
    assert "network" not in out


def test_check_offline_warns_of_a_wrong_length(harness: Harness) -> None:
    """`check --offline` warns (never refuses the config) about a wrong length."""
    harness.sb.add_store("us-main")
    long = harness.sb.credentials.consumer_secret + " "

    rc, out = _run(harness, "check", "--offline", magento_consumer_secret=long)

    assert rc == 0
    assert (
        "warning: magento consumer secret (magento.consumer_secret) is 33 characters "
        "(with spaces or line breaks copied around it); Magento's are 32"
    ) in out


def test_right_lengths_say_nothing(harness: Harness) -> None:
    """The sandbox's 32-character values pass without a length word."""
    harness.sb.add_store("us-main")

    rc, out = _run(harness, "check")

    assert rc == 0
    assert "characters" not in out


def test_check_tries_twice_not_five_times(harness: Harness) -> None:
    """`check` diagnoses: a Magento that keeps answering 503 is asked twice (one quick
    second try), not with the runs' five attempts and minute-long backoff."""
    harness.sb.add_store("us-main")
    harness.sb.magento_faults.next_calls(
        "GET creditmemos", Fault("status", status=503), count=20
    )

    rc, out = harness.run("check")

    assert rc == 1
    assert "[FAIL] magento.credentials" in out
    assert harness.sb.magento_server.journal.count("GET creditmemos") == 2
