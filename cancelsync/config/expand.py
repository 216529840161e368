"""``${VAR}``, ``${file:PATH}`` and ``${credential:NAME}`` in config values.

``${file:PATH}`` is the file's text (PATH relative to the config file's folder) and
``${credential:NAME}`` the file ``$CREDENTIALS_DIRECTORY/NAME`` that systemd's
``LoadCredential=`` provides; one trailing newline is dropped. They land in the same
fields as ``${VAR}``, so ``Config.secrets()`` hands them to the log redactor alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# ${VAR}, ${file:PATH} or ${credential:NAME}; no nesting, and expanded text is not rescanned.
_VAR = re.compile(
    r"\$\{(?:(?P<kind>file|credential):(?P<ref>[^}]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*))\}"
)


# A secret is a line of text; a bigger "secret" is a wrong path (/dev/zero, a log file).
MAX_SECRET_BYTES = 65_536


class Expander:
    """Expands references in raw TOML values, collecting problems instead of raising.

    An unset variable or unreadable file is an error naming the key; its location goes
    into ``unset`` so the validator reports nothing more about it (no "not an http(s)
    URL" for ``${MAGENTO_URL}``).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        base: Path,
        errors: list[str],
        *,
        required: bool = True,
    ) -> None:
        self.env = env
        self.base = base
        self.errors = errors
        # required=False (commands that call no API): a reference that cannot be resolved
        # goes to ``unresolved`` instead of ``errors``.
        self.required = required
        self.unresolved: list[str] = []
        self.unset: set[str] = set()

    def __call__(self, value: Any, where: str) -> Any:
        """``value`` with every reference in every string replaced."""
        if isinstance(value, str):
            return _VAR.sub(lambda match: self._replace(match, where), value)
        if isinstance(value, dict):
            return {k: self(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self(v, where) for v in value]
        return value

    def _replace(self, match: re.Match[str], where: str) -> str:
        kind, ref, name = match.group("kind", "ref", "name")
        if kind is not None:
            text, problem = _read_secret(kind, ref, self.env, self.base)
            if not problem:
                return text
        elif name in self.env:
            return self.env[name]
        else:
            problem = f"environment variable {name} is not set"
        (self.errors if self.required else self.unresolved).append(
            f"{where}: {problem}"
        )
        self.unset.add(where)
        return match.group(0)


def _read_secret(
    kind: str, ref: str, env: Mapping[str, str], base: Path
) -> tuple[str, str]:
    """``(text, "")`` of a ``${file:…}`` / ``${credential:…}`` reference, or ``("", problem)``."""
    if kind == "credential":
        folder = env.get("CREDENTIALS_DIRECTORY")
        if "/" in ref or ref in (".", ".."):
            return "", f"credential name {ref!r} must be a plain name (no '/')"
        if not folder:
            return "", (
                f"${{credential:{ref}}} needs $CREDENTIALS_DIRECTORY, which systemd sets "
                f"only inside a unit with LoadCredential={ref}:PATH; outside it use "
                f"${{file:PATH}}"
            )
        path = Path(folder) / ref
    else:
        path = base / ref  # an absolute ref replaces base
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SECRET_BYTES + 1)
        if len(data) > MAX_SECRET_BYTES:
            return (
                "",
                f"{path} is larger than {MAX_SECRET_BYTES} bytes: not a secret file",
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        reason = "file not found"
    except PermissionError:
        reason = "permission denied (is it readable by the user cancelsync runs as?)"
    except IsADirectoryError:
        reason = "is a folder, not a file"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    except ValueError:  # a NUL character in the path
        reason = "not a valid path"
    else:
        # Editors and `echo` end files with a newline that is not part of the secret.
        if text.endswith("\r\n"):
            return text[:-2], ""
        return text.removesuffix("\n"), ""
    return "", f"cannot read secret file {path}: {reason}"
