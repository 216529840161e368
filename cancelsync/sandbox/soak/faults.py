"""The soak's fault mix: which faults, how often, on which endpoints, and their counts.

Transport faults go through each server's ``FaultPlan`` (a counting subclass, so the figures
say what was injected, not what was configured); data faults (duplicated and swapped search
items) through the TikTok simulator. Rates are per request and seeded. The base rates:
10 % 5xx (500, 503: "not done"; 502, 504: "maybe done"), 5 % 429 (most with a Retry-After),
2 % of writes applied with the reply lost, 1 % dropped connections, 2 % slow calls under the
client timeout and 1 % over it (a slow write still commits after the client gave up, see
``common``). Writes get them at ``write_scale``, reads at ``read_scale``: every read fault
costs the worker a real 1-2 s backoff and reads are four requests in five, so the time
budget is kept by thinning the reads, not the writes.

Two profiles:

- ``full`` (``make soak``): every fault on every endpoint, writes included.
- ``short`` (the test inside ``make test``): the same on reads; on writes only answers that
  say "not done" (429, 500, 503) and applied-but-reply-lost (not on Magento order
  comments: a lost reply to a hold's comment parks the hold, as below). Left out on writes: drops,
  502/504 and timeouts — the worker parks such a write for ``timeout + 60 s`` before it
  looks again (``engine.SETTLE_MARGIN_SECONDS``, by design), longer than the short run —
  and every slow write, because a worker killed during one and restarted at once refunds
  twice (a known worker bug the full soak reports).

The token host never gets drops, lost replies or delays: the simulator supersedes the old
refresh token the moment it rotates, so a lost refresh reply locks the store out for good
(whether TikTok keeps the old refresh token valid for a while is unconfirmed). It still gets
5xx and 429.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

from cancelsync.sandbox.common import Fault, FaultPlan
from cancelsync.sandbox.harness import Sandbox

MAGENTO_WRITES = (
    r"POST order/\{id\}/refund|POST orders/\{id\}/(cancel|comments|hold|unhold)"
)
TIKTOK_WRITES = (
    r"POST /return_refund/\{v\}/cancellations"
    r"|POST /return_refund/202309/cancellations/\{cancel_id\}/(approve|reject)"
)
WRITES = re.compile(f"{MAGENTO_WRITES}|{TIKTOK_WRITES}")
# The short profile's lost replies leave out order comments: a hold's comment is its
# first call, and a lost reply to it leaves the hold unsent but its row parked for the
# settle time, as any cut-short send (the engine cannot tell which call was cut).
SHORT_LOST_REPLY_MAGENTO_WRITES = (
    r"POST order/\{id\}/refund|POST orders/\{id\}/(cancel|hold|unhold)"
)
NOT_TOKEN = r"(?!GET /api/v2/token/).*"
ANY = ".*"


class CountingFaultPlan(FaultPlan):
    """A ``FaultPlan`` that counts the faults it hands out, by label."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.labels: dict[int, str] = {}
        self.injected: Counter[str] = Counter()

    def add(self, endpoint: str, fault: Fault, rate: float, label: str) -> None:
        self.labels[id(fault)] = label
        self.at_rate(endpoint, fault, rate)

    def pick(self, endpoint: str) -> Fault | None:
        fault = super().pick(endpoint)
        if fault is not None:
            self.injected[self.labels.get(id(fault), fault.kind)] += 1
        return fault


@dataclass(frozen=True)
class Rule:
    label: str
    fault: Fault
    rate: float
    reads: bool = True
    writes: bool = True
    token_host: bool = False


def _tiktok_body(code: int, message: str) -> bytes:
    return json.dumps(
        {"code": code, "message": message, "request_id": "sandbox-fault", "data": {}}
    ).encode()


