"""What a person does to one ledger action, shared by the CLI and the order center.

``retry_action`` puts a failed or needs-attention action back in the queue (the CLI's
``retry``: ``Ledger.requeue``); ``resolve_action`` closes a needs-attention action for good
with a note, when the merchant handled it by hand (``Ledger.resolve``). Both take an open
``Store`` (so they work inside the running service, whose instance lock they do not need),
leave an entry in the order's timeline (``explain``) and return an ``ActionResult`` that
the CLI prints (``message``, ``exit_code``) and the web renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cancelsync.store import LedgerEntry, Store

MAX_NOTE_LENGTH = 2000
# Control characters (but tab and newline) have no place in a note a person reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Outcome = Literal["requeued", "resolved", "not_found", "not_open"]


@dataclass(frozen=True)
class ActionResult:
    """What happened to one action.

    Attributes:
        outcome: ``requeued`` / ``resolved`` (changed), ``not_found`` (no such id) or
            ``not_open`` (the action is not in a state this can change).
        message: one line for people, e.g. "re-queued action #12; the next run picks it up".
        entry: the row after the change (before it, when nothing changed), if any.
    """

    action_id: int
    outcome: Outcome
    message: str
    entry: LedgerEntry | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("requeued", "resolved")

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 changed, 1 not in a state to change, 2 (usage) no such
        action."""
        return {"not_found": 2, "not_open": 1}.get(self.outcome, 0)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the API's reply body."""
        return {
            "action_id": self.action_id,
            "outcome": self.outcome,
            "ok": self.ok,
            "message": self.message,
            "state": self.entry.state if self.entry else None,
        }


def clean_note(note: str | None) -> str:
    """A note as stored: control characters dropped, trimmed, at most MAX_NOTE_LENGTH."""
    return _CONTROL.sub("", note or "").strip()[:MAX_NOTE_LENGTH]


def retry_action(
    store: Store, action_id: int, now: datetime, *, by: str = "cli"
) -> ActionResult:
    """Re-queue one failed or needs-attention action (``Ledger.requeue``).

    Args:
        by: who asked, for the timeline ("cli", "order center").
    """
    entry = store.ledger.get_by_id(action_id)
    if entry is None:
        return _not_found(action_id)
    with store.unit_of_work():
        if store.ledger.requeue(now, action_id) == 0:
            return ActionResult(
                action_id, "not_open",
                f"action #{action_id} is {entry.state}: only failed or needs-attention "
                "actions can be re-queued",
                entry,
            )  # fmt: skip
        _timeline(store, entry, now, "requeued", f"re-queued by hand ({by})", by=by)
    return ActionResult(
        action_id, "requeued",
        f"re-queued action #{action_id}; the next run picks it up",
        store.ledger.get_by_id(action_id),
    )  # fmt: skip


def resolve_action(
    store: Store,
    action_id: int,
    now: datetime,
    *,
    note: str | None = None,
    by: str = "cli",
) -> ActionResult:
    """Close one needs-attention action for good: the merchant handled it by hand.

    The action becomes ``done`` with ``note`` as its reason (reason_code
    ``resolved_by_hand``), is never picked up again, and its timeline says who closed it.

    Args:
        note: what was done by hand (cleaned by ``clean_note``; empty is allowed).
        by: who asked, for the timeline ("cli", "order center").
    """
    text = clean_note(note)
    entry = store.ledger.get_by_id(action_id)
    if entry is None:
        return _not_found(action_id)
    reason = f"resolved by hand: {text}" if text else "resolved by hand"
    with store.unit_of_work():
        resolved = store.ledger.resolve(action_id, reason, now)
        if resolved is None:
            return ActionResult(
                action_id, "not_open",
                f"action #{action_id} is {entry.state}: only needs-attention actions "
                "can be resolved",
                entry,
            )  # fmt: skip
        _timeline(
            store, entry, now, "resolved", f"{reason} ({by}); was: {entry.reason or '-'}",
            by=by, note=text, previous_reason=entry.reason,
        )  # fmt: skip
    return ActionResult(
        action_id, "resolved", f"resolved action #{action_id}; it will not be retried",
        resolved,
    )  # fmt: skip


def _not_found(action_id: int) -> ActionResult:
    return ActionResult(
        action_id, "not_found",
        f"no action #{action_id} (see `cancelsync status` for action ids)",
    )  # fmt: skip


def _timeline(
    store: Store,
    entry: LedgerEntry,
    now: datetime,
    kind: str,
    message: str,
    **details: object,
) -> None:
    store.timeline.add(
        at=now, scope=entry.scope, kind=kind, message=message,
        action_id=entry.action_id, tiktok_order_id=entry.tiktok_order_id,
        magento_entity_id=entry.magento_entity_id,
        magento_increment_id=entry.magento_increment_id,
        details={k: v for k, v in details.items() if v is not None} or None,
    )  # fmt: skip
