"""Configuration: TOML → ``${VAR}`` expansion → validation → frozen, typed objects.

The config is loaded once at start-up (``load_config``) and passed down explicitly; nothing
else reads the file or the environment. Validation collects *every* problem with its location
(``stores[us-main].app_secret: missing``, ``stores.d/eu.toml: unknown key 'restok'``) and raises
one ``ConfigError``. Unknown keys are errors: a typo in money-moving config must not pass.

``model`` holds the dataclasses (every key, its type, default, bounds and check), ``expand``
the ``${VAR}`` / ``${file:…}`` / ``${credential:…}`` references, ``load`` the reading.
Commands that call no API (``status``, ``explain``, ``check --offline``) load with
``require_secrets=False``: an unset reference is then noted in ``Config.unresolved``
instead of failing the load.
"""

from __future__ import annotations

from cancelsync.config.load import default_config_path, load_config
from cancelsync.config.model import (
    LOG_FORMATS,
    LOG_LEVELS,
    MAGENTO_AUTH_MODES,
    PARTIAL_REFUND_MODES,
    CancelToRefundConfig,
    Config,
    MagentoConfig,
    RefundToCancelConfig,
    StoreConfig,
    TikTokConfig,
    WorkerConfig,
)

__all__ = [
    "LOG_FORMATS", "LOG_LEVELS", "MAGENTO_AUTH_MODES", "PARTIAL_REFUND_MODES",
    "CancelToRefundConfig", "Config", "MagentoConfig", "RefundToCancelConfig", "StoreConfig",
    "TikTokConfig", "WorkerConfig", "default_config_path", "load_config",
]  # fmt: skip
