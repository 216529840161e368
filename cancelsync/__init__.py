"""cancelsync: Magento 2 <-> TikTok Shop cancellation and refund sync."""

from __future__ import annotations

__version__ = "0.1.0"
