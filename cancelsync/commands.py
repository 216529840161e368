"""The CLI commands' bodies: each takes the loaded config and an output stream, returns an
exit code. Output meant for people or pipes goes to ``out``; logs go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cancelsync import plan_text
from cancelsync.config import Config, StoreConfig
from cancelsync.errors import ConfigError
from cancelsync.lock import InstanceLock
from cancelsync.log import Redactor
from cancelsync.store import LedgerEntry, Link, Store
from cancelsync.store.history import TimelineEvent

if TYPE_CHECKING:
    from cancelsync.clients.http import RetryPolicy
    from cancelsync.wiring import ClientFactory

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def open_store(config: Config) -> Store:
    return Store.open(config.worker.database)


@contextmanager
def _client_factory(
    config: Config,
    store: Store,
    redactor: Redactor,
    sleep: Callable[[float], None] | None = None,
    retry: RetryPolicy | None = None,
) -> Iterator[ClientFactory]:
    """The one ``ClientFactory`` of a command, closed on exit; ``sleep`` is its retry
    waits' (``run``: stop-aware), ``retry`` a policy of its own (``check``)."""
    # Imported here: `check --offline`, `status` and friends never load the HTTP clients.
    from cancelsync import wiring

    # Only when given: tests wrap ClientFactory and set their own policy by default.
    extra: dict[str, Any] = {} if retry is None else {"retry": retry}
    clients = wiring.ClientFactory(
        config, store, redactor=redactor, sleep=sleep, **extra
    )
    try:
        yield clients
    finally:
        clients.close()


# --------------------------------------------------------------------------- run


def run(
    config: Config,
    out: TextIO,
    *,
    redactor: Redactor,
    once: bool,
    store_name: str | None,
    dry_run: bool,
    since: datetime | None = None,
) -> int:
    from cancelsync.service import Worker
    from cancelsync.stopping import StopSignal

    if store_name is not None:
        config.store(store_name)  # unknown name → ConfigError (exit 2)
    # SIGTERM/SIGINT set it; the retry waits end at once when it is set.
    stop = StopSignal()
    with (
        InstanceLock(config.worker.database),
        closing(open_store(config)) as store,
        _client_factory(config, store, redactor, stop.sleep) as clients,
    ):
        worker = Worker(config, store, clients, stop=stop)
        if not once:
            return worker.serve()
        reports = worker.run_once_until_stopped(
            store_name=store_name, dry_run=dry_run, since=since
        )
    if since is not None:
        print(f"re-read from {since.isoformat(timespec='seconds')}; events decided "
              "before were skipped", file=out)  # fmt: skip
    if dry_run or since is not None or out.isatty():
        for report in reports:
            _print_report(report, out)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILURE


def _print_report(report: Any, out: TextIO) -> None:
    if report.dry_run:
        counts = plan_text.counts_text(report.counts)
    else:
        counts = (
            ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
            or "nothing new"
        )
    prefix = "[dry run] " if report.dry_run else ""
    line = f"{prefix}{report.store_name}: {report.outcome} — {counts}"
    if report.new_attention and not report.dry_run:
        line += (
            f"; {report.new_attention} new item(s) need attention (cancelsync status)"
        )
    if report.error:
        line += f"; error: {report.error}"
    print(line, file=out)
    for item in plan_text.in_reading_order(report.planned):
        print(f"  {plan_text.describe(item)}", file=out)


# --------------------------------------------------------------------------- connect


def connect(
    config: Config, out: TextIO, *, redactor: Redactor, store_name: str, auth_code: str
) -> int:
    cfg = config.store(store_name)
    with (
        InstanceLock(config.worker.database),
        closing(open_store(config)) as store,
        _client_factory(config, store, redactor) as clients,
    ):
        shop, binding = clients.connect(cfg, auth_code)
        with store.unit_of_work():
            # A new authorization: TikTok's earlier revoked / expiring notices are moot.
            store.notices.clear(cfg.name)
    print(
        f"connected store {cfg.name} to TikTok shop {shop.tiktok_shop_id} ({shop.name}), "
        f"region {shop.region} → market {cfg.market or binding.market}; tokens saved in "
        f"{config.worker.database}",
        file=out,
    )
    return EXIT_OK


# --------------------------------------------------------------------------- reasons


