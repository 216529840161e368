"""``cancelsync sandbox`` for a first hour: scenarios, background mode, restarts, hints,
the private config file and a ``connect`` to try (issue #11, "The sandbox teaches")."""

from __future__ import annotations

import io
import json
import os
import shlex
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cancelsync.cli import main as cli_main
from cancelsync.clock import FakeClock
from cancelsync.config import load_config
from cancelsync.sandbox.common import SimRequest, wait_until
from cancelsync.sandbox.harness import Sandbox
from cancelsync.sandbox.prompt import cli_command, serve_sandbox
from cancelsync.sandbox.seed import SCENARIOS, seed_orders
from cancelsync.sandbox.tiktok import DEMO_APP_KEY, DEMO_APP_SECRET, TikTokSimulator
from tests.cli_proc import child_env


def _wait_for(condition: Callable[[], bool], timeout: float = 8.0) -> None:
    if not wait_until(condition, timeout):
        pytest.fail("timed out waiting for the sandbox")


def _status(config: Path) -> dict[str, int]:
    out = io.StringIO()
    cli_main(["--config", str(config), "status", "--json"], stdout=out)
    actions: dict[str, int] = json.loads(out.getvalue())["stores"][0]["actions"]
    return actions


# ---------------------------------------------------------------------- scenarios

EXPECTED = {  # scenario: (exit code of the first run --once, done, needs attention)
    "buyer-cancel": (0, 3, 0),
    "partial-refund": (1, 0, 1),
    "shipped": (1, 0, 1),
    "backlog": (0, 120, 0),
    "none": (0, 0, 0),
}


