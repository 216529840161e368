"""Page tokens and seeded data faults of the TikTok Shop simulator's search endpoints.

A page token is a keyset cursor (the last item's sort value and id) bound to the
query that produced it. Its base64 form always holds ``+``, ``/`` and ``=`` (fixed
prefix bytes and padding), so a client that forgets to percent-encode it, or signs
the encoded form, fails the way it would against TikTok (reference §2 pitfalls).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cancelsync.sandbox.tiktok import errors as E

T = TypeVar("T")

# 0xFB 0xEF 0xFF encodes to "++//": every token starts with both URL-unsafe characters.
_PREFIX = b"\xfb\xef\xff"


def fingerprint(kind: str, shop_id: str, query: dict[str, Any]) -> str:
    """A short digest of everything that defines a result set."""
    blob = json.dumps([kind, shop_id, query], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def encode_token(fp: str, sort_value: int, item_id: str) -> str:
    """A token holding ``+``, ``/`` and ``=``."""
    payload = json.dumps(
        {"f": fp, "s": sort_value, "i": item_id}, separators=(",", ":")
    )
    raw = _PREFIX + payload.encode("utf-8")
    while len(raw) % 3 != 1:  # leaves two "=" of padding
        raw += b" "
    return base64.b64encode(raw).decode("ascii")


def decode_token(token: str, fp: str) -> tuple[int, str]:
    """The ``(sort_value, item_id)`` cursor in ``token``; 36009004 if not ours."""
    try:
        raw = base64.b64decode(token.encode("ascii"), validate=True)
        data = json.loads(raw[len(_PREFIX) :].decode("utf-8"))
        cursor = (int(data["s"]), str(data["i"]))
        token_fp = str(data["f"])
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise E.invalid_param("page_token is invalid") from None
    if not raw.startswith(_PREFIX):
        raise E.invalid_param("page_token is invalid")
    if token_fp != fp:
        raise E.invalid_param("page_token does not belong to this query")
    return cursor


@dataclass
class DataFaults:
    """Seeded data faults on search results.

    duplicate_rate: chance that a page starts again with the previous page's last item.
    out_of_order_rate: chance that two neighbours on a page come back swapped.
    ``duplicated`` and ``swapped`` count what was injected (the soak reports them).
    """

    duplicate_rate: float = 0.0
    out_of_order_rate: float = 0.0
    seed: int = 0
    duplicated: int = 0
    swapped: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


def paginate(
    items: Sequence[T],
    *,
    key: Callable[[T], tuple[int, str]],
    descending: bool,
    page_size: int,
    token: str | None,
    fp: str,
    faults: DataFaults,
) -> tuple[list[T], str, int]:
    """Sort by ``key``, cut the page after the token's cursor, apply data faults."""
    ordered = sorted(items, key=key, reverse=descending)
    start = 0
    if token:
        cursor = decode_token(token, fp)
        start = len(ordered)
        for index, item in enumerate(ordered):
            k = key(item)
            if (k < cursor) if descending else (k > cursor):
                start = index
                break
    page = ordered[start : start + page_size]
    more = start + page_size < len(ordered)
    next_token = ""
    if more and page:
        anchor = page[-1]
        if (
            len(page) >= 2
            and faults.duplicate_rate
            and faults.rng.random() < faults.duplicate_rate
        ):
            anchor = page[-2]  # the next page repeats this page's last item
            faults.duplicated += 1
        sort_value, item_id = key(anchor)
        next_token = encode_token(fp, sort_value, item_id)
    if faults.out_of_order_rate:
        index = 0
        while index + 1 < len(page):
            if faults.rng.random() < faults.out_of_order_rate:
                page[index], page[index + 1] = page[index + 1], page[index]
                faults.swapped += 1
                index += 2
            else:
                index += 1
    return page, next_token, len(ordered)
