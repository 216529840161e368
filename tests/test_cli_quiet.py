"""Quiet when all is well: at `--log-level warning` (the cron recipe) a run with nothing to
do prints nothing, so cron mails only when a person is needed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_proc import cli

from cancelsync.cli import main
from cancelsync.sandbox.harness import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Both simulators on loopback, one store registered, no orders."""
    with Sandbox() as sb:
        sb.add_store("us-main")
        yield sb


def events(stderr: str) -> list[str]:
    """The event names of the JSON log lines in ``stderr``."""
    return [json.loads(line)["event"] for line in stderr.splitlines()]


def test_a_run_with_nothing_to_do_prints_nothing_at_warning(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`run --once --log-level warning` and worker.log_level = "warning" print nothing when
    nothing is new; info shows one line per cycle, debug one per HTTP request as well."""
    config = sandbox.write_config(tmp_path / "cancelsync.toml")

    first = cli("--config", config, "run", "--once", "--log-level", "warning")
    info = cli("--config", config, "run", "--once")
    debug = cli("--config", config, "--log-level", "debug", "run", "--once")
    sandbox.write_config(config, log_level="warning")
    configured = cli("--config", config, "run", "--once")

    for quiet in (first, configured):
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert info.returncode == debug.returncode == 0
    assert "cycle.finished" in events(info.stderr)
    assert "http.request" not in events(info.stderr)
    assert "http.request" in events(debug.stderr)
    assert "cycle.finished" in events(debug.stderr)


def test_check_prints_its_report_without_log_lines(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check` logs at warning unless told otherwise, so its report stands alone."""
    config = sandbox.write_config(tmp_path / "cancelsync.toml")
    out = io.StringIO()

    code = main(["--config", str(config), "check"], stdout=out)

    assert code == 0, out.getvalue()
    assert "all checks passed" in out.getvalue()
    assert capsys.readouterr().err == ""
    assert main(["--config", str(config), "check", "--log-level", "debug"],
                stdout=io.StringIO()) == 0  # fmt: skip
    assert "http.request" in capsys.readouterr().err


def test_the_cron_recipe_runs_at_warning() -> None:
    """deploy/cancelsync.cron asks for --log-level warning, so nothing-new runs are silent."""
    cron = (REPO_ROOT / "deploy" / "cancelsync.cron").read_text(encoding="utf-8")
    (job,) = [line for line in cron.splitlines() if line.startswith("*/5")]
    assert "cancelsync run --once --log-level warning;" in job
