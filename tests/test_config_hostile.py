"""Hostile configs: whatever the file holds, `check --offline` exits 0 (valid) or 2 with a
message, never a traceback or the last-resort exit 1."""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cancelsync.cli import main

# Every key the loader knows, so that generated tables mix real keys with unknown ones.
KEYS = {
    "worker": ["database", "poll_interval_seconds", "overlap_seconds",
               "first_run_lookback_hours", "log_format", "log_level", "stores_dir",
               "max_attempts", "retry_backoff_seconds", "metrics_port",
               "alert_webhook_url"],
    "magento": ["base_url", "store_code", "auth", "consumer_key", "consumer_secret",
                "access_token", "access_token_secret", "token", "tiktok_order_id_field",
                "timeout_seconds", "verify_tls", "requests_per_second"],
    "tiktok": ["api_base_url", "auth_base_url", "timeout_seconds", "verify_tls",
               "requests_per_second"],
    "stores": ["name", "app_key", "app_secret", "shop_id", "shop_cipher", "market",
               "access_token", "refresh_token", "magento_store_ids", "enabled"],
}  # fmt: skip
VALID = {
    "magento": {"base_url": "https://magento.test", "consumer_key": "ck",
                "consumer_secret": "cs", "access_token": "at",
                "access_token_secret": "ats"},
    "stores": {"name": "us-main", "app_key": "k", "app_secret": "s"},
}  # fmt: skip

scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-5, max_value=100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from([
        "https://shop.test", "http://[::1", "https://h:99999", "ftp://x", "",
        "${UNSET_VARIABLE}", "${file:missing-secret}", "${credential:x}", "${file:/}",
        "debug", "warning", "json", "bearer", "US", "address_not_deliver", "../..",
        "stores.d", "/", "a\x00b",
    ]),
)  # fmt: skip
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
)


def toml_value(value: Any) -> str:
    """``value`` written as TOML (strings as JSON, which TOML basic strings accept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    pairs = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
    return "{" + pairs + "}"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A config that starts valid and is then bent: keys dropped, changed or added."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))  # junk
    lines: list[str] = []
    for section in ("worker", "magento", "tiktok", "stores"):
        if draw(st.integers(0, 15)) == 0:
            continue  # a missing section
        table = dict(VALID.get(section, {}))
        if draw(st.integers(0, 2)) > 0:  # a third of the sections stay valid
            for key in draw(st.lists(st.sampled_from(KEYS[section]), max_size=3)):
                table[key] = draw(values)
            for key in draw(
                st.lists(st.sampled_from(sorted(table) or ["x"]), max_size=2)
            ):
                table.pop(key, None)
            if draw(st.integers(0, 3)) == 0:
                table[draw(st.text(min_size=1, max_size=10))] = draw(values)
        header = "[[stores]]" if section == "stores" else f"[{section}]"
        lines.append(header)
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    text = "\n".join(lines) + "\n"
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16"]))
    return text.encode(encoding, errors="surrogatepass")


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(document=documents())
def test_check_offline_never_crashes_on_a_hostile_config(document: bytes) -> None:
    """`check --offline` answers 0 with "valid" or 2 with a message for any file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cancelsync.toml"
        path.write_bytes(document)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["--config", str(path), "check", "--offline"], stdout=out)
    assert "Traceback" not in err.getvalue()
    assert code in (0, 2), err.getvalue()
    if code == 0:
        assert ": valid (" in out.getvalue()
    else:
        assert err.getvalue().startswith("cancelsync: ")
