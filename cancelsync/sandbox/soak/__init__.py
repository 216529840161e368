"""The chaos soak: the real worker, as separate processes through the CLI, against both
simulators with faults turned up and SIGKILLs at chosen moments; then invariants checked
against an oracle computed from the generated world (``make soak``; a short variant runs in
``make test``). See ``run`` for the phases, ``oracle`` for the invariants.
"""

from __future__ import annotations

from cancelsync.sandbox.soak.run import SoakResult, SoakSettings, run_soak

__all__ = ["SoakResult", "SoakSettings", "run_soak"]
