"""Logging: redaction by value and by key, JSON vs console output, stdlib routing."""

from __future__ import annotations

import io
import json
import logging
from collections import namedtuple
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import structlog

from cancelsync.log import LEVELS, REDACTED, Redactor, configure_logging, get_logger

pytestmark = pytest.mark.usefixtures("reset_logging")

SECRET = "tts-app-secret-7f3a9c"
TOKEN = "ROW_access_token_value_123"


@dataclass
class Credentials:
    """A value whose repr would print its token."""

    access_token: str


class TTYStream(io.StringIO):
    """A StringIO that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written to ``stream``, parsed as JSON."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def crash(exc: Exception) -> None:
    """Raise ``exc`` (so tests can log a real traceback)."""
    raise exc


def log_everything(log: Any) -> None:
    """Log the secret in every place an event can carry it."""
    message = f"connecting with {SECRET}"
    log.info(message)
    log.info(
        "request.sent", request={"headers": {"x-custom": f"Bearer {TOKEN}"}, "n": 1}
    )
    log.info("list", values=["ok", f"q={SECRET}"], pair=("a", SECRET))
    log.warning("call.failed", error=RuntimeError(f"refused {SECRET}"))
    log.info("object", creds=Credentials(TOKEN), seen={SECRET})
    try:
        crash(ValueError(f"bad signature for {SECRET}"))
    except ValueError:
        log.exception("cycle.crashed")


def test_secret_values_never_reach_json_output() -> None:
    """A configured secret is replaced in messages, nested data, objects and tracebacks."""
    stream = io.StringIO()
    configure_logging("json", Redactor([SECRET, TOKEN]), stream=stream)
    log_everything(structlog.get_logger())
    text = stream.getvalue()
    assert SECRET not in text
    assert TOKEN not in text
    lines = json_lines(stream)
    assert lines[0]["event"] == f"connecting with {REDACTED}"
    assert lines[1]["request"] == {
        "headers": {"x-custom": f"Bearer {REDACTED}"},
        "n": 1,
    }
    assert lines[2]["values"] == ["ok", f"q={REDACTED}"]
    assert lines[3]["error"] == f"refused {REDACTED}"
    assert "ValueError: bad signature for ***" in lines[5]["exception"]


def test_secret_values_never_reach_console_output() -> None:
    """The console renderer's own tracebacks and reprs are scrubbed as well."""
    stream = io.StringIO()
    configure_logging("console", Redactor([SECRET, TOKEN]), stream=stream)
    log_everything(structlog.get_logger())
    text = stream.getvalue()
    assert "bad signature for ***" in text
    assert SECRET not in text
    assert TOKEN not in text


def test_stdlib_logs_go_through_the_same_redaction() -> None:
    """APScheduler-style stdlib records are rendered as JSON and scrubbed."""
    stream = io.StringIO()
    configure_logging("json", Redactor([SECRET]), stream=stream)
    stdlib = logging.getLogger("apscheduler.scheduler")
    stdlib.warning("job failed with %s", SECRET)
    try:
        crash(RuntimeError(SECRET))
    except RuntimeError:
        stdlib.exception("job crashed")
    assert SECRET not in stream.getvalue()
    first, second = json_lines(stream)
    assert first["event"] == f"job failed with {REDACTED}"
    assert first["logger"] == "apscheduler.scheduler"
    assert "RuntimeError: ***" in second["exception"]


@pytest.mark.parametrize(
    "key",
    ["access_token", "refresh_token", "app_secret", "sign", "signature", "Authorization",
     "consumer_secret", "auth_code", "x-tts-access-token", "password"],
)  # fmt: skip
def test_secret_looking_keys_are_redacted(key: str) -> None:
    """Values under secret-looking keys are hidden even when not a configured secret."""
    redactor = Redactor()
    event = redactor(None, "info", {"event": "e", key: "not-configured-value"})
    assert event[key] == REDACTED
    nested = redactor(None, "info", {"event": "e", "body": {key: "v-1234"}})
    assert nested["body"][key] == REDACTED


@pytest.mark.parametrize(
    "key",
    ["page_token", "next_page_token", "access_token_expire_at", "refresh_token_expire_at",
     "access_token_expire_in", "tokens_count", "has_refresh_token", "event", "shop_cipher"],
)  # fmt: skip
def test_harmless_keys_mentioning_tokens_are_kept(key: str) -> None:
    """Page tokens, expiries, counts and flags are not secrets and stay readable."""
    redactor = Redactor()
    event = redactor(None, "info", {key: "page-2-abc"})
    assert event[key] == "page-2-abc"


def test_empty_values_under_secret_keys_show_as_empty() -> None:
    """A missing secret is shown as missing, which helps debugging without leaking."""
    redactor = Redactor()
    event = redactor(None, "info", {"access_token": "", "refresh_token": None})
    assert event == {"access_token": "", "refresh_token": None}


