"""The admission gate: every entry point takes a line here before a call may start.

Two limits, both counted over every kind of entry point (provider websockets,
WebRTC offers, Daily dial-ins, and any later transport): the runner's lines
(``CALLS_MAX_CONCURRENT``, each call costs CPU on the shared cores) and the
company's lines (``Company.max_lines``, what the agency sells). A line is held
by a ``Lease`` from admission until the call's media ends, not until the call
is stored, so a slow database or broker never keeps a line busy.

Counts are per runner process for now; past one box they move to Redis (DESIGN,
"Scale").
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from django.conf import settings


class LineRefused(Exception):
    """No line for this call; ``reason`` is ``runner_full``, ``company_full`` or ``duplicate``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Lease:
    """One admitted call's line; ``release()`` frees it (idempotent)."""

    gate: "AdmissionGate"
    key: str
    company_id: int
    released: bool = field(default=False)

    def release(self) -> None:
        self.gate._release(self)


class AdmissionGate:
    def __init__(self, *, runner_lines: Callable[[], int] | None = None):
        self._runner_lines = runner_lines or (lambda: settings.CALLS_MAX_CONCURRENT)
        self._leases: dict[str, Lease] = {}
        self._per_company: Counter[int] = Counter()
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        return len(self._leases)

    def company_active(self, company_id: int) -> int:
        return self._per_company[company_id]

    def check(self, *, company_id: int, company_lines: int) -> None:
        """Raise ``LineRefused`` if a call for this company would be refused now (takes no line)."""
        with self._lock:
            self._refusal(company_id, company_lines)

    def admit(self, *, key: str, company_id: int, company_lines: int) -> Lease:
        """Take a line for call ``key`` or raise ``LineRefused``."""
        with self._lock:
            if key in self._leases:
                raise LineRefused("duplicate", f"call {key} already holds a line")
            self._refusal(company_id, company_lines)
            lease = Lease(gate=self, key=key, company_id=company_id)
            self._leases[key] = lease
            self._per_company[company_id] += 1
            return lease

    def _refusal(self, company_id: int, company_lines: int) -> None:
        runner_lines = self._runner_lines()
        if len(self._leases) >= runner_lines:
            raise LineRefused("runner_full", f"all {runner_lines} lines of this runner are busy")
        if company_lines and self._per_company[company_id] >= company_lines:
            raise LineRefused("company_full", f"all {company_lines} lines of company {company_id} are busy")

    def _release(self, lease: Lease) -> None:
        with self._lock:
            if lease.released:
                return
            lease.released = True
            if self._leases.get(lease.key) is lease:
                del self._leases[lease.key]
                self._per_company[lease.company_id] -= 1
                if self._per_company[lease.company_id] <= 0:
                    del self._per_company[lease.company_id]
