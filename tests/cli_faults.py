"""Child bootstrap for ``cli_proc.faulty``: patch one fault in, then run the real CLI.

Usage: ``python tests/cli_faults.py FAULT CLI-ARGS...`` where FAULT is

- ``disk-full``: every database the CLI opens may not grow (``PRAGMA max_page_count`` at
  its size): the first write that needs a new page fails like a full disk;
- ``read-only-after-refund``: the database turns read-only (``PRAGMA query_only``) right
  after the first Magento refund was sent, before its outcome is recorded;
- ``bug``: ``status`` raises a plain ``RuntimeError`` (a bug, not a known error).
"""

from __future__ import annotations

import sys
from typing import Any

from cancelsync import commands
from cancelsync.cli import main
from cancelsync.clients.magento.client import MagentoClient
from cancelsync.store import Store

OPENED: list[Store] = []


def _patch_open(after: Any = None) -> None:
    real = Store.open.__func__  # type: ignore[attr-defined]

    def open_(cls: type[Store], path: Any) -> Store:
        store = real(cls, path)
        OPENED.append(store)
        if after is not None:
            after(store)
        return store

    Store.open = classmethod(open_)  # type: ignore[method-assign, assignment]


def _cap_size(store: Store) -> None:
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count = {int(pages)}")


def _read_only_after_refund() -> None:
    _patch_open()
    real = MagentoClient.refund_order

    def refund(self: MagentoClient, *args: Any, **kwargs: Any) -> Any:
        memo = real(self, *args, **kwargs)
        for store in OPENED:
            store.db.execute("PRAGMA query_only = 1")
        return memo

    MagentoClient.refund_order = refund  # type: ignore[method-assign]


def _bug(*args: Any, **kwargs: Any) -> int:
    raise RuntimeError("boom: an unexpected state")


if __name__ == "__main__":
    fault, argv = sys.argv[1], sys.argv[2:]
    if fault == "disk-full":
        _patch_open(_cap_size)
    elif fault == "read-only-after-refund":
        _read_only_after_refund()
    elif fault == "bug":
        commands.status = _bug
    else:
        raise SystemExit(f"unknown fault {fault!r}")
    sys.exit(main(argv))