def reasons(
    config: Config,
    out: TextIO,
    *,
    redactor: Redactor,
    store_name: str,
    order_id: str | None,
) -> int:
    cfg = config.store(store_name)
    with closing(open_store(config)) as store:
        binding = store.shops.get(cfg.name)
    market = cfg.market or (binding.market if binding else None)
    if order_id is not None:
        return _live_reasons(config, cfg, out, order_id, redactor)
    if not market:
        raise ConfigError(
            [
                f"stores[{cfg.name}].market: unknown; set market or run `cancelsync connect`"
            ]
        )
    print(
        f"TikTok seller cancel reasons for store {cfg.name} (market {market}):",
        file=out,
    )
    for status, label in (("UNPAID", "unpaid orders (UNPAID)"),
                          ("AWAITING_SHIPMENT", "paid orders (ON_HOLD, AWAITING_SHIPMENT)")):  # fmt: skip
        print(f"  {label}:", file=out)
        _print_reason_table(cfg, market, status, out)
    print(
        "  shipped, delivered or completed orders cannot be cancelled (return/refund).",
        file=out,
    )
    return EXIT_OK


def _print_reason_table(
    cfg: StoreConfig, market: str, status: str, out: TextIO
) -> None:
    """The reason keys for orders in ``status`` and what the configured reason becomes."""
    from cancelsync import reasons as reason_tables

    for key, meaning in reason_tables.reasons_for(market, status).items():
        print(f"    {key:<66} {meaning}", file=out)
    configured = cfg.magento_refund_to_tiktok_cancel.cancel_reason
    chosen = reason_tables.translate_reason(
        configured, market=market, order_status=status
    )
    print(
        f"    → configured {configured!r} becomes: {chosen or 'NO KEY (needs attention)'}",
        file=out,
    )


def _live_reasons(
    config: Config, cfg: StoreConfig, out: TextIO, order_id: str, redactor: Redactor
) -> int:
    with (
        closing(open_store(config)) as store,
        _client_factory(config, store, redactor) as clients,
        clients.tiktok(cfg) as tt,
    ):
        clients.resolve_shop(cfg, tt)
        names = tt.api.eligible_cancel_reasons(order_id)
    if names is None:
        print("TikTok's eligibility endpoint is not available for this shop", file=out)
        return EXIT_FAILURE
    print(f"reasons TikTok accepts now for order {order_id}:", file=out)
    for name in names:
        print(f"  {name}", file=out)
    return EXIT_OK


def sandbox(args: Any, out: TextIO) -> int:
    from cancelsync.sandbox.prompt import serve_sandbox

    return serve_sandbox(
        out,
        magento_port=args.magento_port,
        tiktok_port=args.tiktok_port,
        write_config=args.write_config,
        scenario=args.scenario,
    )


# --------------------------------------------------------------------------- check


def check(config: Config, out: TextIO, *, redactor: Redactor, offline: bool) -> int:
    stores = ", ".join(
        s.name + ("" if s.enabled else " (disabled)") for s in config.stores
    )
    print(
        f"config {config.path}: valid ({len(config.stores)} store(s): {stores})",
        file=out,
    )
    if config.unresolved:
        print(f"  {len(config.unresolved)} secret reference(s) not resolved here; `run`, "
              "`check`, `connect`, `resync`, `webhooks subscribe` and `reasons --order` need "
              "them:", file=out)  # fmt: skip
        for item in config.unresolved:
            print(f"    {item}", file=out)
    if offline:
        # Online, a refused credentials probe carries this as its fix instead.
        from cancelsync.clients.checks import magento_credential_lengths

        for problem in magento_credential_lengths(config.magento):
            print(f"  warning: {problem} (a proxy in front may differ)", file=out)
        return EXIT_OK
    from cancelsync.checks import run_online_checks
    from cancelsync.clients.http import RetryPolicy

    # A diagnosis, not a sync: one quick second try, so a wrong host, a closed port or
    # a bad certificate is reported in seconds instead of after the runs' five retries.
    quick = RetryPolicy(attempts=2, initial=0.5, maximum=2.0, jitter=0.5)
    with (
        closing(open_store(config)) as store,
        _client_factory(config, store, redactor, retry=quick) as clients,
    ):
        return run_online_checks(clients, out)


# --------------------------------------------------------------------------- status


def status(config: Config, out: TextIO, *, as_json: bool) -> int:
    from cancelsync.status import render_status, status_data

    with closing(open_store(config)) as store:
        data = status_data(config, store)
    if as_json:
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        render_status(data, out)
    return EXIT_OK