def test_every_scenario_is_checked() -> None:
    """Each scenario offered has an expected outcome below (a new one needs a test)."""
    assert set(SCENARIOS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_gives_the_first_run_what_it_promises(
    name: str, tmp_path: Path
) -> None:
    """A scenario's events make the first ``run --once`` do what its description says."""
    code, done, attention = EXPECTED[name]
    with Sandbox() as sb:
        sb.add_store("us-main", refund_to_cancel=True)
        orders = seed_orders(sb)
        featured = SCENARIOS[name].play(sb, orders) or orders[0]
        config = sb.write_config(tmp_path / "sb.toml")
        run = ["--config", str(config), "run", "--once"]
        assert cli_main(run, stdout=io.StringIO()) == code
        actions = _status(config)
        assert (actions["done"], actions["needs_attention"]) == (done, attention)
        explained = io.StringIO()
        tiktok_order_id = featured.placed.tiktok_order_id
        explain = ["--config", str(config), "explain", tiktok_order_id]
        assert cli_main(explain, stdout=explained) == (1 if name == "none" else 0)
        assert tiktok_order_id in explained.getvalue()


def test_scenario_list_and_help_name_every_scenario() -> None:
    """``--scenario list`` gives one line per scenario; ``sandbox --help`` names each."""
    out = io.StringIO()
    assert cli_main(["sandbox", "--scenario", "list"], stdout=out) == 0
    lines = out.getvalue().splitlines()[1:]
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    help_text = subprocess.run(
        [sys.executable, "-m", "cancelsync", "sandbox", "--help"],
        capture_output=True, text=True, check=True, env=child_env(), timeout=30,
    ).stdout  # fmt: skip
    flat = " ".join(help_text.split())
    for name in SCENARIOS:
        assert name in flat


def test_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown scenario exits 2 with the list, before any simulator starts."""
    assert cli_main(["sandbox", "--scenario", "nope"], stdout=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err
    assert "buyer-cancel" in err


# ---------------------------------------------------------------------- background


def test_background_sandbox_seeds_events_and_its_hints_work(tmp_path: Path) -> None:
    """Without a terminal it plays buyer-cancel, writes a 0600 config with log_format
    "auto", and each printed command (as printed) runs against it; connect's code works
    once."""
    printed = tmp_path / "sandbox.out"
    with printed.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cancelsync", "sandbox", "--write-config", "sb.toml"],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            cwd=tmp_path, env=child_env(), umask=0,
        )  # fmt: skip
    try:
        _wait_for(lambda: "serving until Ctrl-C" in printed.read_text("utf-8"))
        text = printed.read_text("utf-8")
        config = tmp_path / "sb.toml"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert load_config(config).worker.log_format == "auto"
        assert "scenario buyer-cancel" in text
        commands: dict[str, list[str]] = {}  # "run --once", "explain", "connect": argv
        for line in text.splitlines():
            if line.startswith("#   "):
                argv = shlex.split(line[4:])
                tail = argv[argv.index("--config") + 2 :]
                named = tail[0] in ("explain", "connect")
                commands[tail[0] if named else " ".join(tail)] = argv

        def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(  # noqa: S603 - the sandbox's own hint
                argv, cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                stdin=subprocess.DEVNULL, timeout=30, check=False,
            )  # fmt: skip

        assert run(commands["run --once"]).returncode == 0
        status = run([*commands["status"], "--json"])
        assert json.loads(status.stdout)["stores"][0]["actions"]["done"] == 3
        explain = commands["explain"]
        result = run(explain)
        assert result.returncode == 0, result.stderr
        assert explain[-1] in result.stdout
        connect = commands["connect"]
        first = run(connect)
        assert first.returncode == 0, first.stderr
        assert "connected store us-main" in first.stdout
        again = run(connect)
        assert again.returncode != 0
        assert "36004004" in again.stderr
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0
    assert printed.read_text("utf-8").rstrip().endswith("sandbox stopped")


# ---------------------------------------------------------------------- restart


@pytest.fixture
def sandbox_thread() -> Iterator[Callable[..., tuple[io.StringIO, threading.Event]]]:
    """Starts ``serve_sandbox`` in the background (no prompt); stops them all after."""
    running: list[tuple[threading.Thread, threading.Event]] = []

    def start(**kwargs: object) -> tuple[io.StringIO, threading.Event]:
        out, stop = io.StringIO(), threading.Event()
        thread = threading.Thread(
            target=serve_sandbox,
            args=(out,),
            kwargs={
                "stdin": io.StringIO(),
                "interactive": False,
                "stop": stop,
                **kwargs,
            },
            daemon=True,
        )
        thread.start()
        running.append((thread, stop))
        _wait_for(lambda: "serving until Ctrl-C" in out.getvalue())
        return out, stop

    yield start
    for thread, stop in running:
        stop.set()
        thread.join(timeout=5)


def test_restart_with_the_same_config_path_uses_a_fresh_database(
    tmp_path: Path, sandbox_thread: Callable[..., tuple[io.StringIO, threading.Event]]
) -> None:
    """A second sandbox on the same --write-config points it at a new database (the old
    one's cursors and links belong to simulators that are gone) and says so."""
    config = tmp_path / "sb.toml"
    _, stop = sandbox_thread(write_config=config)
    first_db = load_config(config).worker.database
    assert (
        cli_main(["--config", str(config), "run", "--once"], stdout=io.StringIO()) == 0
    )
    assert _status(config)["done"] == 3
    stop.set()
    before = first_db.stat()

    out, _ = sandbox_thread(write_config=config)
    second_db = load_config(config).worker.database
    assert second_db != first_db
    assert not second_db.exists()
    assert f"previous sandbox's {first_db.name} is left as it was" in out.getvalue()
    assert (
        cli_main(["--config", str(config), "run", "--once"], stdout=io.StringIO()) == 0
    )
    # Only this run wrote to the new database: the new buyer cancellations were refunded.
    assert _status(config)["done"] == 3
    assert (first_db.stat().st_size, first_db.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )


def test_printed_config_also_names_a_fresh_database() -> None:
    """Without --write-config the printed config still names a new database file."""
    out = io.StringIO()
    stop = threading.Event()
    stop.set()  # print, then stop at once
    assert serve_sandbox(out, stdin=io.StringIO(), interactive=False, stop=stop) == 0
    text = out.getvalue()
    assert 'database = "sandbox-' in text
    assert 'log_format = "auto"' in text


# ---------------------------------------------------------------------- hints


def test_hints_name_the_console_script_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint is the script as reachable from here: its bare name when PATH finds it,
    else a path; ``python -m cancelsync`` (or another program) gives PYTHON -m."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("cancelsync", "python"):
        (bin_dir / name).write_text("#!/bin/sh\n", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    script, python = str(bin_dir / "cancelsync"), str(bin_dir / "python")
    assert cli_command(script, python) == "venv/bin/cancelsync"
    main_py = "/somewhere/cancelsync/__main__.py"
    assert cli_command(main_py, python) == "venv/bin/python -m cancelsync"
    assert cli_command("/usr/bin/pytest", python) == "venv/bin/python -m cancelsync"
    monkeypatch.chdir(tmp_path / "venv")
    assert cli_command(script, python) == "bin/cancelsync"
    monkeypatch.setenv("PATH", str(bin_dir))
    assert cli_command(script, python) == "cancelsync"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.chdir("/")
    assert cli_command(script, python) == script


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
