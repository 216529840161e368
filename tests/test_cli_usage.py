"""Commands that read like a tool: global options anywhere, usage errors as usage errors,
help for everything, and no secrets needed by commands that call no API."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from cancelsync.cli import EXIT_OK, EXIT_USAGE, build_parser, main

pytestmark = pytest.mark.usefixtures("clean_env")

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str) -> tuple[int, str]:
    """Run the CLI in-process; return its exit code and stdout."""
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


def usage_exit(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``argv`` expecting argparse's usage exit (2); return stderr."""
    with pytest.raises(SystemExit) as info:
        main(list(argv), stdout=io.StringIO())
    assert info.value.code == EXIT_USAGE
    return capsys.readouterr().err


@pytest.fixture
def config_path(tmp_path: Path, write_config: object) -> Path:
    """The minimal valid config, its database in tmp_path."""
    return write_config(tmp_path)  # type: ignore[operator, no-any-return]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """config.example.toml with its database in tmp_path and none of its secret files."""
    text = (REPO_ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('"/var/lib/cancelsync/cancelsync.db"', '"state/cancelsync.db"')
    path = tmp_path / "cancelsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- global options


@pytest.mark.parametrize(
    "argv",
    [["--config", "{c}", "status", "--json"], ["status", "--json", "--config", "{c}"],
     ["status", "--config", "{c}", "--json", "--log-level", "error", "--debug"],
     ["--log-level", "debug", "status", "--config", "{c}", "--json"]],
    ids=["before", "after", "all-after", "split"],
)  # fmt: skip
def test_global_options_work_before_or_after_the_command(
    config_path: Path, argv: list[str]
) -> None:
    """--config, --log-level and --debug are read on either side of the command."""
    code, out = run(*(a.format(c=config_path) for a in argv))
    assert code == EXIT_OK
    assert json.loads(out)["stores"][0]["name"] == "us-main"


def test_an_option_after_the_command_wins_over_one_before(
    config_path: Path, tmp_path: Path
) -> None:
    """Given twice, the --config after the command is the one used."""
    code, out = run("--config", str(tmp_path / "nope.toml"), "check", "--offline",
                    "--config", str(config_path))  # fmt: skip
    assert code == EXIT_OK
    assert str(config_path) in out


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("argv", "command"),
    [(["run", "--once", "--store", "nope"], "run"), (["reasons", "--store", "nope"], "reasons"),
     (["connect", "--store", "nope", "--auth-code", "c"], "connect")],
)  # fmt: skip
def test_unknown_store_is_a_usage_error(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], command: str
) -> None:
    """An unknown --store is reported by the command's usage, listing the known stores."""
    err = usage_exit(capsys, "--config", str(config_path), *argv)
    assert err.startswith(f"usage: cancelsync {command} ")
    assert (
        f"cancelsync {command}: error: --store nope: no such store (configured: us-main)"
        in err
    )
    assert "invalid configuration" not in err


def test_usage_mistakes_need_no_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --dry-run` without --once is refused before any config is looked for."""
    err = usage_exit(capsys, "--config", "/nonexistent.toml", "run", "--dry-run")
    assert "--dry-run only works with --once" in err
    assert "nonexistent" not in err


# --------------------------------------------------------------------------- help


def _parsers(
    parser: argparse.ArgumentParser,
) -> list[tuple[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's, by name."""
    found = [("cancelsync", parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += sorted(action.choices.items())
    return found


def test_every_command_and_option_has_help() -> None:
    """Each command and each of its options and arguments has a help text."""
    parser = build_parser()
    missing = []
    for name, p in _parsers(parser):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                missing += [f"{name} {c}" for c in action.choices if not helps.get(c)]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {action.option_strings or action.dest}")
    assert missing == []
    commands = {name for name, _ in _parsers(parser)}
    assert {
        "run",
        "check",
        "status",
        "explain",
        "retry",
        "reasons",
        "connect",
    } <= commands


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["check", "-h"]])
def test_help_lists_the_exit_codes(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """--help, for the tool and for a command, ends with the exit codes."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "exit codes:" in text
    for line in (
        "  0   done",
        "  1   done, but",
        "  2   bad config or usage",
        "  75  another",
    ):
        assert line in text
    assert "--log-level LEVEL" in text
    assert "--debug" in text


# --------------------------------------------------------------------------- secrets


def test_commands_that_call_no_api_need_no_secrets(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status, explain, retry, reasons (offline) and check --offline work on the example
    config with none of its secret files; check --offline lists what it could not read."""
    config = ["--config", str(example)]
    assert run(*config, "status")[0] == EXIT_OK
    assert run(*config, "explain", "576") == (1, "nothing recorded for order 576\n")
    assert run(*config, "retry", "--all")[0] == EXIT_OK
    assert run(*config, "reasons", "--store", "us-main")[0] == EXIT_OK
    code, out = run(*config, "check", "--offline")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"config {example}: valid (1 store(s): us-main)"
    assert lines[1] == (
        "  6 secret reference(s) not resolved here; `run`, `check`, `connect`, `resync`, "
        "`webhooks subscribe` and `reasons --order` need them:"
    )
    assert lines[2].startswith("    magento.consumer_key: cannot read secret file ")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv",
    [["run", "--once"], ["run"], ["check"], ["connect", "--store", "us-main", "--auth-code", "c"],
     ["reasons", "--store", "us-main", "--order", "576"]],
    ids=["run-once", "run", "check", "connect", "reasons-order"],
)  # fmt: skip
def test_commands_that_call_an_api_require_every_secret(
    example: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Commands that reach an API fail with exit 2, naming every missing secret."""
    code, out = run("--config", str(example), *argv)
    err = capsys.readouterr().err
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith("cancelsync: invalid configuration:")
    assert err.count("cannot read secret file") == 6
    assert not (example.parent / "state").exists()
