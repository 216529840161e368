"""A faithful in-memory Magento 2.4 REST simulator for cancelsync's sales endpoints."""

from __future__ import annotations

from cancelsync.sandbox.magento.auth import MagentoCredentials
from cancelsync.sandbox.magento.errors import MagentoError
from cancelsync.sandbox.magento.importer import BundleItem, OrderLine
from cancelsync.sandbox.magento.simulator import MagentoSimulator

__all__ = [
    "BundleItem",
    "MagentoCredentials",
    "MagentoError",
    "MagentoSimulator",
    "OrderLine",
]
