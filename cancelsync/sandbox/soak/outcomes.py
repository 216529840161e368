"""What Magento really answered to each hold and unhold the worker sent.

The server's journal cannot tell an applied hold from a refused one in every case: a
write whose reply is lost (``lost_response``) is journaled without a status, whatever the
simulator decided. An applied hold answers 200; a refused one 400 ("A hold action is not
available.": already on hold, complete, closed, ...); a 5xx/429 fault or a dropped
connection never reaches the simulator. So the soak puts this recorder between the server
and the Magento simulator and keeps the simulator's own answer to every hold and unhold:
the oracle counts a hold as applied only when Magento answered 200.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from cancelsync.sandbox.common import SimRequest, SimResponse, Simulator

HOLD = "POST orders/{id}/hold"
UNHOLD = "POST orders/{id}/unhold"
_ORDER = re.compile(r"/V1/orders/(\d+)/")


@dataclass(frozen=True)
class Outcome:
    """One hold or unhold as Magento handled it."""

    endpoint: str
    magento_entity_id: int
    status: int
    at: float

    @property
    def applied(self) -> bool:
        return self.status == 200


class HoldOutcomes:
    """A ``Simulator`` that passes every request on and records holds and unholds.

    Install as ``SimulatorServer.simulator`` (the server looks it up per request)."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.clock = getattr(simulator, "clock", None)
        self._lock = threading.Lock()
        self._by_order: dict[int, list[Outcome]] = defaultdict(list)

    def endpoint_name(self, request: SimRequest) -> str:
        return self.simulator.endpoint_name(request)

    def handle(self, request: SimRequest) -> SimResponse:
        response = self.simulator.handle(request)
        endpoint = self.simulator.endpoint_name(request)
        found = _ORDER.search(request.path)
        if endpoint in (HOLD, UNHOLD) and found:
            outcome = Outcome(
                endpoint, int(found.group(1)), response.status, time.time()
            )
            with self._lock:
                self._by_order[outcome.magento_entity_id].append(outcome)
        return response

    def of(self, magento_entity_id: int) -> list[Outcome]:
        """The order's holds and unholds as Magento handled them, in order."""
        with self._lock:
            return list(self._by_order.get(magento_entity_id, []))

    def applied(self, endpoint: str) -> int:
        """How many holds (or unholds) Magento applied, over every order."""
        with self._lock:
            return sum(
                1 for items in self._by_order.values() for o in items
                if o.endpoint == endpoint and o.applied
            )  # fmt: skip
