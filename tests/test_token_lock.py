"""Token refreshes are serialized across processes sharing a database: TikTok rotates the
refresh token on use, so two holders of one pair must never both spend it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cancelsync.config import load_config
from cancelsync.log import Redactor
from cancelsync.sandbox.common import Fault
from cancelsync.sandbox.harness import Sandbox
from cancelsync.store import Store
from cancelsync.wiring import ClientFactory


def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(
    tmp_path: Path,
) -> None:
    """Two factories on their own connections (as two processes would be) refresh the
    same seeded pair at the same moment, the token host being slow: one refresh is
    sent, the other waits for the lock, re-reads and takes the rotated pair."""
    with Sandbox() as sb:
        sb.add_store("us-main")
        config = load_config(sb.write_config(tmp_path / "cancelsync.toml"))
        cfg = config.store("us-main")
        stale = cfg.access_token
        sb.tiktok_faults.next_calls(
            r"GET /api/v2/token/refresh", Fault("delay", seconds=0.5), count=2
        )
        Store.open(config.worker.database).close()  # created and migrated once
        results: list[Any] = []
        barrier = threading.Barrier(2)

        def refresh() -> None:
            store = Store.open(config.worker.database)
            clients = ClientFactory(config, store, redactor=Redactor())
            try:
                with clients.tiktok(cfg) as tt:
                    barrier.wait()
                    results.append(tt.tokens.refresh(stale_access_token=stale))
            except Exception as exc:  # noqa: BLE001 - the assertion shows it
                results.append(exc)
            finally:
                clients.close()
                store.close()

        threads = [threading.Thread(target=refresh) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        refreshes = sb.tiktok_server.journal.count(r"GET /api/v2/token/refresh")

    assert all(not isinstance(r, Exception) for r in results), results
    assert refreshes == 1
    assert results[0].refresh_token == results[1].refresh_token
    assert results[0].access_token != stale
    lock = Path(str(config.worker.database) + ".tokens.lock")
    assert lock.stat().st_mode & 0o777 == 0o600
