"""The Magento 2 REST client.

``client`` (the adapter), ``auth`` (oauth1 | bearer), ``search`` (pure searchCriteria
builder), ``paging`` (keyset pages), ``mapper`` (JSON → models), ``errors`` (the error
envelope → error tree) and ``checks`` (``cancelsync check`` probes).
"""

from __future__ import annotations

from cancelsync.clients.magento.auth import BearerAuth, auth_from_config, oauth1_auth
from cancelsync.clients.magento.client import MagentoClient
from cancelsync.clients.magento.errors import (
    MagentoAuthError,
    fill_placeholders,
    is_already_applied,
)
from cancelsync.clients.magento.search import Filter, SearchCriteria

__all__ = [
    "BearerAuth",
    "Filter",
    "MagentoAuthError",
    "MagentoClient",
    "SearchCriteria",
    "auth_from_config",
    "fill_placeholders",
    "is_already_applied",
    "oauth1_auth",
]
