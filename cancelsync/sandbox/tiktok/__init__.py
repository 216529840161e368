"""An in-memory TikTok Shop Partner API (token host + API host) for tests and the demo.

See ``simulator.TikTokSimulator``; serve it with
``cancelsync.sandbox.common.SimulatorServer``.
"""

from __future__ import annotations

from cancelsync.sandbox.tiktok.routing import ROUTES
from cancelsync.sandbox.tiktok.scenario import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_SHOP_CIPHER,
    DEMO_SHOP_ID,
    DemoSetup,
)
from cancelsync.sandbox.tiktok.simulator import TikTokSimulator

__all__ = [
    "DEMO_APP_KEY",
    "DEMO_APP_SECRET",
    "DEMO_SHOP_CIPHER",
    "DEMO_SHOP_ID",
    "ROUTES",
    "DemoSetup",
    "TikTokSimulator",
]
