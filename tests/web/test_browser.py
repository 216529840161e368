"""The order center end to end in a real headless Chromium, served by the real service.

``cancelsync run`` (service mode, ``worker.web_listen`` set) syncs a sandbox where a buyer
cancelled an order that is on hold in Magento, so the refund needs attention. A person signs
in, sees the item, opens the order's timeline, resolves it with a note and sees it gone; the
service never refunds it afterwards, even once the hold is lifted. A screenshot of each page
goes to the test's folder (``tmp_path``).

Needs Debian's ``chromium`` and ``chromium-driver`` (``make install`` adds them as root). A
workstation without them skips; with ``CI`` set a missing browser fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from cancelsync.sandbox.common import free_port
from cancelsync.sandbox.harness import PlacedOrder, Sandbox

TOKEN = "browser-test-token-0123456789abcdef"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--window-size=1280,900",
)  # fmt: skip


def browser_paths() -> tuple[str, str]:
    """Chromium and its driver: skipped without them on a workstation, a failure in CI."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    if os.environ.get("CI"):
        pytest.fail(
            "chromium / chromedriver missing in CI: `make install` installs them"
        )
    pytest.skip(
        "needs chromium and chromedriver (apt-get install chromium chromium-driver); "
        "CI runs this test"
    )


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium through chromedriver, offline, with a throwaway profile."""
    chromium, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Sandbox, PlacedOrder, str]]:
    """The service (``cancelsync run``) on a sandbox with one item needing attention."""
    with Sandbox() as sb:
        sb.add_store("us-main")
        placed = sb.place_order([{"sku": "TEE-RED-M", "qty": 1, "price": 24.99}])
        sb.magento.hold_order(placed.magento_entity_id)
        sb.tiktok.buyer_cancel(placed.tiktok_order_id)
        base = f"http://127.0.0.1:{free_port()}/"
        config = sb.write_config(
            tmp_path / "cancelsync.toml", poll_interval_seconds=1,
            web_listen=base.removeprefix("http://").rstrip("/"),
            web_token="${CANCELSYNC_WEB_TOKEN}",
            magento_admin_order_url="https://magento.example.com/admin/sales/order/view/order_id/{magento_entity_id}/",
        )  # fmt: skip
        env = {**os.environ, "CANCELSYNC_CONFIG": str(config),
               "CANCELSYNC_WEB_TOKEN": TOKEN}  # fmt: skip
        with (tmp_path / "service.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cancelsync", "run"], env=env, stdout=log,
                stderr=log,
            )  # fmt: skip
            try:
                yield sb, placed, base
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=20) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def api(base: str, path: str) -> Any:
    """The JSON of a GET with the bearer token; ``None`` until the service answers."""
    try:
        reply = requests.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=5)  # fmt: skip
    except requests.ConnectionError:
        return None
    return reply.json() if reply.status_code == 200 else None


def cycle_started_after(base: str, when: float) -> bool:
    """Whether the store's last cycle started after ``when`` (Unix seconds) and finished."""
    stores = (api(base, "api/stores") or {}).get("stores") or [{}]
    last = stores[0].get("last_cycle") or {}
    if not last.get("finished_at"):
        return False
    return datetime.fromisoformat(last["started_at"]).timestamp() >= when


def refund_posts(sb: Sandbox) -> int:
    return sb.magento_server.journal.count(r"POST order/\{id\}/refund")


def test_sign_in_see_the_item_open_its_timeline_and_resolve_it(
    tmp_path: Path, browser: Any, service: tuple[Sandbox, PlacedOrder, str]
) -> None:
    """A person resolves a held order's refund by hand in the browser; the service never
    refunds it afterwards."""
    from selenium.webdriver.common.by import By

    sb, placed, base = service
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shot(name: str) -> None:
        assert browser.save_screenshot(str(shots / f"{name}.png"))

    items = wait_for(lambda: (api(base, "api/attention") or {}).get("items"),
                     "the held order's refund to need attention")  # fmt: skip
    (item,) = items
    assert item["tiktok_order_id"] == placed.tiktok_order_id

    browser.get(base)
    assert "/login?next=" in browser.current_url
    shot("01-sign-in")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: browser.find_elements(By.ID, "store-us-main"), "the overview")
    assert browser.find_element(By.ID, "open-count").text == "1"
    shot("02-overview")

    browser.find_element(By.PARTIAL_LINK_TEXT, "Needs attention").click()
    row = browser.find_element(By.ID, f"action-{item['action_id']}")
    assert "on hold" in row.text
    assert placed.magento_increment_id in row.text
    admin = row.find_element(By.LINK_TEXT, "Magento admin").get_attribute("href")
    assert admin.endswith(f"/order_id/{placed.magento_entity_id}/")
    shot("03-needs-attention")

    row.find_element(By.LINK_TEXT, placed.tiktok_order_id).click()
    timeline = browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert "attention" in timeline
    assert (
        f"#{placed.magento_increment_id}"
        in browser.find_element(By.TAG_NAME, "main").text
    )
    shot("04-order")

    browser.back()
    row = browser.find_element(By.ID, f"action-{item['action_id']}")
    row.find_element(By.TAG_NAME, "summary").click()
    row.find_element(By.NAME, "note").send_keys("Refunded in the Magento admin by hand")
    row.find_element(By.NAME, "resolve").click()
    flash = browser.find_element(By.ID, "flash").text
    assert flash == f"resolved action #{item['action_id']}; it will not be retried"
    assert browser.find_element(By.ID, "nothing-open").is_displayed()
    assert browser.find_element(By.ID, "open-count").text == "0"
    shot("05-resolved")

    browser.find_element(By.LINK_TEXT, "Activity").click()
    assert (
        "resolved by hand: Refunded in the Magento admin"
        in browser.find_element(By.TAG_NAME, "main").text
    )
    shot("06-activity")

    # The hold lifted, the next cycles re-read the cancellation: no refund is ever sent.
    sb.magento.unhold_order(placed.magento_entity_id)
    unheld_at = time.time()
    wait_for(
        lambda: cycle_started_after(base, unheld_at + 1), "a cycle after the unhold"
    )
    order = api(base, f"api/orders/{placed.tiktok_order_id}")
    assert [a["state"] for a in order["actions"]] == ["done"]
    assert order["timeline"][-1]["kind"] == "resolved"
    assert refund_posts(sb) == 0
    assert sorted(p.name for p in shots.iterdir()) == [
        "01-sign-in.png", "02-overview.png", "03-needs-attention.png", "04-order.png",
        "05-resolved.png", "06-activity.png",
    ]  # fmt: skip
