"""Waiting on a condition, not the clock: poll it until it holds or a deadline passes."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 60, interval: float = 0.05, *, what: str = "the condition"):
    """``predicate()``'s first truthy value; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