def test_redactor_value_rules() -> None:
    """Short values are not secrets; added ones apply; longest match wins; no sharing."""
    redactor = Redactor(["abc", "secret-1"])
    assert redactor.scrub("abc secret-1") == f"abc {REDACTED}"
    redactor.add("rotated-token-1", "")
    assert redactor.scrub("t=rotated-token-1") == f"t={REDACTED}"
    redactor.add("secret-1-long")
    assert redactor.scrub("secret-1-long") == REDACTED
    assert redactor.scrub_text("x secret-1 y") == f"x {REDACTED} y"
    assert Redactor(["secret-1"]).scrub("rotated-token-1") == "rotated-token-1"


def test_secrets_added_after_configuration_are_redacted() -> None:
    """configure_logging uses the redactor it is given, so later additions apply."""
    stream = io.StringIO()
    redactor = Redactor([SECRET])
    configure_logging("json", redactor, stream=stream)
    redactor.add(TOKEN)  # what the client factory does with a rotated token
    get_logger().info("token.rotated", note=f"now {TOKEN}", other=SECRET)
    assert TOKEN not in stream.getvalue()
    (line,) = json_lines(stream)
    assert (line["note"], line["other"]) == (f"now {REDACTED}", REDACTED)


def test_redactor_keeps_container_types_and_plain_values() -> None:
    """Lists, tuples, namedtuples and numbers come out with a usable shape."""
    point = namedtuple("point", "x y")
    redactor = Redactor(["secret-1"])
    assert redactor.scrub(["secret-1", 1]) == [REDACTED, 1]
    assert redactor.scrub(("secret-1", None)) == (REDACTED, None)
    assert redactor.scrub(point("secret-1", 2)) == (REDACTED, 2)
    assert redactor.scrub(point("a", 2)) == ("a", 2)
    assert redactor.scrub(3.5) == 3.5
    assert redactor.scrub(True) is True
    creds = Credentials("harmless")
    assert redactor.scrub(creds) is creds
    assert (
        redactor.scrub(Credentials("secret-1"))
        == f"Credentials(access_token='{REDACTED}')"
    )


def test_auto_format_is_json_off_a_tty_and_console_on_one() -> None:
    """log_format = "auto" writes JSON to a pipe and human text to a terminal."""
    pipe = io.StringIO()
    configure_logging("auto", stream=pipe)
    get_logger().info("cycle.finished", refunded=2)
    (line,) = json_lines(pipe)
    assert line["event"] == "cycle.finished"
    assert line["refunded"] == 2
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")

    tty = TTYStream()
    configure_logging("auto", stream=tty)
    get_logger().info("cycle.finished", refunded=2)
    text = tty.getvalue()
    assert "cycle.finished" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_json_format_forced_on_a_tty() -> None:
    """log_format = "json" writes JSON even to a terminal."""
    tty = TTYStream()
    configure_logging("json", stream=tty)
    get_logger().info("x")
    assert json.loads(tty.getvalue())["event"] == "x"


def test_info_level_and_contextvars() -> None:
    """Debug events are dropped; contextvars (run_id, store) are merged into each line."""
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    structlog.contextvars.bind_contextvars(run_id="run-1", store="us-main")
    log = get_logger()
    log.debug("noise")
    log.info("tiktok.page.fetched", count=3)
    (line,) = json_lines(stream)
    assert (line["run_id"], line["store"], line["count"]) == ("run-1", "us-main", 3)


def test_capture_logs_fixture_sees_events(logs: list[MutableMapping[str, Any]]) -> None:
    """The `logs` fixture captures structlog events as dictionaries."""
    get_logger().warning("store.skipped", store="eu")
    assert logs == [{"event": "store.skipped", "store": "eu", "log_level": "warning"}]


@pytest.mark.parametrize(
    ("level", "shown"),
    [("debug", ["d", "i", "w", "e"]), ("info", ["i", "w", "e"]),
     ("warning", ["w", "e"]), ("error", ["e"])],
)  # fmt: skip
def test_log_level_names_set_the_threshold(level: str, shown: list[str]) -> None:
    """Each worker.log_level name lets its own level and the ones above it through, for
    structlog events and stdlib loggers alike (those never below warning)."""
    stream = io.StringIO()
    configure_logging("json", stream=stream, level=level)
    log = get_logger()
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [line["event"] for line in json_lines(stream)] == shown
    assert logging.getLogger().level == max(LEVELS[level], logging.WARNING)


def test_http_requests_are_logged_at_debug(
    logs: list[MutableMapping[str, Any]],
) -> None:
    """One line per HTTP request is a debug event: a quiet run at info or above omits it."""
    from cancelsync.clients.http import Transport

    transport = Transport(requests.Session(), platform="magento",
                          base_url="https://m.test", timeout=5)  # fmt: skip
    transport._log("GET", "/rest/V1/orders", 200, 0.01, None)
    assert [(e["event"], e["log_level"]) for e in logs] == [("http.request", "debug")]
