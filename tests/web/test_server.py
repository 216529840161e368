"""Serving the order center over a real socket, alone or around the service; the wheel."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import zipfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
import requests

from cancelsync.log import Redactor
from cancelsync.sandbox.common import free_port
from cancelsync.web.__main__ import main as web_main
from cancelsync.web.server import serving, start_order_center

from .conftest import BEARER, Site

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_order_center_answers_over_http(site: Site) -> None:
    """On a socket: sign-in redirect, the API with the bearer token, the server header."""
    server = start_order_center(site.config, clock=site.clock, redactor=Redactor(),
                                listen="127.0.0.1:0")  # fmt: skip
    try:
        with requests.Session() as http:
            page = http.get(server.url, allow_redirects=False, timeout=5)
            assert page.status_code == 303
            assert page.headers["Location"] == "/login?next=%2F"
            assert page.headers["Server"].startswith("cancelsync")
            assert "Python" not in page.headers["Server"]
            api = http.get(server.url + "api/attention", headers=BEARER, timeout=5)
            assert api.status_code == 200
            assert len(api.json()["items"]) == 2
    finally:
        server.stop()
        server.app.store.close()


def test_serving_follows_web_listen(
    site: Site, logs: list[MutableMapping[str, Any]]
) -> None:
    """Unset: nothing. Set: served while inside, closed after. A busy port: logged only."""
    off = dataclasses.replace(
        site.config, worker=dataclasses.replace(site.config.worker, web_listen=None)
    )
    with serving(off, clock=site.clock, redactor=Redactor()) as server:
        assert server is None
    port = free_port()
    on = dataclasses.replace(
        site.config,
        worker=dataclasses.replace(site.config.worker, web_listen=f"127.0.0.1:{port}"),
    )
    with serving(on, clock=site.clock, redactor=Redactor()) as server:
        assert server is not None
        assert server.url == f"http://127.0.0.1:{port}/"
        reply = requests.get(server.url + "api/stores", headers=BEARER, timeout=5)
        assert reply.status_code == 200
        with serving(on, clock=site.clock, redactor=Redactor()) as busy:
            assert busy is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    events = [e["event"] for e in logs]
    assert "web.listening" in events
    assert "web.unavailable" in events


def test_alone_it_needs_a_listen_address_and_token(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m cancelsync.web` exits 2 naming what is missing."""
    path = site.config.path
    text = path.read_text()
    path.write_text(text.replace('web_listen = "127.0.0.1:8788"\n', ""))
    assert web_main(["--config", str(path)]) == 2
    assert "set worker.web_listen or --listen" in capsys.readouterr().err
    assert web_main(["--config", str(path), "--listen", "nowhere"]) == 2
    assert "'nowhere' is not HOST:PORT" in capsys.readouterr().err
    path.write_text("[worker\n")
    assert web_main(["--config", str(path)]) == 2
    assert "invalid configuration" in capsys.readouterr().err


def test_wheel_ships_the_templates_and_stylesheet(tmp_path: Path) -> None:
    """A wheel built from the checkout holds every template and the stylesheet."""
    source = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT, source,
        ignore=shutil.ignore_patterns(".venv", ".git", "*cache*", ".hypothesis", "build",
                                      "dist", "*.egg-info", "tests", "docs"),
    )  # fmt: skip
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("cancelsync-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = REPO_ROOT / "cancelsync" / "web" / "templates"
    shipped = {f"cancelsync/web/templates/{p.name}" for p in templates.glob("*.html")}
    assert len(shipped) >= 7
    assert shipped <= names
    assert "cancelsync/web/static/order-center.css" in names