# --------------------------------------------------------------------------- explain


def explain(config: Config, out: TextIO, order_ref: str) -> int:
    """One order's story (``cancelsync.explain``); exit 1 when nothing is recorded."""
    from cancelsync import explain as story
    from cancelsync.clock import SystemClock

    with closing(open_store(config)) as store:
        found = story.gather(store, order_ref)
    if found is None:
        print(f"nothing recorded for order {order_ref}", file=out)
        return EXIT_FAILURE
    story.render(found, out, SystemClock().now())
    return EXIT_OK


def _order_history(
    store: Store, order_ref: str
) -> tuple[Link | None, list[LedgerEntry], list[TimelineEvent]]:
    """The link, ledger rows and timeline of an order (``resync`` and the web use it)."""
    from cancelsync.explain import order_history

    return order_history(store, order_ref)


# --------------------------------------------------------------------------- retry


def retry(config: Config, out: TextIO, *, action_id: int | None, all_: bool) -> int:
    """Re-queue one failed / needs-attention action, or all of them.

    Takes no instance lock: each change is a single-row UPDATE (WAL and the busy timeout
    let it wait for the running service's transaction), and the service's next cycle
    picks the re-queued rows up through its retry pass.
    """
    from cancelsync import actions
    from cancelsync.clock import SystemClock

    now = SystemClock().now()
    with closing(open_store(config)) as store:
        if action_id is not None and not all_:
            result = actions.retry_action(store, action_id, now, by="cli")
            entry = result.entry
            if result.outcome == "not_open" and entry and entry.state == "done":
                reason = f" ({entry.reason})" if entry.reason else ""
                return _refused(
                    f"action #{action_id} is already done{reason}; nothing to retry",
                    EXIT_USAGE,
                )
            if not result.ok:
                return _refused(result.message, result.exit_code)
            print(result.message, file=out)
            return EXIT_OK
        ids = store.ledger.open_action_ids()
        done = [
            i for i in ids if actions.retry_action(store, i, now, by="cli --all").ok
        ]
    if not done:
        print("nothing to re-queue: no failed or needs-attention actions", file=out)
        return EXIT_OK
    shown = ", ".join(f"#{i}" for i in done[:20]) + (" …" if len(done) > 20 else "")
    print(
        f"re-queued {len(done)} action(s) ({shown}); the next run picks them up",
        file=out,
    )
    return EXIT_OK


