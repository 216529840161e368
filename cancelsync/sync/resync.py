"""``cancelsync resync ORDER_ID``: one order re-evaluated against both platforms now.

Direction B for the order's TikTok cancellation records (searched by ``order_ids``) and
direction A for its Magento credit memos, each through the same engine as a cycle: the
ledger skips every event decided before (and rows the retry pass owns), so a resync never
acts twice; it only decides what no cycle has decided yet (an event the cursors went past
during an outage, say), and looks again for the Magento order of a cancellation recorded as
never imported. No cursor moves and no cycle is recorded.
"""

from __future__ import annotations

from cancelsync.errors import ApiError, CancelSyncError
from cancelsync.sync.cycle import StoreRun
from cancelsync.sync.engine import CycleReport, StopRequested


def resync_order(
    run: StoreRun, *, tiktok_order_id: str, magento_entity_id: int | None
) -> CycleReport:
    """Decide (and apply) what is new for one order; API trouble is in the report.

    Args:
        magento_entity_id: the linked Magento order, when known (direction A reads its
            credit memos); ``None`` skips direction A.
    """
    cfg, tiktok, magento = run.cfg, run.tiktok, run.magento
    engine = run.engine()
    report = engine.report
    engine.log.info("resync.started", tiktok_order_id=tiktok_order_id,
                    magento_entity_id=magento_entity_id)  # fmt: skip
    try:
        with engine.flights.closing():
            if cfg.tiktok_cancel_to_magento_refund.enabled:
                b = run.tiktok_to_magento(engine)
                # A cancellation skipped as never imported is looked up again, however
                # old: the merchant asks about this order now.
                b.recheck_not_imported(tiktok_order_id)
                for page in tiktok.search_cancellations(order_ids=[tiktok_order_id]):
                    b.process_page(page)
                    engine.drain()
            if cfg.magento_refund_to_tiktok_cancel.enabled and magento_entity_id:
                a = run.magento_to_tiktok(engine)
                a.process_page(magento.credit_memos_for_order(magento_entity_id))
    except StopRequested:
        report.counts["stopped_early"] += 1
    except (ApiError, CancelSyncError) as exc:
        report.error = str(exc)
        engine.log.error(  # noqa: TRY400 - expected API trouble: no traceback
            "resync.failed", error=str(exc), error_type=type(exc).__name__
        )
    report.finished_at = run.clock.now()
    return report
