"""The two sync directions, named once.

A ``Direction`` is the value stored in the ledger (``direction`` column) and carries
everything else that used to be spelled out as loose strings: the config table that switches
it, the cursor stream it reads, the action it takes when nothing else is planned, and the
label a person reads in ``status`` and ``explain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class _Facts:
    config_key: str
    stream: str
    default_action: str
    label: str
    short: str


class Direction(StrEnum):
    """Ledger values; ``str(d)`` is what is stored."""

    TIKTOK_TO_MAGENTO = "tiktok_to_magento"
    MAGENTO_TO_TIKTOK = "magento_to_tiktok"

    @property
    def _facts(self) -> _Facts:
        return _FACTS[self]

    @property
    def config_key(self) -> str:
        """The ``[stores.<key>]`` table that switches this direction."""
        return self._facts.config_key

    @property
    def stream(self) -> str:
        """The cursor stream this direction reads."""
        return self._facts.stream

    @property
    def default_action(self) -> str:
        """The ledger ``action`` of a decision that plans no write."""
        return self._facts.default_action

    @property
    def label(self) -> str:
        """What a person reads: "TikTok cancellation → Magento refund"."""
        return self._facts.label

    @property
    def short(self) -> str:
        """A compact label for one-line output."""
        return self._facts.short

    @classmethod
    def from_config_key(cls, key: str) -> Direction:
        for direction in cls:
            if direction.config_key == key:
                return direction
        raise ValueError(f"no direction is configured by {key!r}")


_FACTS: dict[Direction, _Facts] = {
    Direction.TIKTOK_TO_MAGENTO: _Facts(
        config_key="tiktok_cancel_to_magento_refund",
        stream="tiktok.cancellations",
        default_action="magento_refund",
        label="TikTok cancellation → Magento refund",
        short="tiktok→magento refund",
    ),
    Direction.MAGENTO_TO_TIKTOK: _Facts(
        config_key="magento_refund_to_tiktok_cancel",
        stream="magento.creditmemos",
        default_action="tiktok_cancel",
        label="Magento refund → TikTok cancellation",
        short="magento→tiktok cancel",
    ),
}