def _rules(platform: str, profile: str, timeout: float) -> list[Rule]:
    full = profile == "full"
    tiktok = platform == "tiktok"

    def status(code: int, retry_after: float | None = None) -> Fault:
        if tiktok:
            body = {
                429: _tiktok_body(36009002, "Too many requests"),
                504: _tiktok_body(36009007, "Request timed out"),
            }.get(code, _tiktok_body(36009003, "Internal error"))
        elif code in (502, 503, 504):
            body = b"<html><body><h1>%d</h1>nginx</body></html>" % code
        else:
            body = (
                b'{"message": "Internal Error. Details are available in Magento log."}'
            )
        return Fault("status", status=code, body=body, retry_after=retry_after)

    slow = Fault("delay", seconds=round(timeout * 0.5, 2))
    too_slow = Fault("delay", seconds=round(timeout * 1.5, 2))
    return [
        Rule("5xx (500)", status(500), 0.035, token_host=True),
        Rule("5xx (503)", status(503), 0.03, token_host=True),
        Rule("5xx (502)", status(502), 0.015, writes=full),
        Rule("5xx (504)", status(504), 0.02, writes=full),
        Rule("429 + Retry-After", status(429, retry_after=0.2), 0.035, token_host=True),
        Rule("429", status(429), 0.015, token_host=True),
        Rule("applied, reply lost", Fault("lost_response"), 0.02, reads=False),
        Rule("dropped connection", Fault("drop"), 0.01, writes=full),
        Rule("slow call", slow, 0.02, writes=full),
        Rule("timeout (slow call)", too_slow, 0.01, writes=full),
    ]


class FaultMix:
    """Installs one profile's faults on a sandbox, clears them, and reports counts.

    ``write_scale`` and ``read_scale`` multiply the rates on writes and on reads: a read
    fault costs the worker a real 1-2 s backoff sleep, and reads are four in five
    requests, so the soak keeps its time budget by thinning them, never the writes.
    """

    def __init__(
        self,
        sb: Sandbox,
        profile: str,
        seed: int,
        *,
        timeout: float,
        data_rate: float,
        write_scale: float = 1.0,
        read_scale: float = 1.0,
    ) -> None:
        if profile not in ("full", "short"):
            raise ValueError("profile must be 'full' or 'short'")
        self.sb = sb
        self.profile = profile
        self.seed = seed
        self.timeout = timeout
        self.data_rate = data_rate
        self.write_scale = write_scale
        self.read_scale = read_scale
        self.data_injected: dict[str, int] | None = None
        self.plans = {
            "magento": CountingFaultPlan(seed * 7 + 1),
            "tiktok": CountingFaultPlan(seed * 7 + 2),
        }

    def install(self) -> None:
        writes = {"magento": MAGENTO_WRITES, "tiktok": TIKTOK_WRITES}
        for platform, plan in self.plans.items():
            for rule in _rules(platform, self.profile, self.timeout):
                if rule.writes:
                    rate = rule.rate * self.write_scale
                    target = writes[platform]
                    if (
                        self.profile == "short"
                        and platform == "magento"
                        and rule.fault.kind == "lost_response"
                    ):
                        target = SHORT_LOST_REPLY_MAGENTO_WRITES
                    plan.add(f"(?:{target})", rule.fault, rate, rule.label)
                if rule.reads:
                    rest = ANY if rule.token_host else NOT_TOKEN
                    target = f"(?!(?:{writes[platform]})$){rest}"
                    plan.add(
                        target, rule.fault, rule.rate * self.read_scale, rule.label
                    )
        self.sb.magento_server.faults = self.plans["magento"]
        self.sb.tiktok_server.faults = self.plans["tiktok"]
        self.sb.tiktok.set_data_faults(
            duplicate_rate=self.data_rate,
            out_of_order_rate=self.data_rate,
            seed=self.seed,
        )

    def clear(self) -> None:
        """Faults off (what was injected stays counted)."""
        self.data_injected = self.sb.tiktok.data_faults_injected()
        for plan in self.plans.values():
            plan.clear()
        self.sb.tiktok.set_data_faults()

    def injected(self) -> dict[str, int]:
        """Faults injected so far, by kind, both platforms together."""
        total: Counter[str] = Counter()
        for plan in self.plans.values():
            total.update(plan.injected)
        data = self.data_injected or self.sb.tiktok.data_faults_injected()
        total["duplicated page item"] += data["duplicated"]
        total["out-of-order page items"] += data["swapped"]
        return dict(total)
