"""``cancelsync sandbox`` for a first hour: scenarios, background mode, restarts, hints,
the private config file and a ``connect`` to try (issue #11, "The sandbox teaches")."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cancelsync.cli import main as cli_main
from cancelsync.clock import FakeClock
from cancelsync.sandbox.common import SimRequest
from cancelsync.sandbox.harness import Sandbox
from cancelsync.sandbox.tiktok import DEMO_APP_KEY, DEMO_APP_SECRET, TikTokSimulator

# ---------------------------------------------------------------------- consent


def _get(
    sim: TikTokSimulator, path: str, **query: str
) -> tuple[int, bytes, dict[str, str]]:
    request = SimRequest(
        method="GET", path=path, raw_path=path, raw_query="",
        query=tuple(query.items()), headers={}, body=b"", host="127.0.0.1",
    )  # fmt: skip
    response = sim.handle(request)
    return response.status, response.body, response.headers


def _exchange(sim: TikTokSimulator, code: str) -> int:
    status, body, _ = _get(
        sim, "/api/v2/token/get", app_key=DEMO_APP_KEY, app_secret=DEMO_APP_SECRET,
        auth_code=code, grant_type="authorized_code",
    )  # fmt: skip
    assert status == 200
    result: int = json.loads(body)["code"]
    return result


def test_consent_page_hands_out_a_code_that_works_once_for_30_minutes() -> None:
    """The consent page shows a new code a visit; it is exchanged once, and not after
    30 minutes (reference §3); a loopback redirect_uri gets code and state."""
    clock = FakeClock()
    sim = TikTokSimulator(clock)
    sim.seed_demo()
    status, body, headers = _get(sim, "/open/authorize", app_key=DEMO_APP_KEY)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    code = page.split("<pre id='code'>", 1)[1].split("<", 1)[0]
    assert code.startswith("TTP_")
    assert _exchange(sim, code) == 0
    assert _exchange(sim, code) == 36004004

    status, _, headers = _get(
        sim, "/open/authorize", service_id=DEMO_APP_KEY, state="s1",
        redirect_uri="http://127.0.0.1:8080/callback",
    )  # fmt: skip
    assert status == 302
    target = urlsplit(headers["Location"])
    assert (target.hostname, target.path) == ("127.0.0.1", "/callback")
    query = parse_qs(target.query)
    assert query["state"] == ["s1"]
    clock.advance(30 * 60 + 1)
    assert _exchange(sim, query["code"][0]) == 36004004

    refused, _, _ = _get(
        sim, "/open/authorize", redirect_uri="https://example.com/callback"
    )
    assert refused == 400
    unknown, _, _ = _get(sim, "/open/authorize", app_key="other")
    assert unknown == 400


def test_harness_auth_code_connects_the_store(tmp_path: Path) -> None:
    """``Sandbox.auth_code`` is a code ``connect`` exchanges for the store's shop."""
    with Sandbox() as sb:
        sb.add_store("us-main")
        config = sb.write_config(tmp_path / "sb.toml")
        assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
        code = sb.auth_code()
        out = io.StringIO()
        argv = ["--config", str(config), "connect", "--store", "us-main"]
        assert cli_main([*argv, "--auth-code", code], stdout=out) == 0
        assert sb.demo.shop_id in out.getvalue()
