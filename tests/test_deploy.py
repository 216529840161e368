"""Deployment files as shipped: the systemd unit, its user, the cron recipe and the wheel.

The systemd checks run the real ``systemd-analyze`` / ``systemd-sysusers``. Without them a
workstation skips those tests; in CI (``$CI`` set) a missing tool fails them, and ``.ci/run``
installs the systemd package first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
UNIT = DEPLOY / "cancelsync.service"
SHIPPED_EXEC = "/opt/cancelsync/venv/bin/cancelsync"


def tool(name: str) -> str:
    """The path of a systemd tool: skipped without it on a workstation, a failure in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                f"{name} is missing in CI; .ci/run installs the systemd package"
            )
        pytest.skip(
            f"{name} not installed (apt-get install systemd); CI runs this test"
        )
    return path


def run(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with a time limit, capturing text output."""
    return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def unit_setting(key: str) -> list[str]:
    """Every value of ``key=`` in the shipped unit, in order."""
    prefix = f"{key}="
    return [
        line.removeprefix(prefix)
        for line in UNIT.read_text(encoding="utf-8").splitlines()
        if line.startswith(prefix)
    ]


def test_unit_security_exposure_is_at_most_2() -> None:
    """`systemd-analyze security --offline` rates the shipped unit 2.0 or better."""
    result = run(tool("systemd-analyze"), "security", "--offline=true", UNIT)
    match = re.search(
        r"Overall exposure level for cancelsync\.service: (\d+\.\d+)", result.stdout
    )
    assert match, f"no score (systemd >= 250 needed):\n{result.stdout}{result.stderr}"
    assert float(match.group(1)) <= 2.0, result.stdout
    assert "cancelsync" not in result.stderr  # no ignored or misspelt setting


def test_unit_passes_verify_with_a_real_console_script(tmp_path: Path) -> None:
    """`systemd-analyze verify` reports nothing for the unit, ExecStart pointed at a real script.

    Only the venv prefix of ExecStart changes (this checkout's venv for /opt/cancelsync/venv),
    so verify checks every directive and that the console script `pip install` makes is an
    executable; that /opt/cancelsync/venv exists on the server is the README's job.
    """
    assert unit_setting("ExecStart") == [f"{SHIPPED_EXEC} run"]
    script = Path(sys.executable).parent / "cancelsync"
    assert os.access(script, os.X_OK), f"{script}: run `make install` first"
    copy = tmp_path / "cancelsync.service"
    copy.write_text(
        UNIT.read_text(encoding="utf-8").replace(SHIPPED_EXEC, str(script)),
        encoding="utf-8",
    )
    result = run(tool("systemd-analyze"), "verify", copy)
    # verify exits 0 even for unknown keys or bad values; those are printed, naming the unit.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "cancelsync" in line
    ]
    assert (result.returncode, problems) == (0, [])


def test_unit_keeps_state_in_var_lib_as_the_sysusers_user(tmp_path: Path) -> None:
    """systemd-sysusers creates the unit's user, homed in its StateDirectory, without a shell."""
    (tmp_path / "etc").mkdir()
    result = run(
        tool("systemd-sysusers"), f"--root={tmp_path}", DEPLOY / "cancelsync.sysusers"
    )
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text().splitlines()
    (user,) = [line.split(":") for line in passwd if line.startswith("cancelsync:")]
    assert user[5] == "/var/lib/cancelsync"
    assert user[6].endswith("nologin")
    assert "cancelsync:" in (tmp_path / "etc" / "group").read_text()
    assert unit_setting("User") == unit_setting("Group") == ["cancelsync"]
    assert unit_setting("StateDirectory") == ["cancelsync"]
    assert (
        unit_setting("ReadWritePaths") == []
    )  # StateDirectory is the one writable path
    assert 'database = "/var/lib/cancelsync/cancelsync.db"' in (
        REPO_ROOT / "config.example.toml"
    ).read_text(encoding="utf-8")


def test_cron_line_runs_as_cancelsync_and_mails_only_real_failures(
    tmp_path: Path,
) -> None:
    """The cron.d line runs `run --once` as cancelsync; exits 1 and 2 print a line, 0 and 75 none."""
    lines = [
        line
        for line in (DEPLOY / "cancelsync.cron").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    env = dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
    (job,) = [line for line in lines if not re.match(r"^[A-Z_]+=", line)]
    *schedule, user, command = job.split(None, 6)
    assert (schedule, user) == (["*/5", "*", "*", "*", "*"], "cancelsync")
    assert env["CANCELSYNC_CONFIG"] == "/etc/cancelsync/cancelsync.toml"
    assert "%" not in command  # cron would turn it into a newline

    # Stand-ins: systemd-cat sends the output to the journal (here: away) and runs the rest.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemd-cat").write_text(
        '#!/bin/sh\nshift 2\nexec "$@" >/dev/null 2>&1\n'
    )
    (bin_dir / "cancelsync").write_text(
        '#!/bin/sh\necho "$CANCELSYNC_CONFIG $*" > "$ARGS"\necho log >&2\nexit "$RC"\n'
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    command = command.replace(SHIPPED_EXEC, str(bin_dir / "cancelsync"))
    for rc, mail in [(0, False), (75, False), (1, True), (2, True)]:
        (tmp_path / "args").unlink(missing_ok=True)
        result = run(
            "/bin/sh",
            "-c",
            command,
            env={**env, "PATH": f"{bin_dir}:/usr/bin:/bin", "RC": str(rc),
                 "ARGS": str(tmp_path / "args")},
        )  # fmt: skip
        expected = f"cancelsync run --once exited {rc}; see journalctl -t cancelsync\n"
        assert (result.stdout, result.stderr) == ((expected if mail else ""), "")
        assert (tmp_path / "args").read_text() == (
            "/etc/cancelsync/cancelsync.toml run --once --log-level warning\n"
        )


def test_wheel_has_the_package_license_and_script_but_no_tests(tmp_path: Path) -> None:
    """A wheel built from the checkout holds cancelsync, LICENSE and the console script only."""
    source = tmp_path / "src"
    # A copy: the build writes build/ and *.egg-info beside pyproject.toml.
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "*cache*", ".hypothesis", "build", "dist", "*.egg-info"
        ),
    )
    result = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--no-index", "--quiet", "--wheel-dir", tmp_path / "dist", source,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("cancelsync-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (dist_info,) = {n.split("/")[0] for n in names if ".dist-info/" in n}
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        license_text = archive.read(f"{dist_info}/licenses/LICENSE").decode()
    assert {n.split("/")[0] for n in names} == {"cancelsync", dist_info}
    assert {"cancelsync/cli.py", "cancelsync/sandbox/demo.py"} <= set(names)
    assert "License-Expression: MIT" in metadata
    assert "Copyright (c) 2026 cancelsync contributors" in license_text
    assert "cancelsync = cancelsync.cli:main" in entry_points