def _refused(message: str, code: int) -> int:
    """A request the ledger refused: the message on stderr (not a config problem)."""
    print(f"cancelsync: {message}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- resolve


def resolve(config: Config, out: TextIO, *, action_id: int, note: str | None) -> int:
    """Close a needs-attention action the merchant handled by hand (no instance lock,
    like ``retry``)."""
    from cancelsync import actions
    from cancelsync.clock import SystemClock

    with closing(open_store(config)) as store:
        result = actions.resolve_action(
            store, action_id, SystemClock().now(), note=note, by="cli"
        )
    if not result.ok:
        return _refused(result.message, result.exit_code)
    print(result.message, file=out)
    return EXIT_OK


# --------------------------------------------------------------------------- resync


def resync(config: Config, out: TextIO, *, redactor: Redactor, order_ref: str) -> int:
    """Re-evaluate one order (TikTok order id or Magento increment id) in its store.

    Takes the instance lock like ``run``: two processes deciding the same order at once
    could both act on it.
    """
    import uuid

    from cancelsync.scopes import store_scope
    from cancelsync.sync.cycle import StoreRun
    from cancelsync.sync.resync import resync_order

    with (
        InstanceLock(config.worker.database),
        closing(open_store(config)) as store,
        _client_factory(config, store, redactor) as clients,
    ):
        link = store.links.find_link(order_ref) or store.links.find_by_increment(
            order_ref
        )
        candidates = [
            cfg for cfg in config.stores
            if cfg.enabled and (link is None or store_scope(store, cfg) == link.scope)
        ]  # fmt: skip
        before = {e.action_id: e.state for e in _order_history(store, order_ref)[1]}
        for cfg in candidates:
            with clients.tiktok(cfg) as tt:
                shop = clients.resolve_shop(cfg, tt)
                found = _find_order(clients, tt, link, order_ref)
                if found is None:
                    continue
                tiktok_order_id, magento_entity_id = found
                run = StoreRun(
                    store=store, cfg=cfg, worker=config.worker, shop=shop,
                    magento=clients.magento, tiktok=tt.api, clock=clients.clock,
                    run_id=uuid.uuid4().hex[:12],
                    other_stores_claim=len(config.stores) > 1,
                    write_timeout_seconds=config.write_timeout_seconds,
                )  # fmt: skip
                report = resync_order(run, tiktok_order_id=tiktok_order_id,
                                      magento_entity_id=magento_entity_id)  # fmt: skip
                _print_resync(store, out, cfg.name, tiktok_order_id, report, before)
                return EXIT_OK if report.ok else EXIT_FAILURE
    print(
        f"cancelsync: order {order_ref} was found in no enabled store (give a TikTok "
        "order id, or the increment id of a Magento order imported from TikTok)",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def _find_order(
    clients: ClientFactory, tt: Any, link: Link | None, order_ref: str
) -> tuple[str, int | None] | None:
    """``(tiktok_order_id, magento_entity_id)`` of ``order_ref`` in this store's shop,
    or ``None`` when the shop does not know it."""
    from cancelsync.clients.magento import mapper
    from cancelsync.clients.magento.search import SearchCriteria

    if link is not None:
        return link.tiktok_order_id, link.magento_entity_id
    tiktok_id = order_ref
    if not tt.api.get_orders([order_ref]):
        # Not a TikTok order id of this shop: maybe a Magento increment id.
        items, _ = clients.magento.search(
            "orders", SearchCriteria().where("increment_id", order_ref).page(5)
        )
        field = clients.magento.tiktok_order_id_field
        orders = [mapper.order_from_json(i, tiktok_order_id_field=field) for i in items]
        ids = {o.tiktok_order_id for o in orders if o.tiktok_order_id}
        if len(ids) != 1:
            return None
        tiktok_id = ids.pop()
        if not tt.api.get_orders([tiktok_id]):
            return None
    matches = clients.magento.orders_by_tiktok_ids([tiktok_id]).get(tiktok_id, [])
    return tiktok_id, matches[0].magento_entity_id if len(matches) == 1 else None


def _print_resync(
    store: Store,
    out: TextIO,
    store_name: str,
    tiktok_order_id: str,
    report: Any,
    before: dict[int, str],
) -> None:
    """What the resync decided: each of the order's actions, new or changed marked."""
    link, entries, _ = _order_history(store, tiktok_order_id)
    magento = f" ↔ Magento order #{link.magento_increment_id}" if link else ""
    print(f"resync of TikTok order {tiktok_order_id}{magento} (store {store_name}):",
          file=out)  # fmt: skip
    changed = 0
    for e in entries:
        was = before.get(e.action_id)
        mark = "new" if was is None else ("was " + was if was != e.state else "")
        changed += bool(mark)
        print(
            f"  #{e.action_id} {e.action} {e.state}"
            + (f" ({mark})" if mark else "")
            + f" — {e.reason or '-'}",
            file=out,
        )
    if not changed:
        print("  nothing new to decide: every event of this order was decided before",
              file=out)  # fmt: skip
    if report.error:
        print(f"  error: {report.error}", file=out)


# --------------------------------------------------------------------------- backup


def backup(config: Config, out: TextIO, *, target: Path, force: bool) -> int:
    """A consistent copy of the database at ``target`` (no instance lock: a read)."""
    database = Path(config.worker.database)
    if not database.exists():
        return _refused(
            f"no database at {database} yet: nothing to back up", EXIT_USAGE
        )
    if target.resolve() == database.resolve():
        return _refused(f"{target} is the database itself; choose another path",
                        EXIT_USAGE)  # fmt: skip
    with closing(open_store(config)) as store:
        try:
            size = store.backup(target, force=force)
        except FileExistsError:
            return _refused(
                f"{target} exists; pass --force to overwrite it", EXIT_USAGE
            )
        except IsADirectoryError:
            return _refused(f"{target} is a folder; give a file name", EXIT_USAGE)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return _refused(
                f"cannot write {target}: {reason}. Resolution: choose a folder this "
                "user can write (and with room for the copy)",
                EXIT_USAGE,
            )
    print(f"backed up {database} to {target} ({_size(size)})", file=out)
    return EXIT_OK


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size}"  # pragma: no cover
