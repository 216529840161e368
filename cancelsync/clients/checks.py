"""The result type of ``cancelsync check``'s API probes, shared by both clients, and the
Magento credential-length finding (pure: ``check --offline`` uses it too)."""

from __future__ import annotations

from dataclasses import dataclass

from cancelsync.config import MagentoConfig


@dataclass(frozen=True)
class CheckResult:
    """One probe's outcome.

    ``ok`` False is a failure; ``ok`` True with a ``fix`` is a warning (it works, but
    something should be looked at); ``fix`` says what to change. ``info`` marks a fact
    worth knowing that needs no change (e.g. a status the configured reason has no key
    for: such orders need attention, by design).
    """

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    info: bool = False


# Magento's OAuth consumer keys, secrets, access tokens and token secrets are all 32
# characters (Magento\Framework\Oauth\Helper\Oauth::LENGTH_*); a bearer token is the
# integration's access token. Only a finding: a proxy in front could accept others.
MAGENTO_CREDENTIAL_LENGTH = 32
_MAGENTO_CREDENTIALS = {
    "oauth1": (
        ("consumer key", "consumer_key"),
        ("consumer secret", "consumer_secret"),
        ("access token", "access_token"),
        ("access token secret", "access_token_secret"),
    ),
    "bearer": (("token", "token"),),
}


def magento_credential_lengths(magento: MagentoConfig) -> list[str]:
    """Each configured Magento credential whose length is not Magento's, in words.

    ``magento``: the ``[magento]`` config (``auth`` and the credential values). A
    reference left unresolved (``check --offline``) or an empty value is skipped.
    """
    problems = []
    for label, key in _MAGENTO_CREDENTIALS.get(magento.auth, ()):
        value = str(getattr(magento, key, "") or "")
        if (
            not value
            or value.startswith("${")
            or len(value) == MAGENTO_CREDENTIAL_LENGTH
        ):
            continue
        blank = (
            " (with spaces or line breaks copied around it)"
            if value != value.strip()
            else ""
        )
        problems.append(
            f"magento {label} (magento.{key}) is {len(value)} characters{blank}; "
            f"Magento's are {MAGENTO_CREDENTIAL_LENGTH}"
        )
    return problems


def credential_length_fix(problems: list[str]) -> str:
    """The one hint for credentials of the wrong length."""
    return (
        "; ".join(problems) + " — check you copied the whole value from System > "
        "Extensions > Integrations (Edit > Integration Details)"
    )
